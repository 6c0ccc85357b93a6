//! Shared set-up for the runtime's integration tests: a runtime with a unique prefix, a
//! busybox image made on the spot, and helpers to run a container to its end.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hako_runtime::{
    Container, ContainerSpec, ExitStatus, LogSpec, RootfsSpec, Runtime, RuntimeConfig,
};

/// Fails loudly (never passes silently) when not root.
pub fn require_root() {
    assert!(
        hako_runtime::is_root(),
        "these tests make real namespaces, mounts and cgroups: run them as root"
    );
}

/// A runtime under a temp state root; shut down (everything removed) on drop.
pub struct TestRuntime {
    pub rt: Arc<Runtime>,
    pub tmp: tempfile::TempDir,
    pub image: RootfsSpec,
}

impl TestRuntime {
    pub fn new() -> TestRuntime {
        TestRuntime::with(RuntimeConfig::unique('t', "/run/hako-test"))
    }

    /// A runtime with `config` (e.g. NAT on, as `hako serve` and `hako run` have it).
    pub fn with(config: RuntimeConfig) -> TestRuntime {
        require_root();
        let tmp = tempfile::Builder::new()
            .prefix("hako-rt-test")
            .tempdir()
            .unwrap();
        let rt = Runtime::new(config).unwrap();
        let image = busybox_image(&tmp.path().join("image"));
        TestRuntime { rt, tmp, image }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// A spec for `busybox sh -c SCRIPT` with output to a log file.
    pub fn sh(&self, script: &str) -> ContainerSpec {
        let mut spec = ContainerSpec::new(self.image.clone(), "/bin/sh");
        spec.args = vec!["-c".into(), script.into()];
        spec.log = LogSpec::File {
            path: self.path(&format!("log-{}", unique())),
            max_bytes: 1 << 20,
        };
        spec
    }

    /// Runs a container to its end; returns its status and its output.
    pub async fn run(&self, spec: &ContainerSpec) -> (ExitStatus, String) {
        let c = self.rt.run(spec).unwrap();
        let status = c.wait().await.unwrap();
        c.logs_flushed().await;
        let out = std::fs::read_to_string(c.log_path().unwrap()).unwrap_or_default();
        c.remove().unwrap();
        (status, out)
    }

    /// Kernel objects of this runtime still present: cgroup dirs, links, mounts, state dirs.
    pub fn leftovers(&self) -> Vec<String> {
        leftovers(self.rt.config())
    }
}

/// Kernel objects of the runtime configured by `config` still present: cgroup dirs, links
/// (in the calling thread's network namespace), mounts, state dirs.
pub fn leftovers(config: &RuntimeConfig) -> Vec<String> {
    let prefix = &config.prefix;
    let mut found = Vec::new();
    for ctrl in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let dir = ctrl.path().join(prefix);
        if let Ok(children) = std::fs::read_dir(&dir) {
            for c in children.flatten() {
                if c.path().is_dir() {
                    found.push(format!("cgroup {}", c.path().display()));
                }
            }
        }
    }
    let links = std::process::Command::new("ip")
        .args(["-o", "link"])
        .output()
        .unwrap();
    for l in String::from_utf8_lossy(&links.stdout).lines() {
        if l.contains(&format!("{prefix}v")) {
            found.push(format!("link {l}"));
        }
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for l in mountinfo.lines() {
        if l.contains(prefix.as_str()) {
            found.push(format!("mount {l}"));
        }
    }
    if let Ok(entries) = std::fs::read_dir(config.state_dir()) {
        for e in entries.flatten() {
            found.push(format!("state {}", e.path().display()));
        }
    }
    found
}

impl Drop for TestRuntime {
    fn drop(&mut self) {
        self.rt.shutdown();
    }
}

pub fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A one-layer image: static busybox with its applets as symlinks, passwd and group.
pub fn busybox_image(dir: &Path) -> RootfsSpec {
    let busybox = ["/usr/bin/busybox", "/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox is installed (apt-get install busybox-static)");
    for d in ["bin", "etc", "tmp", "proc", "dev", "app", "data", "usr"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy(busybox, dir.join("bin/busybox")).unwrap();
    let list = std::process::Command::new(busybox)
        .arg("--list")
        .output()
        .unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet));
        }
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www:/var/www:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("etc/group"),
        "root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\n",
    )
    .unwrap();
    RootfsSpec::Layers(vec![dir.to_path_buf()])
}

/// A container in the background, removed by the caller.
pub fn start(rt: &TestRuntime, spec: &ContainerSpec) -> Container {
    rt.rt.run(spec).unwrap()
}
