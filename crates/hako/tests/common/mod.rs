//! Shared set-up for the `hako` binary's integration tests: a temp data dir, a busybox
//! root filesystem made on the spot, running the real binary, and leftover checks.
#![allow(dead_code)]

pub mod daemon;
pub mod serve;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Fails loudly (never passes silently) when not root.
pub fn require_root() {
    let uid = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("Uid:")
                .map(|r| r.split_whitespace().next().unwrap().to_string())
        })
        .unwrap();
    assert_eq!(
        uid, "0",
        "these tests run real containers (namespaces, mounts, cgroups): run them as root"
    );
}

/// A temp dir holding a data dir and whatever a test makes; removed on drop.
pub struct Env {
    pub tmp: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        require_root();
        let tmp = tempfile::Builder::new()
            .prefix("hako-cli-test")
            .tempdir()
            .unwrap();
        Env { tmp }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.path("data")
    }

    /// `hako --data-dir <tmp>/data ARGS…` with stdin closed and output captured.
    pub fn hako(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hako"));
        cmd.arg("--data-dir")
            .arg(self.data_dir())
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("HAKO_DATA_DIR")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `hako ARGS…` to its end.
    pub fn run(&self, args: &[&str]) -> Outcome {
        Outcome::from(self.hako(args).output().unwrap())
    }

    /// The host image `base` and a static site in `<tmp>/site` whose index.html is `body`;
    /// returns the site's directory.
    pub fn host_image_and_site(&self, body: &str) -> PathBuf {
        let site = self.path("site");
        std::fs::create_dir_all(&site).unwrap();
        std::fs::write(site.join("index.html"), body).unwrap();
        let out = self.run(&["image", "host", "base"]);
        assert_eq!(out.code, 0, "{out:?}");
        site
    }

    /// A busybox root filesystem in `<tmp>/<name>`, imported as image `name`.
    pub fn busybox_image(&self, name: &str) -> PathBuf {
        let dir = self.path(name);
        busybox_rootfs(&dir);
        let out = self.run(&["image", "import", name, dir.to_str().unwrap()]);
        assert_eq!(out.code, 0, "{out:?}");
        dir
    }
}

/// Polls `ok` every 20 ms until it holds; fails naming `what` after `limit`.
pub fn wait_until(what: &str, limit: std::time::Duration, mut ok: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// What a finished `hako` process left.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Outcome {
    fn from(o: Output) -> Outcome {
        Outcome {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// A root filesystem with static busybox, its applets as symlinks, passwd and group.
pub fn busybox_rootfs(dir: &Path) {
    let busybox = ["/usr/bin/busybox", "/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox is installed (apt-get install busybox-static)");
    for d in ["bin", "etc", "tmp", "proc", "dev", "app", "data"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy(busybox, dir.join("bin/busybox")).unwrap();
    let list = Command::new(busybox).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).unwrap();
        }
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
}

/// The runtime prefix `hako -v run` logged (`prefix=hakor…`), if it made a runtime.
pub fn logged_prefix(stderr: &str) -> Option<String> {
    let at = stderr.find("prefix=hakor")? + "prefix=".len();
    Some(
        stderr[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect(),
    )
}

/// Everything of runtime `prefix` still on the host: cgroup dirs, state, lock, veths.
pub fn leftovers(prefix: &str) -> Vec<String> {
    // A test's own prefix (hakor…, hakol…), never the default "hako".
    assert!(prefix.starts_with("hako") && prefix.len() > 5, "{prefix:?}");
    let mut found = Vec::new();
    for ctrl in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let dir = ctrl.path().join(prefix);
        if dir.exists() {
            found.push(format!("cgroup {}", dir.display()));
        }
    }
    for p in [
        format!("/run/hako/{prefix}"),
        format!("/run/hako/{prefix}.lock"),
    ] {
        if Path::new(&p).exists() {
            found.push(format!("state {p}"));
        }
    }
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    for l in String::from_utf8_lossy(&links.stdout).lines() {
        if l.contains(prefix) {
            found.push(format!("link {l}"));
        }
    }
    found
}

/// Asserts that a `hako -v run` made a runtime and left nothing of it behind.
pub fn assert_clean(stderr: &str) {
    let prefix = logged_prefix(stderr).unwrap_or_else(|| panic!("no prefix logged: {stderr}"));
    let left = leftovers(&prefix);
    assert!(left.is_empty(), "left behind: {left:?}\n{stderr}");
}
