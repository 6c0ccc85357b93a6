//! Slots of the shared warm pool: a container's cgroup and network made ahead of time, for
//! any app.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use hako_cgroup::Cgroup;

use super::Runtime;
use crate::error::RuntimeError;
use crate::network::{Attachment, Network};

/// A slot of the shared warm pool: what every container needs whatever its app — a cgroup
/// and a network namespace with `lo` up and `eth0` on the bridge, addressed and routed, the
/// bridge already forwarding to it — made ahead of time by [`Runtime::make_slot`], and taken
/// by [`Runtime::create_in`] (or [`Runtime::restore_in`]). Not
/// yet a root filesystem, mounts or a process of an app: any app's container can take it.
/// Dropped unused, it removes its cgroup and veth.
pub struct Slot {
    id: String,
    parts: Option<SlotParts>,
}

pub(crate) struct SlotParts {
    pub(crate) cgroup: Arc<dyn Cgroup>,
    pub(crate) net: Arc<Network>,
    pub(crate) att: Attachment,
    pub(crate) netns: OwnedFd,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("id", &self.id)
            .field("addr", &self.address())
            .finish()
    }
}

impl Slot {
    /// Its address on the bridge.
    pub fn address(&self) -> Option<std::net::Ipv4Addr> {
        self.parts.as_ref().map(|p| p.att.addr)
    }

    /// The container id (and cgroup name) it was made for.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn take(mut self) -> (String, SlotParts) {
        let parts = self.parts.take().expect("a slot is taken once");
        (std::mem::take(&mut self.id), parts)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(p) = self.parts.take() {
            drop(p.netns);
            let _ = p.cgroup.destroy();
            p.net.release(&p.att);
        }
    }
}

impl Runtime {
    /// Makes a [`Slot`] for the shared warm pool: a cgroup (no limits until it is taken),
    /// a network namespace, a veth on the bridge with an address. Blocking (a few
    /// milliseconds).
    pub fn make_slot(self: &Arc<Self>) -> Result<Slot, RuntimeError> {
        let id = self.next_id();
        let cgroup: Arc<dyn Cgroup> =
            Arc::from(self.cgroups.create(&id, &hako_cgroup::Limits::default())?);
        let net = match self.network() {
            Ok(n) => n,
            Err(e) => {
                let _ = cgroup.destroy();
                return Err(e);
            }
        };
        let (att, cfg) = match net.reserve() {
            Ok(r) => r,
            Err(e) => {
                let _ = cgroup.destroy();
                return Err(e.into());
            }
        };
        let mut slot = Slot { id, parts: None };
        let made = (|| -> Result<OwnedFd, RuntimeError> {
            let pending = crate::checkpoint::netns::create()
                .map_err(RuntimeError::sys("make a network namespace"))?;
            net.attach(&att, pending.tid)?;
            let ns = pending
                .configure(Some(cfg))
                .map_err(RuntimeError::sys("configure the network namespace"))?;
            net.wait_forwarding(&att);
            Ok(ns)
        })();
        match made {
            Ok(netns) => {
                slot.parts = Some(SlotParts {
                    cgroup,
                    net,
                    att,
                    netns,
                });
                Ok(slot)
            }
            Err(e) => {
                let _ = cgroup.destroy();
                net.release(&att);
                Err(e)
            }
        }
    }
}
