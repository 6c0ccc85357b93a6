//! Host set-up shared by xtask commands: installs the Debian packages a command needs.
//!
//! [`ensure_packages`] checks each `(command, package)` pair (the command found in `PATH`, or
//! the package installed per `dpkg-query`) and runs `apt-get update` (once per process) and
//! `apt-get install -y --no-install-recommends` only for what is missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};

/// Set once `apt-get update` ran in this process.
static UPDATED: AtomicBool = AtomicBool::new(false);

/// Makes sure every `(command, package)` is present, installing the missing packages with
/// apt. Example: `ensure_packages(&[("crun", "crun"), ("busybox", "busybox-static")])`.
pub fn ensure_packages(wanted: &[(&str, &str)]) -> anyhow::Result<()> {
    let missing = missing_packages(wanted, |cmd, pkg| {
        find_in_path(cmd).is_some() || dpkg_installed(pkg)
    });
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    if !UPDATED.swap(true, Ordering::SeqCst) {
        apt(&["update", "-q"])?;
    }
    let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
    args.extend(missing.iter().map(String::as_str));
    apt(&args)?;
    let still = missing_packages(wanted, |cmd, pkg| {
        find_in_path(cmd).is_some() || dpkg_installed(pkg)
    });
    if !still.is_empty() {
        bail!(
            "apt-get installed {} but these are still missing: {}; install them by hand",
            missing.join(" "),
            still.join(" ")
        );
    }
    Ok(())
}

/// The packages (deduplicated, in order) whose pair `present(command, package)` rejects.
pub fn missing_packages(
    wanted: &[(&str, &str)],
    present: impl Fn(&str, &str) -> bool,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (cmd, pkg) in wanted {
        if !present(cmd, pkg) && !out.iter().any(|p| p == pkg) {
            out.push((*pkg).to_string());
        }
    }
    out
}

/// The first executable file named `cmd` in `PATH` (or `cmd` itself when it holds a `/`).
pub fn find_in_path(cmd: &str) -> Option<PathBuf> {
    if cmd.contains('/') {
        return is_executable(Path::new(cmd)).then(|| PathBuf::from(cmd));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(cmd))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn dpkg_installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn apt(args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("cannot run apt-get: is this a Debian-based machine?")?;
    if !status.success() {
        bail!(
            "`apt-get {}` failed ({status}); run it by hand (as root) to see why",
            args.join(" ")
        );
    }
    Ok(())
}

/// Installs the pinned CRIU (from Debian forky, without a chroot; see `hako-criu`) into
/// `HAKO_CRIU_DIR` or the default data dir's `criu` unless it is there. Tests and demo use
/// that one installation.
pub fn ensure_criu() -> anyhow::Result<()> {
    let dir = hako_criu::default_dir();
    let done = hako_criu::install(&dir).with_context(|| {
        format!(
            "cannot install CRIU into {}: instances would only start cold",
            dir.display()
        )
    })?;
    if !done.already {
        eprintln!(
            "xtask: installed CRIU {} into {} ({:.1} MiB in {:.1} s{})",
            hako_criu::VERSION,
            done.criu.root().display(),
            done.bytes as f64 / (1 << 20) as f64,
            done.seconds,
            if done.pinned {
                ""
            } else {
                "; some libraries not at their pinned versions"
            }
        );
    }
    Ok(())
}

/// Where the tests find `promtool` (see [`ensure_promtool`]): `target/tools/promtool`.
pub fn promtool_path() -> PathBuf {
    crate::workspace_root().join("target/tools/promtool")
}

/// Puts Prometheus's `promtool` (from Debian's `prometheus` package) at [`promtool_path`]
/// unless it is there: the package is downloaded with `apt-get download` and only `promtool`
/// is taken out of it (`dpkg-deb -x`), so no Prometheus server is installed or started.
pub fn ensure_promtool() -> anyhow::Result<()> {
    let target = promtool_path();
    let works = |p: &Path| {
        Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works(&target) {
        return Ok(());
    }
    eprintln!("xtask: fetching promtool from Debian's prometheus package");
    let tmp = tempfile::tempdir().context("cannot make a temp dir")?;
    let download = |tmp: &Path| {
        Command::new("apt-get")
            .args(["download", "-q", "prometheus"])
            .current_dir(tmp)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !download(tmp.path()) {
        if !UPDATED.swap(true, Ordering::SeqCst) {
            apt(&["update", "-q"])?;
        }
        if !download(tmp.path()) {
            bail!("`apt-get download prometheus` failed; run it by hand (as root) to see why");
        }
    }
    let deb = std::fs::read_dir(tmp.path())?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .context("apt-get download left no .deb")?;
    let root = tmp.path().join("root");
    let status = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&root)
        .status()
        .context("cannot run dpkg-deb")?;
    if !status.success() {
        bail!("dpkg-deb -x {} failed", deb.display());
    }
    std::fs::create_dir_all(target.parent().expect("target/tools"))?;
    std::fs::copy(root.join("usr/bin/promtool"), &target)
        .context("the prometheus package has no usr/bin/promtool")?;
    if !works(&target) {
        bail!("{} does not run", target.display());
    }
    Ok(())
}

/// Debian packages of the shared database service.
pub const MARIADB_PACKAGES: &[(&str, &str)] = &[
    ("mariadbd", "mariadb-server"),
    ("mariadb", "mariadb-client"),
];

/// Installs MariaDB if missing and makes sure the server answers on its socket, starting it
/// (`service mariadb start`, or its init script where there is no `service`) if needed.
pub fn ensure_mariadb() -> anyhow::Result<()> {
    ensure_packages(MARIADB_PACKAGES)?;
    let answers = || {
        Command::new("mariadb")
            .args(["--connect-timeout=2", "-e", "SELECT 1"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if answers() {
        return Ok(());
    }
    eprintln!("xtask: starting MariaDB");
    let started = Command::new("service")
        .args(["mariadb", "start"])
        .status()
        .is_ok_and(|s| s.success())
        || Command::new("/etc/init.d/mariadb")
            .arg("start")
            .status()
            .is_ok_and(|s| s.success());
    if !started {
        bail!("cannot start MariaDB: start it by hand (service mariadb start) and try again");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !answers() {
        if std::time::Instant::now() > deadline {
            bail!("MariaDB started but does not answer on /run/mysqld/mysqld.sock");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_missing_packages_are_listed_once() {
        let wanted = [
            ("crun", "crun"),
            ("busybox", "busybox-static"),
            ("php", "php-cli"),
            ("php8.2", "php-cli"),
        ];
        let missing = missing_packages(&wanted, |cmd, _| cmd == "crun");
        assert_eq!(missing, vec!["busybox-static", "php-cli"]);
        assert!(missing_packages(&wanted, |_, _| true).is_empty());
    }

    #[test]
    fn finds_commands_in_path() {
        let sh = find_in_path("sh").expect("every machine has sh");
        assert!(sh.is_absolute() && sh.ends_with("sh"));
        assert!(find_in_path("hako-no-such-command-xyz").is_none());
        assert_eq!(find_in_path("/bin/sh"), Some(PathBuf::from("/bin/sh")));
    }

    #[test]
    fn installed_packages_need_nothing() {
        // coreutils is essential on Debian: nothing to install, so apt never runs.
        ensure_packages(&[("ls", "coreutils")]).unwrap();
        assert!(dpkg_installed("coreutils"));
        assert!(!dpkg_installed("hako-no-such-package-xyz"));
    }
}
