//! Sizes in bytes: "64MiB", "1GiB", "512k", "1.5G", "100MB", "4096".

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
/// decimal, powers of 1024). Exact sizes print exactly, so `parse_size` reads them back.
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
}
