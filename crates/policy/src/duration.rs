//! Human units for durations, as hako's config and API use them: "250ms", "30s", "20m", "24h",
//! "1h30m", "1.5h", or a bare number of seconds. Also a serde adapter for `Option<Duration>`
//! fields (`null` or missing: none).

use std::time::Duration;

/// A duration that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Empty text.
    #[error("empty duration: write e.g. \"30s\", \"20m\" or \"24h\"")]
    Empty,
    /// Not a number followed by a unit.
    #[error(
        "cannot read duration {0:?}: write a number and a unit (ms, s, m, h, d), e.g. \"30s\" or \"1h30m\""
    )]
    Invalid(String),
    /// Too large or negative.
    #[error("duration {0:?} is out of range")]
    OutOfRange(String),
}

/// Parse "250ms", "30s", "20m", "24h", "2d", "1h30m", "1.5h" or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(DurationError::Empty);
    }
    let invalid = || DurationError::Invalid(text.to_owned());
    if let Ok(secs) = t.parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| DurationError::OutOfRange(text.to_owned()));
    }
    let mut total = 0.0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let (num, tail) = rest.split_at(num_end);
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_end);
        let value: f64 = num.parse().map_err(|_| invalid())?;
        let scale = match unit.trim() {
            "ms" => 1e-3,
            "s" | "sec" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            _ => return Err(invalid()),
        };
        total += value * scale;
        rest = next;
    }
    Duration::try_from_secs_f64(total).map_err(|_| DurationError::OutOfRange(text.to_owned()))
}

/// Format in the largest exact unit: "5m", "24h", "90s", "250ms", "1.5s".
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        return format!("{}s", d.as_secs_f64());
    }
    for (unit, size) in [
        ("d", 86_400_000u128),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    if ms == 0 {
        "0s".into()
    } else {
        format!("{ms}ms")
    }
}

/// Serde adapter: `Duration` as a human string ("5m"); reads strings or seconds.
pub mod human {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    /// Serialize as "5m".
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }

    /// Deserialize from "5m" or a number of seconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        super::human_opt::deserialize(d)?
            .ok_or_else(|| serde::de::Error::custom("a duration is required, e.g. \"30s\""))
    }
}

/// Serde adapter: `Option<Duration>` as a human string or null.
pub mod human_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialize as "5m" or null.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    /// Deserialize from "5m", a number of seconds, or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Secs(f64),
        }
        match Option::<Raw>::deserialize(d)? {
            None => Ok(None),
            Some(Raw::Text(t)) => super::parse_duration(&t)
                .map(Some)
                .map_err(serde::de::Error::custom),
            Some(Raw::Secs(s)) => Duration::try_from_secs_f64(s)
                .map(Some)
                .map_err(|_| serde::de::Error::custom(format!("duration {s} is out of range"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_human_units() {
        let s = Duration::from_secs;
        assert_eq!(parse_duration("30s"), Ok(s(30)));
        assert_eq!(parse_duration("20m"), Ok(s(1200)));
        assert_eq!(parse_duration(" 24h "), Ok(s(86_400)));
        assert_eq!(parse_duration("1h30m"), Ok(s(5400)));
        assert_eq!(parse_duration("1.5h"), Ok(s(5400)));
        assert_eq!(parse_duration("2d"), Ok(s(172_800)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("45"), Ok(s(45)));
    }

    #[test]
    fn rejects_nonsense_with_a_hint() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert!(matches!(
            parse_duration("5 parsecs"),
            Err(DurationError::Invalid(_))
        ));
        assert!(matches!(
            parse_duration("m5"),
            Err(DurationError::Invalid(_))
        ));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert!(matches!(
            parse_duration("-3"),
            Err(DurationError::OutOfRange(_))
        ));
        assert!(
            parse_duration("abc")
                .unwrap_err()
                .to_string()
                .contains("\"30s\"")
        );
    }

    #[test]
    fn formats_in_the_largest_exact_unit_and_round_trips() {
        for (d, text) in [
            (Duration::from_secs(300), "5m"),
            (Duration::from_secs(86_400), "1d"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_millis(250), "250ms"),
            (Duration::ZERO, "0s"),
            (Duration::from_micros(1500), "0.0015s"),
        ] {
            assert_eq!(format_duration(d), text);
            assert_eq!(parse_duration(text), Ok(d));
        }
    }
}
