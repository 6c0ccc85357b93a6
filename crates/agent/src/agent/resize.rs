//! Live resize: new cgroup limits (memory, CPU, pids) for a running instance, without a
//! restart. A memory limit below what the instance uses now is not forced on it — the kernel
//! would reclaim what it can and then OOM-kill the app (v2), or refuse (v1) — so that instance
//! keeps its old memory limit (its CPU and pids limits change) and the answer says so; its
//! successor gets the new limit when it is replaced.

use std::sync::Arc;

use hako_model::InstanceLimits;
use hako_runtime::{CgroupError, RuntimeError};

use super::Agent;
use crate::limits::runtime_limits;

/// What a resize did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Resized {
    /// Every limit is the one asked for.
    Applied(InstanceLimits),
    /// The instance uses more memory than the new limit: it keeps its old memory limit
    /// (`limits.memory`); CPU and pids are the new ones.
    MemoryKept {
        /// The limits it has now.
        limits: InstanceLimits,
        /// The memory it used when the new limit was refused, in bytes, when known.
        using: Option<u64>,
    },
}

impl Resized {
    /// The limits the instance has now.
    pub fn limits(&self) -> InstanceLimits {
        match *self {
            Resized::Applied(l) | Resized::MemoryKept { limits: l, .. } => l,
        }
    }
}

/// Why an instance could not be resized at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResizeError {
    /// No such instance here (it stopped meanwhile).
    #[error("no instance {0} runs on this node (it may have stopped): nothing to resize")]
    NotFound(String),
    /// The kernel refused, or the cgroup is gone.
    #[error("cannot resize instance {id}: {reason}")]
    Failed {
        /// The instance.
        id: String,
        /// What went wrong.
        reason: String,
    },
}

impl Agent {
    /// Gives running instance `id` the limits `to`, live. A memory limit below its use now is
    /// kept at the old value ([`Resized::MemoryKept`]), not forced.
    pub async fn resize(
        self: &Arc<Self>,
        id: &str,
        to: InstanceLimits,
    ) -> Result<Resized, ResizeError> {
        let instance = self
            .instances
            .lock()
            .expect("instances lock")
            .get(id)
            .cloned()
            .ok_or_else(|| ResizeError::NotFound(id.to_string()))?;
        let failed = |e: RuntimeError| ResizeError::Failed {
            id: id.to_string(),
            reason: e.to_string(),
        };
        let old = *instance.limits.lock().expect("limits lock");
        let inst = instance.clone();
        let result = tokio::task::spawn_blocking(move || {
            match inst.container.update_limits(&runtime_limits(&to)) {
                Ok(()) => Ok(Resized::Applied(to)),
                Err(RuntimeError::Cgroup(CgroupError::MemoryBelowUsage { current, .. }))
                    if old.is_some() =>
                {
                    // Memory stays; CPU and pids still change.
                    let limits = InstanceLimits {
                        memory: old.map_or(to.memory, |o| o.memory),
                        ..to
                    };
                    inst.container
                        .update_limits(&runtime_limits(&limits))
                        .map(|()| Resized::MemoryKept {
                            limits,
                            using: current,
                        })
                }
                Err(e) => Err(e),
            }
        })
        .await
        .map_err(|e| ResizeError::Failed {
            id: id.to_string(),
            reason: format!("resize task failed: {e}"),
        })?
        .map_err(failed)?;
        *instance.limits.lock().expect("limits lock") = Some(result.limits());
        Ok(result)
    }
}
