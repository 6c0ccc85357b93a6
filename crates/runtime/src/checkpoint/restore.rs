//! Restoring a checkpoint into a new container.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use hako_cgroup::Cgroup;
use hako_criu::Criu;

use super::scratch::{EtcFiles, prepare_scratch};
use super::worker::Kdat;
use super::{CheckpointError, Manifest, NET_KEY, SCRATCH, netns};
use crate::container::{Container, Timings};
use crate::error::RuntimeError;
use crate::network::{Attachment, Network};
use crate::runtime::{Runtime, Slot};
use crate::spec::{ContainerSpec, LogSpec, NetworkMode, RootfsSpec};
use crate::{sys, user};

/// Descriptor numbers CRIU gets the new container's network namespace and stdio on.
const FD_NET: i32 = 200;
const FD_STDIN: i32 = 201;
const FD_STDOUT: i32 = 202;
const FD_STDERR: i32 = 203;

impl Runtime {
    /// Makes a new container from the checkpoint in `image` (made by
    /// [`Runtime::checkpoint`] of a container with the same kind of spec): new cgroup with
    /// `spec`'s limits, new network namespace and address, fresh scratch and overlay root
    /// over `spec`'s image layers, `spec`'s bind mounts, a new log. `instance` is written to
    /// [`INSTANCE_FILE`] inside it. Returns the running container (not parked). Blocking:
    /// call it in `spawn_blocking`.
    pub fn restore(
        self: &Arc<Self>,
        criu: &Criu,
        spec: &ContainerSpec,
        image: &Path,
        instance: &str,
    ) -> Result<Container, CheckpointError> {
        self.restore_with(criu, spec, image, instance, None)
    }

    /// Like [`Runtime::restore`], into a [`Slot`] of the shared pool: its cgroup (given
    /// `spec`'s limits) and its network namespace (on the bridge, addressed) are the restored
    /// container's, so the restore makes neither.
    pub fn restore_in(
        self: &Arc<Self>,
        criu: &Criu,
        spec: &ContainerSpec,
        image: &Path,
        instance: &str,
        slot: Slot,
    ) -> Result<Container, CheckpointError> {
        self.restore_with(criu, spec, image, instance, Some(slot))
    }

    fn restore_with(
        self: &Arc<Self>,
        criu: &Criu,
        spec: &ContainerSpec,
        image: &Path,
        instance: &str,
        slot: Option<Slot>,
    ) -> Result<Container, CheckpointError> {
        let t0 = Instant::now();
        spec.validate().map_err(RuntimeError::from)?;
        if spec.network != NetworkMode::Isolated {
            return Err(CheckpointError::Unsupported(
                "only containers with their own network (isolated) can be restored".into(),
            ));
        }
        let manifest = read_manifest(image)?;
        if manifest.criu != hako_criu::VERSION {
            return Err(CheckpointError::Mismatch(format!(
                "it was made by CRIU {}, this is {}",
                manifest.criu,
                hako_criu::VERSION
            )));
        }
        let binds = bind_sources(&manifest, spec)?;
        let creds = user::resolve(&spec.user, &spec.rootfs).map_err(RuntimeError::from)?;
        let (id, slot) = match slot {
            Some(s) => {
                let (id, parts) = s.take();
                (id, Some(parts))
            }
            None => (self.next_id(), None),
        };
        let dir = self.config.state_dir().join(&id);
        std::fs::create_dir(&dir).map_err(CheckpointError::io("create", &dir))?;
        let mut undo = Undo {
            dir: Some(dir.clone()),
            cgroup: None,
            net: None,
            pidfd: None,
        };
        let scratch = dir.join("s");
        std::fs::create_dir(&scratch).map_err(CheckpointError::io("create", &scratch))?;
        let (cgroup, _net, att, netns) = match slot {
            Some(p) => {
                undo.cgroup = Some(p.cgroup.clone());
                undo.net = Some((p.net.clone(), p.att.clone()));
                p.cgroup
                    .set_limits(&spec.limits)
                    .map_err(RuntimeError::from)?;
                (p.cgroup, p.net, p.att, p.netns)
            }
            None => {
                let cgroup: Arc<dyn Cgroup> = Arc::from(
                    self.cgroups
                        .create(&id, &spec.limits)
                        .map_err(RuntimeError::from)?,
                );
                undo.cgroup = Some(cgroup.clone());
                let net = self.network()?;
                let (att, cfg) = net.reserve().map_err(RuntimeError::from)?;
                undo.net = Some((net.clone(), att.clone()));
                let pending =
                    netns::create().map_err(RuntimeError::sys("make a network namespace"))?;
                net.attach(&att, pending.tid).map_err(RuntimeError::from)?;
                let netns = pending
                    .configure(Some(cfg))
                    .map_err(RuntimeError::sys("configure the network namespace"))?;
                net.wait_forwarding(&att);
                (cgroup, net, att, netns)
            }
        };

        // stdin: /dev/null; stdout and stderr: the new log.
        let null = |write: bool| -> Result<OwnedFd, CheckpointError> {
            let f = std::fs::OpenOptions::new()
                .read(!write)
                .write(write)
                .open("/dev/null")
                .map_err(CheckpointError::io("open", "/dev/null"))?;
            Ok(OwnedFd::from(f))
        };
        let (out_w, log_reader) = match &spec.log {
            LogSpec::File { .. } => {
                let (r, w) = sys::pipe().map_err(RuntimeError::sys("pipe"))?;
                sys::fchown(&w, creds.uid, creds.gid)
                    .map_err(RuntimeError::sys("chown the log pipe"))?;
                (w, Some(r))
            }
            LogSpec::Null => (null(true)?, None),
            LogSpec::Inherit => (
                sys_dup(std::io::stdout().as_raw_fd()).map_err(RuntimeError::sys("dup"))?,
                None,
            ),
        };
        let stdin = null(false)?;
        let procs: Vec<File> = cgroup
            .procs_files()
            .iter()
            .map(|p| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(p)
                    .map_err(CheckpointError::io("open", p))
            })
            .collect::<Result<_, _>>()?;

        let pidfile = dir.join("pid");
        let log = dir.join("restore.log");
        let mut cmd = criu.command();
        cmd.arg("restore")
            .arg("-D")
            .arg(image)
            .arg("-o")
            .arg(&log)
            .arg("--root")
            .arg(scratch.join("root"))
            .args(["--manage-cgroups=ignore", "--tcp-close"])
            .args(["--restore-detached", "--restore-sibling", "--pidfile"])
            .arg(&pidfile)
            .arg("--inherit-fd")
            .arg(format!("fd[{FD_NET}]:{NET_KEY}"));
        for (inner, source) in &binds {
            cmd.arg("--external")
                .arg(format!("mnt[{inner}]:{}", source.display()));
        }
        for (_, cookie) in SCRATCH {
            cmd.arg("--external")
                .arg(format!("mnt[{cookie}]:{}", scratch.join(cookie).display()));
        }
        let [k_in, k_out, k_err] = manifest.stdio.clone();
        if let Some(k) = &k_in {
            cmd.arg("--inherit-fd").arg(format!("fd[{FD_STDIN}]:{k}"));
        }
        if let Some(k) = &k_out {
            cmd.arg("--inherit-fd").arg(format!("fd[{FD_STDOUT}]:{k}"));
        }
        if let Some(k) = k_err.as_ref().filter(|k| Some(*k) != k_out.as_ref()) {
            cmd.arg("--inherit-fd").arg(format!("fd[{FD_STDERR}]:{k}"));
        }
        let raw = (
            netns.as_raw_fd(),
            stdin.as_raw_fd(),
            out_w.as_raw_fd(),
            procs.iter().map(|f| f.as_raw_fd()).collect::<Vec<_>>(),
        );
        // SAFETY: only async-signal-safe calls (dup2, write) on descriptors we own, between
        // fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let (net, stdin, out, procs) = (&raw.0, &raw.1, &raw.2, &raw.3);
                for (from, to) in [
                    (*net, FD_NET),
                    (*stdin, FD_STDIN),
                    (*out, FD_STDOUT),
                    (*out, FD_STDERR),
                ] {
                    if libc::dup2(from, to) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                // Join the container's cgroup: what CRIU forks is born there.
                for fd in procs {
                    if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }

        let layers: Vec<String> = spec
            .rootfs
            .layers()
            .iter()
            .rev()
            .map(|p| p.display().to_string())
            .collect();
        let files = EtcFiles {
            hosts: crate::runtime::hosts_file(&spec.hostname, Some(&att)),
            hostname: format!("{}\n", spec.hostname),
            resolv_conf: self.resolv_conf.clone(),
        };
        let (scratch2, image2, instance2, bytes, binds2) = (
            scratch.clone(),
            image.to_path_buf(),
            instance.to_string(),
            spec.scratch_bytes,
            binds.clone(),
        );
        self.ensure_kdat_for_restore(criu);
        let kdat = if super::Worker::kdat_ready() {
            Kdat::Use
        } else {
            Kdat::None
        };
        let t_criu = Instant::now();
        let out = self
            .criu_worker()?
            .run(
                kdat,
                move || -> Result<(std::process::Output, Instant), CheckpointError> {
                    prepare_scratch(
                        &scratch2, bytes, &image2, &instance2, &files, &layers, &binds2,
                    )?;
                    let t_prepared = Instant::now();
                    cmd.output()
                        .map(|o| (o, t_prepared))
                        .map_err(CheckpointError::io("run CRIU from", &scratch2))
                },
            )
            .map_err(RuntimeError::sys("run CRIU"))??;
        let (out, t_prepared) = out;
        let t_ran = Instant::now();
        drop((netns, stdin, procs));
        let criu_ms = t_criu.elapsed();
        if !out.status.success() {
            let errors = hako_criu::log_errors(&log, 3);
            let reason = if errors.is_empty() {
                format!(
                    "criu restore exited with {}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                )
            } else {
                errors
            };
            // Keep the log for the caller: it goes with the state dir otherwise.
            let kept = image.join(format!("restore-failed-{id}.log"));
            let _ = std::fs::copy(&log, &kept);
            return Err(CheckpointError::Restore { reason, log: kept });
        }
        // Where a restore's time goes: cgroup and network (none from a slot), the CRIU
        // thread's namespace and the new root, CRIU itself.
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        tracing::debug!(
            setup_ms = ms(t_criu - t0),
            scratch_ms = ms(t_prepared - t_criu),
            criu_ms = ms(t_ran - t_prepared),
            "restored"
        );
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .map_err(CheckpointError::io("read", &pidfile))?
            .trim()
            .parse()
            .map_err(|_| CheckpointError::Restore {
                reason: "CRIU wrote no pid".into(),
                log: log.clone(),
            })?;
        let pidfd = pidfd_open(pid).map_err(RuntimeError::sys("pidfd_open"))?;
        undo.pidfd = Some(pidfd);
        drop(out_w);
        let log_done = match (log_reader, &spec.log) {
            (Some(reader), LogSpec::File { path, max_bytes }) => {
                Some(crate::runtime::spawn_pump(reader, path.clone(), *max_bytes))
            }
            _ => None,
        };
        let pidfd = undo.pidfd.take().expect("set above");
        let net = undo.net.take();
        undo.cgroup = None;
        undo.dir = None;
        Ok(Container::restored(
            self.clone(),
            id,
            pid,
            pidfd,
            cgroup,
            net,
            dir,
            spec.log.clone(),
            log_done,
            Timings {
                clone: criu_ms,
                prepare: t0.elapsed(),
                release: None,
            },
        ))
    }

    fn ensure_kdat_for_restore(&self, criu: &Criu) {
        if !super::Worker::kdat_ready()
            && let Err(e) = self.criu_check(criu)
        {
            tracing::debug!(error = %e, "no CRIU kernel-facts cache: restores work it out each time");
        }
    }
}

fn sys_dup(fd: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor of this process; we own the result.
    let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `n` is a new descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open with a pid of our own child (it cannot be reaped by anyone else);
    // we own the returned descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn read_manifest(image: &Path) -> Result<Manifest, CheckpointError> {
    let path = image.join("manifest.json");
    let text = std::fs::read(&path).map_err(CheckpointError::io("read", &path))?;
    serde_json::from_slice(&text)
        .map_err(|e| CheckpointError::Mismatch(format!("{} is not valid: {e}", path.display())))
}

/// Where each of the checkpoint's binds comes from in the new spec, and that the new spec
/// binds nothing the checkpoint did not.
fn bind_sources(
    m: &Manifest,
    spec: &ContainerSpec,
) -> Result<Vec<(String, PathBuf)>, CheckpointError> {
    let mut available: Vec<(String, PathBuf)> = spec
        .mounts
        .iter()
        .map(|b| (b.target.display().to_string(), b.source.clone()))
        .collect();
    if let RootfsSpec::Host { binds, .. } = &spec.rootfs {
        available.extend(
            binds
                .iter()
                .map(|(h, i)| (i.display().to_string(), h.clone())),
        );
    }
    let mut out = Vec::new();
    for inner in &m.binds {
        let source = available
            .iter()
            .find(|(i, _)| i == inner)
            .map(|(_, s)| s.clone())
            .ok_or_else(|| {
                CheckpointError::Mismatch(format!(
                    "it has {inner} bound from the host, which the new container does not bind"
                ))
            })?;
        // CRIU binds a symlinked source (the host's /etc/localtime) wrongly: give it the
        // file the kernel bound in the dumped container.
        let source = std::fs::canonicalize(&source).unwrap_or(source);
        out.push((inner.clone(), source));
    }
    if let Some((inner, _)) = available.iter().find(|(i, _)| !m.binds.contains(i)) {
        return Err(CheckpointError::Mismatch(format!(
            "the new container binds {inner}, which the checkpoint does not have"
        )));
    }
    Ok(out)
}

/// Bytes of the regular files under `dir`.
pub(crate) fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map(|m| m.len()).unwrap_or(0),
                _ => {}
            }
        }
    }
    total
}

/// Undoes a half-made restored container.
struct Undo {
    dir: Option<PathBuf>,
    cgroup: Option<Arc<dyn Cgroup>>,
    net: Option<(Arc<Network>, Attachment)>,
    pidfd: Option<OwnedFd>,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(pidfd) = self.pidfd.take() {
            let _ = sys::pidfd_send_signal(&pidfd, libc::SIGKILL);
            let _ = sys::waitid_pidfd(&pidfd, true);
        }
        if let Some(cg) = self.cgroup.take()
            && let Err(e) = cg.destroy()
        {
            tracing::warn!(error = %e, "could not remove the cgroup of a failed restore");
        }
        if let Some((net, att)) = self.net.take() {
            net.release(&att);
        }
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
