//! Numbers and text sized for table cells: every figure fits the column it
//! is drawn in, so nothing is cut in a way that hides its meaning.

use tracer_common::{pow2_high, pow2_low, POW2_BUCKETS};

/// A rate in at most 5 characters: `999`, `9.6k`, `27k`, `1.5M`.
pub fn rate(v: f64) -> String {
    if v >= 1e7 {
        format!("{:.0}M", v / 1e6)
    } else if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// Three significant figures at most: `7.8`, `51.0`, `249`.
fn sig3(v: f64) -> String {
    if v < 99.95 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// A duration in at most 6 characters: `800ns`, `7.8µs`, `51.0µs`, `249µs`.
pub fn ns(v: f64) -> String {
    if v >= 1e9 {
        format!("{}s", sig3(v / 1e9))
    } else if v >= 999.5e3 {
        format!("{}ms", sig3(v / 1e6))
    } else if v >= 999.5 {
        format!("{}µs", sig3(v / 1e3))
    } else {
        format!("{v:.0}ns")
    }
}

/// Bytes with a one-letter unit in at most 5 characters: `600`, `9.4K`,
/// `250K`, `76.5M` (the column header says what they count).
pub fn short_bytes(v: f64) -> String {
    const K: f64 = 1024.0;
    if v >= K * K * K {
        format!("{}G", sig3(v / (K * K * K)))
    } else if v >= K * K {
        format!("{}M", sig3(v / (K * K)))
    } else if v >= K {
        format!("{}K", sig3(v / K))
    } else {
        format!("{v:.0}")
    }
}

/// A small average or share in at most 4 characters: `0.1`, `12.5`, `100`,
/// `1003`, `12k`.
pub fn small(v: f64) -> String {
    if v >= 9999.5 {
        rate(v)
    } else if v >= 99.95 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

pub fn uptime(s: f64) -> String {
    let s = s as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s / 60 % 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// A count in at most 4 characters, for histogram axes: `512`, `1k`, `64k`, `2M`.
fn count_axis(v: u64) -> String {
    if v >= 1024 * 1024 && v.is_power_of_two() {
        format!("{}M", v / (1024 * 1024))
    } else if v >= 1024 && v.is_power_of_two() {
        format!("{}k", v / 1024)
    } else if v < 10_000 {
        v.to_string()
    } else {
        format!("{}k", v / 1000)
    }
}

/// A time bound in ns in at most 5 characters: `512ns`, `32µs`, `131µs`, `1ms`.
fn time_axis(low: u64) -> String {
    match low {
        0..=999 => format!("{low}ns"),
        1_000..=999_999 => format!("{}µs", low / 1_000),
        1_000_000..=999_999_999 => format!("{}ms", low / 1_000_000),
        _ => format!("{}s", low / 1_000_000_000),
    }
}

/// The label of power-of-two buckets `first..=last` drawn as one bar. Counts read as
/// ranges (`0`, `1`, `2-3`, `512-1023`); times as their lower bound (`32µs`).
/// `short` asks for the lower bound only, for narrow bars.
pub fn bucket_label(first: usize, last: usize, is_time: bool, short: bool) -> String {
    let low = pow2_low(first);
    if is_time {
        return time_axis(low);
    }
    if short {
        return count_axis(low);
    }
    let high = if last >= POW2_BUCKETS - 1 {
        return format!("≥{}", count_axis(low));
    } else {
        pow2_high(last) - 1
    };
    if high == low {
        low.to_string()
    } else if high < 10_000 {
        format!("{low}-{high}")
    } else {
        format!("{}-{}", count_axis(low), count_axis(high + 1))
    }
}

/// Greedy word wrap to `width` columns; a word longer than a line is split.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut len = 0;
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        while word.len() > width {
            if len > 0 {
                lines.push(std::mem::take(&mut line));
                len = 0;
            }
            let rest = word.split_off(width);
            lines.push(word.into_iter().collect());
            word = rest;
        }
        if len > 0 && len + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
            len = 0;
        }
        if len > 0 {
            line.push(' ');
            len += 1;
        }
        len += word.len();
        line.extend(word);
    }
    if len > 0 {
        lines.push(line);
    }
    lines
}

/// `wrap` in at most `max_lines`: text cut short ends at a whole word with
/// " …", so a reader knows there is more (the summary prints it whole).
pub fn wrap_at_most(text: &str, width: usize, max_lines: usize) -> Vec<String> {
    let mut lines = wrap(text, width);
    if lines.len() <= max_lines || max_lines == 0 {
        lines.truncate(max_lines);
        return lines;
    }
    lines.truncate(max_lines);
    let last = &mut lines[max_lines - 1];
    // Lines break between words: only making room for the mark cuts one.
    if last.chars().count() + 2 > width {
        let keep = width.saturating_sub(2);
        *last = last.chars().take(keep + 1).collect();
        match last.rfind(' ') {
            Some(i) if i > 0 => last.truncate(i),
            _ => *last = last.chars().take(keep).collect(),
        }
    }
    last.push_str(" …");
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_fit_their_columns() {
        for v in [0.0, 0.4, 999.0, 1234.0, 27_345.0, 1.5e6, 12.3e6, 999.9e6] {
            assert!(rate(v).chars().count() <= 5, "{v} → {}", rate(v));
        }
        for v in [
            0.0, 800.0, 999.6, 7_800.0, 51_000.0, 249_000.0, 999_999.0, 3.2e9,
        ] {
            assert!(ns(v).chars().count() <= 6, "{v} → {}", ns(v));
        }
        assert_eq!(ns(51_000.0), "51.0µs");
        assert_eq!(ns(249_000.0), "249µs");
        assert_eq!(ns(999_999.0), "1.0ms");
        for v in [0.0, 600.0, 9_600.0, 255_000.0, 80e6, 3e9] {
            assert!(short_bytes(v).chars().count() <= 5, "{v}");
        }
        for v in [0.1, 12.46, 100.0, 1003.0, 65_536.0] {
            assert!(small(v).chars().count() <= 4, "{v} → {}", small(v));
        }
    }

    #[test]
    fn bucket_labels() {
        assert_eq!(bucket_label(0, 0, false, false), "0");
        assert_eq!(bucket_label(1, 1, false, false), "1");
        assert_eq!(bucket_label(2, 2, false, false), "2-3");
        assert_eq!(bucket_label(10, 10, false, false), "512-1023");
        assert_eq!(bucket_label(3, 4, false, false), "4-15");
        assert_eq!(bucket_label(17, 17, false, false), "64k-128k");
        assert_eq!(bucket_label(10, 10, false, true), "512");
        assert_eq!(bucket_label(11, 11, false, true), "1k");
        assert_eq!(bucket_label(16, 16, true, false), "32µs");
        assert_eq!(
            bucket_label(POW2_BUCKETS - 1, POW2_BUCKETS - 1, false, false)
                .chars()
                .next(),
            Some('≥')
        );
    }

    #[test]
    fn wrapping() {
        assert_eq!(wrap("a bb ccc", 4), ["a bb", "ccc"]);
        assert_eq!(wrap("abcdefgh", 3), ["abc", "def", "gh"]);
        assert_eq!(wrap("", 10), Vec::<String>::new());
        assert_eq!(wrap("µs µs", 5), ["µs µs"]);
        assert_eq!(wrap_at_most("a bb ccc", 10, 1), ["a bb ccc"]);
        assert_eq!(wrap_at_most("aaa bbb ccc", 8, 1), ["aaa …"]);
        assert_eq!(wrap_at_most("a b c d e f", 5, 1), ["a b …"]);
        assert_eq!(wrap_at_most("aa bb cc dd ee", 20, 1), ["aa bb cc dd ee"]);
        assert_eq!(
            wrap_at_most("aa bb cc dd ee ff gg", 8, 2),
            ["aa bb cc", "dd ee …"]
        );
        assert_eq!(wrap_at_most("abcdefgh ij", 4, 1), ["ab …"]);
    }
}
