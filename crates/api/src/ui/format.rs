//! How the dashboard writes times, ages and durations.

/// A Unix time in milliseconds as `YYYY-MM-DD HH:MM:SS` UTC.
pub(super) fn utc(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// `HH:MM` UTC of a Unix time in seconds (the charts' axis).
pub(super) fn clock(unix: u64) -> String {
    let rest = unix % 86_400;
    format!("{:02}:{:02}", rest / 3600, rest % 3600 / 60)
}

/// An age in seconds as `45s`, `12m 3s`, `5h 2m`, `3d 4h`.
pub(super) fn age(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// Milliseconds with a precision that fits their size.
pub(super) fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.1} ms")
    }
}

/// A fraction as a percentage.
pub(super) fn percent(f: f64) -> String {
    format!("{:.1}%", f * 100.0)
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_ages() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        // 2024-02-29 12:34:56 UTC, a leap day.
        assert_eq!(utc(1_709_210_096_000), "2024-02-29 12:34:56");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(clock(1_709_210_096), "12:34");
        assert_eq!(age(5), "5s");
        assert_eq!(age(723), "12m 3s");
        assert_eq!(age(3 * 3600 + 120), "3h 2m");
        assert_eq!(age(2 * 86_400 + 7200), "2d 2h");
        assert_eq!(ms(3.125), "3.1 ms");
        assert_eq!(ms(250.4), "250 ms");
        assert_eq!(percent(0.125), "12.5%");
    }
}
