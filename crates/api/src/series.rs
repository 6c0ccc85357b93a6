//! An app's last hour, per minute: requests, cold requests and instance starts with their
//! total start time. The daemon keeps these samples in memory (a ring of 60 per app, see
//! `hako-control`'s `minutes`); the dashboard draws its request-rate and start-time charts
//! from them. They start anew when `hako serve` restarts.

use serde::{Deserialize, Serialize};

/// Minutes kept: one hour.
pub const MINUTES: usize = 60;

/// What happened to an app in one minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Minute {
    /// Start of the minute, in seconds since the Unix epoch (a multiple of 60).
    pub start_unix: u64,
    /// Requests that arrived at an instance (cold and warm).
    pub requests: u64,
    /// Of those, requests that waited for a start.
    pub cold: u64,
    /// Instances that became ready.
    pub starts: u64,
    /// Their start times added up, in milliseconds.
    pub start_ms_total: f64,
}

impl Minute {
    /// Mean start time of the minute's starts, in milliseconds (`None` without a start).
    pub fn mean_start_ms(&self) -> Option<f64> {
        (self.starts > 0).then(|| self.start_ms_total / self.starts as f64)
    }
}

/// Up to [`MINUTES`] minutes of one app, oldest first, the last one still running.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// The minutes, oldest first, consecutive; minutes before the daemon started are absent.
    pub minutes: Vec<Minute>,
}

impl Series {
    /// Requests over the whole series.
    pub fn requests(&self) -> u64 {
        self.minutes.iter().map(|m| m.requests).sum()
    }

    /// The fraction of the series' requests that waited for a start (`None` without requests).
    pub fn cold_ratio(&self) -> Option<f64> {
        let requests = self.requests();
        (requests > 0)
            .then(|| self.minutes.iter().map(|m| m.cold).sum::<u64>() as f64 / requests as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_means() {
        let s = Series {
            minutes: vec![
                Minute {
                    start_unix: 60,
                    requests: 3,
                    cold: 1,
                    starts: 2,
                    start_ms_total: 30.0,
                },
                Minute {
                    start_unix: 120,
                    requests: 1,
                    ..Minute::default()
                },
            ],
        };
        assert_eq!(s.requests(), 4);
        assert_eq!(s.cold_ratio(), Some(0.25));
        assert_eq!(s.minutes[0].mean_start_ms(), Some(15.0));
        assert_eq!(s.minutes[1].mean_start_ms(), None);
        assert_eq!(Series::default().cold_ratio(), None);
    }
}
