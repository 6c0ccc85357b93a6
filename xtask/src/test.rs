//! `cargo xtask test`: installs what the tests need, then runs every test of the workspace
//! but the bench crate's (`hako-bench`: plots and benchmark code stay out of the test build;
//! `cargo xtask bench check` runs its tests).
//!
//! The tests make real containers, cgroups, bridges and nftables rules, start real etcd,
//! nginx-free HTTP servers and PHP, so they need root and these Debian packages.

use std::process::Command;

use anyhow::{Context, bail};

use crate::setup;

/// Commands (and the Debian packages that bring them) the test suite uses.
pub const TEST_PACKAGES: &[(&str, &str)] = &[
    ("busybox", "busybox-static"),
    ("php", "php-cli"),
    ("nft", "nftables"),
    ("ip", "iproute2"),
    ("unshare", "util-linux"),
    ("debootstrap", "debootstrap"),
    ("etcd", "etcd-server"),
    ("protoc", "protobuf-compiler"),
    ("python3", "python3"),
    ("curl", "curl"),
    ("tar", "tar"),
    ("nsenter", "util-linux"),
    // The dashboard's test drives a real headless browser.
    ("chromium", "chromium"),
    ("chromedriver", "chromium-driver"),
    // Let's Encrypt's ACME test server, for the end-to-end HTTPS test.
    ("pebble", "pebble"),
    // The Debian package's test checks its unit with systemd-analyze verify.
    ("systemd-analyze", "systemd"),
];

pub fn main(args: &[&str]) -> anyhow::Result<()> {
    require_root()?;
    setup::ensure_packages(TEST_PACKAGES)?;
    setup::ensure_mariadb()?;
    setup::ensure_criu()?;
    setup::ensure_promtool()?;
    ensure_nextest()?;
    // The Debian package's test (crates/hako/tests/package) makes the .deb with cargo-deb.
    crate::package::ensure_cargo_deb()?;
    let root = crate::workspace_root();
    run(Command::new("cargo")
        .current_dir(&root)
        .args(["fmt", "--all", "--", "--check"]))
    .context("formatting differs: run `cargo fmt --all`")?;
    let mut nextest = Command::new("cargo");
    nextest
        .current_dir(&root)
        .args(["nextest", "run", "--workspace", "--exclude", "hako-bench"])
        .arg("--no-fail-fast")
        .args(args);
    run(&mut nextest).context("tests failed")?;
    Ok(())
}

/// Fails with a clear message when not root (the tests make namespaces and cgroups).
pub fn require_root() -> anyhow::Result<()> {
    let out = Command::new("id")
        .arg("-u")
        .output()
        .context("cannot run id")?;
    if String::from_utf8_lossy(&out.stdout).trim() != "0" {
        bail!("hako makes real namespaces, mounts and cgroups: run this as root (e.g. with sudo)");
    }
    Ok(())
}

/// Installs cargo-nextest with cargo if it is missing.
pub fn ensure_nextest() -> anyhow::Result<()> {
    let ok = Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("xtask: installing cargo-nextest");
        run(Command::new("cargo").args(["install", "cargo-nextest", "--locked"]))?;
    }
    Ok(())
}

pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}
