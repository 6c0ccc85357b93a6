//! When an app's ACME certificate is ordered, as pure functions of the time (unix seconds):
//! at once when there is none or it does not cover the app's hosts, else at 2/3 of its
//! lifetime (a 90-day certificate renews 30 days before it expires, as Let's Encrypt
//! advises); after a failed attempt, again after a doubling, jittered wait.

use std::time::Duration;

use crate::cert::covers;
use crate::record::{CertInfo, CertSource};

/// First wait after a failed order; doubled after each further failure.
pub const RETRY_BASE: Duration = Duration::from_secs(5 * 60);
/// Longest wait between attempts: Let's Encrypt allows 5 failed validations per host per
/// hour, and a waiting certificate that still serves loses nothing by a later retry.
pub const RETRY_MAX: Duration = Duration::from_secs(6 * 3600);

/// What the renewal loop should do about one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// Order now, for this reason (said in the attempt's event).
    Now(String),
    /// Nothing to do before this time (unix seconds).
    At(i64),
}

/// The moment (unix seconds) 2/3 of the lifetime from `not_before` to `not_after` has passed.
pub fn renew_at(not_before: i64, not_after: i64) -> i64 {
    not_before + (not_after - not_before).max(0) * 2 / 3
}

/// When to order a certificate for an app serving `hosts` whose current one is `current`.
pub fn next_order(current: Option<&CertInfo>, hosts: &[String], now: i64) -> Due {
    let Some(cert) = current else {
        return Due::Now("the app has no certificate yet".into());
    };
    if cert.source == CertSource::Uploaded {
        return Due::Now("the app asks for ACME; its uploaded certificate is replaced".into());
    }
    if let Some(host) = hosts.iter().find(|h| !covers(&cert.names, h)) {
        return Due::Now(format!("its certificate does not cover host {host}"));
    }
    let at = renew_at(cert.not_before_unix, cert.not_after_unix);
    if now >= at {
        return Due::Now(format!(
            "renewal: 2/3 of its certificate's lifetime has passed (it expires in {})",
            in_words(cert.not_after_unix - now)
        ));
    }
    Due::At(at)
}

/// How long to wait after `failures` (≥ 1) failed attempts in a row: [`RETRY_BASE`] doubled
/// per further failure, at most [`RETRY_MAX`], times a jitter factor from 0.8 to 1.2 picked
/// by `jitter` (0 to 1), so that many apps failing together do not retry together.
pub fn retry_after(failures: u32, jitter: f64) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    let wait = RETRY_BASE.saturating_mul(1 << doublings).min(RETRY_MAX);
    wait.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0))
}

/// A span of seconds in words: "29d 23h", "5h 3m", "42s"; "expired" below zero.
pub fn in_words(secs: i64) -> String {
    if secs < 0 {
        return "expired".into();
    }
    let (d, h, m) = (secs / 86400, secs % 86400 / 3600, secs % 3600 / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {}s", secs % 60)
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86400;

    fn acme_cert(names: &[&str], not_before: i64, not_after: i64) -> CertInfo {
        CertInfo {
            source: CertSource::Acme,
            issuer: "Pebble".into(),
            names: names.iter().map(|n| n.to_string()).collect(),
            not_before_unix: not_before,
            not_after_unix: not_after,
            stored_unix: not_before as u64,
        }
    }

    fn hosts(h: &[&str]) -> Vec<String> {
        h.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_90_day_certificate_renews_30_days_before_it_expires() {
        let t0 = 1_800_000_000;
        let cert = acme_cert(&["blog.example"], t0, t0 + 90 * DAY);
        let h = hosts(&["blog.example"]);
        assert_eq!(renew_at(t0, t0 + 90 * DAY), t0 + 60 * DAY);
        // A simulated clock walks over its life: nothing until day 60, then renew.
        for day in 0..60 {
            assert_eq!(
                next_order(Some(&cert), &h, t0 + day * DAY),
                Due::At(t0 + 60 * DAY),
                "day {day}"
            );
        }
        for day in [60, 75, 89, 91] {
            let due = next_order(Some(&cert), &h, t0 + day * DAY);
            assert!(
                matches!(&due, Due::Now(r) if r.starts_with("renewal")),
                "day {day}: {due:?}"
            );
        }
        assert_eq!(
            next_order(Some(&cert), &h, t0 + 60 * DAY),
            Due::Now(
                "renewal: 2/3 of its certificate's lifetime has passed (it expires in 30d 0h)"
                    .into()
            )
        );
    }

    #[test]
    fn missing_uncovering_or_uploaded_certificates_are_ordered_at_once() {
        let t0 = 1_800_000_000;
        let h = hosts(&["blog.example", "www.blog.example"]);
        assert!(matches!(next_order(None, &h, t0), Due::Now(r) if r.contains("no certificate")));
        let narrow = acme_cert(&["blog.example"], t0, t0 + 90 * DAY);
        assert!(
            matches!(next_order(Some(&narrow), &h, t0), Due::Now(r) if r.contains("www.blog.example"))
        );
        let mut uploaded = acme_cert(&["blog.example", "www.blog.example"], t0, t0 + 90 * DAY);
        uploaded.source = CertSource::Uploaded;
        assert!(
            matches!(next_order(Some(&uploaded), &h, t0), Due::Now(r) if r.contains("uploaded"))
        );
        // A short-lived certificate (the end-to-end test's) renews at 2/3 too.
        let short = acme_cert(&["blog.example", "www.blog.example"], t0, t0 + 30);
        assert_eq!(next_order(Some(&short), &h, t0 + 19), Due::At(t0 + 20));
        assert!(matches!(next_order(Some(&short), &h, t0 + 20), Due::Now(_)));
    }

    #[test]
    fn retries_double_up_to_a_cap_and_are_jittered() {
        assert_eq!(retry_after(1, 0.5), RETRY_BASE);
        assert_eq!(retry_after(2, 0.5), RETRY_BASE * 2);
        assert_eq!(retry_after(3, 0.5), RETRY_BASE * 4);
        assert_eq!(retry_after(40, 0.5), RETRY_MAX);
        assert_eq!(retry_after(1, 0.0), RETRY_BASE.mul_f64(0.8));
        assert_eq!(retry_after(1, 1.0), RETRY_BASE.mul_f64(1.2));
        assert_eq!(retry_after(1, 7.0), RETRY_BASE.mul_f64(1.2), "clamped");
        // At most 5 failed attempts in any hour (Let's Encrypt's failed-validation limit).
        let mut t = Duration::ZERO;
        let mut in_first_hour = 1;
        for f in 1..10 {
            t += retry_after(f, 0.0);
            if t < Duration::from_secs(3600) {
                in_first_hour += 1;
            }
        }
        assert!(in_first_hour <= 5, "{in_first_hour}");
    }

    #[test]
    fn spans_in_words() {
        assert_eq!(in_words(30 * DAY + 5), "30d 0h");
        assert_eq!(in_words(3 * 3600 + 120), "3h 2m");
        assert_eq!(in_words(125), "2m 5s");
        assert_eq!(in_words(9), "9s");
        assert_eq!(in_words(-1), "expired");
    }
}
