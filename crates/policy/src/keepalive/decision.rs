//! What a policy decided, and why.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What the daemon should do. Instance numbers index the slice given to the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Start one new instance of the app.
    Start,
    /// Stop routing to the instance and stop it now (nothing is open on it, or the drain timed out).
    Stop {
        /// Index into the instance slice.
        instance: usize,
    },
    /// Stop routing new requests to the instance; it stops once its open requests finish (the
    /// policy then answers `Stop` with [`Reason::Drained`]). Set `draining_since` in its view.
    Drain {
        /// Index into the instance slice.
        instance: usize,
    },
    /// Start a successor first; once the successor is ready the policy drains or stops this one.
    Replace {
        /// Index into the instance slice.
        instance: usize,
    },
}

/// Why a decision was made; the daemon records it with the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// No request or connection for `idle`, at least the `timeout`.
    Idle {
        /// How long it has been idle.
        #[serde(with = "hako_model::units::serde_duration")]
        idle: Duration,
        /// The configured idle timeout.
        #[serde(with = "hako_model::units::serde_duration")]
        timeout: Duration,
    },
    /// The instance reached its maximum lifetime.
    MaxLifetime {
        /// Its age.
        #[serde(with = "hako_model::units::serde_duration")]
        age: Duration,
        /// The configured maximum lifetime.
        #[serde(with = "hako_model::units::serde_duration")]
        limit: Duration,
    },
    /// A draining instance has nothing open any more.
    Drained,
    /// A draining instance still had `open` requests/connections after `waited`.
    DrainTimeout {
        /// Requests plus upgraded connections still open.
        open: u32,
        /// How long it has drained.
        #[serde(with = "hako_model::units::serde_duration")]
        waited: Duration,
    },
    /// Fewer than `min` live instances (there were `live`).
    BelowMinimum {
        /// Live (non-draining) instances before this decision.
        live: usize,
        /// The configured minimum.
        min: u32,
    },
    /// The instance was made from an older version of its app (new code release, image or
    /// settings).
    Outdated,
    /// Pre-warm: a request is expected at about `expected_in` from now (zero: now or overdue).
    Prewarm {
        /// Time until the expected request.
        #[serde(with = "hako_model::units::serde_duration")]
        expected_in: Duration,
    },
    /// The predictive keep-alive ([`crate::predict`]): idle for `idle`, and the app's idle-time
    /// history expects no request before `next_in` from now (or the window it learned is over).
    PredictedIdle {
        /// How long it has been idle.
        #[serde(with = "hako_model::units::serde_duration")]
        idle: Duration,
        /// The idle-time window the history gives: pre-warm after / keep until (since the last request).
        #[serde(with = "hako_model::units::serde_duration")]
        window_start: Duration,
        /// End of that window.
        #[serde(with = "hako_model::units::serde_duration")]
        window_end: Duration,
    },
    /// Pre-start ([`crate::prestart`]): an instance nears its max lifetime while the app has
    /// traffic, so its successor starts now to be ready before it leaves.
    PreStart {
        /// The old instance's age.
        #[serde(with = "hako_model::units::serde_duration")]
        age: Duration,
        /// The configured maximum lifetime.
        #[serde(with = "hako_model::units::serde_duration")]
        limit: Duration,
    },
}

impl Reason {
    /// The kind of stop this reason makes, when it retires or replaces an instance.
    pub fn stop_reason(&self) -> hako_model::StopReason {
        use hako_model::StopReason;
        match self {
            Reason::Idle { .. } | Reason::PredictedIdle { .. } => StopReason::Idle,
            Reason::MaxLifetime { .. } | Reason::PreStart { .. } => StopReason::Lifetime,
            Reason::Outdated => StopReason::Outdated,
            Reason::Drained
            | Reason::DrainTimeout { .. }
            | Reason::BelowMinimum { .. }
            | Reason::Prewarm { .. } => StopReason::Policy,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Idle { idle, timeout } => write!(
                f,
                "idle for {:.1}s (idle timeout {:.1}s)",
                idle.as_secs_f64(),
                timeout.as_secs_f64()
            ),
            Reason::MaxLifetime { age, limit } => write!(
                f,
                "reached max lifetime: age {:.1}s (limit {:.1}s)",
                age.as_secs_f64(),
                limit.as_secs_f64()
            ),
            Reason::Drained => write!(f, "drained: no open requests or connections"),
            Reason::DrainTimeout { open, waited } => write!(
                f,
                "drain timed out after {:.1}s with {open} requests/connections still open",
                waited.as_secs_f64()
            ),
            Reason::BelowMinimum { live, min } => {
                write!(f, "below minimum: {live} live instances, minimum {min}")
            }
            Reason::Outdated => {
                write!(
                    f,
                    "replaced: the app changed (new release, image or settings)"
                )
            }
            Reason::Prewarm { expected_in } => write!(
                f,
                "pre-warm: request expected in {:.1}s",
                expected_in.as_secs_f64()
            ),
            Reason::PredictedIdle {
                idle,
                window_start,
                window_end,
            } => write!(
                f,
                "predicted idle: idle for {:.1}s, the app's idle times put the next request {:.1}s–{:.1}s after the last one",
                idle.as_secs_f64(),
                window_start.as_secs_f64(),
                window_end.as_secs_f64()
            ),
            Reason::PreStart { age, limit } => write!(
                f,
                "pre-start: age {:.1}s nears max lifetime {:.1}s while the app has traffic; successor first",
                age.as_secs_f64(),
                limit.as_secs_f64()
            ),
        }
    }
}

/// One decision: an action and its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// What to do.
    pub action: Action,
    /// Why.
    pub reason: Reason,
}

impl Decision {
    /// A decision from its parts.
    pub fn new(action: Action, reason: Reason) -> Decision {
        Decision { action, reason }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.action {
            Action::Start => write!(f, "start an instance: {}", self.reason),
            Action::Stop { instance } => write!(f, "stop instance {instance}: {}", self.reason),
            Action::Drain { instance } => write!(f, "drain instance {instance}: {}", self.reason),
            Action::Replace { instance } => {
                write!(f, "replace instance {instance}: {}", self.reason)
            }
        }
    }
}
