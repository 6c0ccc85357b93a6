//! CPU amounts: a positive decimal number of cores ("0.5", "2"), read exactly like the
//! numbers of sizes and durations — no sign, no exponent, no `inf` or `nan`.

use super::UnitError;
use super::number::Decimal;

/// Parses a CPU limit in cores. Always finite and above zero when it succeeds; whether a
/// node can give that much is [`crate::NodeCapacity`]'s question.
pub fn parse_cpu(input: &str) -> Result<f64, UnitError> {
    let bad = || UnitError::Cpu(input.to_string());
    let (number, rest) = Decimal::split(input.trim()).ok_or_else(bad)?;
    if !rest.is_empty() || number.is_zero() {
        return Err(bad());
    }
    let cores = number.to_f64();
    if !(cores.is_finite() && cores > 0.0) {
        return Err(bad());
    }
    Ok(cores)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_positive_decimals() {
        for (input, want) in [("0.5", 0.5), ("2", 2.0), (" 1.25 ", 1.25), (".5", 0.5)] {
            assert_eq!(parse_cpu(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_positive_finite_number() {
        for bad in [
            "", "0", "0.0", "-1", "+1", "inf", "-inf", "nan", "NaN", "1e3", "1,5", "2 cores",
            "0x10", ".",
        ] {
            assert_eq!(parse_cpu(bad), Err(UnitError::Cpu(bad.into())), "{bad:?}");
        }
        assert_eq!(
            parse_cpu("inf").unwrap_err().to_string(),
            "cpu limit \"inf\" is not valid: give a positive number of cores such as 0.5 or 2"
        );
    }
}
