//! Schedules, the pure part: an app's cron expressions parsed (with the `croner` crate: five
//! fields, UTC, Vixie-cron's "day-of-month OR day-of-week"), the next fire time after a given
//! time, and a [`SchedulePlan`] that tells the daemon which runs are due and when to wake.
//! Wall-clock time is an argument (Unix seconds, UTC) — the daemon reads the clock, not this.
//!
//! ```
//! use hako_model::ScheduleEntry;
//! use hako_policy::schedule::SchedulePlan;
//!
//! let entry: ScheduleEntry = "*/15 * * * * GET /wp-cron.php".parse().unwrap();
//! let t0 = 1_767_225_600; // 2026-01-01 00:00:00 UTC
//! let mut plan = SchedulePlan::new(&[entry], t0 + 60).unwrap();
//! assert_eq!(plan.next_wake(), Some(t0 + 900)); // 00:15
//! assert!(plan.due(t0 + 899).is_empty());
//! let due = plan.due(t0 + 900);
//! assert_eq!((due[0].index, due[0].fire_time, due[0].missed), (0, t0 + 900, 0));
//! assert_eq!(plan.next_wake(), Some(t0 + 1800));
//! // The daemon was away for an hour: one run for 01:30, the four before it collapse into it.
//! let due = plan.due(t0 + 5400 + 10);
//! assert_eq!((due.len(), due[0].fire_time, due[0].missed), (1, t0 + 5400, 4));
//! ```

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use hako_model::{ScheduleEntry, ScheduleError};

/// Most missed fire times counted for one due run (a daemon that was away for long).
const MAX_MISSED: u32 = 10_000;

/// A parsed cron expression.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    cron: Cron,
    text: String,
}

impl CronSchedule {
    /// Parse a five-field expression (or `@hourly`, `@daily`, …); it must fire at least once.
    pub fn parse(expr: &str) -> Result<CronSchedule, ScheduleError> {
        let bad = |why: String| ScheduleError::Cron {
            expr: expr.to_owned(),
            why,
        };
        let fields = expr.split_whitespace().count();
        if !(fields == 5 || (fields == 1 && expr.trim_start().starts_with('@'))) {
            return Err(bad(format!(
                "{fields} fields: write minute hour day-of-month month day-of-week (UTC), e.g. */15 * * * *"
            )));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(expr)
            .map_err(|e| bad(e.to_string()))?;
        let schedule = CronSchedule {
            cron,
            text: expr.to_owned(),
        };
        // 2024-01-01: a leap year starts the search, so 29 February is found.
        if schedule.next_after(1_704_067_200).is_none() {
            return Err(bad("it never fires".into()));
        }
        Ok(schedule)
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first fire time strictly after `unix_secs` (UTC), if any.
    pub fn next_after(&self, unix_secs: i64) -> Option<i64> {
        let t: DateTime<Utc> = DateTime::from_timestamp(unix_secs, 0)?;
        self.cron
            .find_next_occurrence(&t, false)
            .ok()
            .map(|n| n.timestamp())
    }
}

/// Check an entry's cron expression (the model checked its shape).
pub fn validate(entry: &ScheduleEntry) -> Result<(), ScheduleError> {
    CronSchedule::parse(&entry.cron).map(|_| ())
}

/// A run that is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// Which entry (index into the app's schedules).
    pub index: usize,
    /// The fire time this run stands for: the latest one not after now.
    pub fire_time: i64,
    /// Earlier fire times skipped (the daemon was down or asleep): they collapse into this run.
    pub missed: u32,
}

/// An app's schedules and their next fire times.
#[derive(Debug, Clone)]
pub struct SchedulePlan {
    schedules: Vec<CronSchedule>,
    next: Vec<Option<i64>>,
}

impl SchedulePlan {
    /// The plan for `entries` as of `now` (Unix seconds): each fires first after `now`.
    pub fn new(entries: &[ScheduleEntry], now: i64) -> Result<SchedulePlan, ScheduleError> {
        let schedules = entries
            .iter()
            .map(|e| CronSchedule::parse(&e.cron))
            .collect::<Result<Vec<_>, _>>()?;
        let next = schedules.iter().map(|s| s.next_after(now)).collect();
        Ok(SchedulePlan { schedules, next })
    }

    /// The runs due at `now`, once each; their next fire times move past `now`.
    pub fn due(&mut self, now: i64) -> Vec<Due> {
        let mut out = Vec::new();
        for (index, (schedule, next)) in self.schedules.iter().zip(&mut self.next).enumerate() {
            let Some(mut fire) = *next else { continue };
            if fire > now {
                continue;
            }
            let mut missed = 0;
            let mut after = schedule.next_after(fire);
            while let Some(t) = after {
                if t > now || missed >= MAX_MISSED {
                    break;
                }
                missed += 1;
                fire = t;
                after = schedule.next_after(t);
            }
            *next = match after {
                Some(t) if t > now => Some(t),
                _ => schedule.next_after(now),
            };
            out.push(Due {
                index,
                fire_time: fire,
                missed,
            });
        }
        out
    }

    /// When the next run is due, if ever.
    pub fn next_wake(&self) -> Option<i64> {
        self.next.iter().flatten().copied().min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-01 00:00:00 UTC, a Thursday.
    const T0: i64 = 1_767_225_600;

    #[test]
    fn next_fire_times_in_utc() {
        let every15 = CronSchedule::parse("*/15 * * * *").unwrap();
        assert_eq!(every15.next_after(T0), Some(T0 + 900), "strictly after");
        assert_eq!(every15.next_after(T0 + 1), Some(T0 + 900));
        let daily3 = CronSchedule::parse("0 3 * * *").unwrap();
        assert_eq!(daily3.next_after(T0), Some(T0 + 3 * 3600));
        assert_eq!(daily3.next_after(T0 + 3 * 3600), Some(T0 + 27 * 3600));
        // Mondays at 09:30: 2026-01-05.
        let monday = CronSchedule::parse("30 9 * * MON").unwrap();
        assert_eq!(
            monday.next_after(T0),
            Some(T0 + 4 * 86_400 + 9 * 3600 + 1800)
        );
        let hourly = CronSchedule::parse("@hourly").unwrap();
        assert_eq!(hourly.next_after(T0 + 10), Some(T0 + 3600));
        assert_eq!(hourly.as_str(), "@hourly");
        // 29 February: the next one after 2026 is in 2028.
        let leap = CronSchedule::parse("0 0 29 2 *").unwrap();
        assert_eq!(leap.next_after(T0), Some(1_835_395_200));
    }

    #[test]
    fn bad_expressions_are_refused_with_the_reason() {
        for bad in [
            "61 * * * *",
            "* * * *",
            "0 * * * * *",
            "0 0 31 2 *",
            "@fortnightly",
            "x y z a b",
        ] {
            let e = CronSchedule::parse(bad).unwrap_err();
            assert!(matches!(e, ScheduleError::Cron { .. }), "{bad}: {e:?}");
            assert!(e.to_string().contains(bad), "{e}");
        }
        let entry: ScheduleEntry = "0 0 31 2 * GET /x".parse().unwrap();
        assert!(
            validate(&entry)
                .unwrap_err()
                .to_string()
                .contains("never fires")
        );
    }

    #[test]
    fn a_plan_wakes_at_the_earliest_entry_and_reports_each_run_once() {
        let entries: Vec<ScheduleEntry> = ["*/10 * * * * GET /a", "5 * * * * php /app/x.php"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let mut plan = SchedulePlan::new(&entries, T0).unwrap();
        assert_eq!(plan.next_wake(), Some(T0 + 300)); // :05
        let due = plan.due(T0 + 300);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].index, 1);
        assert!(plan.due(T0 + 300).is_empty(), "once");
        assert_eq!(plan.next_wake(), Some(T0 + 600));
        let due = plan.due(T0 + 600);
        assert_eq!((due[0].index, due[0].missed), (0, 0));
        assert!(SchedulePlan::new(&[], T0).unwrap().next_wake().is_none());
    }
}
