//! Durations: "30s", "20m", "1h30m", "250ms", "1.5s", "2d" (units in the
//! [parent module's docs](super)), the [`HumanDuration`] type and serde adapters for plain
//! [`Duration`] fields.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::UnitError;
use super::number::Decimal;

const WHAT: &str = "duration";
const EXAMPLE: &str = "30s";
const KNOWN: &str = "ns, us, ms, s, m, h, d";

/// The longest duration accepted: 36500 days (about 100 years). Longer ones are refused, so
/// that no deadline computed from a user's duration can overflow a clock.
pub const MAX_DURATION: Duration = Duration::from_secs(36_500 * 86_400);

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
        max: "36500d",
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
    if total > MAX_DURATION.as_nanos() {
        return Err(overflow());
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| overflow())?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// Formats a duration exactly, so [`parse_duration`] reads it back to the same value:
/// whole seconds as hours, minutes and seconds ("0s", "30s", "1h30m", "24h"); otherwise in the
/// largest of `ms`, `us`, `ns` that is exact ("250ms", "1500ms", "40us").
pub fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        let s = d.as_secs();
        if s == 0 {
            return "0s".into();
        }
        let mut out = String::new();
        for (n, unit) in [(s / 3600, "h"), (s % 3600 / 60, "m"), (s % 60, "s")] {
            if n > 0 {
                out.push_str(&format!("{n}{unit}"));
            }
        }
        return out;
    }
    let nanos = d.as_nanos();
    if nanos.is_multiple_of(1_000_000) {
        format!("{}ms", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        format!("{}us", nanos / 1_000)
    } else {
        format!("{nanos}ns")
    }
}

/// A duration that a user wrote with units. Parsed by [`parse_duration`]; shown and
/// serialized by [`format_duration`] (exact). In JSON it is a string ("5m"); a JSON number is
/// read as its text, so `0` is zero and any other bare number is refused for want of a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        parse_duration(s).map(HumanDuration)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl From<Duration> for HumanDuration {
    fn from(d: Duration) -> Self {
        HumanDuration(d)
    }
}

impl serde::Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Whole(u64),
            Float(f64),
        }
        let text = match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("a duration is a string with a unit, like \"30s\" or \"5m\"")
        })? {
            Raw::Text(t) => t,
            Raw::Whole(n) => n.to_string(),
            Raw::Float(f) => f.to_string(),
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Serde adapter for a [`Duration`] field written as a human duration:
/// `#[serde(with = "hako_model::units::serde_duration")]`.
pub mod serde_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::HumanDuration;

    /// Writes "5m".
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&HumanDuration(*d))
    }

    /// Reads "5m" (see [`HumanDuration`]).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        HumanDuration::deserialize(d).map(|h| h.0)
    }
}

/// Serde adapter for an `Option<Duration>` field: a human duration or `null`.
pub mod serde_duration_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::HumanDuration;

    /// Writes "5m" or null.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.collect_str(&HumanDuration(*d)),
            None => s.serialize_none(),
        }
    }

    /// Reads "5m" or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<HumanDuration>::deserialize(d)?.map(|h| h.0))
    }
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
        assert_eq!(parse_duration("36500d"), Ok(MAX_DURATION));
        let err = parse_duration("36500d1ns").unwrap_err();
        assert!(err.to_string().contains("at most 36500d"), "{err}");
        for bad in ["inf", "NaN", "1e3s", "+5s", "5 s s", "1.2.3s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_compactly() {
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(86_400)), "24h");
        assert_eq!(format_duration(Duration::from_secs(90_061)), "25h1m1s");
        assert_eq!(format_duration(Duration::from_micros(40)), "40us");
        assert_eq!(
            format_duration(Duration::from_nanos(1_000_001)),
            "1000001ns"
        );
    }

    #[test]
    fn every_duration_round_trips_exactly() {
        for nanos in [
            1u64,
            999,
            1_000,
            1_000_000,
            1_500_000_000,
            61_001_000_000,
            5_400_000_000_000,
            86_400_000_000_000 * 3 + 7,
            MAX_DURATION.as_nanos() as u64,
        ] {
            let d = Duration::from_nanos(nanos);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{nanos}");
        }
    }

    #[test]
    fn json_takes_strings_and_reads_numbers_as_their_text() {
        let d: HumanDuration = serde_json::from_str("\"1h30m\"").unwrap();
        assert_eq!(d.0, Duration::from_secs(5400));
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"1h30m\"");
        let zero: HumanDuration = serde_json::from_str("0").unwrap();
        assert_eq!(zero.0, Duration::ZERO);
        let err = serde_json::from_str::<HumanDuration>("45").unwrap_err();
        assert!(err.to_string().contains("add one, like 45s"), "{err}");
        let err = serde_json::from_str::<HumanDuration>("1.5").unwrap_err();
        assert!(err.to_string().contains("1.5s"), "{err}");
        let err = serde_json::from_str::<HumanDuration>("[1]").unwrap_err();
        assert!(err.to_string().contains("\"30s\""), "{err}");

        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct Fields {
            #[serde(with = "serde_duration")]
            every: Duration,
            #[serde(with = "serde_duration_opt", default)]
            maybe: Option<Duration>,
        }
        let f: Fields = serde_json::from_str(r#"{"every": "2m", "maybe": null}"#).unwrap();
        assert_eq!((f.every, f.maybe), (Duration::from_secs(120), None));
        let json = serde_json::to_string(&Fields {
            every: Duration::from_millis(250),
            maybe: Some(Duration::from_secs(86_400)),
        })
        .unwrap();
        assert_eq!(json, r#"{"every":"250ms","maybe":"24h"}"#);
        assert!(serde_json::from_str::<Fields>(r#"{"every": 90}"#).is_err());
    }
}
