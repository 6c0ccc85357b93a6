//! What a node can give one instance, and the check that a limit fits in it.
//!
//! A limit that no node can give — more cores than the node has, more memory than it has, a
//! pids limit above what its kernel allows — would be accepted and then fail every start (or,
//! for memory, run as if unlimited). So the API checks every app against the capacity of the
//! node (later: the largest node of a cluster) when it is created or updated, and `hako run`
//! checks its limits against its own host, with the same messages.

use crate::app::AppSpec;
use crate::units::{ByteSize, format_size};

/// What the largest node can give one instance. Reading it from a real host is
/// `hako_agent::node_capacity`; tests use fixed values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeCapacity {
    /// CPUs (cores) the node's containers may use.
    pub cpus: u32,
    /// Memory the node has, in bytes.
    pub memory_bytes: u64,
    /// The most processes and threads one container may be allowed (the kernel's
    /// `pid_max`, at most the cgroup maximum of 4,194,304).
    pub max_pids: u64,
}

/// A limit the node cannot give (or that is no limit at all).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LimitError {
    /// Not a positive, finite number of cores.
    #[error("cpu limit {0} is not valid: give a positive number of cores such as 0.5")]
    CpuInvalid(f64),
    /// More cores than the node has.
    #[error(
        "cpu limit of {requested} cores is more than this node has ({cpus} cores): give at most {cpus}"
    )]
    Cpu {
        /// The limit asked for.
        requested: f64,
        /// The node's cores.
        cpus: u32,
    },
    /// More memory than the node has.
    #[error(
        "memory limit of {requested} is more than this node has ({}): give a smaller limit",
        format_size(*.memory_bytes)
    )]
    Memory {
        /// The limit asked for.
        requested: ByteSize,
        /// The node's memory in bytes.
        memory_bytes: u64,
    },
    /// A pids limit above what the node's kernel allows.
    #[error("pids limit of {requested} is more than this node allows ({max}): give at most {max}")]
    Pids {
        /// The limit asked for.
        requested: u64,
        /// The node's most.
        max: u64,
    },
}

impl NodeCapacity {
    /// Checks limits an instance asks for (`None`: that limit is not set). The lower bounds
    /// (a floor of memory, at least one process) are the caller's: apps and `hako run`
    /// differ there.
    pub fn check(
        &self,
        memory: Option<u64>,
        cpu: Option<f64>,
        pids: Option<u64>,
    ) -> Result<(), LimitError> {
        if let Some(c) = cpu {
            if !(c.is_finite() && c > 0.0) {
                return Err(LimitError::CpuInvalid(c));
            }
            if c > f64::from(self.cpus) {
                return Err(LimitError::Cpu {
                    requested: c,
                    cpus: self.cpus,
                });
            }
        }
        if let Some(m) = memory
            && m > self.memory_bytes
        {
            return Err(LimitError::Memory {
                requested: ByteSize(m),
                memory_bytes: self.memory_bytes,
            });
        }
        if let Some(p) = pids
            && p > self.max_pids
        {
            return Err(LimitError::Pids {
                requested: p,
                max: self.max_pids,
            });
        }
        Ok(())
    }

    /// Checks an app's limits (memory, cpu, pids) against this node.
    pub fn check_app(&self, spec: &AppSpec) -> Result<(), LimitError> {
        self.check(Some(spec.memory.0), spec.cpu, Some(spec.pids))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: NodeCapacity = NodeCapacity {
        cpus: 2,
        memory_bytes: 4 << 30,
        max_pids: 32768,
    };

    #[test]
    fn limits_within_the_node_pass() {
        assert_eq!(NODE.check(None, None, None), Ok(()));
        assert_eq!(NODE.check(Some(4 << 30), Some(2.0), Some(32768)), Ok(()));
        assert_eq!(NODE.check(Some(64 << 20), Some(0.01), Some(1)), Ok(()));
    }

    #[test]
    fn limits_beyond_the_node_say_what_it_has() {
        assert_eq!(
            NODE.check(None, Some(64.0), None).unwrap_err().to_string(),
            "cpu limit of 64 cores is more than this node has (2 cores): give at most 2"
        );
        assert_eq!(
            NODE.check(None, Some(2.5), None).unwrap_err().to_string(),
            "cpu limit of 2.5 cores is more than this node has (2 cores): give at most 2"
        );
        assert_eq!(
            NODE.check(None, None, Some(99_999_999_999))
                .unwrap_err()
                .to_string(),
            "pids limit of 99999999999 is more than this node allows (32768): give at most 32768"
        );
        assert_eq!(
            NODE.check(Some(1 << 40), None, None)
                .unwrap_err()
                .to_string(),
            "memory limit of 1TiB is more than this node has (4GiB): give a smaller limit"
        );
    }

    #[test]
    fn no_cpu_number_that_is_not_one_passes() {
        for c in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -1.0, -0.0] {
            assert!(
                matches!(
                    NODE.check(None, Some(c), None),
                    Err(LimitError::CpuInvalid(_))
                ),
                "{c}"
            );
        }
    }
}
