//! Counts of what failed in the container runtime on this node, by operation: a container that
//! could not be made, stopped, waited for or removed, a warm pool that could not be filled, a
//! restore that fell back to a cold start. Each failure is also logged where it happens; these
//! counters are what the daemon's metrics show (`hako_runtime_errors_total{op}`).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// An operation of the runtime that can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeOp {
    /// Making a container (cgroup, namespaces, mounts, network) for a start or the pool.
    Create,
    /// Stopping an instance's container.
    Stop,
    /// Waiting for an instance's container to end.
    Wait,
    /// Removing what a container had (cgroup, mounts, veth, directories).
    Cleanup,
    /// Filling, releasing from or emptying a warm pool.
    Pool,
    /// Restoring a checkpoint (the instance then started cold).
    Restore,
}

impl RuntimeOp {
    /// Every operation, in a stable order (for metrics).
    pub const ALL: [RuntimeOp; 6] = [
        RuntimeOp::Create,
        RuntimeOp::Stop,
        RuntimeOp::Wait,
        RuntimeOp::Cleanup,
        RuntimeOp::Pool,
        RuntimeOp::Restore,
    ];

    /// The label in metrics.
    pub fn label(self) -> &'static str {
        match self {
            RuntimeOp::Create => "create",
            RuntimeOp::Stop => "stop",
            RuntimeOp::Wait => "wait",
            RuntimeOp::Cleanup => "cleanup",
            RuntimeOp::Pool => "pool",
            RuntimeOp::Restore => "restore",
        }
    }
}

/// Failures per [`RuntimeOp`], since the agent started.
#[derive(Debug, Default)]
pub(crate) struct RuntimeErrors([AtomicU64; RuntimeOp::ALL.len()]);

impl RuntimeErrors {
    pub(crate) fn count(&self, op: RuntimeOp) {
        let i = RuntimeOp::ALL.iter().position(|o| *o == op).unwrap_or(0);
        self.0[i].fetch_add(1, Relaxed);
    }

    /// `(operation, failures)` for every operation, zeros included.
    pub(crate) fn read(&self) -> Vec<(RuntimeOp, u64)> {
        RuntimeOp::ALL
            .iter()
            .zip(&self.0)
            .map(|(op, n)| (*op, n.load(Relaxed)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_operation() {
        let e = RuntimeErrors::default();
        e.count(RuntimeOp::Stop);
        e.count(RuntimeOp::Stop);
        e.count(RuntimeOp::Restore);
        let read = e.read();
        assert_eq!(read.len(), RuntimeOp::ALL.len());
        let get = |op| read.iter().find(|(o, _)| *o == op).unwrap().1;
        assert_eq!(
            (
                get(RuntimeOp::Stop),
                get(RuntimeOp::Restore),
                get(RuntimeOp::Create)
            ),
            (2, 1, 0)
        );
    }
}
