//! What one chaos case measured, from the probes' outcomes (pure, unit-tested): failed site
//! requests, writes acknowledged and refused, writes lost (acknowledged but not read back after
//! recovery), and the time to recover; the table and the benchmark's last line.

use std::collections::HashSet;

/// What a probe does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `GET` of the static site's page.
    Page,
    /// A row written through the database site (`GET /cgi-bin/w?ID` inserts `ID`).
    DbWrite,
    /// An app created through the API (a write to hako's store).
    ApiWrite,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Page, Kind::DbWrite, Kind::ApiWrite];

    /// Site requests count as requests; API writes are the store's writes.
    pub fn is_site_request(self) -> bool {
        matches!(self, Kind::Page | Kind::DbWrite)
    }

    pub fn is_write(self) -> bool {
        matches!(self, Kind::DbWrite | Kind::ApiWrite)
    }
}

/// One probe's result, times in seconds of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub kind: Kind,
    /// When it was sent.
    pub sent: f64,
    /// When its answer (or failure) came.
    pub done: f64,
    /// A 2xx answer.
    pub ok: bool,
    /// The HTTP status, if one came.
    pub status: Option<u16>,
    /// What a write wrote (the row id, the app name), to read back.
    pub write: Option<String>,
}

/// When a case's fault began, and when the benchmark undid it (restarted what it killed, freed
/// the disk, ended the hog); equal for a fault that is not undone (an app's process killed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fault {
    pub start: f64,
    pub lift: f64,
}

/// Seconds from the fault's lift until every kind of probe that failed during the case
/// succeeded again (after its last failure); 0 if nothing failed. `Err(kind)`: that kind has
/// not succeeded since its last failure (not recovered yet).
pub fn recovery(outcomes: &[Outcome], fault: Fault) -> Result<f64, Kind> {
    let mut worst: f64 = 0.0;
    for kind in Kind::ALL {
        let of_kind = || outcomes.iter().filter(move |o| o.kind == kind);
        let Some(last_fail) = of_kind()
            .filter(|o| !o.ok && o.done >= fault.start)
            .map(|o| o.done)
            .max_by(f64::total_cmp)
        else {
            continue;
        };
        let back = of_kind()
            .filter(|o| o.ok && o.done > last_fail)
            .map(|o| o.done)
            .min_by(f64::total_cmp)
            .ok_or(kind)?;
        worst = worst.max(back - fault.lift);
    }
    Ok(worst.max(0.0))
}

/// One case's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub case: &'static str,
    /// Site requests (pages and database writes through the site).
    pub requests: usize,
    /// Site requests without a 2xx answer.
    pub failed: usize,
    /// Writes acknowledged with a 2xx (database rows and API creates).
    pub acked: usize,
    /// Writes refused (no 2xx): never acknowledged, so not owed.
    pub refused: usize,
    /// Acknowledged writes not read back after recovery.
    pub lost: usize,
    /// [`recovery`], seconds.
    pub recovery_s: f64,
    /// The longest a site request took (answered or not), seconds.
    pub slowest_s: f64,
    /// What the case did and saw, in a few words.
    pub note: String,
}

/// The figures of `outcomes` (a case's, already windowed), given what was read back.
pub fn row(
    case: &'static str,
    outcomes: &[Outcome],
    fault: Fault,
    present: &HashSet<String>,
    note: String,
) -> Result<Row, Kind> {
    let requests = outcomes.iter().filter(|o| o.kind.is_site_request());
    let writes = outcomes.iter().filter(|o| o.kind.is_write());
    let acked: Vec<&String> = writes
        .clone()
        .filter(|o| o.ok)
        .filter_map(|o| o.write.as_ref())
        .collect();
    Ok(Row {
        case,
        requests: requests.clone().count(),
        failed: requests.filter(|o| !o.ok).count(),
        acked: acked.len(),
        refused: writes.filter(|o| !o.ok).count(),
        lost: acked.iter().filter(|w| !present.contains(**w)).count(),
        recovery_s: recovery(outcomes, fault)?,
        slowest_s: outcomes
            .iter()
            .filter(|o| o.kind.is_site_request())
            .map(|o| o.done - o.sent)
            .fold(0.0, f64::max),
        note,
    })
}

/// The per-case table.
pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<13} {:>8} {:>6} {:>6} {:>7} {:>4} {:>10} {:>9}  {}\n",
        "case", "requests", "failed", "acked", "refused", "lost", "recovery_s", "slowest_s", "note"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<13} {:>8} {:>6} {:>6} {:>7} {:>4} {:>10.2} {:>9.2}  {}\n",
            r.case,
            r.requests,
            r.failed,
            r.acked,
            r.refused,
            r.lost,
            r.recovery_s,
            r.slowest_s,
            r.note
        ));
    }
    out
}

/// `chaos: cases=… lost_writes=… max_recovery_s=… failed_requests=…`.
pub fn last_line(rows: &[Row]) -> String {
    let lost: usize = rows.iter().map(|r| r.lost).sum();
    let failed: usize = rows.iter().map(|r| r.failed).sum();
    let max = rows.iter().map(|r| r.recovery_s).fold(0.0, f64::max);
    format!(
        "chaos: cases={} lost_writes={lost} max_recovery_s={max:.2} failed_requests={failed}",
        rows.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(kind: Kind, done: f64, ok: bool, write: Option<&str>) -> Outcome {
        Outcome {
            kind,
            sent: done - 0.01,
            done,
            ok,
            status: ok.then_some(200),
            write: write.map(str::to_string),
        }
    }

    #[test]
    fn nothing_failed_is_no_recovery_time() {
        let v = [
            o(Kind::Page, 1.0, true, None),
            o(Kind::Page, 2.0, true, None),
        ];
        let f = Fault {
            start: 1.5,
            lift: 1.5,
        };
        assert_eq!(recovery(&v, f), Ok(0.0));
    }

    #[test]
    fn recovery_runs_from_the_lift_to_the_first_success_after_the_last_failure() {
        let v = [
            o(Kind::Page, 1.0, true, None),
            o(Kind::Page, 2.1, false, None),
            o(Kind::Page, 2.2, true, None),
            o(Kind::Page, 2.5, false, None),
            o(Kind::Page, 2.9, true, None),
            o(Kind::ApiWrite, 3.0, false, None),
            o(Kind::ApiWrite, 4.5, true, Some("w1")),
        ];
        let f = Fault {
            start: 2.0,
            lift: 3.0,
        };
        // Pages were back before the lift (0), API writes 1.5 s after it.
        assert!((recovery(&v, f).unwrap() - 1.5).abs() < 1e-9);
        // Failures before the fault are not the fault's.
        let early = [
            o(Kind::Page, 0.5, false, None),
            o(Kind::Page, 0.6, true, None),
        ];
        assert_eq!(
            recovery(
                &early,
                Fault {
                    start: 1.0,
                    lift: 1.0
                }
            ),
            Ok(0.0)
        );
    }

    #[test]
    fn a_kind_without_a_success_since_its_failure_has_not_recovered() {
        let v = [
            o(Kind::DbWrite, 1.0, true, Some("1")),
            o(Kind::DbWrite, 2.0, false, None),
        ];
        let f = Fault {
            start: 1.5,
            lift: 1.5,
        };
        assert_eq!(recovery(&v, f), Err(Kind::DbWrite));
    }

    #[test]
    fn rows_count_failed_requests_and_lost_writes() {
        let v = [
            o(Kind::Page, 1.0, true, None),
            o(Kind::Page, 2.0, false, None),
            o(Kind::DbWrite, 2.1, false, Some("7")),
            o(Kind::DbWrite, 2.2, true, Some("8")),
            o(Kind::DbWrite, 2.3, true, Some("9")),
            o(Kind::ApiWrite, 2.4, false, Some("w1")),
            o(Kind::ApiWrite, 2.5, true, Some("w2")),
            o(Kind::Page, 2.6, true, None),
        ];
        let present: HashSet<String> = ["8", "w2"].iter().map(|s| s.to_string()).collect();
        let f = Fault {
            start: 1.5,
            lift: 1.5,
        };
        let r = row("x", &v, f, &present, String::new()).unwrap();
        assert_eq!(
            (r.requests, r.failed, r.acked, r.refused, r.lost),
            (6, 2, 3, 2, 1),
            "{r:?}"
        );
        assert!((r.slowest_s - 0.01).abs() < 1e-9, "{r:?}");
        let line = last_line(&[r.clone(), Row { lost: 0, ..r }]);
        assert_eq!(
            line,
            "chaos: cases=2 lost_writes=1 max_recovery_s=1.10 failed_requests=4"
        );
        assert!(table(&[]).starts_with("case"));
    }
}
