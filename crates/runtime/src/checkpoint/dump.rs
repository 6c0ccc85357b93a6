//! Dumping a running container with CRIU.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use hako_criu::Criu;

use super::worker::Kdat;
use super::{CheckpointError, Manifest, NET_KEY, SCRATCH, fsstate, netns};
use crate::container::Container;
use crate::runtime::Runtime;

/// A finished dump.
#[derive(Debug, Clone)]
pub struct Checkpointed {
    pub manifest: Manifest,
    /// How long CRIU took to dump (the container was stopped meanwhile).
    pub dump_ms: f64,
}

impl Runtime {
    /// Dumps `container` (running, isolated network) into `dir` (empty or missing; made
    /// 0700) and ends it: its processes are killed once their state is on disk, and the
    /// caller removes it as usual. Blocking (tens of milliseconds plus the app's memory):
    /// call it in `spawn_blocking`.
    pub fn checkpoint(
        &self,
        criu: &Criu,
        container: &Container,
        dir: &Path,
    ) -> Result<Checkpointed, CheckpointError> {
        let pid = container.pid();
        if container.address().is_none() {
            return Err(CheckpointError::Unsupported(
                "only containers with their own network (isolated) can be checkpointed".into(),
            ));
        }
        std::fs::create_dir_all(dir).map_err(CheckpointError::io("create", dir))?;
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(CheckpointError::io("protect", dir))?;
        let net_ino = netns::inode(&format!("/proc/{pid}/ns/net")).map_err(CheckpointError::io(
            "inspect the network of",
            format!("/proc/{pid}"),
        ))?;
        let binds = external_binds(pid)?;
        let stdio = [0, 1, 2].map(|fd| stdio_key(pid, fd));
        let (uid, gid) = one_user(&container.pids()?)?;
        self.ensure_kdat(criu)?;

        let mut cmd = criu.command();
        cmd.arg("dump")
            .arg("-t")
            .arg(pid.to_string())
            .arg("-D")
            .arg(dir)
            .args(["-o", "dump.log", "-v4", "--leave-stopped"])
            .args([
                "--manage-cgroups=ignore",
                "--network-lock",
                "skip",
                "--tcp-close",
            ])
            .arg("--external")
            .arg(format!("net[{net_ino}]:{NET_KEY}"));
        for b in &binds {
            cmd.arg("--external").arg(format!("mnt[{b}]:{b}"));
        }
        for (inner, cookie) in SCRATCH {
            cmd.arg("--external").arg(format!("mnt[{inner}]:{cookie}"));
        }
        for key in stdio.iter().flatten() {
            if key.starts_with("file[") {
                cmd.arg("--external").arg(key);
            }
        }
        // CRIU reads every dumped process's resource limits with prlimit(2), which the
        // kernel allows to a caller whose *real* ids are the target's, or to one with
        // CAP_SYS_RESOURCE. Real ids of the app's user and effective ids of root let it
        // work without that capability (some hosts withhold it even from root).
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setresgid(gid, 0, 0) == -1 || libc::setresuid(uid, 0, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let t0 = Instant::now();
        let log = dir.join("dump.log");
        let out = self
            .criu_worker()?
            .run(Kdat::Use, move || cmd.output())
            .and_then(|r| r)
            .map_err(|source| hako_criu::CriuError::Run {
                path: criu.root().to_path_buf(),
                source,
            })?;
        let dump_ms = t0.elapsed().as_secs_f64() * 1000.0;
        if !out.status.success() {
            return Err(CheckpointError::Dump {
                reason: dump_reason(&log, &out),
                log,
            });
        }
        // The processes are stopped: carry their scratch content, then end them.
        let mut fs_bytes = 0;
        let fs = dir.join("fs");
        for (inner, cookie) in SCRATCH.iter().skip(1) {
            let from = PathBuf::from(format!("/proc/{pid}/root{inner}"));
            fs_bytes += fsstate::copy_tree(&from, &fs.join(cookie))
                .map_err(CheckpointError::io("copy", &from))?;
        }
        let _ = container.kill();
        let manifest = Manifest {
            criu: hako_criu::VERSION.to_string(),
            binds,
            stdio,
            image_bytes: crate::checkpoint::restore::dir_bytes(dir),
            fs_bytes,
        };
        let path = dir.join("manifest.json");
        let text = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
        std::fs::write(&path, text).map_err(CheckpointError::io("write", &path))?;
        Ok(Checkpointed { manifest, dump_ms })
    }

    /// Makes CRIU's kernel-facts cache once per boot (`criu check` as plain root), which
    /// also tells whether CRIU works on this host at all.
    pub fn criu_check(&self, criu: &Criu) -> Result<(), CheckpointError> {
        let mut cmd = criu.command();
        cmd.arg("check");
        let out = self
            .criu_worker()?
            .run(Kdat::Make, move || cmd.output())
            .and_then(|r| r)
            .map_err(|source| hako_criu::CriuError::Run {
                path: criu.root().to_path_buf(),
                source,
            })?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        if out.status.success() && text.contains("Looks good") {
            Ok(())
        } else {
            Err(hako_criu::CriuError::Broken(format!(
                "`criu check` says: {}",
                text.lines()
                    .filter(|l| !l.contains("RLIMIT_NOFILE") && !l.trim().is_empty())
                    .collect::<Vec<_>>()
                    .join(" / ")
            ))
            .into())
        }
    }

    fn ensure_kdat(&self, criu: &Criu) -> Result<(), CheckpointError> {
        if super::Worker::kdat_ready() {
            return Ok(());
        }
        self.criu_check(criu)
    }
}

/// The places in the container where host paths are bound (external to CRIU): every mount
/// but the overlay root, /proc (and its read-only sub-binds), devpts, and the scratch
/// tmpfs mounts hako carries itself.
fn external_binds(pid: i32) -> Result<Vec<String>, CheckpointError> {
    let path = format!("/proc/{pid}/mountinfo");
    let text = std::fs::read_to_string(&path).map_err(CheckpointError::io("read", &path))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = left.split(' ').collect();
        let fstype = right.split(' ').next().unwrap_or("");
        let Some(mountpoint) = fields.get(4) else {
            continue;
        };
        let mountpoint = unescape(mountpoint);
        let scratch = fstype == "tmpfs" && SCRATCH.iter().any(|(p, _)| *p == mountpoint);
        if mountpoint == "/" || fstype == "proc" || fstype == "devpts" || scratch {
            continue;
        }
        if fstype == "tmpfs" || fstype == "overlay" {
            return Err(CheckpointError::Unsupported(format!(
                "a {fstype} mount at {mountpoint} that hako did not make"
            )));
        }
        out.push(mountpoint);
    }
    Ok(out)
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let code: String = chars.by_ref().take(3).collect();
            if let Ok(n) = u8::from_str_radix(&code, 8) {
                out.push(n as char);
                continue;
            }
            out.push('\\');
            out.push_str(&code);
        } else {
            out.push(c);
        }
    }
    out
}

/// CRIU's name of the dumped process's descriptor `fd`: `pipe:[ino]` for a pipe,
/// `file[mnt_id:ino]` (hex) for a file on a host mount (hako's `/dev/null`).
fn stdio_key(pid: i32, fd: i32) -> Option<String> {
    let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
    let link = link.to_string_lossy();
    if link.starts_with("pipe:[") {
        return Some(link.into_owned());
    }
    let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    let mnt: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))?
        .trim()
        .parse()
        .ok()?;
    let ino = std::fs::metadata(format!("/proc/{pid}/fd/{fd}"))
        .ok()?
        .ino();
    Some(format!("file[{mnt:x}:{ino:x}]"))
}

/// The one user and group every process of the container runs as (real, effective and
/// saved alike).
fn one_user(pids: &[i32]) -> Result<(u32, u32), CheckpointError> {
    let mut found: Option<(u32, u32)> = None;
    for pid in pids {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue; // gone meanwhile
        };
        let ids = |field: &str| -> Option<Vec<u32>> {
            let l = status.lines().find_map(|l| l.strip_prefix(field))?;
            Some(
                l.split_whitespace()
                    .take(3)
                    .filter_map(|x| x.parse().ok())
                    .collect(),
            )
        };
        let (Some(u), Some(g)) = (ids("Uid:"), ids("Gid:")) else {
            continue;
        };
        let same = |v: &[u32]| v.len() == 3 && v.iter().all(|x| *x == v[0]);
        if !same(&u) || !same(&g) || found.is_some_and(|f| f != (u[0], g[0])) {
            return Err(CheckpointError::Unsupported(
                "its processes run as more than one user (hako checkpoints apps whose processes all run as one user)".into(),
            ));
        }
        found = Some((u[0], g[0]));
    }
    found.ok_or_else(|| CheckpointError::Unsupported("it has no processes left".into()))
}

fn dump_reason(log: &Path, out: &std::process::Output) -> String {
    let errors = hako_criu::log_errors(log, 3);
    if !errors.is_empty() {
        return errors;
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    format!("criu dump exited with {}: {}", out.status, stderr.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_paths_are_unescaped() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }

    #[test]
    fn one_user_of_no_process_is_refused() {
        assert!(matches!(
            one_user(&[]),
            Err(CheckpointError::Unsupported(_))
        ));
        // This test process runs as one user.
        let me = std::process::id() as i32;
        assert!(one_user(&[me]).is_ok());
    }
}
