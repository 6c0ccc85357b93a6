//! The multi-host test bed (`hako-testbed`) with this package's hako: hosts as network
//! namespaces on a bridge, a real etcd cluster (a member on each of the first three hosts), an
//! agent per host and a front (API and proxy, no instances) on the first — real processes,
//! real containers, real HTTP, driven through the CLI and the front's proxy as a user would.
//!
//! - [`site`]: a site served through the front from an instance on another node; `down`
//!   leaves nothing, also after a crash;
//! - [`isolation`]: an instance (as root or not) reaches no other instance and no node's own
//!   services (etcd, the front's API and proxy, the node itself), on any node, while the
//!   front reaches it and it reaches the world outside the cluster;
//! - [`lost_node`]: a node whose agent is killed and one whose cable is cut: once their
//!   leases expire, their sites answer from another node at the next request; when they come
//!   back they first kill what they still ran (fencing);
//! - [`etcd_loss`]: one etcd member of three stopped: everything goes on, changes too; two
//!   stopped: the API answers 503 saying why, the proxy keeps serving the sites it routes
//!   (cold starts get 503); members back: everything works and nothing stored is lost.
//!
//! Each brings up a bed of its own (a unique name and LAN; see [`cluster::Cluster`]) and takes
//! it down at its end, checking that nothing is left. They need root.

#[path = "../common/mod.rs"]
mod common;

mod cluster;
mod etcd_loss;
mod isolation;
mod lost_node;
mod site;
