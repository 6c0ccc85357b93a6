//! The decimal numbers inside sizes and durations, kept exact: an integer part and a
//! fraction as digits, so "1.5G" is exactly 1.5 × 2³⁰ with no floating point.

/// A non-negative decimal number, `int + frac / 10^frac_digits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Decimal {
    int: u128,
    frac: u128,
    frac_digits: u32,
}

/// Fraction digits beyond this many are dropped (they cannot matter for bytes or ns).
const MAX_FRAC_DIGITS: u32 = 18;

impl Decimal {
    /// Splits `s` into a leading decimal number and the rest. `None` when `s` does not
    /// start with a digit (or `.digit`), has more than one `.` or an integer part too long.
    pub(super) fn split(s: &str) -> Option<(Decimal, &str)> {
        let end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (num, rest) = s.split_at(end);
        let (int_s, frac_s) = match num.split_once('.') {
            Some((i, f)) => (i, f),
            None => (num, ""),
        };
        if frac_s.contains('.') || (int_s.is_empty() && frac_s.is_empty()) {
            return None;
        }
        let int = if int_s.is_empty() {
            0
        } else {
            int_s.parse::<u128>().ok()?
        };
        let kept = &frac_s[..frac_s.len().min(MAX_FRAC_DIGITS as usize)];
        let frac = if kept.is_empty() {
            0
        } else {
            kept.parse::<u128>().ok()?
        };
        Some((
            Decimal {
                int,
                frac,
                frac_digits: kept.len() as u32,
            },
            rest,
        ))
    }

    /// `self × factor`, rounded down; `None` on overflow of u128.
    pub(super) fn times(&self, factor: u128) -> Option<u128> {
        let whole = self.int.checked_mul(factor)?;
        let part = self.frac.checked_mul(factor)? / 10u128.pow(self.frac_digits);
        whole.checked_add(part)
    }

    /// True when the number is zero.
    pub(super) fn is_zero(&self) -> bool {
        self.int == 0 && self.frac == 0
    }

    /// True when the number has a non-zero fraction ("1.5", not "1" or "1.0").
    pub(super) fn has_fraction(&self) -> bool {
        self.frac != 0
    }

    /// The number as a float (finite: the integer part fits in u128).
    pub(super) fn to_f64(self) -> f64 {
        self.int as f64 + self.frac as f64 / 10f64.powi(self.frac_digits as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_numbers_from_units() {
        let (d, rest) = Decimal::split("1.5GiB").unwrap();
        assert_eq!(rest, "GiB");
        assert_eq!(d.times(1 << 30), Some(3 << 29));
        let (d, rest) = Decimal::split("250ms").unwrap();
        assert_eq!((d.times(1), rest), (Some(250), "ms"));
        let (d, rest) = Decimal::split(".5s").unwrap();
        assert_eq!((d.times(10), rest), (Some(5), "s"));
        let (d, _) = Decimal::split("3.").unwrap();
        assert_eq!(d.times(7), Some(21));
    }

    #[test]
    fn rejects_non_numbers() {
        assert_eq!(Decimal::split("MiB"), None);
        assert_eq!(Decimal::split("."), None);
        assert_eq!(Decimal::split("1.2.3k"), None);
        assert_eq!(Decimal::split("-5"), None);
        assert_eq!(Decimal::split("9".repeat(60).as_str()), None);
    }

    #[test]
    fn rounds_fractions_down_and_detects_overflow() {
        let (d, _) = Decimal::split("1.1").unwrap();
        assert_eq!(d.times(1024), Some(1126));
        let (d, _) = Decimal::split("0.000000000000000000001").unwrap();
        assert!(d.times(1000).unwrap() == 0);
        let (d, _) = Decimal::split(&u128::MAX.to_string()).unwrap();
        assert_eq!(d.times(2), None);
        assert!(Decimal::split("0.0").unwrap().0.is_zero());
        assert!(!Decimal::split("1.0").unwrap().0.has_fraction());
        assert!(Decimal::split("1.05").unwrap().0.has_fraction());
        assert_eq!(Decimal::split("2.25").unwrap().0.to_f64(), 2.25);
        assert!(
            Decimal::split(&u128::MAX.to_string())
                .unwrap()
                .0
                .to_f64()
                .is_finite()
        );
    }
}
