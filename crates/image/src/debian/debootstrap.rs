//! Running debootstrap and trimming its result; reading the host's defaults.
//!
//! debootstrap runs under `unshare --mount --propagation private`, so the
//! /proc, /sys and /dev mounts it makes inside the target vanish with it even
//! when it fails. Its output goes to `debootstrap.log` in the build dir; on
//! failure the error carries the last lines. Afterwards `dev/` is emptied (hako
//! mounts its own /dev) and apt's package lists and archives are deleted.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use super::{DebianError, Resolved};
use crate::store::{ImageError, io_err};

/// Lines of the log quoted in a failure.
const TAIL_LINES: usize = 30;

/// Runs debootstrap into `<build_dir>/rootfs`, trims the result and returns
/// its size in bytes.
pub(super) fn build(r: &Resolved, program: &Path, build_dir: &Path) -> Result<u64, ImageError> {
    let program = find_program(program).ok_or_else(|| DebianError::Spawn {
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} not found", program.display()),
        ),
    })?;
    let rootfs = build_dir.join("rootfs");
    let log_path = build_dir.join("debootstrap.log");
    let log = std::fs::File::create(&log_path).map_err(io_err("cannot create", &log_path))?;
    let log2 = log.try_clone().map_err(io_err("cannot open", &log_path))?;
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "--"])
        .arg(&program)
        .arg(format!("--variant={}", r.variant))
        .arg(format!("--arch={}", r.arch));
    if !r.packages.is_empty() {
        cmd.arg(format!("--include={}", r.packages.join(",")));
    }
    cmd.arg(&r.suite)
        .arg(&rootfs)
        .arg(&r.mirror)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    tracing::info!(suite = %r.suite, packages = ?r.packages, "running debootstrap");
    let status = cmd
        .status()
        .map_err(|source| DebianError::Spawn { source })?;
    if !status.success() {
        return Err(DebianError::Failed {
            status: status.to_string(),
            tail: tail(&log_path),
        }
        .into());
    }
    trim(&rootfs)?;
    crate::usage::disk_usage(&rootfs).map_err(io_err("cannot measure", &rootfs))
}

/// `program` itself if it contains a `/`, else the first match in `PATH`,
/// then `/usr/sbin` and `/sbin` (debootstrap lives there; users' `PATH` may lack them).
fn find_program(program: &Path) -> Option<std::path::PathBuf> {
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// The last [`TAIL_LINES`] lines of the log (or why it can't be read).
fn tail(path: &Path) -> String {
    let Ok(file) = std::fs::File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let mut last = VecDeque::with_capacity(TAIL_LINES);
    for line in BufReader::new(file).lines().map_while(Result::ok) {
        if last.len() == TAIL_LINES {
            last.pop_front();
        }
        last.push_back(line);
    }
    Vec::from(last).join("\n")
}

/// Empties `dev/` and deletes apt's downloaded lists and packages.
pub(super) fn trim(rootfs: &Path) -> Result<(), ImageError> {
    empty_dir(&rootfs.join("dev"), |_| true)?;
    empty_dir(&rootfs.join("var/lib/apt/lists"), |name| {
        name != "partial" && name != "lock"
    })?;
    empty_dir(&rootfs.join("var/cache/apt"), |name| name.ends_with(".bin"))?;
    empty_dir(&rootfs.join("var/cache/apt/archives"), |name| {
        name.ends_with(".deb")
    })?;
    Ok(())
}

/// Deletes the entries of `dir` whose names pass `doomed` (a missing dir is fine).
fn empty_dir(dir: &Path, doomed: impl Fn(&str) -> bool) -> Result<(), ImageError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("cannot read", dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err("cannot read", dir))?;
        if !doomed(&entry.file_name().to_string_lossy()) {
            continue;
        }
        let path = entry.path();
        let ft = entry.file_type().map_err(io_err("cannot stat", &path))?;
        if ft.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        }
        .map_err(io_err("cannot delete", &path))?;
    }
    Ok(())
}

/// `VERSION_CODENAME` from /etc/os-release.
pub(super) fn host_suite() -> Option<String> {
    os_release_codename(&std::fs::read_to_string("/etc/os-release").ok()?)
}

fn os_release_codename(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_owned())
        .find(|v| !v.is_empty())
}

/// The first Debian (not security) mirror in the host's apt sources.
pub(super) fn host_mirror() -> Option<String> {
    let mut texts = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut paths: Vec<_> = dir.filter_map(Result::ok).map(|e| e.path()).collect();
        paths.sort();
        texts.extend(
            paths
                .iter()
                .filter(|p| p.extension().is_some_and(|e| e == "sources" || e == "list"))
                .filter_map(|p| std::fs::read_to_string(p).ok()),
        );
    }
    texts.extend(std::fs::read_to_string("/etc/apt/sources.list").ok());
    texts.iter().find_map(|t| mirror_in(t))
}

fn mirror_in(text: &str) -> Option<String> {
    let is_debian = |u: &str| {
        let u = u.trim_end_matches('/');
        (u.starts_with("http://") || u.starts_with("https://")) && u.ends_with("/debian")
    };
    for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
        let candidates: Vec<&str> = if let Some(uris) = line.strip_prefix("URIs:") {
            uris.split_whitespace().collect()
        } else if line.starts_with("deb ") {
            line.split_whitespace()
                .skip(1)
                .filter(|w| !w.starts_with('['))
                .take(1)
                .collect()
        } else {
            continue;
        };
        if let Some(u) = candidates.into_iter().find(|u| is_debian(u)) {
            return Some(u.trim_end_matches('/').to_owned());
        }
    }
    None
}

/// `dpkg --print-architecture`, else derived from the build target.
pub(super) fn host_arch() -> String {
    Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            match std::env::consts::ARCH {
                "x86_64" => "amd64",
                "aarch64" => "arm64",
                "x86" => "i386",
                "powerpc64" => "ppc64el",
                other => other,
            }
            .to_owned()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_codename_and_mirrors() {
        let osr = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_CODENAME=bookworm\n";
        assert_eq!(os_release_codename(osr).as_deref(), Some("bookworm"));
        assert_eq!(os_release_codename("ID=debian\n"), None);
        let deb822 = "Types: deb\nURIs: http://deb.debian.org/debian-security\n\nTypes: deb\n\
                      # comment\nURIs: http://mirror.example/debian/\nSuites: bookworm\n";
        assert_eq!(
            mirror_in(deb822).as_deref(),
            Some("http://mirror.example/debian")
        );
        let list =
            "# deb http://old/debian x\ndeb [arch=amd64] https://m.example/debian bookworm main\n";
        assert_eq!(mirror_in(list).as_deref(), Some("https://m.example/debian"));
        assert_eq!(
            mirror_in("deb https://packages.cloud.google.com/apt x main"),
            None
        );
    }

    #[test]
    fn trim_empties_dev_and_apt_caches_only() {
        let tmp = tempfile::Builder::new()
            .prefix("hako-trim-")
            .tempdir()
            .unwrap();
        let r = tmp.path();
        for d in [
            "dev/pts",
            "var/lib/apt/lists/partial",
            "var/cache/apt/archives/partial",
            "etc",
        ] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::os::unix::fs::symlink("/proc/self/fd", r.join("dev/fd")).unwrap();
        for f in [
            "var/lib/apt/lists/deb.debian.org_dists_bookworm_InRelease",
            "var/lib/apt/lists/lock",
            "var/cache/apt/pkgcache.bin",
            "var/cache/apt/archives/curl_1.deb",
            "var/cache/apt/archives/lock",
            "etc/passwd",
        ] {
            std::fs::write(r.join(f), b"x").unwrap();
        }
        trim(r).unwrap();
        assert_eq!(std::fs::read_dir(r.join("dev")).unwrap().count(), 0);
        let lists: Vec<_> = std::fs::read_dir(r.join("var/lib/apt/lists"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(lists, ["lock", "partial"]);
        assert!(!r.join("var/cache/apt/pkgcache.bin").exists());
        assert!(!r.join("var/cache/apt/archives/curl_1.deb").exists());
        assert!(r.join("var/cache/apt/archives/lock").exists());
        assert!(r.join("etc/passwd").exists());
    }

    #[test]
    fn failure_tail_keeps_the_last_lines() {
        let tmp = tempfile::Builder::new()
            .prefix("hako-tail-")
            .tempdir()
            .unwrap();
        let log = tmp.path().join("log");
        let text: String = (1..=100).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&log, text).unwrap();
        let t = tail(&log);
        assert!(t.starts_with("line 71\n"), "{t}");
        assert!(t.ends_with("line 100"), "{t}");
    }
}
