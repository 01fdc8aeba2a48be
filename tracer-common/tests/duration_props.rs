//! Properties of `parse_duration` over generated input: whatever a user
//! types, the answer is a positive duration of at most a year or an error,
//! never a panic; and a duration written the way a user writes it reads back
//! as itself.

use std::time::Duration;

use proptest::prelude::*;
use tracer_common::duration::{parse_duration, DurationError, MAX_DURATION};

/// Strings that look like durations, or nearly: digits, points, exponents,
/// signs, spaces and every unit, in any order — the input that reaches the
/// number and unit parsing rather than failing at the first character.
fn duration_like() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            "[0-9]{1,25}",
            Just(".".to_owned()),
            Just(" ".to_owned()),
            Just("-".to_owned()),
            Just("+".to_owned()),
            Just("e".to_owned()),
            Just("e400".to_owned()),
            Just("inf".to_owned()),
            Just("NaN".to_owned()),
            Just("us".to_owned()),
            Just("µs".to_owned()),
            Just("ms".to_owned()),
            Just("s".to_owned()),
            Just("m".to_owned()),
            Just("min".to_owned()),
            Just("h".to_owned()),
            Just("d".to_owned()),
        ],
        0..6,
    )
    .prop_map(|pieces| pieces.concat())
}

/// The unit a user would write `d` in: the largest one that divides it,
/// as `{n}{unit}`; below a microsecond, seconds with nine decimals.
fn written(d: Duration) -> String {
    let nanos = d.as_nanos();
    for (unit, size) in [
        ("h", 3_600_000_000_000u128),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
    ] {
        if nanos.is_multiple_of(size) {
            return format!("{}{unit}", nanos / size);
        }
    }
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

/// Up to here, every duration written in whole units or as decimal seconds
/// reads back to the nanosecond: 48 days, far beyond any interval or run
/// length anyone types.
const EXACT_UP_TO: Duration = Duration::from_secs(48 * 24 * 3600);

fn check_bounds(text: &str) -> Result<(), TestCaseError> {
    if let Ok(d) = parse_duration(text) {
        prop_assert!(
            !d.is_zero() && d <= MAX_DURATION,
            "{text:?} parsed to {d:?}, outside (0, a year]"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn any_string_is_a_bounded_duration_or_an_error(text in any::<String>()) {
        check_bounds(&text)?;
    }

    #[test]
    fn any_duration_like_string_is_a_bounded_duration_or_an_error(text in duration_like()) {
        check_bounds(&text)?;
    }

    /// Numbers far outside the range, in every unit: an error that says
    /// which way they are out, never a wrapped or saturated value.
    #[test]
    fn huge_and_tiny_numbers_are_errors(
        digits in "[1-9][0-9]{20,40}",
        unit in prop_oneof![Just(""), Just("s"), Just("ms"), Just("us"), Just("m"), Just("h")],
    ) {
        prop_assert_eq!(parse_duration(&format!("{digits}{unit}")), Err(DurationError::TooLong));
        let tiny = format!("0.{}{digits}{unit}", "0".repeat(20));
        prop_assert_eq!(parse_duration(&tiny), Err(DurationError::NotPositive));
    }

    /// A whole number of some unit, up to a year: what `10s`, `500ms`,
    /// `250us` or `2h` mean — exactly up to [`EXACT_UP_TO`], within a few
    /// nanoseconds beyond: the number is scaled in an f64, whose 53 bits hold
    /// nanoseconds exactly only up to about 2^22 s (at a year one step of an
    /// f64 is 3.7 ns).
    #[test]
    fn a_written_duration_reads_back_as_itself(
        nanos in 1u64..=MAX_DURATION.as_nanos() as u64,
        unit in prop_oneof![
            Just(1_000u64), Just(1_000_000), Just(1_000_000_000),
            Just(60_000_000_000), Just(3_600_000_000_000),
        ],
    ) {
        let d = Duration::from_nanos((nanos / unit).max(1) * unit);
        let text = written(d);
        let back = parse_duration(&text);
        if d <= EXACT_UP_TO {
            prop_assert_eq!(back, Ok(d), "{}", text);
        } else {
            let back = back.map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            prop_assert!(back.abs_diff(d) <= Duration::from_nanos(4), "{} → {:?}", text, back);
        }
    }

    /// Nanosecond precision, written as decimal seconds.
    #[test]
    fn decimal_seconds_read_back_to_the_nanosecond(nanos in 1u64..=EXACT_UP_TO.as_nanos() as u64) {
        let d = Duration::from_nanos(nanos);
        let text = format!("{}.{:09}", d.as_secs(), d.subsec_nanos());
        prop_assert_eq!(parse_duration(&text), Ok(d), "{}", text);
    }
}
