//! [`Testbed`]: a hako cluster on one machine — hosts as network namespaces on a private
//! bridge ([`crate::Lan`]), a real etcd cluster with a member on each of the first hosts, an
//! agent per host, a front on the first host, a shared-storage directory — with handles to
//! break it the ways a cluster breaks (an agent killed, a host's cable pulled, an etcd member
//! stopped) and `down` (also on drop) that leaves nothing behind.
//!
//! Layout of the state dir (`<state root>/<name>/`, default `/run/hako-testbed/<name>/`):
//! `bed.json` (see [`crate::state`]), `etcd/<host>/{data,etcd.log}`,
//! `hosts/<host>/{data,run,scratch,agent.log}` (`run` is that host's `/run/hako`),
//! `front/{data,front.log}`, `shared/` (plays the network file system behind `/data`).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ipnet::Ipv4Net;

use crate::config::{START_LIMIT, TestbedConfig, node_subnet};
use crate::etcd::{EtcdCluster, Launch, MemberSpec};
use crate::hako::{self, HakoCommands, NodeArgs};
use crate::lan::Lan;
use crate::netns::Netns;
use crate::process::{Proc, wait_until};
use crate::state::{BedState, FrontInfo};
use crate::teardown::{self, front_prefix, node_prefix};
use crate::{Result, TestbedError};

/// One host of the bed and its node.
#[derive(Debug)]
pub struct Node {
    /// `host1`, `host2`, …
    pub name: String,
    pub index: usize,
    /// Its address on the LAN (its `--advertise`).
    pub addr: Ipv4Addr,
    /// Its instances' subnet.
    pub subnet: Ipv4Net,
    /// Its runtime prefix (cgroups, bridge, veths, nftables tables).
    pub prefix: String,
    pub netns: Netns,
    /// Its agent's data dir.
    pub data_dir: PathBuf,
    /// Its `/run/hako`.
    pub run_dir: PathBuf,
    scratch: PathBuf,
    agent_command: Option<Vec<String>>,
    agent: Option<Proc>,
}

impl Node {
    /// A command that runs `program` on this host (its network, its `/run/hako`).
    pub fn command(&self, program: &str) -> Command {
        self.netns
            .host_command(program, &self.scratch, &self.run_dir)
    }

    /// The agent's pid, while it runs.
    pub fn agent_pid(&self) -> Option<i32> {
        self.agent.as_ref().map(Proc::pid)
    }

    /// Its agent's log.
    pub fn agent_log(&self) -> PathBuf {
        self.run_dir.with_file_name("agent.log")
    }

    fn spawn(&self, name: &str, argv: &[String], log: &Path) -> Result<Proc> {
        let mut cmd = self.command(&argv[0]);
        cmd.args(&argv[1..])
            .env_remove("RUST_LOG")
            .env_remove("HAKO_DATA_DIR")
            .env_remove("HAKO_API")
            .env_remove("HAKO_TOKEN");
        Proc::spawn(name, cmd, log)
    }
}

/// The bed's front (`hako serve` on the first host).
#[derive(Debug)]
pub struct Front {
    /// Its API (on the first host's address).
    pub api: SocketAddr,
    /// Its proxy.
    pub proxy: SocketAddr,
    /// The admin token.
    pub token: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    proc: Proc,
}

impl Front {
    pub fn pid(&self) -> i32 {
        self.proc.pid()
    }
}

/// A running test bed; taken down on drop (see [`Testbed::down`]).
#[derive(Debug)]
pub struct Testbed {
    config: TestbedConfig,
    state_dir: PathBuf,
    lan: Option<Lan>,
    etcd: Option<EtcdCluster>,
    nodes: Vec<Node>,
    front: Option<Front>,
    commands: Option<HakoCommands>,
    armed: bool,
}

impl Testbed {
    /// Brings a bed up: network, etcd, and (with [`TestbedConfig::hako`]) the agents and the
    /// front, each ready. Refuses if a bed of that name runs; removes what a dead one left.
    /// On failure, everything made so far is removed again.
    pub fn up(config: TestbedConfig) -> Result<Testbed> {
        config.check()?;
        let state_dir = config.state_dir();
        if teardown::is_up(&state_dir, &config.name) {
            return Err(TestbedError::Running {
                name: config.name.clone(),
                state: state_dir,
            });
        }
        if teardown::exists(&state_dir, &config.name) {
            teardown::down_clean(&state_dir, &config.name)?;
        }
        std::fs::create_dir_all(&state_dir).map_err(TestbedError::io(format!(
            "cannot create {}",
            state_dir.display()
        )))?;
        let mut bed = Testbed {
            config: config.clone(),
            state_dir: state_dir.clone(),
            lan: None,
            etcd: None,
            nodes: Vec::new(),
            front: None,
            commands: None,
            armed: true,
        };
        // From here on, an error drops `bed`, which takes down what exists.
        bed.save()?;
        let lan = Lan::up(&config.name, config.nodes, config.lan)?;
        for h in lan.hosts() {
            let dir = state_dir.join("hosts").join(format!("host{}", h.index));
            let node = Node {
                name: format!("host{}", h.index),
                index: h.index,
                addr: h.addr,
                subnet: node_subnet(h.index),
                prefix: node_prefix(&config.name, h.index),
                netns: h.netns.clone(),
                data_dir: dir.join("data"),
                run_dir: dir.join("run"),
                scratch: dir.join("scratch"),
                agent_command: None,
                agent: None,
            };
            for d in [&node.data_dir, &node.run_dir, &node.scratch] {
                std::fs::create_dir_all(d)
                    .map_err(TestbedError::io(format!("cannot create {}", d.display())))?;
            }
            bed.nodes.push(node);
        }
        bed.lan = Some(lan);
        std::fs::create_dir_all(bed.shared_dir())
            .map_err(TestbedError::io("cannot create the shared dir"))?;
        let members = bed.nodes[..config.etcd_members]
            .iter()
            .map(|n| {
                let spec = MemberSpec {
                    name: n.name.clone(),
                    ip: n.addr,
                    client_port: 2379,
                    peer_port: 2380,
                };
                let launch = Launch::Host {
                    netns: n.netns.clone(),
                    scratch: n.scratch.clone(),
                    run_dir: n.run_dir.clone(),
                };
                (spec, launch)
            })
            .collect();
        bed.etcd = Some(EtcdCluster::start_on(members, &state_dir.join("etcd"))?);
        bed.save()?;
        if let Some(hako) = config.hako.clone() {
            bed.start_hako(&hako)?;
        }
        Ok(bed)
    }

    /// Starts the agents (if this hako has them) and the front, and waits until they serve.
    fn start_hako(&mut self, hako: &Path) -> Result<()> {
        let has = HakoCommands::detect(hako)?;
        self.commands = Some(has.clone());
        if !has.cluster_cidr {
            // A hako from before `--cluster-cidr` does not route between the nodes either
            // (both came together): the bed does, the same way.
            let subnets: Vec<Ipv4Net> = self.nodes.iter().map(|n| n.subnet).collect();
            self.lan().route_subnets(&subnets)?;
        }
        let store = self.etcd().endpoint();
        let cidrs = self.config.cluster_cidrs();
        let shared = self.shared_dir();
        let front_dir = self.state_dir.join("front");
        let front_data = if has.cluster() {
            front_dir.join("data")
        } else {
            self.nodes[0].data_dir.clone()
        };
        if let Some(image) = &self.config.host_image {
            std::fs::create_dir_all(&front_data)
                .map_err(TestbedError::io("cannot create the front's data dir"))?;
            if has.shared_dir {
                // Every process of the bed takes images from the shared dir; nodes run only
                // versions recorded in the cluster store (their digests).
                let record = has.image_store.then_some(store.as_str());
                hako::host_image(hako, &shared, image, record)?;
            } else {
                // Wherever a hako process of the bed looks for images: the front's data dir
                // and the nodes' (agents keep images there without shared storage).
                let mut dirs = vec![front_data.clone()];
                if has.cluster() {
                    dirs.extend(self.nodes.iter().map(|n| n.data_dir.clone()));
                }
                for d in dirs {
                    hako::host_image(hako, &d, image, None)?;
                }
            }
        }
        let lease = self.config.lease.clone();
        let node_args = |n: &Node, data_dir: &'_ Path, prefix: &'_ str| -> Vec<String> {
            let a = NodeArgs {
                hako,
                data_dir,
                store: &store,
                node: &n.name,
                advertise: n.addr,
                subnet: n.subnet,
                prefix,
                cluster_cidrs: &cidrs,
                lease: lease.as_deref(),
                shared_dir: &shared,
            };
            if data_dir == n.data_dir && has.cluster() {
                hako::agent_command(&a, &has)
            } else {
                hako::front_command(&a, &has)
            }
        };
        if has.cluster() {
            for i in 0..self.nodes.len() {
                let n = &self.nodes[i];
                let argv = node_args(n, &n.data_dir, &n.prefix);
                let proc = n.spawn(&format!("agent {}", n.name), &argv, &n.agent_log())?;
                self.nodes[i].agent_command = Some(argv);
                self.nodes[i].agent = Some(proc);
                self.save()?;
            }
        }
        let first = &self.nodes[0];
        let prefix = if has.cluster() {
            front_prefix(&self.config.name)
        } else {
            first.prefix.clone()
        };
        // The front's data dir is the first node's only when the front is that node.
        let argv = node_args(first, &front_data, &prefix);
        let log = front_dir.join("front.log");
        let mut proc = first.spawn("front", &argv, &log)?;
        let ready = proc.wait_for_line("hako: serving sites on", START_LIMIT);
        let token = std::fs::read_to_string(front_data.join("admin.token"));
        let addr = first.addr;
        self.front = Some(Front {
            api: (addr, hako::API_PORT).into(),
            proxy: (addr, hako::PROXY_PORT).into(),
            token: token.unwrap_or_default().trim().to_string(),
            data_dir: front_data,
            log,
            proc,
        });
        self.save()?;
        ready?;
        if has.cluster() {
            for n in 1..=self.nodes.len() {
                self.wait_registered(n, START_LIMIT)?;
            }
        }
        Ok(())
    }

    /// Waits until node `n`'s record is in etcd (`/nodes/host<n>`).
    pub fn wait_registered(&mut self, n: usize, limit: Duration) -> Result<()> {
        let key = format!("/nodes/{}", self.node(n).name);
        let mut failed = None;
        let r = wait_until(&format!("{key} in etcd"), limit, || {
            if let Some(p) = self.nodes[n - 1].agent.as_mut()
                && !p.alive()
            {
                failed = Some(p.exited());
                return true;
            }
            self.etcd
                .as_ref()
                .is_some_and(|e| e.get(&key).is_ok_and(|v| v.is_some()))
        });
        match failed {
            Some(e) => Err(e),
            None => r.map_err(|e| match e {
                TestbedError::Timeout { what, limit, .. } => TestbedError::Timeout {
                    what,
                    limit,
                    log: Some(self.node(n).agent_log()),
                },
                e => e,
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn config(&self) -> &TestbedConfig {
        &self.config
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The directory playing the shared file system (`--shared-dir` of every agent).
    pub fn shared_dir(&self) -> PathBuf {
        self.state_dir.join("shared")
    }

    pub fn lan(&self) -> &Lan {
        self.lan.as_ref().expect("the LAN is up")
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Node `n` (1-based: host1 is 1).
    pub fn node(&self, n: usize) -> &Node {
        &self.nodes[n - 1]
    }

    pub fn etcd(&self) -> &EtcdCluster {
        self.etcd.as_ref().expect("etcd is up")
    }

    /// The etcd cluster, to stop and start members (member i runs on host i+1).
    pub fn etcd_mut(&mut self) -> &mut EtcdCluster {
        self.etcd.as_mut().expect("etcd is up")
    }

    /// The front, when hako runs.
    pub fn front(&self) -> Option<&Front> {
        self.front.as_ref()
    }

    /// What this hako could run (`None` without hako).
    pub fn commands(&self) -> Option<&HakoCommands> {
        self.commands.as_ref()
    }

    /// `kill -9` of node `n`'s agent, as a crash: its instances die with it (the runtime ties
    /// them to it), its records stay in etcd until its lease expires, its cgroups and runtime
    /// state stay until it starts again (or `down`).
    pub fn kill_agent(&mut self, n: usize) -> Result<()> {
        if let Some(mut p) = self.nodes[n - 1].agent.take() {
            p.kill();
            p.stop(Duration::from_secs(10));
        }
        self.save()
    }

    /// Stops node `n`'s agent with SIGTERM (it stops its instances).
    pub fn stop_agent(&mut self, n: usize) -> Result<()> {
        if let Some(mut p) = self.nodes[n - 1].agent.take() {
            p.stop(teardown::STOP_GRACE);
        }
        self.save()
    }

    /// Starts node `n`'s agent again with the same options (after [`Testbed::kill_agent`]
    /// or [`Testbed::stop_agent`]); returns once it runs (see [`Testbed::wait_registered`]).
    pub fn start_agent(&mut self, n: usize) -> Result<()> {
        let node = &self.nodes[n - 1];
        if node.agent.is_some() {
            return Ok(());
        }
        let argv = node.agent_command.clone().ok_or_else(|| {
            TestbedError::Config(format!("{} runs no agent in this bed", node.name))
        })?;
        let proc = node.spawn(&format!("agent {}", node.name), &argv, &node.agent_log())?;
        self.nodes[n - 1].agent = Some(proc);
        self.save()
    }

    /// `kill -9` of the front (its instances die with it, as after a crash of `hako serve`).
    pub fn kill_front(&mut self) -> Result<()> {
        if let Some(f) = self.front.as_mut() {
            f.proc.kill();
            f.proc.stop(Duration::from_secs(10));
        }
        self.save()
    }

    /// Pulls node `n`'s network cable (nothing reaches it or leaves it).
    pub fn cut_network(&self, n: usize) -> Result<()> {
        self.lan().cut(n)
    }

    /// Plugs node `n`'s cable back in.
    pub fn restore_network(&self, n: usize) -> Result<()> {
        self.lan().plug(n)
    }

    /// What a later `down` needs (also written to the state file).
    pub fn state(&self) -> BedState {
        let mut processes = self
            .etcd
            .as_ref()
            .map(EtcdCluster::records)
            .unwrap_or_default();
        processes.extend(
            self.nodes
                .iter()
                .filter_map(|n| n.agent.as_ref().map(|p| p.record.clone())),
        );
        processes.extend(self.front.as_ref().map(|f| f.proc.record.clone()));
        let mut prefixes: Vec<String> = self.nodes.iter().map(|n| n.prefix.clone()).collect();
        prefixes.push(front_prefix(&self.config.name));
        BedState {
            name: self.config.name.clone(),
            state_dir: self.state_dir.clone(),
            lan: self.config.lan.to_string(),
            nodes: self.config.nodes,
            store: self
                .etcd
                .as_ref()
                .map(EtcdCluster::endpoint)
                .unwrap_or_default(),
            prefixes,
            processes,
            front: self.front.as_ref().map(|f| FrontInfo {
                api: format!("http://{}", f.api),
                token: f.token.clone(),
                proxy: f.proxy.to_string(),
            }),
        }
    }

    fn save(&self) -> Result<()> {
        self.state().save()
    }

    /// The shell `export` lines for hako's CLI: `HAKO_API`, `HAKO_TOKEN`, `HAKO_PROXY`,
    /// `HAKO_STORE`.
    pub fn exports(&self) -> String {
        self.state().exports()
    }

    /// Leaves the bed running after this value is gone (for `cargo xtask testbed up`); a
    /// later [`teardown::down`] with its state dir removes it.
    pub fn detach(mut self) -> Result<BedState> {
        self.armed = false;
        self.save()?;
        let state = self.state();
        if let Some(lan) = self.lan.take() {
            lan.keep();
        }
        if let Some(etcd) = self.etcd.take() {
            etcd.detach();
        }
        for n in &mut self.nodes {
            n.agent.take().map(Proc::detach);
        }
        self.front.take().map(|f| f.proc.detach());
        Ok(state)
    }

    /// Takes the bed down (see [`crate::teardown`]) and fails if anything is left.
    pub fn down(mut self) -> Result<()> {
        self.armed = false;
        self.take_down()
    }

    fn take_down(&mut self) -> Result<()> {
        let mut procs: Vec<Proc> = self.front.take().map(|f| f.proc).into_iter().collect();
        procs.extend(self.nodes.iter_mut().filter_map(|n| n.agent.take()));
        teardown::stop_all(&mut procs, teardown::STOP_GRACE);
        drop(self.etcd.take());
        if let Some(lan) = self.lan.take() {
            lan.keep(); // removed by teardown, after the processes in it
        }
        self.save()?;
        teardown::down_clean(&self.state_dir, &self.config.name)
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        if self.armed {
            self.armed = false;
            if let Err(e) = self.take_down() {
                eprintln!("hako-testbed: {e}");
            }
        }
    }
}
