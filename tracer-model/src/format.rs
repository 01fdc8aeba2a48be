//! Numbers and names as people read them: used by the verdicts and by every
//! text sink.

/// Human-readable byte count: 1,234 B, 12.4 KiB, 3.1 MiB.
pub fn bytes(v: f64) -> String {
    if v < 1024.0 {
        format!("{v:.0} B")
    } else if v < 1024.0 * 1024.0 {
        format!("{:.1} KiB", v / 1024.0)
    } else if v < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", v / (1024.0 * 1024.0))
    } else {
        format!("{:.1} GiB", v / (1024.0 * 1024.0 * 1024.0))
    }
}

/// Bytes in at most 8 characters, for table columns: `812`, `12.4K`,
/// `123.4M`, `1.5G` (powers of 1024).
pub fn short_bytes(v: u64) -> String {
    const K: f64 = 1024.0;
    let v = v as f64;
    if v < K {
        format!("{v:.0}")
    } else if v < K * K {
        format!("{:.1}K", v / K)
    } else if v < K * K * K {
        format!("{:.1}M", v / (K * K))
    } else {
        format!("{:.1}G", v / (K * K * K))
    }
}

/// An integer with thousands separators.
pub fn thousands(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Lossy, printable form of a comm for tables and headers: bytes that are
/// not UTF-8 become U+FFFD, control characters `?`.
pub fn display_comm(comm: &[u8]) -> String {
    String::from_utf8_lossy(comm)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// A duration for sentences: `182 ms`, `1.2 s`, `850 µs`, `352 ns`.
pub fn duration(ns: u64) -> String {
    let ns = ns as f64;
    // The unit follows the rounded figure: 0.99999 s is "1.0 s", not
    // "1000 ms", and 352 ns is "352 ns", not "0 µs".
    if ns >= 999.5e6 {
        format!("{:.1} s", ns / 1e9)
    } else if ns >= 999.5e3 {
        format!("{:.0} ms", ns / 1e6)
    } else if ns >= 999.5 {
        format!("{:.0} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// `14:02:03 UTC` of a Unix time: when something happened, to match
/// against a server's own logs.
pub fn clock_time_utc(unix_s: f64) -> String {
    let day_s = (unix_s as u64) % 86_400;
    format!(
        "{:02}:{:02}:{:02} UTC",
        day_s / 3600,
        day_s / 60 % 60,
        day_s % 60
    )
}

#[cfg(test)]
mod tests {
    /// The unit follows the rounded figure.
    #[test]
    fn durations_take_the_unit_of_their_rounded_figure() {
        use super::duration;
        assert_eq!(duration(999_999_999), "1.0 s");
        assert_eq!(duration(1_500_000_000), "1.5 s");
        assert_eq!(duration(182_000_000), "182 ms");
        assert_eq!(duration(999_600), "1 ms");
        assert_eq!(duration(850_000), "850 µs");
        assert_eq!(duration(352), "352 ns");
        assert_eq!(duration(0), "0 ns");
    }
}
