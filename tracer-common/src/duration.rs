//! Durations on command lines — `10s`, `500ms`, `1.5`, `2m`, `250us`, `1h` —
//! parsed by one set of rules for muxtrace and the demo tools alike.

use core::{fmt, time::Duration};

/// The longest duration accepted: a year. Anything longer is a typo, and
/// adding it to a clock reading must never overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationError {
    /// Not a number followed by an optional unit.
    NotADuration,
    /// A unit other than ns, us, µs, ms, s, m, min, h.
    UnknownUnit,
    /// Zero, or so short it rounds to zero nanoseconds.
    NotPositive,
    /// Longer than [`MAX_DURATION`].
    TooLong,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DurationError::NotADuration => "is not a duration (try 10s, 500ms or 2m)",
            DurationError::UnknownUnit => "has an unknown unit (use ns, us, ms, s, m or h)",
            DurationError::NotPositive => "must be a positive duration of at least 1ns",
            DurationError::TooLong => "is longer than a year",
        })
    }
}

/// A number with an optional unit (`ns`, `us`/`µs`, `ms`, `s`, `m`/`min`,
/// `h`); a bare number is seconds. `ns` is there because the error for a
/// zero names the shortest duration in it.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| DurationError::NotADuration)?;
    let scale = match unit.trim() {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(DurationError::UnknownUnit),
    };
    let secs = value * scale;
    if !secs.is_finite() || secs > MAX_DURATION.as_secs_f64() {
        return Err(DurationError::TooLong);
    }
    let duration = Duration::try_from_secs_f64(secs).map_err(|_| DurationError::TooLong)?;
    if duration.is_zero() {
        return Err(DurationError::NotPositive);
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_forms() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration(" 250us "), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("3µs"), Ok(Duration::from_micros(3)));
        // The shortest, as the error for zero names it.
        assert_eq!(parse_duration("1ns"), Ok(Duration::from_nanos(1)));
    }

    #[test]
    fn bad_values_are_errors_not_panics() {
        use DurationError::*;
        assert_eq!(parse_duration(""), Err(NotADuration));
        assert_eq!(parse_duration("ten"), Err(NotADuration));
        assert_eq!(parse_duration("-1s"), Err(NotADuration));
        assert_eq!(parse_duration("1.2.3s"), Err(NotADuration));
        assert_eq!(parse_duration("5parsecs"), Err(UnknownUnit));
        assert_eq!(parse_duration("0s"), Err(NotPositive));
        assert_eq!(parse_duration("0.0000000001"), Err(NotPositive));
        assert_eq!(parse_duration("99999999999999999999999s"), Err(TooLong));
        assert_eq!(parse_duration("10000000000000000000s"), Err(TooLong));
        assert_eq!(parse_duration("367d"), Err(UnknownUnit));
        assert_eq!(parse_duration("9000h"), Err(TooLong));
        assert_eq!(parse_duration("1e400"), Err(UnknownUnit));
    }

    /// Every string of up to four characters from a hostile alphabet: an
    /// `Ok` is positive and at most a year, and nothing panics.
    #[test]
    fn no_input_panics_or_escapes_the_bounds() {
        const ALPHABET: &[&str] = &["0", "1", "9", ".", "s", "m", "u", "h", "µ", " ", "-", "e"];
        let mut buf = [0u8; 16];
        let n = ALPHABET.len();
        let mut checked = 0;
        for len in 0..=4u32 {
            for mut code in 0..n.pow(len) {
                let mut used = 0;
                for _ in 0..len {
                    let piece = ALPHABET[code % n].as_bytes();
                    buf[used..used + piece.len()].copy_from_slice(piece);
                    used += piece.len();
                    code /= n;
                }
                let text = core::str::from_utf8(&buf[..used]).unwrap();
                if let Ok(d) = parse_duration(text) {
                    assert!(!d.is_zero() && d <= MAX_DURATION, "{text:?} → {d:?}");
                }
                checked += 1;
            }
        }
        assert!(checked > 20_000);
    }
}
