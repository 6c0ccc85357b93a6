//! A real etcd cluster (Debian's `etcd-server`) of one or more members: on loopback for tests
//! that need no network namespaces ([`EtcdCluster::start`]), or one member per test-bed host.
//!
//! Members can be stopped, killed and started again (with their data), so tests can lose one
//! member (the cluster goes on) or the quorum (writes fail until a member is back). The bed
//! talks to etcd over its HTTP API — `/health` and the v3 JSON gateway — so it needs no etcd
//! client library and no async runtime.
//!
//! ```no_run
//! # fn main() -> hako_testbed::Result<()> {
//! let mut etcd = hako_testbed::etcd::EtcdCluster::start(3)?;
//! let store = etcd.endpoint(); // "etcd://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3"
//! etcd.stop_member(0)?;        // two of three: still a quorum
//! assert!(etcd.has_quorum());
//! etcd.stop_member(1)?;        // one of three: none
//! etcd.start_member(0)?;       // back to two
//! # Ok(()) }
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::http;
use crate::netns::Netns;
use crate::process::{Proc, ProcRecord, wait_until};
use crate::{Result, TestbedError};

/// How long a cluster gets to elect a leader when it starts.
pub const START_LIMIT: Duration = Duration::from_secs(30);
/// How long one HTTP request to a member may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// How long connecting to a member may take (a member on a healthy network answers at once).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Where one member listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSpec {
    /// Its member name, e.g. `host1`.
    pub name: String,
    pub ip: Ipv4Addr,
    pub client_port: u16,
    pub peer_port: u16,
}

impl MemberSpec {
    /// `http://IP:CLIENT_PORT`.
    pub fn client_url(&self) -> String {
        format!("http://{}:{}", self.ip, self.client_port)
    }

    /// `http://IP:PEER_PORT`.
    pub fn peer_url(&self) -> String {
        format!("http://{}:{}", self.ip, self.peer_port)
    }

    pub fn client_addr(&self) -> SocketAddr {
        (self.ip, self.client_port).into()
    }
}

/// How a member's process is started: here, or as a program of a test-bed host.
#[derive(Debug, Clone)]
pub enum Launch {
    /// In this machine's namespaces.
    Here,
    /// Inside `netns` as on a host of its own (see [`Netns::host_command`]).
    Host {
        netns: Netns,
        scratch: PathBuf,
        run_dir: PathBuf,
    },
}

impl Launch {
    fn command(&self, program: &str) -> Command {
        match self {
            Launch::Here => Command::new(program),
            Launch::Host {
                netns,
                scratch,
                run_dir,
            } => netns.host_command(program, scratch, run_dir),
        }
    }
}

/// One member: where it listens, its data and log, its process while it runs.
#[derive(Debug)]
pub struct Member {
    pub spec: MemberSpec,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    launch: Launch,
    proc: Option<Proc>,
}

/// A running etcd cluster; its members are killed when it is dropped (unless detached): its
/// data is a test's, and a graceful stop of every member takes seconds.
#[derive(Debug)]
pub struct EtcdCluster {
    members: Vec<Member>,
    initial_cluster: String,
    token: String,
    _tmp: Option<tempfile::TempDir>,
}

impl EtcdCluster {
    /// `n` members on 127.0.0.1 (ports picked by the kernel) in a temp dir, started and
    /// healthy.
    pub fn start(n: usize) -> Result<EtcdCluster> {
        if n == 0 {
            return Err(TestbedError::Config(
                "an etcd cluster needs a member".into(),
            ));
        }
        let tmp = tempfile::Builder::new()
            .prefix("hako-etcd-")
            .tempdir()
            .map_err(TestbedError::io("cannot create a temp dir"))?;
        let port = || -> Result<u16> {
            let l = std::net::TcpListener::bind("127.0.0.1:0")
                .map_err(TestbedError::io("cannot pick a free port"))?;
            Ok(l.local_addr()
                .map_err(TestbedError::io("cannot pick a free port"))?
                .port())
        };
        // A port picked here may be taken by another process before etcd binds it: a member
        // that exits at once lost that race, and the cluster starts again on other ports.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let dir = tmp.path().join(format!("try{attempt}"));
            let mut members = Vec::new();
            for i in 1..=n {
                let spec = MemberSpec {
                    name: format!("m{i}"),
                    ip: Ipv4Addr::LOCALHOST,
                    client_port: port()?,
                    peer_port: port()?,
                };
                members.push((spec, Launch::Here));
            }
            match EtcdCluster::start_on(members, &dir) {
                Ok(mut cluster) => {
                    cluster._tmp = Some(tmp);
                    return Ok(cluster);
                }
                Err(TestbedError::Exited { .. }) if attempt < 3 => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Members as given, each with its data and log under `dir/<name>`; started and
    /// healthy. A member whose data dir exists comes back with its data.
    pub fn start_on(members: Vec<(MemberSpec, Launch)>, dir: &Path) -> Result<EtcdCluster> {
        let initial_cluster = members
            .iter()
            .map(|(m, _)| format!("{}={}", m.name, m.peer_url()))
            .collect::<Vec<_>>()
            .join(",");
        let token = format!(
            "hako-{}",
            dir.file_name().unwrap_or_default().to_string_lossy()
        );
        let mut cluster = EtcdCluster {
            members: members
                .into_iter()
                .map(|(spec, launch)| Member {
                    data_dir: dir.join(&spec.name).join("data"),
                    log: dir.join(&spec.name).join("etcd.log"),
                    spec,
                    launch,
                    proc: None,
                })
                .collect(),
            initial_cluster,
            token,
            _tmp: None,
        };
        // Dropping `cluster` on an error below stops what started.
        for i in 0..cluster.members.len() {
            cluster.spawn(i)?;
        }
        cluster.wait_quorum(START_LIMIT)?;
        Ok(cluster)
    }

    /// The store option hako takes: `etcd://IP:PORT,IP:PORT,…`.
    pub fn endpoint(&self) -> String {
        let hosts: Vec<String> = self
            .members
            .iter()
            .map(|m| m.spec.client_addr().to_string())
            .collect();
        format!("etcd://{}", hosts.join(","))
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The records of the running members' processes (for a state file).
    pub fn records(&self) -> Vec<ProcRecord> {
        self.members
            .iter()
            .filter_map(|m| m.proc.as_ref().map(|p| p.record.clone()))
            .collect()
    }

    fn spawn(&mut self, i: usize) -> Result<()> {
        let m = &mut self.members[i];
        std::fs::create_dir_all(&m.data_dir).map_err(TestbedError::io(format!(
            "cannot create {}",
            m.data_dir.display()
        )))?;
        let mut cmd = m.launch.command("etcd");
        cmd.args(["--name", &m.spec.name])
            .arg("--data-dir")
            .arg(&m.data_dir)
            .args(["--listen-client-urls", &m.spec.client_url()])
            .args(["--advertise-client-urls", &m.spec.client_url()])
            .args(["--listen-peer-urls", &m.spec.peer_url()])
            .args(["--initial-advertise-peer-urls", &m.spec.peer_url()])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", &self.token])
            .args(["--logger", "zap", "--log-outputs", "stderr"]);
        let name = format!("etcd {}", m.spec.name);
        m.proc = Some(Proc::spawn(&name, cmd, &m.log)?);
        Ok(())
    }

    /// Whether member `i`'s process runs.
    pub fn running(&mut self, i: usize) -> bool {
        self.members[i].proc.as_mut().is_some_and(Proc::alive)
    }

    /// Stops member `i` (SIGTERM, as an operator would); its data stays.
    pub fn stop_member(&mut self, i: usize) -> Result<()> {
        if let Some(mut p) = self.members[i].proc.take() {
            p.stop(Duration::from_secs(10));
        }
        Ok(())
    }

    /// Kills member `i` (SIGKILL, as a crash would); its data stays.
    pub fn kill_member(&mut self, i: usize) {
        if let Some(mut p) = self.members[i].proc.take() {
            p.kill();
            p.stop(Duration::from_secs(10));
        }
    }

    /// Starts member `i` again with its data; returns once it accepts connections (whether
    /// the cluster has a quorum is [`EtcdCluster::has_quorum`]'s to say).
    pub fn start_member(&mut self, i: usize) -> Result<()> {
        if self.running(i) {
            return Ok(());
        }
        self.spawn(i)?;
        let addr = self.members[i].spec.client_addr();
        let what = format!(
            "etcd member {} listening on {addr}",
            self.members[i].spec.name
        );
        let mut result = Ok(());
        let proc = self.members[i].proc.as_mut().expect("just spawned");
        let listening = wait_until(&what, START_LIMIT, || {
            if !proc.alive() {
                result = Err(proc.exited());
                return true;
            }
            std::net::TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT).is_ok()
        });
        result.and(listening)
    }

    /// Whether member `i` says it is healthy (it has a leader and can serve a quorum read).
    pub fn healthy(&self, i: usize) -> bool {
        let addr = self.members[i].spec.client_addr();
        if std::net::TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).is_err() {
            return false;
        }
        http::request(addr, "GET", "/health", &[], None, REQUEST_TIMEOUT)
            .ok()
            .and_then(|r| serde_json::from_str::<serde_json::Value>(&r.body).ok())
            .is_some_and(|v| v["health"] == "true")
    }

    /// Whether any member says the cluster is healthy.
    pub fn has_quorum(&self) -> bool {
        (0..self.members.len()).any(|i| self.members[i].proc.is_some() && self.healthy(i))
    }

    /// Waits until the cluster has a quorum again; fails at once if a running member exits.
    pub fn wait_quorum(&mut self, limit: Duration) -> Result<()> {
        let mut exited = None;
        let waited = wait_until("the etcd cluster to have a leader", limit, || {
            for m in &mut self.members {
                if let Some(p) = m.proc.as_mut()
                    && !p.alive()
                {
                    exited = Some(p.exited());
                    return true;
                }
            }
            self.has_quorum()
        });
        if let Some(e) = exited {
            return Err(e);
        }
        waited.map_err(|e| match e {
            TestbedError::Timeout { what, limit, .. } => TestbedError::Timeout {
                what,
                limit,
                log: self.members.first().map(|m| m.log.clone()),
            },
            e => e,
        })
    }

    /// A running member's client address, for requests.
    fn any_member(&self) -> Result<SocketAddr> {
        self.members
            .iter()
            .find(|m| m.proc.is_some())
            .map(|m| m.spec.client_addr())
            .ok_or_else(|| TestbedError::Etcd {
                endpoint: self.endpoint(),
                reason: "no member is running".into(),
            })
    }

    /// A JSON gateway call (`/v3/kv/…`) to a running member.
    fn gateway(&self, path: &str, body: serde_json::Value) -> Result<serde_json::Value> {
        let addr = self.any_member()?;
        let fail = |reason: String| TestbedError::Etcd {
            endpoint: addr.to_string(),
            reason,
        };
        let r = http::request(
            addr,
            "POST",
            path,
            &[],
            Some(&body.to_string()),
            REQUEST_TIMEOUT,
        )
        .map_err(|e| fail(e.to_string()))?;
        if r.status != 200 {
            return Err(fail(format!(
                "{path} answered {}: {}",
                r.status,
                r.body.trim()
            )));
        }
        serde_json::from_str(&r.body).map_err(|e| fail(format!("{path}: {e}")))
    }

    /// Writes `key` = `value` (fails without a quorum).
    pub fn put(&self, key: &str, value: &str) -> Result<()> {
        self.gateway(
            "/v3/kv/put",
            serde_json::json!({"key": B64.encode(key), "value": B64.encode(value)}),
        )
        .map(drop)
    }

    /// Every key under `prefix` with its value, in key order (a quorum read).
    pub fn range(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let mut end = prefix.as_bytes().to_vec();
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        let v = self.gateway(
            "/v3/kv/range",
            serde_json::json!({"key": B64.encode(prefix), "range_end": B64.encode(&end)}),
        )?;
        let text = |x: &serde_json::Value| {
            B64.decode(x.as_str().unwrap_or(""))
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        };
        Ok(v["kvs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|kv| (text(&kv["key"]), text(&kv["value"])))
            .collect())
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .range(key)?
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v))
    }

    /// Leaves the members running when this value is dropped; their records, for whoever
    /// stops them later.
    pub fn detach(mut self) -> Vec<ProcRecord> {
        self.members
            .iter_mut()
            .filter_map(|m| m.proc.take().map(Proc::detach))
            .collect()
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(mut p) = m.proc.take() {
                p.kill();
                p.stop(Duration::from_secs(10));
            }
        }
    }
}
