//! The baseline: `crun run` on the same rootfs, mounts and limits as hako's containers.
//!
//! crun 1.8 (Debian bookworm) refuses this machine's hybrid cgroup layout, so every crun is
//! spawned from one [`Worker`] thread living in a private mount namespace without the cgroup2
//! mount: no `unshare`/`nsenter`/shell process is added to crun's measured time.
//!
//! What crun gets (built by [`config`]): the host image's skeleton as its root (crun has no
//! overlay: the throw-away layer hako makes per container is not in crun's time), the same
//! read-only host binds, `/app`, /proc with the same read-only knobs, a tmpfs /dev with
//! pts and shm, tmpfs /tmp and /run, the same namespaces, user, capabilities, rlimit,
//! no_new_privs and cgroup limits (memory, CPU quota, pids) under a `hako…` cgroup parent.

mod worker;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hako_runtime::Limits;
use serde_json::{Value, json};

use self::worker::Worker;
use super::Workload;
use crate::http;

/// Capabilities hako keeps for a web server, given to crun too.
const CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_NET_BIND_SERVICE",
];

/// /proc entries hako makes read-only.
const PROC_READ_ONLY: &[&str] = &[
    "sys",
    "sysrq-trigger",
    "irq",
    "bus",
    "fs",
    "kcore",
    "keys",
    "timer_list",
];

/// What every crun container of the benchmark shares.
#[derive(Debug)]
pub struct Setup {
    /// The root filesystem directory (the host image's skeleton).
    pub rootfs: PathBuf,
    /// Read-only binds (host path, path inside) of the host image.
    pub binds: Vec<(PathBuf, PathBuf)>,
    /// App code, bound read-only at /app.
    pub app: PathBuf,
    pub limits: Limits,
    /// RLIMIT_NOFILE inside (hako's: 65536 capped at our own hard limit).
    pub nofile: u64,
    /// Where bundles and crun's stderr files go.
    pub work: PathBuf,
}

/// Runs crun containers from a private mount namespace and removes all they leave on drop.
pub struct Crun {
    worker: Worker,
    shared: Arc<Shared>,
}

struct Shared {
    setup: Setup,
    /// crun's `--root` state directory.
    state: PathBuf,
    /// Name of the parent cgroup (in every hierarchy) of the crun containers.
    cgroup_parent: String,
    counter: Mutex<u64>,
}

impl Crun {
    pub fn new(setup: Setup) -> anyhow::Result<Crun> {
        let pid = std::process::id();
        let shared = Arc::new(Shared {
            setup,
            state: state_dir(pid),
            cgroup_parent: cgroup_parent(pid),
            counter: Mutex::new(0),
        });
        let worker = Worker::new()?;
        for dead in dead_runs() {
            eprintln!("bench runtime: removing crun leftovers of dead bench process {dead}");
            remove_run(&worker, dead);
        }
        Ok(Crun { worker, shared })
    }

    /// `crun run` of `/bin/true` (own network namespace, loopback only): spawn → exit.
    pub fn true_exit(&self) -> anyhow::Result<Duration> {
        let shared = self.shared.clone();
        self.worker.run(move || {
            let run = shared.prepare(&Workload::True, false)?;
            let t0 = Instant::now();
            let mut child = run.spawn()?;
            let status = child.wait().context("wait for crun")?;
            let took = t0.elapsed();
            if !status.success() {
                bail!("crun run /bin/true {status}: {}", run.stderr());
            }
            run.finish();
            Ok(took)
        })
    }

    /// A created container (`crun create`, untimed, crun's counterpart of a parked one): only
    /// the spawn of `crun start` until it returns is timed. Deleted afterwards (untimed).
    pub fn created_start(&self) -> anyhow::Result<Duration> {
        let shared = self.shared.clone();
        self.worker.run(move || {
            let run = shared.prepare(&Workload::True, false)?;
            let bundle = run.bundle.to_string_lossy().into_owned();
            shared.crun(&["create", "--bundle", &bundle, &run.id])?;
            let t0 = Instant::now();
            let started = shared.crun(&["start", &run.id]);
            let took = t0.elapsed();
            let _ = shared.crun(&["delete", "-f", &run.id]);
            started.context("crun start")?;
            run.finish();
            Ok(took)
        })
    }

    /// `crun run` of an HTTP server in the host's network namespace: spawn → HTTP 200 on
    /// 127.0.0.1:`port`. The container is killed and deleted afterwards (not timed).
    pub fn http_ready(&self, server: Workload, port: u16) -> anyhow::Result<Duration> {
        let shared = self.shared.clone();
        self.worker.run(move || {
            let run = shared.prepare(&server, true)?;
            let t0 = Instant::now();
            let mut child = run.spawn()?;
            let ready =
                http::wait_for_200(([127, 0, 0, 1], port).into(), t0 + Duration::from_secs(10));
            let took = ready.map(|at| at - t0);
            if shared.crun(&["kill", &run.id, "KILL"]).is_err() {
                // Not killable through crun (e.g. not created yet): end `crun run` itself.
                let _ = child.kill();
            }
            let _ = child.wait();
            let _ = shared.crun(&["delete", "-f", &run.id]);
            let took = took.with_context(|| format!("crun {server}: {}", run.stderr()))?;
            run.finish();
            Ok(took)
        })
    }
}

impl Drop for Crun {
    fn drop(&mut self) {
        remove_run(&self.worker, std::process::id());
        self.worker.stop();
    }
}

/// crun's state directory for the bench process `pid`.
fn state_dir(pid: u32) -> PathBuf {
    PathBuf::from(format!("/run/hako-bench-crun-{pid}"))
}

/// The parent cgroup (in every hierarchy) of the bench process `pid`'s crun containers.
fn cgroup_parent(pid: u32) -> String {
    format!("hakocrun{pid}")
}

/// Deletes the crun containers, state directory and cgroups of the bench process `pid`.
fn remove_run(worker: &Worker, pid: u32) {
    let state = state_dir(pid);
    let root = state.clone();
    // crun needs the private mount namespace to find its cgroups.
    worker.run(move || {
        let out = Command::new("crun")
            .arg("--root")
            .arg(&root)
            .args(["list", "-q"])
            .stderr(Stdio::null())
            .output();
        if let Ok(out) = out {
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = Command::new("crun")
                    .arg("--root")
                    .arg(&root)
                    .args(["delete", "-f", id])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    });
    remove_cgroups(&cgroup_parent(pid));
    let _ = std::fs::remove_dir_all(&state);
}

/// Bench processes that left crun state or cgroups behind and are gone.
fn dead_runs() -> Vec<u32> {
    let mut pids = Vec::new();
    let mut scan = |dir: &str, prefix: &str| {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if let Some(pid) = e
                .file_name()
                .to_str()
                .and_then(|n| n.strip_prefix(prefix))
                .and_then(|p| p.parse::<u32>().ok())
                && !Path::new(&format!("/proc/{pid}")).exists()
                && !pids.contains(&pid)
            {
                pids.push(pid);
            }
        }
    };
    scan("/run", "hako-bench-crun-");
    for h in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        scan(&h.path().to_string_lossy(), "hakocrun");
    }
    pids
}

/// One prepared crun run: its bundle and stderr file.
struct Run {
    id: String,
    bundle: PathBuf,
    stderr: PathBuf,
    state: PathBuf,
}

impl Run {
    fn spawn(&self) -> anyhow::Result<Child> {
        let err = std::fs::File::create(&self.stderr)
            .with_context(|| format!("create {}", self.stderr.display()))?;
        Command::new("crun")
            .arg("--root")
            .arg(&self.state)
            .arg("run")
            .arg("--bundle")
            .arg(&self.bundle)
            .arg(&self.id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .context("cannot run crun: install it (apt-get install crun)")
    }

    fn stderr(&self) -> String {
        let s = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        format!("crun said: {:?}", s.trim())
    }

    /// Removes the bundle after a successful run.
    fn finish(self) {
        let _ = std::fs::remove_dir_all(&self.bundle);
        let _ = std::fs::remove_file(&self.stderr);
    }
}

impl Shared {
    /// Writes a fresh bundle (untimed) for one run.
    fn prepare(&self, workload: &Workload, host_net: bool) -> anyhow::Result<Run> {
        let n = {
            let mut c = self.counter.lock().expect("counter lock");
            *c += 1;
            *c
        };
        let id = format!("hakob{}-{n}", std::process::id());
        let bundle = self.setup.work.join(format!("bundle-{n}"));
        std::fs::create_dir_all(&bundle).with_context(|| format!("create {}", bundle.display()))?;
        let cfg = config(
            &self.setup,
            &workload.argv(),
            &format!("/{}/{id}", self.cgroup_parent),
            host_net,
        );
        std::fs::write(bundle.join("config.json"), serde_json::to_vec_pretty(&cfg)?)
            .context("write config.json")?;
        Ok(Run {
            stderr: self.setup.work.join(format!("crun-{n}.err")),
            id,
            bundle,
            state: self.state.clone(),
        })
    }

    /// Runs `crun --root STATE ARGS…` to its end; its stderr goes into the error. stderr
    /// goes through a file, not a pipe: after `crun create` the container's init holds
    /// crun's stdio open until it execs, so reading a pipe to its end would never return.
    fn crun(&self, args: &[&str]) -> anyhow::Result<()> {
        let err_path = self.setup.work.join("crun-cmd.err");
        let err = std::fs::File::create(&err_path)
            .with_context(|| format!("create {}", err_path.display()))?;
        let status = Command::new("crun")
            .arg("--root")
            .arg(&self.state)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .status()?;
        if !status.success() {
            let said = std::fs::read_to_string(&err_path).unwrap_or_default();
            bail!("crun {} {status}: {}", args.join(" "), said.trim());
        }
        Ok(())
    }
}

/// The OCI config.json of one crun container, matching what hako gives its containers.
pub fn config(setup: &Setup, argv: &[String], cgroups_path: &str, host_net: bool) -> Value {
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "nodev", "noexec"]}),
    ];
    for (host, inner) in &setup.binds {
        mounts.push(json!({"destination": inner, "type": "bind", "source": host,
                           "options": ["rbind", "ro", "nosuid", "nodev"]}));
    }
    mounts.push(
        json!({"destination": "/app", "type": "bind", "source": setup.app,
                       "options": ["rbind", "ro", "nosuid", "nodev"]}),
    );
    mounts.push(
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                       "options": ["nosuid", "noexec", "mode=755", "size=64k"]}),
    );
    mounts.push(json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                       "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}));
    mounts.push(
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                       "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
    );
    for (dir, mode) in [("/tmp", "1777"), ("/run", "0755")] {
        mounts.push(
            json!({"destination": dir, "type": "tmpfs", "source": "tmpfs",
                           "options": ["nosuid", "nodev", format!("mode={mode}")]}),
        );
    }
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if !host_net {
        namespaces.push(json!({"type": "network"}));
    }
    let mut resources = serde_json::Map::new();
    if let Some(m) = setup.limits.memory_max {
        resources.insert("memory".into(), json!({"limit": m}));
    }
    if let Some(c) = setup.limits.cpu_cores {
        let period = 100_000u64;
        resources.insert(
            "cpu".into(),
            json!({"quota": (c * period as f64).round() as i64, "period": period}),
        );
    }
    if let Some(p) = setup.limits.pids_max {
        resources.insert("pids".into(), json!({"limit": p}));
    }
    json!({
        "ociVersion": "1.0.0",
        "process": {
            "terminal": false,
            "user": {"uid": 65534, "gid": 65534},
            "args": argv,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "HOME=/nonexistent", "HOSTNAME=hako"],
            "cwd": "/",
            "capabilities": {"bounding": CAPS, "effective": CAPS, "permitted": CAPS},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": setup.nofile, "soft": setup.nofile}],
            "noNewPrivileges": true
        },
        "root": {"path": setup.rootfs, "readonly": false},
        "hostname": "hako",
        "mounts": mounts,
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": resources,
            "namespaces": namespaces,
            "readonlyPaths": PROC_READ_ONLY.iter().map(|p| format!("/proc/{p}")).collect::<Vec<_>>()
        }
    })
}

/// Removes the crun containers' parent cgroup (and any child left) in every hierarchy.
fn remove_cgroups(parent: &str) {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for h in hierarchies.flatten() {
        let dir = h.path().join(parent);
        if let Ok(children) = std::fs::read_dir(&dir) {
            for c in children.flatten() {
                if c.path().is_dir() {
                    let _ = std::fs::remove_dir(c.path());
                }
            }
        }
        let _ = std::fs::remove_dir(&dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> Setup {
        Setup {
            rootfs: "/images/skel".into(),
            binds: vec![("/usr".into(), "/usr".into())],
            app: "/srv/app".into(),
            limits: Limits {
                memory_max: Some(128 << 20),
                cpu_cores: Some(0.5),
                pids_max: Some(64),
            },
            nofile: 1024,
            work: "/tmp".into(),
        }
    }

    #[test]
    fn config_matches_hakos_container() {
        let argv = vec!["/bin/true".to_string()];
        let c = config(&setup(), &argv, "/hakocrun1/x", false);
        assert_eq!(c["root"]["path"], "/images/skel");
        assert_eq!(c["process"]["args"][0], "/bin/true");
        assert_eq!(c["process"]["user"]["uid"], 65534);
        assert_eq!(c["linux"]["cgroupsPath"], "/hakocrun1/x");
        assert_eq!(c["linux"]["resources"]["memory"]["limit"], 128 << 20);
        assert_eq!(c["linux"]["resources"]["cpu"]["quota"], 50_000);
        assert_eq!(c["linux"]["resources"]["pids"]["limit"], 64);
        assert_eq!(c["process"]["rlimits"][0]["hard"], 1024);
        let dests: Vec<&str> = c["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        for d in ["/proc", "/usr", "/app", "/dev", "/dev/pts", "/tmp", "/run"] {
            assert!(dests.contains(&d), "{d} missing from {dests:?}");
        }
        let ns = c["linux"]["namespaces"].as_array().unwrap();
        assert!(ns.iter().any(|n| n["type"] == "network"));
    }

    #[test]
    fn host_network_has_no_network_namespace() {
        let c = config(&setup(), &["httpd".to_string()], "/p/x", true);
        let ns = c["linux"]["namespaces"].as_array().unwrap();
        assert_eq!(ns.len(), 4);
        assert!(!ns.iter().any(|n| n["type"] == "network"));
    }

    #[test]
    fn leftovers_of_dead_bench_processes_are_removed() {
        assert!(rustix::process::geteuid().is_root(), "run as root");
        // A pid that surely is dead now: a child we reaped.
        let mut child = Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let state = state_dir(dead);
        std::fs::create_dir_all(&state).unwrap();
        let cg = Path::new("/sys/fs/cgroup/pids").join(cgroup_parent(dead));
        let have_cgroup = std::fs::create_dir(&cg).is_ok();
        let found = dead_runs();
        assert!(found.contains(&dead), "{found:?}");
        assert!(!found.contains(&std::process::id()));
        let mut w = Worker::new().unwrap();
        remove_run(&w, dead);
        w.stop();
        assert!(!state.exists());
        if have_cgroup {
            assert!(!cg.exists());
        }
    }
}
