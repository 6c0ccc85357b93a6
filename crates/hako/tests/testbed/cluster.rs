//! [`Cluster`]: a test bed of this package's hako and the ways a test talks to it — the CLI
//! pointed at the front (as the bed's `export` lines do), the API client, requests through the
//! front's proxy, and what runs where.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hako_model::{InstanceInfo, InstanceState};
use hako_testkit::Outcome;
use hako_testkit::site::{STATIC_CMD, static_code};
use hako_testkit::testbed::{Testbed, TestbedConfig};

use crate::common::{self, HAKO, require_root};

/// A bed with this hako on it; taken down (and checked) by [`Cluster::down`], or on drop.
pub struct Cluster {
    /// Before `bed`: dropped first.
    _logs: KeepLogs,
    pub bed: Testbed,
    pub tmp: tempfile::TempDir,
    pub api: SocketAddr,
    pub token: String,
    pub proxy: SocketAddr,
    started: Instant,
}

impl Cluster {
    /// A bed of `nodes` hosts, its nodes' leases `lease` long (e.g. "2s"; `None`: hako's).
    pub fn up(nodes: usize, lease: Option<&str>) -> Cluster {
        require_root();
        let started = Instant::now();
        let tmp = tempfile::Builder::new()
            .prefix("hako-bed-test")
            .tempdir()
            .unwrap();
        let mut config = TestbedConfig::unique(nodes);
        config.hako = Some(HAKO.into());
        config.state_root = tmp.path().join("beds");
        config.lease = lease.map(Into::into);
        let bed = Testbed::up(config).unwrap_or_else(|e| panic!("the bed did not come up: {e}"));
        let has = bed.commands().expect("the bed runs hako");
        assert!(
            has.cluster() && has.cluster_cidr && has.shared_dir && has.lease,
            "this hako lacks cluster options: {has:?}"
        );
        let front = bed.front().expect("the bed runs a front");
        let (api, token, proxy) = (front.api, front.token.clone(), front.proxy);
        eprintln!(
            "bed {} up in {:.1}s (API http://{api})",
            bed.name(),
            started.elapsed().as_secs_f64()
        );
        Cluster {
            _logs: KeepLogs {
                name: bed.name().to_string(),
                state_dir: bed.state_dir().to_path_buf(),
            },
            bed,
            tmp,
            api,
            token,
            proxy,
            started,
        }
    }

    /// `hako ARGS…` against the front, as a user with the bed's exports runs it.
    pub fn hako(&self, args: &[&str]) -> Outcome {
        Outcome::from(
            hako_testkit::hako_command(HAKO.as_ref(), &self.tmp.path().join("cli"))
                .args(args)
                .env("HAKO_API", format!("http://{}", self.api))
                .env("HAKO_TOKEN", &self.token)
                .output()
                .unwrap(),
        )
    }

    /// `hako ARGS…`, which must succeed; its output.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.hako(args);
        assert!(out.success(), "hako {args:?}: {}", out.text());
        out.stdout
    }

    /// The API client of the front.
    pub fn client(&self) -> hako_api::Client {
        hako_api::Client::new(format!("http://{}", self.api), &self.token)
    }

    /// A static site's code in the test's temp dir (`index.html` = `body`).
    pub fn code(&self, name: &str, body: &str) -> PathBuf {
        static_code(&self.tmp.path().join("code").join(name), body)
    }

    /// Creates app `name` (host `NAME.example`, image `base`) with `code`, served by busybox
    /// httpd, plus `extra` options.
    #[track_caller]
    pub fn create(&self, name: &str, code: &Path, extra: &[&str]) {
        let host = format!("{name}.example");
        let mut args = vec![
            "app",
            "create",
            name,
            "--host",
            &host,
            "--image",
            "base",
            "--code",
            code.to_str().unwrap(),
            "--cmd",
            STATIC_CMD,
        ];
        args.extend(extra);
        self.ok(&args);
    }

    /// `GET path` for app `name` through the front's proxy: (status, body).
    pub fn get(&self, name: &str, path: &str) -> (u16, String) {
        common::get(self.proxy, &format!("{name}.example"), path)
    }

    /// App `name`'s instances, as the API lists them. A 503 (etcd electing a leader after a
    /// member was cut off or killed) is asked again for up to 15 s; any other error fails.
    #[track_caller]
    pub fn instances(&self, name: &str) -> Vec<InstanceInfo> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match self.try_instances(name) {
                Ok(list) => return list,
                Err(hako_api::ClientError::Api { status: 503, .. })
                    if Instant::now() < deadline =>
                {
                    // A retry while etcd has no leader, bounded by the deadline.
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("instances of {name}: {e}"),
            }
        }
    }

    /// App `name`'s instances, or the API's error (e.g. a 503 while etcd elects a leader).
    pub fn try_instances(&self, name: &str) -> Result<Vec<InstanceInfo>, hako_api::ClientError> {
        self.client().instances(Some(name))
    }

    /// The ready instance of app `name` (it must have exactly one).
    #[track_caller]
    pub fn ready(&self, name: &str) -> InstanceInfo {
        let mut ready: Vec<InstanceInfo> = self
            .instances(name)
            .into_iter()
            .filter(|i| i.state == InstanceState::Ready)
            .collect();
        assert_eq!(ready.len(), 1, "{name}'s ready instances: {ready:?}");
        ready.remove(0)
    }

    /// The bed's node (1-based) an instance runs on, by its node's name.
    #[track_caller]
    pub fn node_of(&self, i: &InstanceInfo) -> usize {
        self.bed
            .nodes()
            .iter()
            .find(|n| n.name == i.node)
            .unwrap_or_else(|| panic!("{} runs on {:?}, no node of the bed", i.id, i.node))
            .index
    }

    /// New instances go to node `n` only: every other node cordoned, `n` active.
    pub fn only_on(&self, n: usize) {
        for node in self.bed.nodes() {
            let verb = if node.index == n {
                "uncordon"
            } else {
                "cordon"
            };
            self.ok(&["node", verb, &node.name]);
        }
    }

    /// Every node active again.
    pub fn uncordon_all(&self) {
        for node in self.bed.nodes() {
            self.ok(&["node", "uncordon", &node.name]);
        }
    }

    /// Seconds since the bed began to come up (for the test's log).
    pub fn at(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Takes the bed down, failing if anything is left.
    pub fn down(self) {
        let name = self.bed.name().to_string();
        let at = self.at();
        self.bed
            .down()
            .unwrap_or_else(|e| panic!("down of bed {name}: {e}"));
        eprintln!("bed {name}: test done at {at:.1}s, down");
    }
}

/// Keeps a bed's logs when its test fails (the bed goes, with its state dir): dropped before
/// the bed, it copies them to `<tmp>/hako-bed-logs-<name>/`.
struct KeepLogs {
    name: String,
    state_dir: PathBuf,
}

impl Drop for KeepLogs {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let keep = std::env::temp_dir().join(format!("hako-bed-logs-{}", self.name));
        let mut walk = vec![self.state_dir.clone()];
        while let Some(dir) = walk.pop() {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = e.path();
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    walk.push(path);
                } else if path.extension().is_some_and(|x| x == "log") {
                    let rel = path.strip_prefix(&self.state_dir).unwrap_or(&path);
                    let to = keep.join(rel.to_string_lossy().replace('/', "-"));
                    let _ = std::fs::create_dir_all(&keep).and_then(|()| std::fs::copy(&path, &to));
                }
            }
        }
        eprintln!("bed {}: logs kept in {}", self.name, keep.display());
    }
}

/// The cgroup directories of runtime `prefix` and everything under them (cgroup v1 or v2).
pub fn cgroups_of(prefix: &str) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        out.push(dir.display().to_string());
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&e.path(), out);
            }
        }
    }
    let root = Path::new("/sys/fs/cgroup");
    let mut out = Vec::new();
    for d in std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join(prefix))
        .chain([root.join(prefix)])
        .filter(|d| d.is_dir())
    {
        walk(&d, &mut out);
    }
    out
}

/// Processes in runtime `prefix`'s cgroups (its instances, cgroup v1 or v2).
pub fn processes_of(prefix: &str) -> usize {
    fn count(dir: &Path) -> usize {
        let own = std::fs::read_to_string(dir.join("cgroup.procs"))
            .map(|s| s.lines().count())
            .unwrap_or(0);
        own + std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| count(&e.path()))
            .sum::<usize>()
    }
    // v2: /sys/fs/cgroup/PREFIX; v1: /sys/fs/cgroup/CONTROLLER/PREFIX (the controllers the
    // runtime uses): the most any of them holds.
    let root = Path::new("/sys/fs/cgroup");
    std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join(prefix))
        .chain([root.join(prefix)])
        .filter(|d| d.is_dir())
        .map(|d| count(&d))
        .max()
        .unwrap_or(0)
}

/// Polls `ok` every 50 ms until it holds, for at most `limit`; returns how long it took.
#[track_caller]
pub fn until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    common::wait_until(what, limit, &mut ok);
    t.elapsed()
}
