//! Shared set-up for the `hako` binary's integration tests, on top of `hako-testkit`: a temp
//! data dir with the CLI pointed at it, a `hako serve` of this package's binary, a busybox root
//! filesystem made on the spot, and leftover checks.
// Each test binary uses a part of this module.
#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub use hako_testkit::http::get;
pub use hako_testkit::{Names, Outcome, Serve, leftovers, require_root, wait_until};

/// This package's `hako` binary.
pub const HAKO: &str = env!("CARGO_BIN_EXE_hako");

/// A `hako serve` of this package's binary on the data dir `data` (loopback, free ports, a
/// unique prefix and subnet); stopped with SIGTERM when dropped.
#[track_caller]
pub fn serve(data: &Path) -> Serve {
    Serve::builder(HAKO)
        .data_dir(data)
        .start()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs the CLI on `data` against the API at `api`: (exit code, stdout + stderr).
pub fn hako(data: &Path, api: impl std::fmt::Display, args: &[&str]) -> (i32, String) {
    let out = Outcome::from(
        hako_testkit::hako_command(Path::new(HAKO), data)
            .args(args)
            .env("HAKO_API", format!("http://{api}"))
            .output()
            .unwrap(),
    );
    (out.code, out.text())
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

    /// `hako --data-dir <tmp>/data ARGS…` with stdin closed and the caller's hako settings
    /// removed.
    pub fn hako(&self, args: &[&str]) -> Command {
        let mut cmd = hako_testkit::hako_command(Path::new(HAKO), &self.data_dir());
        cmd.args(args);
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

/// Asserts that a `hako -v run` made a runtime and left nothing of it behind.
pub fn assert_clean(stderr: &str) {
    let prefix = logged_prefix(stderr).unwrap_or_else(|| panic!("no prefix logged: {stderr}"));
    let left = leftovers(&prefix);
    assert!(left.is_empty(), "left behind: {left:?}\n{stderr}");
}
