//! The shared warm pool: up to [`AgentConfig::shared_pool`](super::AgentConfig::shared_pool)
//! slots of the node, each a cgroup and a network namespace already on the bridge with its
//! address (`hako_runtime::Slot`), for any app. A per-app warm pool
//! ([`super::pool`]) parks whole containers of one app version and so costs a parked process
//! and its mounts per app; with a thousand sites that does not scale. A slot runs no
//! process and holds no mounts: a start that finds no parked container of its app takes a
//! slot and only makes the container's mount, pid, uts and ipc namespaces, root filesystem
//! and mounts ([`hako_runtime::Runtime::create_in`]); a restore takes one too
//! ([`hako_runtime::Runtime::restore_in`]).
//!
//! The pool is filled in the background (one slot at a time, on a blocking thread), never on
//! a start's path, and refilled a moment after each start that took a slot (as the per-app
//! pool is). It is emptied at shutdown; a slot dropped unused removes its cgroup and veth.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use hako_runtime::Slot;

use super::Agent;

/// The node's slots.
#[derive(Debug, Default)]
pub(super) struct SharedPool {
    slots: Mutex<Vec<Slot>>,
    /// A filler task runs.
    filling: AtomicBool,
    /// The agent shuts down: no slot is made any more.
    closed: AtomicBool,
}

impl Agent {
    /// Slots parked in the shared warm pool now.
    pub fn shared_pool_parked(&self) -> usize {
        self.shared.slots.lock().expect("shared pool lock").len()
    }

    /// A slot for a start, if the pool has one (the pool refills itself soon after).
    pub(super) fn take_slot(self: &Arc<Self>) -> Option<Slot> {
        if self.config.shared_pool == 0 {
            return None;
        }
        let slot = self.shared.slots.lock().expect("shared pool lock").pop();
        if slot.is_some() {
            let (agent, delay) = (Arc::downgrade(self), self.config.pool_refill_delay);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if let Some(agent) = agent.upgrade() {
                    agent.fill_shared_pool();
                }
            });
        }
        slot
    }

    /// Fills the shared pool up to its size in the background (one task at a time). Call it
    /// from within a tokio runtime.
    pub fn fill_shared_pool(self: &Arc<Self>) {
        let want = self.config.shared_pool;
        if want == 0
            || self.shared.closed.load(Ordering::SeqCst)
            || self.shared.filling.swap(true, Ordering::SeqCst)
        {
            return;
        }
        let agent = self.clone();
        tokio::spawn(async move {
            loop {
                let have = agent.shared.slots.lock().expect("shared pool lock").len();
                if have >= want || agent.shared.closed.load(Ordering::SeqCst) {
                    break;
                }
                let rt = agent.runtime.clone();
                match tokio::task::spawn_blocking(move || rt.make_slot()).await {
                    Ok(Ok(slot)) => {
                        let mut slots = agent.shared.slots.lock().expect("shared pool lock");
                        if agent.shared.closed.load(Ordering::SeqCst) {
                            drop(slots);
                            drop(slot);
                            break;
                        }
                        slots.push(slot);
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "cannot fill the shared warm pool");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the shared warm pool's task failed");
                        break;
                    }
                }
            }
            agent.shared.filling.store(false, Ordering::SeqCst);
        });
    }

    /// Empties the pool for good (the agent shuts down).
    pub(super) fn close_shared_pool(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        let slots = std::mem::take(&mut *self.shared.slots.lock().expect("shared pool lock"));
        drop(slots);
    }
}
