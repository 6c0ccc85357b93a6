//! The last hour of each app, per minute, for the dashboard's charts: a small ring of 60
//! [`Minute`] samples per app, kept in the daemon's memory (not derived from Prometheus: the
//! dashboard needs no Prometheus server). Once a minute the sampler reads each app's running
//! totals (the proxy's counters) and files the difference since the minute before; a reader
//! also gets the minute under way, so a chart moves as soon as requests come in. Samples
//! start anew when `hako serve` restarts.
//!
//! [`Minutes::sample`] and [`Minutes::series`] take the time as an argument: tests drive them
//! with made-up times; [`run`] calls them on tokio's clock.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hako_api::series::{MINUTES, Minute, Series};
use hako_proxy::{AppMetricsSnapshot, Router};

/// An app's running totals since the daemon started (or since the app was created).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Totals {
    pub(crate) requests: u64,
    pub(crate) cold: u64,
    pub(crate) starts: u64,
    pub(crate) start_ms_total: f64,
}

impl Totals {
    pub(crate) fn of(m: &AppMetricsSnapshot) -> Totals {
        Totals {
            requests: m.cold + m.warm,
            cold: m.cold,
            starts: m.start.count,
            start_ms_total: m.start.mean_ms * m.start.count as f64,
        }
    }

    /// What happened between `earlier` and these totals; counters that went back (the app was
    /// deleted and made again) count from zero.
    fn since(&self, earlier: &Totals) -> Totals {
        let earlier = if self.requests < earlier.requests || self.starts < earlier.starts {
            Totals::default()
        } else {
            *earlier
        };
        Totals {
            requests: self.requests - earlier.requests,
            cold: self.cold.saturating_sub(earlier.cold),
            starts: self.starts - earlier.starts,
            start_ms_total: (self.start_ms_total - earlier.start_ms_total).max(0.0),
        }
    }
}

/// One app's ring.
#[derive(Debug)]
struct Ring {
    /// Closed minutes, oldest first, at most [`MINUTES`] - 1.
    closed: VecDeque<Minute>,
    /// Start (Unix seconds) of the minute under way.
    current: u64,
    /// Totals when the minute under way began.
    base: Totals,
}

/// Every app's last hour.
#[derive(Debug, Default)]
pub(crate) struct Minutes {
    apps: Mutex<HashMap<String, Ring>>,
}

fn minute_of(unix: u64) -> u64 {
    unix - unix % 60
}

impl Minutes {
    /// Files the minutes that ended by `now_unix` for every app in `totals`, and forgets
    /// apps that are gone.
    pub(crate) fn sample(&self, now_unix: u64, totals: &HashMap<String, Totals>) {
        let now = minute_of(now_unix);
        let mut apps = self.apps.lock().expect("minutes lock");
        apps.retain(|name, _| totals.contains_key(name));
        for (name, t) in totals {
            let ring = apps.entry(name.clone()).or_insert_with(|| Ring {
                closed: VecDeque::new(),
                current: now,
                base: Totals::default(),
            });
            if ring.current >= now {
                continue;
            }
            let d = t.since(&ring.base);
            push(&mut ring.closed, minute(ring.current, &d));
            // Minutes nobody sampled (the daemon was busy or asleep) had nothing filed.
            let mut m = ring.current + 60;
            while m < now {
                push(&mut ring.closed, minute(m, &Totals::default()));
                m += 60;
            }
            ring.current = now;
            ring.base = *t;
        }
    }

    /// The last hour of `app` at `now_unix`, with the minute under way from `totals`.
    pub(crate) fn series(&self, app: &str, now_unix: u64, totals: &Totals) -> Series {
        let apps = self.apps.lock().expect("minutes lock");
        let Some(ring) = apps.get(app) else {
            // Not sampled yet: everything so far is this minute's.
            return Series {
                minutes: vec![minute(minute_of(now_unix), totals)],
            };
        };
        let mut minutes: Vec<Minute> = ring.closed.iter().copied().collect();
        minutes.push(minute(ring.current, &totals.since(&ring.base)));
        Series { minutes }
    }
}

fn minute(start_unix: u64, d: &Totals) -> Minute {
    Minute {
        start_unix,
        requests: d.requests,
        cold: d.cold,
        starts: d.starts,
        start_ms_total: d.start_ms_total,
    }
}

fn push(ring: &mut VecDeque<Minute>, m: Minute) {
    ring.push_back(m);
    while ring.len() > MINUTES - 1 {
        ring.pop_front();
    }
}

/// Every app's totals now.
pub(crate) fn totals(router: &Router) -> HashMap<String, Totals> {
    router
        .all_metrics()
        .iter()
        .map(|(name, m)| (name.clone(), Totals::of(m)))
        .collect()
}

/// Samples every app at each minute's start until the task is dropped.
pub(crate) async fn run(minutes: Arc<Minutes>, router: Router) {
    minutes.sample(hako_model::now_unix(), &totals(&router));
    loop {
        let now_ms = hako_model::now_unix_ms();
        let to_next = 60_000 - now_ms % 60_000;
        tokio::time::sleep(Duration::from_millis(to_next + 5)).await;
        minutes.sample(hako_model::now_unix(), &totals(&router));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(requests: u64, cold: u64, starts: u64, start_ms_total: f64) -> Totals {
        Totals {
            requests,
            cold,
            starts,
            start_ms_total,
        }
    }

    fn one(app: &str, totals: Totals) -> HashMap<String, Totals> {
        HashMap::from([(app.to_string(), totals)])
    }

    #[test]
    fn each_minute_gets_what_happened_in_it() {
        let m = Minutes::default();
        let t0 = 6000; // a minute's start
        m.sample(t0 + 5, &one("blog", t(2, 1, 1, 40.0)));
        // Under way: what happened since the ring began.
        let s = m.series("blog", t0 + 30, &t(5, 1, 1, 40.0));
        assert_eq!(s.minutes.len(), 1);
        assert_eq!((s.minutes[0].start_unix, s.minutes[0].requests), (t0, 5));

        m.sample(t0 + 61, &one("blog", t(7, 2, 2, 100.0)));
        let s = m.series("blog", t0 + 90, &t(10, 2, 2, 100.0));
        assert_eq!(s.minutes.len(), 2);
        let (closed, now) = (s.minutes[0], s.minutes[1]);
        assert_eq!(
            (closed.start_unix, closed.requests, closed.cold),
            (t0, 7, 2)
        );
        assert_eq!(closed.mean_start_ms(), Some(50.0));
        assert_eq!((now.start_unix, now.requests, now.starts), (t0 + 60, 3, 0));
    }

    #[test]
    fn skipped_minutes_are_empty_and_the_ring_keeps_an_hour() {
        let m = Minutes::default();
        m.sample(0, &one("a", t(0, 0, 0, 0.0)));
        m.sample(60, &one("a", t(4, 0, 0, 0.0)));
        // Three minutes later: what came since goes to the minute that was under way, the two
        // nobody sampled had nothing filed.
        m.sample(240, &one("a", t(6, 0, 0, 0.0)));
        let s = m.series("a", 250, &t(6, 0, 0, 0.0));
        let requests: Vec<u64> = s.minutes.iter().map(|m| m.requests).collect();
        assert_eq!(requests, [4, 2, 0, 0, 0]);
        assert!(
            s.minutes
                .windows(2)
                .all(|w| w[1].start_unix == w[0].start_unix + 60)
        );

        for i in 5..200 {
            m.sample(i * 60, &one("a", t(6 + i, 0, 0, 0.0)));
        }
        let s = m.series("a", 200 * 60, &t(300, 0, 0, 0.0));
        assert_eq!(s.minutes.len(), MINUTES);
        assert_eq!(s.minutes.last().unwrap().start_unix, 199 * 60);
    }

    #[test]
    fn gone_apps_are_forgotten_and_counters_that_go_back_start_over() {
        let m = Minutes::default();
        m.sample(0, &one("a", t(10, 0, 0, 0.0)));
        m.sample(60, &HashMap::new());
        assert_eq!(m.series("a", 70, &t(3, 0, 0, 0.0)).minutes.len(), 1);
        m.sample(120, &one("b", t(10, 0, 0, 0.0)));
        // b was deleted and made again: its counters restarted below the base.
        let s = m.series("b", 130, &t(3, 0, 0, 0.0));
        assert_eq!(s.minutes.last().unwrap().requests, 3);
    }
}
