//! Why a start of an instance failed, in kinds a user can act on. The node's agent, the
//! control plane, the proxy's 503 page, events and metrics all use these words.

use std::fmt;

/// The kind of a failed start. The details (which image, what the app printed) travel beside
/// it as text; the kind says whose move it is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum StartFailure {
    /// The app's image (or the version it names) is not on the node: import or build it.
    Image,
    /// The app's settings cannot work here (unknown user, missing database, bad command line,
    /// a code release that is gone): change the app.
    Spec,
    /// No room: the app runs its maximum of instances, or no node can take one.
    Capacity,
    /// The app's process ended before it listened on its port: see its log.
    Crashed,
    /// The app did not listen on its port within its start timeout.
    NotListening,
    /// The app listened but never passed its health check.
    Unhealthy,
    /// The node could not make the container (cgroup, mount, network): the operator's move.
    Node,
    /// hako is shutting down or the app was deleted meanwhile.
    Gone,
    /// A code release or an image layer a node fetched did not hash to the digest the cluster
    /// store records for it (or has no digest recorded): nothing of it ran. Shared storage was
    /// changed or damaged behind hako's back: the operator's move.
    Verification,
}

impl StartFailure {
    /// Every kind, in a stable order (for metrics).
    pub const ALL: [StartFailure; 9] = [
        StartFailure::Image,
        StartFailure::Spec,
        StartFailure::Capacity,
        StartFailure::Crashed,
        StartFailure::NotListening,
        StartFailure::Unhealthy,
        StartFailure::Node,
        StartFailure::Gone,
        StartFailure::Verification,
    ];

    /// The snake_case label used in JSON and metrics ("not_listening").
    pub fn label(self) -> &'static str {
        match self {
            StartFailure::Image => "image",
            StartFailure::Spec => "spec",
            StartFailure::Capacity => "capacity",
            StartFailure::Crashed => "crashed",
            StartFailure::NotListening => "not_listening",
            StartFailure::Unhealthy => "unhealthy",
            StartFailure::Node => "node",
            StartFailure::Gone => "gone",
            StartFailure::Verification => "verification",
        }
    }

    /// True when the app's owner (not the operator, not chance) must change something.
    pub fn is_users(self) -> bool {
        matches!(
            self,
            StartFailure::Image
                | StartFailure::Spec
                | StartFailure::Crashed
                | StartFailure::NotListening
                | StartFailure::Unhealthy
        )
    }
}

impl fmt::Display for StartFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StartFailure::Image => "image missing",
            StartFailure::Spec => "app settings cannot work",
            StartFailure::Capacity => "no capacity",
            StartFailure::Crashed => "app crashed",
            StartFailure::NotListening => "app did not listen",
            StartFailure::Unhealthy => "health check failed",
            StartFailure::Node => "node failure",
            StartFailure::Gone => "app or hako going away",
            StartFailure::Verification => "code or image failed verification",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_match_json_and_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for k in StartFailure::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.label());
            assert!(seen.insert(k.label()));
            assert!(!k.to_string().is_empty());
        }
        assert!(StartFailure::Crashed.is_users() && !StartFailure::Node.is_users());
        assert!(!StartFailure::Verification.is_users());
    }
}
