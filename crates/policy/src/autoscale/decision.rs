//! What a scaler decided, and why: the daemon records the text as the scale event's reason,
//! e.g. `scale 1→3: concurrency 12.4 over 2s, target 4 (threshold 5.9)`.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use hako_model::units::format_duration;

/// Change the number of live instances of an app from `from` to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ScaleDecision {
    /// Live instances (ready or starting) when deciding.
    pub from: u32,
    /// Live instances wanted.
    pub to: u32,
    /// Why.
    pub reason: ScaleReason,
}

impl ScaleDecision {
    /// More instances.
    pub fn is_up(&self) -> bool {
        self.to > self.from
    }
}

/// Why a scaler decided.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScaleReason {
    /// hako: the concurrency over the up window exceeded the capacity by more than the noise.
    Surge {
        /// Concurrency the new size is computed from.
        level: f64,
        /// Over which window it was measured.
        #[serde(with = "hako_model::units::serde_duration")]
        window: Duration,
        /// Capacity plus the noise margin that was exceeded.
        threshold: f64,
        /// Target concurrency per instance.
        target: f64,
    },
    /// hako: the concurrency stayed low enough for fewer instances for the whole scale-down delay.
    Calm {
        /// The highest block mean over the window.
        peak: f64,
        /// The scale-down delay.
        #[serde(with = "hako_model::units::serde_duration")]
        window: Duration,
        /// Target concurrency per instance.
        target: f64,
    },
    /// Fewer live instances than the app's minimum.
    BelowMinimum {
        /// The minimum.
        min: u32,
    },
    /// More live instances than the app's maximum.
    AboveMaximum {
        /// The maximum.
        max: u32,
    },
    /// Knative-like: the stable-window average.
    Stable {
        /// Average concurrency.
        average: f64,
        /// The stable window.
        #[serde(with = "hako_model::units::serde_duration")]
        window: Duration,
        /// Target concurrency per instance.
        target: f64,
    },
    /// Knative-like: panic mode, the panic-window average.
    Panic {
        /// Average concurrency.
        average: f64,
        /// The panic window.
        #[serde(with = "hako_model::units::serde_duration")]
        window: Duration,
        /// Target concurrency per instance.
        target: f64,
    },
    /// The seed's prototype: the mean of the samples since its last decision.
    Aggregate {
        /// Mean concurrency.
        mean: f64,
        /// Samples averaged.
        samples: u32,
        /// Target concurrency per instance.
        target: f64,
    },
}

/// "4" for whole numbers, "2.5" otherwise.
fn num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

impl fmt::Display for ScaleReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ScaleReason::Surge {
                level,
                window,
                threshold,
                target,
            } => write!(
                f,
                "concurrency {level:.1} over {}, target {} (threshold {threshold:.1})",
                format_duration(window),
                num(target)
            ),
            ScaleReason::Calm {
                peak,
                window,
                target,
            } => write!(
                f,
                "concurrency at most {peak:.1} over {}, target {}",
                format_duration(window),
                num(target)
            ),
            ScaleReason::BelowMinimum { min } => write!(f, "below the minimum of {min}"),
            ScaleReason::AboveMaximum { max } => write!(f, "above the maximum of {max}"),
            ScaleReason::Stable {
                average,
                window,
                target,
            } => write!(
                f,
                "concurrency {average:.1} over {} (stable), target {}",
                format_duration(window),
                num(target)
            ),
            ScaleReason::Panic {
                average,
                window,
                target,
            } => write!(
                f,
                "panic: concurrency {average:.1} over {}, target {}",
                format_duration(window),
                num(target)
            ),
            ScaleReason::Aggregate {
                mean,
                samples,
                target,
            } => write!(
                f,
                "mean concurrency {mean:.1} of {samples} samples, target {}",
                num(target)
            ),
        }
    }
}

impl fmt::Display for ScaleDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "scale {}→{}: {}", self.from, self.to, self.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_like_the_issue_asks() {
        let d = ScaleDecision {
            from: 1,
            to: 3,
            reason: ScaleReason::Surge {
                level: 12.4,
                window: Duration::from_secs(2),
                threshold: 5.94,
                target: 4.0,
            },
        };
        assert!(d.is_up());
        assert_eq!(
            d.to_string(),
            "scale 1→3: concurrency 12.4 over 2s, target 4 (threshold 5.9)"
        );
        let d = ScaleDecision {
            from: 3,
            to: 1,
            reason: ScaleReason::Calm {
                peak: 3.42,
                window: Duration::from_secs(30),
                target: 2.5,
            },
        };
        assert!(!d.is_up());
        assert_eq!(
            d.to_string(),
            "scale 3→1: concurrency at most 3.4 over 30s, target 2.5"
        );
        let json = serde_json::to_string(&d).unwrap();
        assert!(json.contains(r#""kind":"calm""#) && json.contains(r#""window":"30s""#));
    }
}
