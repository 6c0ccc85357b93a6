//! Human units on the wire and in config: sizes like "256MiB", durations like "30s".

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A malformed size or duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("size {0:?} is not valid: write it like 512KiB, 64MiB, 1.5GiB or a number of bytes")]
    Size(String),
    #[error("duration {0:?} is not valid: write it like 250ms, 30s, 20m, 1h30m or 2d")]
    Duration(String),
}

/// A number of bytes, written with binary units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        let err = || UnitError::Size(s.to_string());
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        if num.is_empty() {
            return Err(err());
        }
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" | "ki" | "kib" => 1 << 10,
            "m" | "mb" | "mi" | "mib" => 1 << 20,
            "g" | "gb" | "gi" | "gib" => 1 << 30,
            "t" | "tb" | "ti" | "tib" => 1 << 40,
            _ => return Err(err()),
        };
        if !num.contains('.') {
            // Whole numbers exactly (an f64 would round those above 2^53).
            let n: u64 = num.parse().map_err(|_| err())?;
            return n.checked_mul(mult).map(ByteSize).ok_or_else(err);
        }
        let v: f64 = num.parse().map_err(|_| err())?;
        let bytes = v * mult as f64;
        if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
            return Err(err());
        }
        if unit.is_empty() && num.contains('.') {
            return Err(err());
        }
        Ok(ByteSize(bytes.round() as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        for (unit, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] {
            let m = 1u64 << shift;
            if b >= m && b.is_multiple_of(m) {
                return write!(f, "{}{unit}", b / m);
            }
        }
        // Exact, so that a stored size reads back as itself (found by fuzzing: "1.0KiB" for
        // 1025 bytes came back as 1024).
        write!(f, "{b}B")
    }
}

impl serde::Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A duration written with human units ("30s", "20m", "1h30m").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        let err = || UnitError::Duration(s.to_string());
        let t = s.trim();
        if t.is_empty() {
            return Err(err());
        }
        if t == "0" {
            return Ok(HumanDuration(Duration::ZERO));
        }
        let mut total = Duration::ZERO;
        let mut rest = t;
        while !rest.is_empty() {
            let split = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(err)?;
            let (num, after) = rest.split_at(split);
            let ulen = after
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(after.len());
            let (unit, next) = after.split_at(ulen);
            let v: f64 = num.parse().map_err(|_| err())?;
            let secs = match unit {
                "ms" => v / 1000.0,
                "s" => v,
                "m" => v * 60.0,
                "h" => v * 3600.0,
                "d" => v * 86400.0,
                _ => return Err(err()),
            };
            if !secs.is_finite() || !(0.0..=1e12).contains(&secs) {
                return Err(err());
            }
            total += Duration::from_secs_f64(secs);
            rest = next;
        }
        Ok(HumanDuration(total))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.is_zero() {
            return write!(f, "0s");
        }
        if d.subsec_nanos() != 0 {
            if d < Duration::from_secs(1) && d.subsec_nanos().is_multiple_of(1_000_000) {
                return write!(f, "{}ms", d.as_millis());
            }
            return write!(f, "{}ms", d.as_secs_f64() * 1000.0);
        }
        let s = d.as_secs();
        let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
        let mut out = String::new();
        if h > 0 {
            out += &format!("{h}h");
        }
        if m > 0 {
            out += &format!("{m}m");
        }
        if sec > 0 {
            out += &format!("{sec}s");
        }
        f.write_str(&out)
    }
}

impl serde::Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl From<Duration> for HumanDuration {
    fn from(d: Duration) -> Self {
        HumanDuration(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!("64MiB".parse::<ByteSize>().unwrap(), ByteSize(64 << 20));
        assert_eq!("1.5G".parse::<ByteSize>().unwrap(), ByteSize(3 << 29));
        assert_eq!("512k".parse::<ByteSize>().unwrap(), ByteSize(512 << 10));
        assert_eq!("1000".parse::<ByteSize>().unwrap(), ByteSize(1000));
        for bad in ["", "MiB", "-1M", "12 parsecs", "1.5", "1e3M"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad}");
        }
        assert_eq!(ByteSize(256 << 20).to_string(), "256MiB");
        assert_eq!(ByteSize(1536 << 10).to_string(), "1536KiB");
        // Exact, never rounded: a stored size reads back as itself.
        assert_eq!(ByteSize((1536 << 10) + 1).to_string(), "1572865B");
        assert_eq!("1025".parse::<ByteSize>(), Ok(ByteSize(1025)));
        assert_eq!(
            "9007199254740993".parse::<ByteSize>(),
            Ok(ByteSize(9_007_199_254_740_993))
        );
        assert!("20000000T".parse::<ByteSize>().is_err(), "over u64");
        let j: ByteSize = serde_json::from_str("\"2GiB\"").unwrap();
        assert_eq!(j, ByteSize(2 << 30));
        assert_eq!(serde_json::to_string(&j).unwrap(), "\"2GiB\"");
    }

    #[test]
    fn durations() {
        let d = |s: &str| s.parse::<HumanDuration>().unwrap().0;
        assert_eq!(d("30s"), Duration::from_secs(30));
        assert_eq!(d("20m"), Duration::from_secs(1200));
        assert_eq!(d("1h30m"), Duration::from_secs(5400));
        assert_eq!(d("250ms"), Duration::from_millis(250));
        assert_eq!(d("0"), Duration::ZERO);
        for bad in ["", "10", "5 minutes", "1x", "-1s", "h"] {
            assert!(bad.parse::<HumanDuration>().is_err(), "{bad}");
        }
        assert_eq!(
            HumanDuration(Duration::from_secs(5400)).to_string(),
            "1h30m"
        );
        assert_eq!(
            HumanDuration(Duration::from_millis(250)).to_string(),
            "250ms"
        );
        for s in ["30s", "20m", "1h30m", "250ms", "2h"] {
            assert_eq!(d(&HumanDuration(d(s)).to_string()), d(s));
        }
    }
}
