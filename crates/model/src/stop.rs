//! Why an instance stopped, in kinds an operator can count: the keep-alive policy's idle and
//! lifetime rules, a newer version of the app, the app's deletion, an instance the proxy could
//! not reach, an app that ended on its own, hako shutting down. Events say the same in words;
//! metrics count by these labels.

use std::fmt;

/// The kind of an instance's stop.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// No request for its idle timeout (or the predictive keep-alive expects none soon).
    Idle,
    /// It reached its maximum lifetime (it was replaced, successor first, or stopped).
    Lifetime,
    /// It ran an older version of its app (code release, image, settings, rollout).
    Outdated,
    /// Another decision of the keep-alive policy.
    Policy,
    /// A request could not reach it.
    Unreachable,
    /// Its app was deleted.
    Deleted,
    /// Its node was drained for maintenance (a successor started elsewhere first).
    NodeDrain,
    /// The app's process ended on its own (crash or exit).
    Exited,
    /// hako stopped (or a previous hako process ended).
    Shutdown,
}

impl StopReason {
    /// Every kind, in a stable order (for metrics).
    pub const ALL: [StopReason; 9] = [
        StopReason::Idle,
        StopReason::Lifetime,
        StopReason::Outdated,
        StopReason::Policy,
        StopReason::Unreachable,
        StopReason::Deleted,
        StopReason::NodeDrain,
        StopReason::Exited,
        StopReason::Shutdown,
    ];

    /// The snake_case label used in JSON and metrics.
    pub fn label(self) -> &'static str {
        match self {
            StopReason::Idle => "idle",
            StopReason::Lifetime => "lifetime",
            StopReason::Outdated => "outdated",
            StopReason::Policy => "policy",
            StopReason::Unreachable => "unreachable",
            StopReason::Deleted => "deleted",
            StopReason::NodeDrain => "node_drain",
            StopReason::Exited => "exited",
            StopReason::Shutdown => "shutdown",
        }
    }

    /// Its position in [`StopReason::ALL`].
    pub fn index(self) -> usize {
        StopReason::ALL.iter().position(|k| *k == self).unwrap_or(0)
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_match_json_and_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for (i, k) in StopReason::ALL.into_iter().enumerate() {
            assert_eq!(serde_json::to_value(k).unwrap(), k.label());
            assert!(seen.insert(k.label()));
            assert_eq!(k.index(), i);
        }
    }
}
