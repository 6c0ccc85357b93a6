//! From an idle-time histogram to a keep-alive window, or to the reason the fixed keep-alive
//! stays in charge.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::histogram::{self, IdleHistogram};

/// Settings of the predictive keep-alive. In JSON, durations are human strings:
/// `{"linger":"2s","head":0.05,"tail":0.99,"margin":0.02,"min_idle_periods":10,"max_cv":0.5,"max_out_of_range":0.1,"min_unload_gap":"30s","history":1000}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PredictorSettings {
    /// Gaps between requests shorter than this belong to one visit (page, assets, redirects) and
    /// are not idle periods; in pre-warm mode an instance also lingers this long after its last
    /// request before it is unloaded.
    #[serde(with = "hako_model::units::serde_duration")]
    pub linger: Duration,
    /// The idle-time percentile at which to pre-warm (Shahrad et al.: the 5th).
    pub head: f64,
    /// The idle-time percentile up to which to keep an instance (Shahrad et al.: the 99th).
    pub tail: f64,
    /// Pre-warm this fraction earlier than the head bin's lower edge and keep this fraction
    /// longer than the tail bin's upper edge (Shahrad et al. use 10% on one-minute bins; hako's
    /// bins are 2.2% wide, so 2% covers a start and the timer jitter of cron-driven clients).
    pub margin: f64,
    /// Fewer recorded idle periods than this: the history is thin, use the fixed keep-alive.
    pub min_idle_periods: u32,
    /// Coefficient of variation of the idle periods (their excess over `linger`) at or above
    /// which the history is too spread to predict from: memoryless traffic has 1, a cron job ≈ 0.
    pub max_cv: f64,
    /// Largest fraction of idle periods beyond the histogram's range (36 h) before falling back.
    pub max_out_of_range: f64,
    /// A pre-warm window starting earlier than this after the last request is not worth an
    /// unload and a new start: keep the instance alive through it instead.
    #[serde(with = "hako_model::units::serde_duration")]
    pub min_unload_gap: Duration,
    /// Idle periods remembered; at this many the counts are halved (old behaviour fades).
    pub history: u32,
}

impl Default for PredictorSettings {
    fn default() -> Self {
        PredictorSettings {
            linger: Duration::from_secs(2),
            head: 0.05,
            tail: 0.99,
            margin: 0.02,
            min_idle_periods: 10,
            max_cv: 0.5,
            max_out_of_range: 0.1,
            min_unload_gap: Duration::from_secs(30),
            history: 1000,
        }
    }
}

/// What the history says to do after an app's last request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Window {
    /// Not enough of a pattern: the fixed keep-alive decides, for this reason.
    Fixed {
        /// Why.
        why: Fallback,
    },
    /// Keep instances alive `keep_alive` after their last activity (the next request is
    /// expected soon: unloading in between is not worth a start).
    KeepAlive {
        /// Idle timeout learned from the history.
        #[serde(with = "hako_model::units::serde_duration")]
        keep_alive: Duration,
    },
    /// Unload after `linger`; pre-warm `prewarm_after` the last request, keep the pre-warmed
    /// instance until `keep_until` after it.
    Prewarm {
        /// When to start an instance, after the last request.
        #[serde(with = "hako_model::units::serde_duration")]
        prewarm_after: Duration,
        /// Until when to keep it, after the last request.
        #[serde(with = "hako_model::units::serde_duration")]
        keep_until: Duration,
    },
}

/// Why the fixed keep-alive stays in charge.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fallback {
    /// Too few idle periods seen.
    Thin {
        /// Recorded idle periods.
        seen: u32,
        /// Needed.
        needed: u32,
    },
    /// Too many idle periods longer than the histogram's range.
    OutOfRange {
        /// Their fraction.
        fraction: f64,
    },
    /// The idle periods are too spread (memoryless or heavy-tailed traffic).
    Spread {
        /// Their coefficient of variation.
        cv: f64,
        /// The threshold.
        max: f64,
    },
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fallback::Thin { seen, needed } => {
                write!(f, "only {seen} idle periods seen, {needed} needed")
            }
            Fallback::OutOfRange { fraction } => write!(
                f,
                "{:.0}% of idle periods are longer than {:.0} h",
                fraction * 100.0,
                histogram::RANGE_SECS / 3600.0
            ),
            Fallback::Spread { cv, max } => write!(
                f,
                "idle periods too spread to predict (coefficient of variation {cv:.2}, at most {max:.2})"
            ),
        }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Window::Fixed { why } => write!(f, "fixed keep-alive: {why}"),
            Window::KeepAlive { keep_alive } => write!(
                f,
                "keep alive {:.1}s after the last request (learned)",
                keep_alive.as_secs_f64()
            ),
            Window::Prewarm {
                prewarm_after,
                keep_until,
            } => write!(
                f,
                "unload after each visit, pre-warm {:.1}s after the last request, keep until {:.1}s",
                prewarm_after.as_secs_f64(),
                keep_until.as_secs_f64()
            ),
        }
    }
}

/// The window `histogram` gives under `settings`.
pub fn window(histogram: &IdleHistogram, settings: &PredictorSettings) -> Window {
    let seen = histogram.total();
    if seen < settings.min_idle_periods.max(1) {
        let needed = settings.min_idle_periods.max(1);
        return Window::Fixed {
            why: Fallback::Thin { seen, needed },
        };
    }
    let oob = f64::from(histogram.out_of_range()) / f64::from(seen);
    let (Some(head), Some(tail)) = (
        histogram.quantile_bin(settings.head),
        histogram.quantile_bin(settings.tail),
    ) else {
        return Window::Fixed {
            why: Fallback::OutOfRange { fraction: oob },
        };
    };
    if oob > settings.max_out_of_range {
        return Window::Fixed {
            why: Fallback::OutOfRange { fraction: oob },
        };
    }
    let linger = settings.linger.as_secs_f64();
    // With fewer than two in-range periods there is nothing to measure the spread of: the
    // out-of-range check above already decided.
    let cv = histogram.excess_cv(linger).unwrap_or(f64::INFINITY);
    if cv >= settings.max_cv {
        return Window::Fixed {
            why: Fallback::Spread {
                cv,
                max: settings.max_cv,
            },
        };
    }
    let margin = settings.margin.clamp(0.0, 0.5);
    let start = histogram::lower_edge(head) * (1.0 - margin);
    let end = (histogram::upper_edge(tail) * (1.0 + margin)).max(linger);
    let secs = |s: f64| Duration::from_secs_f64(s.max(0.0));
    if start < settings.min_unload_gap.as_secs_f64() || start <= linger {
        Window::KeepAlive {
            keep_alive: secs(end),
        }
    } else {
        Window::Prewarm {
            prewarm_after: secs(start),
            keep_until: secs(end),
        }
    }
}
