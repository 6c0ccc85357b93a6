//! The scratch of a restored container, made in the CRIU thread's private mount namespace
//! just before CRIU runs: a size-capped tmpfs holding the overlay's upper and work
//! directories, the overlay root itself, and the directories CRIU binds as `/dev` (hako's
//! device nodes), `/dev/shm`, `/tmp` and `/run` (with the content carried in the checkpoint
//! and the instance file), plus `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` with
//! the new instance's address.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{CheckpointError, INSTANCE_FILE, SCRATCH, fsstate};

/// The files hako writes into a container's `/etc`.
pub(super) struct EtcFiles {
    pub(super) hosts: String,
    pub(super) hostname: String,
    pub(super) resolv_conf: Option<String>,
}

/// In the CRIU thread's private mount namespace: the scratch tmpfs (upper layer, `/dev`,
/// `/dev/shm`, `/tmp`, `/run` with the carried content and the instance file) and the
/// overlay root.
pub(super) fn prepare_scratch(
    d: &Path,
    bytes: u64,
    image: &Path,
    instance: &str,
    etc: &EtcFiles,
    layers: &[String],
    binds: &[(String, PathBuf)],
) -> Result<(), CheckpointError> {
    mount(
        Some("hako-scratch"),
        d,
        Some("tmpfs"),
        libc::MS_NOSUID,
        Some(&format!("mode=0755,size={bytes}")),
    )?;
    let mkdir = |p: PathBuf, mode: u32| -> Result<(), CheckpointError> {
        std::fs::create_dir_all(&p).map_err(CheckpointError::io("create", &p))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
            .map_err(CheckpointError::io("chmod", &p))
    };
    for (p, mode) in [
        ("upper", 0o755),
        ("work", 0o755),
        ("root", 0o755),
        ("dev", 0o755),
        ("dev/pts", 0o755),
        ("dev/shm", 0o755),
        ("shm", 0o1777),
        ("tmp", 0o1777),
        ("run", 0o755),
    ] {
        mkdir(d.join(p), mode)?;
    }
    let dev = d.join("dev");
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        let p = dev.join(name);
        let c = cpath(&p)?;
        // SAFETY: mknod with a valid path in our private scratch tmpfs.
        if unsafe {
            libc::mknod(
                c.as_ptr(),
                libc::S_IFCHR | 0o666,
                libc::makedev(major, minor),
            )
        } == -1
        {
            return Err(CheckpointError::io("mknod", &p)(
                std::io::Error::last_os_error(),
            ));
        }
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666))
            .map_err(CheckpointError::io("chmod", &p))?;
    }
    for (target, link) in [
        ("pts/ptmx", "ptmx"),
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ] {
        std::os::unix::fs::symlink(target, dev.join(link))
            .map_err(CheckpointError::io("symlink", dev.join(link)))?;
    }
    let fs = image.join("fs");
    for (_, cookie) in SCRATCH.iter().skip(1) {
        let from = fs.join(cookie);
        if from.is_dir() {
            fsstate::copy_tree(&from, &d.join(cookie))
                .map_err(CheckpointError::io("copy", &from))?;
        }
    }
    let inst = d.join(INSTANCE_FILE.trim_start_matches('/'));
    mkdir(inst.parent().expect("has a parent").to_path_buf(), 0o755)?;
    write(&inst, instance.as_bytes())?;
    mkdir(d.join("upper/etc"), 0o755)?;
    write(&d.join("upper/etc/hosts"), etc.hosts.as_bytes())?;
    write(&d.join("upper/etc/hostname"), etc.hostname.as_bytes())?;
    if let Some(r) = &etc.resolv_conf {
        write(&d.join("upper/etc/resolv.conf"), r.as_bytes())?;
    }
    mount(
        Some("overlay"),
        &d.join("root"),
        Some("overlay"),
        0,
        Some(&format!(
            "lowerdir={},upperdir={},workdir={},volatile",
            layers.join(":"),
            d.join("upper").display(),
            d.join("work").display()
        )),
    )?;
    mount_points(d, binds)
}

/// Makes the mount point of every bind that neither the image nor the carried content has
/// (`/app`, `/data` on a Debian image): a cold start's child makes them the same way.
fn mount_points(d: &Path, binds: &[(String, PathBuf)]) -> Result<(), CheckpointError> {
    for (inner, source) in binds {
        let rel = inner.trim_start_matches('/');
        let at = SCRATCH
            .iter()
            .rev()
            .find_map(|(place, cookie)| {
                let rest = inner.strip_prefix(place)?.strip_prefix('/')?;
                Some(d.join(cookie).join(rest))
            })
            .unwrap_or_else(|| d.join("root").join(rel));
        if std::fs::symlink_metadata(&at).is_ok() {
            continue;
        }
        if let Some(parent) = at.parent() {
            std::fs::create_dir_all(parent).map_err(CheckpointError::io("create", parent))?;
        }
        if source.is_dir() {
            std::fs::create_dir(&at).map_err(CheckpointError::io("create", &at))?;
            std::fs::set_permissions(&at, std::fs::Permissions::from_mode(0o755))
                .map_err(CheckpointError::io("chmod", &at))?;
        } else {
            File::create(&at).map_err(CheckpointError::io("create", &at))?;
        }
    }
    Ok(())
}

fn write(p: &Path, content: &[u8]) -> Result<(), CheckpointError> {
    let mut f = File::create(p).map_err(CheckpointError::io("write", p))?;
    f.write_all(content)
        .map_err(CheckpointError::io("write", p))?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644))
        .map_err(CheckpointError::io("chmod", p))
}

fn cpath(p: &Path) -> Result<std::ffi::CString, CheckpointError> {
    std::ffi::CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| CheckpointError::Mismatch(format!("NUL in path {}", p.display())))
}

fn mount(
    source: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<(), CheckpointError> {
    let c = |s: &str| {
        std::ffi::CString::new(s)
            .map_err(|_| CheckpointError::Mismatch("NUL in mount options".into()))
    };
    let (src, fst, dat) = (
        source.map(c).transpose()?,
        fstype.map(c).transpose()?,
        data.map(c).transpose()?,
    );
    let tgt = cpath(target)?;
    let p = |o: &Option<std::ffi::CString>| o.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: mount(2) with valid NUL-terminated strings, in the CRIU thread's private
    // mount namespace.
    if unsafe { libc::mount(p(&src), tgt.as_ptr(), p(&fst), flags, p(&dat).cast()) } == -1 {
        return Err(CheckpointError::io(
            &format!("mount {} on", fstype.unwrap_or("bind")),
            target,
        )(std::io::Error::last_os_error()));
    }
    Ok(())
}
