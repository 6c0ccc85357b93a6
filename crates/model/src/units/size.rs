//! Sizes in bytes: "64MiB", "1GiB", "512k", "1.5G", "100MB", "4096" (units in the
//! [parent module's docs](super)).

use std::fmt;
use std::str::FromStr;

use super::UnitError;
use super::number::Decimal;

const WHAT: &str = "size";
const EXAMPLE: &str = "64MiB";
const KNOWN: &str = "B, k/KiB, M/MiB, G/GiB, T/TiB, P/PiB, E/EiB (powers of 1024) or kB, MB, GB, TB, PB, EB (powers of 1000)";

/// Parses a size into bytes (see the module docs for the units).
pub fn parse_size(input: &str) -> Result<u64, UnitError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(UnitError::Empty {
            what: WHAT,
            example: EXAMPLE,
        });
    }
    let (number, unit) = Decimal::split(s).ok_or_else(|| UnitError::BadNumber {
        input: input.to_string(),
        what: WHAT,
        example: EXAMPLE,
    })?;
    let unit = unit.trim_start();
    if unit.is_empty() && number.has_fraction() {
        return Err(UnitError::FractionalBytes(s.to_string()));
    }
    let factor = multiplier(unit).ok_or_else(|| UnitError::UnknownUnit {
        input: input.to_string(),
        unit: unit.to_string(),
        what: WHAT,
        known: KNOWN,
    })?;
    number
        .times(factor)
        .and_then(|b| u64::try_from(b).ok())
        .ok_or_else(|| UnitError::Overflow {
            input: input.to_string(),
            what: WHAT,
            max: "16EiB",
        })
}

/// The factor of a size unit, `None` when unknown.
fn multiplier(unit: &str) -> Option<u128> {
    let lower = unit.to_ascii_lowercase();
    let (prefix, tail) = match lower.char_indices().nth(1) {
        Some((i, _)) => lower.split_at(i),
        None => (lower.as_str(), ""),
    };
    let power = match prefix {
        "" | "b" if tail.is_empty() => return Some(1),
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        "e" => 6,
        _ => return None,
    };
    let base: u128 = match tail {
        "" | "i" | "ib" => 1024,
        "b" => 1000,
        _ => return None,
    };
    Some(base.pow(power))
}

/// Formats bytes for people: "0B", "512B", "1.5KiB", "64MiB", "1.2GiB" (at most one
/// decimal, powers of 1024), rounded: for tables and messages, never for stored values
/// (those use [`ByteSize`]'s exact form). Exact sizes print exactly.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut power = 0;
    while power + 1 < UNITS.len() && bytes >= 1u64 << (10 * (power + 1)) {
        power += 1;
    }
    let unit = 1u64 << (10 * power);
    if bytes.is_multiple_of(unit) {
        return format!("{}{}", bytes / unit, UNITS[power]);
    }
    // Tenths of the unit, rounded to nearest; 1023.96KiB becomes 1MiB, not "1024.0KiB".
    let tenths = (bytes as u128 * 10 + unit as u128 / 2) / unit as u128;
    if tenths >= 10240 && power + 1 < UNITS.len() {
        return format!("1{}", UNITS[power + 1]);
    }
    if tenths.is_multiple_of(10) {
        format!("{}{}", tenths / 10, UNITS[power])
    } else {
        format!("{}.{}{}", tenths / 10, tenths % 10, UNITS[power])
    }
}

/// The exact written form of a size: the largest power-of-1024 unit that divides it
/// ("256MiB"), else the largest power-of-1000 unit ("100MB"), else bytes ("1572865B").
/// [`parse_size`] reads it back to the same number.
fn exact(bytes: u64) -> String {
    const BINARY: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    const DECIMAL: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if bytes == 0 {
        return "0B".into();
    }
    for (units, base) in [(BINARY, 1024u64), (DECIMAL, 1000)] {
        for power in (1..=units.len()).rev() {
            let Some(unit) = base.checked_pow(power as u32) else {
                continue;
            };
            if bytes.is_multiple_of(unit) {
                return format!("{}{}", bytes / unit, units[power - 1]);
            }
        }
    }
    format!("{bytes}B")
}

/// A number of bytes that a user wrote with a unit. Parsed by [`parse_size`]; shown and
/// serialized exactly (see [`exact`]), so a stored size reads back to the same bytes. In
/// JSON it is a string ("256MiB") or a plain number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        parse_size(s).map(ByteSize)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&exact(self.0))
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
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "a size is a string with a unit like \"256MiB\" or a whole number of bytes",
            )
        })? {
            Raw::Bytes(n) => Ok(ByteSize(n)),
            Raw::Text(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binary_and_decimal_units() {
        let cases: &[(&str, u64)] = &[
            ("4096", 4096),
            ("0", 0),
            ("12B", 12),
            ("512k", 512 * 1024),
            ("512K", 512 * 1024),
            ("64MiB", 64 * 1024 * 1024),
            ("64mi", 64 * 1024 * 1024),
            ("1GiB", 1 << 30),
            ("1.5G", 3 << 29),
            ("2T", 2 << 40),
            ("100MB", 100_000_000),
            ("1kB", 1000),
            ("  256 MiB ", 256 << 20),
            ("0.5k", 512),
            ("1.1k", 1126),
            ("100mb", 100_000_000),
            ("1.5MB", 1_500_000),
            ("2GB", 2_000_000_000),
            ("100M", 100 << 20),
            ("3.0", 3),
        ];
        for (input, want) in cases {
            assert_eq!(parse_size(input), Ok(*want), "{input}");
        }
    }

    #[test]
    fn rejects_nonsense_with_clear_errors() {
        assert!(matches!(parse_size(""), Err(UnitError::Empty { .. })));
        assert!(matches!(parse_size("  "), Err(UnitError::Empty { .. })));
        assert!(matches!(
            parse_size("MiB"),
            Err(UnitError::BadNumber { .. })
        ));
        assert!(matches!(
            parse_size("-1M"),
            Err(UnitError::BadNumber { .. })
        ));
        assert!(matches!(
            parse_size("1.2.3M"),
            Err(UnitError::BadNumber { .. })
        ));
        let err = parse_size("64XB").unwrap_err();
        assert!(matches!(&err, UnitError::UnknownUnit { unit, .. } if unit == "XB"));
        assert!(err.to_string().contains("MiB"), "{err}");
        assert!(matches!(
            parse_size("1MiBs"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_size("1 k B"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_size("16384P"),
            Err(UnitError::Overflow { .. })
        ));
        assert!(matches!(parse_size("16E"), Err(UnitError::Overflow { .. })));
        assert_eq!(
            parse_size("1.5"),
            Err(UnitError::FractionalBytes("1.5".into()))
        );
        assert!(matches!(
            parse_size("1e3M"),
            Err(UnitError::UnknownUnit { .. })
        ));
        for bad in ["inf", "NaN", "+1M", "0x10", "1_000"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            parse_size("18446744073709551616"),
            Err(UnitError::Overflow { .. })
        ));
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn formats_for_people() {
        assert_eq!(format_size(0), "0B");
        assert_eq!(format_size(1023), "1023B");
        assert_eq!(format_size(1024), "1KiB");
        assert_eq!(format_size(1536), "1.5KiB");
        assert_eq!(format_size(64 << 20), "64MiB");
        assert_eq!(format_size((1 << 30) + (1 << 29) / 5 * 2), "1.2GiB");
        assert_eq!(format_size((1 << 20) - 1), "1MiB");
        assert_eq!(format_size(u64::MAX), "16EiB");
    }

    #[test]
    fn exact_sizes_round_trip() {
        for bytes in [0u64, 7, 1024, 1536, 64 << 20, 3 << 29, 5 << 40, 1 << 62] {
            assert_eq!(parse_size(&format_size(bytes)), Ok(bytes), "{bytes}");
        }
    }

    #[test]
    fn byte_sizes_are_written_exactly_and_read_back() {
        let cases: &[(u64, &str)] = &[
            (0, "0B"),
            (256 << 20, "256MiB"),
            (1536 << 10, "1536KiB"),
            (100_000_000, "100MB"),
            (1_500_000, "1500kB"),
            ((1536 << 10) + 1, "1572865B"),
            (u64::MAX, "18446744073709551615B"),
            (1 << 62, "4EiB"),
        ];
        for (bytes, text) in cases {
            assert_eq!(ByteSize(*bytes).to_string(), *text);
            assert_eq!(text.parse::<ByteSize>(), Ok(ByteSize(*bytes)), "{text}");
        }
        let j: ByteSize = serde_json::from_str("\"2GiB\"").unwrap();
        assert_eq!(j, ByteSize(2 << 30));
        assert_eq!(serde_json::to_string(&j).unwrap(), "\"2GiB\"");
        let n: ByteSize = serde_json::from_str("4096").unwrap();
        assert_eq!(n, ByteSize(4096));
        let err = serde_json::from_str::<ByteSize>("\"12 parsecs\"").unwrap_err();
        assert!(err.to_string().contains("parsecs"), "{err}");
        let err = serde_json::from_str::<ByteSize>("-1").unwrap_err();
        assert!(err.to_string().contains("256MiB"), "{err}");
    }
}
