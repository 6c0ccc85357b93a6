//! What the parts of a cluster tell each other through the store: the leader assigns instances
//! to nodes ([`Assignment`]), a proxy that needs a cold start says so once for all proxies
//! ([`Want`]), every front reports what its proxy sees of each instance ([`FrontActivity`]) and
//! that it stopped sending one requests ([`DrainAck`]). See docs/cluster.md.

use std::collections::BTreeMap;

use crate::{App, StartFailure};

/// "Run an instance of this app on this node" (`/assign/<node>/<slot>`), written by the
/// leader; the node's agent runs it and writes back how it went.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Assignment {
    /// Unique per assignment; the instance record carries it.
    pub slot: String,
    pub node: String,
    /// The app as it was when assigned (its version is what the instance runs).
    pub app: App,
    #[serde(default)]
    pub phase: AssignmentPhase,
    /// Set by the agent when the instance could not start or ended on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<AssignmentOutcome>,
    pub asked_unix_ms: u64,
}

/// What the leader wants of an assigned instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AssignmentPhase {
    /// Start it and keep it running.
    #[default]
    Run,
    /// Keep it running but take it out of routing: every proxy stops sending it requests.
    Drain,
}

/// How an assigned instance ended without being asked to.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AssignmentOutcome {
    /// It never became ready.
    Failed {
        failure: StartFailure,
        reason: String,
        #[serde(default)]
        log_tail: String,
    },
    /// It was ready and its process ended on its own.
    Exited {
        status: String,
        #[serde(default)]
        log_tail: String,
    },
}

/// "A request waits for this app to start" (`/wants/<app>`): created by a proxy only if absent,
/// so a burst reaching three proxies makes one start. The leader starts an instance and
/// removes the want, or writes why it failed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Want {
    pub app: String,
    /// The app's uid as the proxy knew it (a want of a deleted app is dropped).
    pub uid: String,
    /// The front whose proxy asked first.
    pub front: String,
    pub since_unix_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<WantFailure>,
}

/// Why the start a want asked for failed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WantFailure {
    pub failure: StartFailure,
    pub reason: String,
}

/// What one front's proxy saw of each instance (`/activity/<front>`), published about once a
/// second while anything changes; bound to the front's lease.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FrontActivity {
    pub front: String,
    pub at_unix_ms: u64,
    /// By instance id.
    pub instances: BTreeMap<String, InstanceActivity>,
}

/// One instance as one proxy sees it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InstanceActivity {
    pub app: String,
    /// The latest start or end of a request (or upgraded connection) there.
    pub last_active_unix_ms: u64,
    pub in_flight: u32,
    pub upgraded: u32,
}

/// "My proxy sends this instance no more requests and has none open on it"
/// (`/drained/<instance>/<front>`), bound to the front's lease.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DrainAck {
    pub at_unix_ms: u64,
    /// True when the drain timeout ended the wait with requests still open.
    #[serde(default)]
    pub timed_out: bool,
}

/// A front (`/fronts/<name>`): a `hako serve` whose proxy takes requests; bound to its lease.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FrontRecord {
    pub name: String,
    pub proxy: String,
    pub api: String,
    pub since_unix_ms: u64,
}

/// The leader (`/leader`): the front that schedules; bound to its lease.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LeaderRecord {
    pub front: String,
    pub since_unix_ms: u64,
}
