//! A hako cluster on one machine, for tests, benchmarks and `cargo xtask testbed` (the seed's
//! Terraform + Chef test bed of ~30 machines, here as network namespaces).
//!
//! - [`Testbed`]: hosts on a private bridge, a real etcd cluster, an agent per host, a front,
//!   shared storage; handles to kill an agent, cut a host's network, stop an etcd member;
//!   taken down — nothing left — on drop;
//! - [`Lan`] and [`Netns`]: the network alone (hosts as namespaces on a bridge), and running
//!   code or programs inside a host;
//! - [`etcd::EtcdCluster`]: a real etcd of one or more members, on loopback or on the bed's
//!   hosts, with members stopped and started (also re-exported as `hako_testkit::etcd`);
//! - [`teardown`]: `down` of a bed brought up by another process, and the leftovers check.
//!
//! Everything needs root (namespaces, links, cgroups) and Debian's `iproute2`, `nftables`,
//! `util-linux` and `etcd-server`. Kernel objects are named `hakotb<name>-…` (namespaces,
//! links) and `hakon<name><n>` / `hakof<name>` (the nodes' runtime prefixes).
#![forbid(unsafe_code)]

mod bed;
mod cmd;
mod config;
mod error;
pub mod etcd;
pub mod hako;
pub mod http;
pub mod lan;
mod netns;
pub mod process;
pub mod state;
pub mod teardown;

pub use bed::{Front, Node, Testbed};
pub use config::{
    DEFAULT_LAN, DEFAULT_STATE_ROOT, INSTANCE_NETWORK, START_LIMIT, TestbedConfig, node_subnet,
};
pub use error::{Result, TestbedError};
pub use lan::{Lan, LanHost};
pub use netns::Netns;
