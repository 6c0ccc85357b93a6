//! Durations: "30s", "20m", "1h30m", "250ms", "1.5s", "2d".

use std::time::Duration;

use super::UnitError;
use super::number::Decimal;

const WHAT: &str = "duration";
const EXAMPLE: &str = "30s";
const KNOWN: &str = "ns, us, ms, s, m, h, d";

/// Nanoseconds in one of each unit.
fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        "d" => 86_400 * 1_000_000_000,
        _ => return None,
    })
}

/// Parses a duration: one or more `<number><unit>` parts, summed ("1h30m"). A bare `0`
/// is zero; any other bare number is refused, because its unit would be a guess.
pub fn parse_duration(input: &str) -> Result<Duration, UnitError> {
    let mut rest = input.trim();
    if rest.is_empty() {
        return Err(UnitError::Empty {
            what: WHAT,
            example: EXAMPLE,
        });
    }
    let bad_number = || UnitError::BadNumber {
        input: input.to_string(),
        what: WHAT,
        example: EXAMPLE,
    };
    let overflow = || UnitError::Overflow {
        input: input.to_string(),
        what: WHAT,
    };
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (number, after) = Decimal::split(rest).ok_or_else(bad_number)?;
        let after = after.trim_start();
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.' || c.is_whitespace())
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        if unit.is_empty() {
            if number.is_zero() && total == 0 && next.trim().is_empty() {
                return Ok(Duration::ZERO);
            }
            return Err(UnitError::MissingUnit(input.trim().to_string()));
        }
        let nanos = unit_nanos(unit).ok_or_else(|| UnitError::UnknownUnit {
            input: input.to_string(),
            unit: unit.to_string(),
            what: WHAT,
            known: KNOWN,
        })?;
        let part = number.times(nanos).ok_or_else(overflow)?;
        total = total.checked_add(part).ok_or_else(overflow)?;
        rest = next.trim_start();
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| overflow())?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// Formats a duration compactly: "0s", "250ms", "30s", "1h30m", "2d3h". Whole
/// milliseconds print exactly (so `parse_duration` reads them back); less is dropped.
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return if d.is_zero() {
            "0s".into()
        } else {
            format!("{}us", d.as_micros())
        };
    }
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000u128),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_and_combined_parts() {
        let cases: &[(&str, Duration)] = &[
            ("30s", Duration::from_secs(30)),
            ("20m", Duration::from_secs(1200)),
            ("1h30m", Duration::from_secs(5400)),
            ("250ms", Duration::from_millis(250)),
            ("1.5s", Duration::from_millis(1500)),
            ("2d", Duration::from_secs(172_800)),
            ("1h 30m 5s", Duration::from_secs(5405)),
            ("10us", Duration::from_micros(10)),
            ("7ns", Duration::from_nanos(7)),
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            (" 3m ", Duration::from_secs(180)),
        ];
        for (input, want) in cases {
            assert_eq!(parse_duration(input), Ok(*want), "{input}");
        }
    }

    #[test]
    fn rejects_nonsense_with_clear_errors() {
        assert!(matches!(parse_duration(""), Err(UnitError::Empty { .. })));
        let err = parse_duration("30").unwrap_err();
        assert_eq!(err, UnitError::MissingUnit("30".into()));
        assert!(err.to_string().contains("30s"), "{err}");
        assert!(matches!(
            parse_duration("1h30"),
            Err(UnitError::MissingUnit(_))
        ));
        assert!(matches!(
            parse_duration("s"),
            Err(UnitError::BadNumber { .. })
        ));
        assert!(matches!(
            parse_duration("-1s"),
            Err(UnitError::BadNumber { .. })
        ));
        assert!(matches!(
            parse_duration("5 minutes"),
            Err(UnitError::UnknownUnit { unit, .. }) if unit == "minutes"
        ));
        assert!(matches!(
            parse_duration("3w"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_duration("99999999999999999999999d"),
            Err(UnitError::Overflow { .. })
        ));
    }

    #[test]
    fn formats_compactly() {
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(90_061)), "1d1h1m1s");
        assert_eq!(format_duration(Duration::from_micros(40)), "40us");
    }

    #[test]
    fn whole_milliseconds_round_trip() {
        for ms in [1u64, 999, 1000, 61_001, 5_400_000, 86_400_000 * 3 + 7] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{ms}");
        }
    }
}
