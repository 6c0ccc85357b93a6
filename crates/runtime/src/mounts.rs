//! The container's filesystem: the list of [`Op`]s the child runs to build its root.
//!
//! Layout of a container's directory `D` (an empty dir on the host; everything below is
//! mounted inside the container's own mount namespace and vanishes with it):
//! ```text
//! D            tmpfs (size-capped scratch, charged to the container)
//! D/upper      overlay upper layer (throw-away writes to the root)
//! D/work       overlay work dir
//! D/root       overlay of the image's read-only layers + D/upper → becomes /
//! ```
//! Then bind mounts (image host dirs, /app, /data, …), /proc (fresh, with /proc/sys and other
//! global knobs read-only), a minimal /dev, tmpfs /tmp and /run, /etc/hosts and /etc/hostname,
//! and finally pivot_root into D/root.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use crate::child::Op;
use crate::spec::{BindMount, RootfsSpec};

/// Inputs for [`plan`].
pub(crate) struct MountInputs<'a> {
    pub dir: &'a Path,
    pub rootfs: &'a RootfsSpec,
    pub mounts: &'a [BindMount],
    pub scratch_bytes: u64,
    pub hostname: &'a str,
    /// Content of /etc/hosts.
    pub hosts: String,
    /// Content of /etc/resolv.conf, if one should be written.
    pub resolv_conf: Option<String>,
    /// The instance name written to `/run/hako/instance`, if any.
    pub instance: Option<&'a str>,
}

fn c(p: impl AsRef<Path>) -> CString {
    CString::new(p.as_ref().as_os_str().as_encoded_bytes()).expect("paths were validated")
}

fn cs(s: &str) -> CString {
    CString::new(s).expect("no NUL in constant")
}

/// Joins an absolute in-container path under the new root.
fn under(root: &Path, inner: &Path) -> PathBuf {
    root.join(inner.strip_prefix("/").unwrap_or(inner))
}

fn mount(
    source: Option<&str>,
    target: PathBuf,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<String>,
) -> Op {
    Op::Mount {
        source: source.map(cs),
        target: c(target),
        fstype: fstype.map(cs),
        flags,
        data: data.map(|d| CString::new(d).expect("no NUL in mount data")),
    }
}

/// A bind mount of `source` on `target` (read-only if asked), with its mount point.
fn bind(ops: &mut Vec<Op>, source: &Path, target: PathBuf, read_only: bool) {
    if source.is_dir() {
        ops.push(Op::Mkdir {
            path: c(&target),
            mode: 0o755,
        });
    } else {
        ops.push(Op::Touch { path: c(&target) });
    }
    ops.push(Op::Mount {
        source: Some(c(source)),
        target: c(&target),
        fstype: None,
        flags: libc::MS_BIND | libc::MS_REC,
        data: None,
    });
    let mut flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_NOSUID | libc::MS_NODEV;
    if read_only {
        flags |= libc::MS_RDONLY;
    }
    ops.push(Op::Mount {
        source: None,
        target: c(&target),
        fstype: None,
        flags,
        data: None,
    });
}

/// Builds the whole filesystem plan, ending with pivot_root.
pub(crate) fn plan(i: &MountInputs<'_>) -> Vec<Op> {
    let mut ops = Vec::with_capacity(64);
    let dir = i.dir;
    let root = dir.join("root");
    // Nothing we mount may propagate back to the host.
    ops.push(mount(
        None,
        "/".into(),
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        None,
    ));
    ops.push(mount(
        Some("hako-scratch"),
        dir.to_path_buf(),
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some(format!("mode=0755,size={}", i.scratch_bytes)),
    ));
    for d in ["upper", "work", "root"] {
        ops.push(Op::Mkdir {
            path: c(dir.join(d)),
            mode: 0o755,
        });
    }
    let lower: Vec<String> = i
        .rootfs
        .layers()
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    ops.push(mount(
        Some("overlay"),
        root.clone(),
        Some("overlay"),
        0,
        Some(format!(
            "lowerdir={},upperdir={},workdir={},volatile",
            lower.join(":"),
            dir.join("upper").display(),
            dir.join("work").display()
        )),
    ));
    if let RootfsSpec::Host { binds, .. } = i.rootfs {
        for (host, inner) in binds {
            bind(&mut ops, host, under(&root, inner), true);
        }
    }
    proc_fs(&mut ops, &root);
    dev(&mut ops, &root);
    for (d, mode) in [("tmp", "1777"), ("run", "0755")] {
        ops.push(Op::Mkdir {
            path: c(root.join(d)),
            mode: 0o755,
        });
        ops.push(mount(
            Some("tmpfs"),
            root.join(d),
            Some("tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV,
            Some(format!("mode={mode},size={}", i.scratch_bytes)),
        ));
    }
    if let Some(id) = i.instance {
        instance_file(&mut ops, &root, id);
    }
    // The caller's binds come after /tmp and /run so that they may lie inside them (the
    // database socket's directory at /run/mysqld).
    for m in i.mounts {
        bind(&mut ops, &m.source, under(&root, &m.target), m.read_only);
    }
    ops.push(Op::WriteFile {
        path: c(root.join("etc/hostname")),
        content: format!("{}\n", i.hostname).into_bytes(),
    });
    ops.push(Op::WriteFile {
        path: c(root.join("etc/hosts")),
        content: i.hosts.clone().into_bytes(),
    });
    if let Some(r) = &i.resolv_conf {
        ops.push(Op::WriteFile {
            path: c(root.join("etc/resolv.conf")),
            content: r.clone().into_bytes(),
        });
    }
    ops.push(Op::PivotRoot { new_root: c(&root) });
    ops
}

/// `/run/hako/instance` (on the fresh /run tmpfs): which instance this container is, the same
/// file a restored container gets (`checkpoint/scratch.rs`), so an app has one place to look.
fn instance_file(ops: &mut Vec<Op>, root: &Path, id: &str) {
    let file = under(root, Path::new(crate::checkpoint::INSTANCE_FILE));
    ops.push(Op::Mkdir {
        path: c(file.parent().expect("has a parent")),
        mode: 0o755,
    });
    ops.push(Op::WriteFile {
        path: c(&file),
        content: id.as_bytes().to_vec(),
    });
}

/// A fresh /proc for the new pid namespace, with host-wide knobs made read-only or hidden.
fn proc_fs(ops: &mut Vec<Op>, root: &Path) {
    let p = root.join("proc");
    ops.push(Op::Mkdir {
        path: c(&p),
        mode: 0o555,
    });
    ops.push(mount(
        Some("proc"),
        p.clone(),
        Some("proc"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        None,
    ));
    // Host-wide knobs (as Docker's readonlyPaths). /proc/kcore needs CAP_SYS_RAWIO, which no
    // container keeps, so it needs no mount of its own.
    for ro in ["sys", "sysrq-trigger", "irq", "bus", "fs"] {
        ops.push(Op::ReadOnlyIfExists {
            path: c(p.join(ro)),
        });
    }
}

/// A minimal /dev: tmpfs with the usual character devices, a private devpts, /dev/shm.
fn dev(ops: &mut Vec<Op>, root: &Path) {
    let d = root.join("dev");
    ops.push(Op::Mkdir {
        path: c(&d),
        mode: 0o755,
    });
    ops.push(mount(
        Some("tmpfs"),
        d.clone(),
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NOEXEC,
        Some("mode=0755,size=65536".into()),
    ));
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        ops.push(Op::Mknod {
            path: c(d.join(name)),
            mode: libc::S_IFCHR | 0o666,
            dev: libc::makedev(major, minor),
        });
    }
    for sub in ["pts", "shm"] {
        ops.push(Op::Mkdir {
            path: c(d.join(sub)),
            mode: 0o755,
        });
    }
    ops.push(mount(
        Some("devpts"),
        d.join("pts"),
        Some("devpts"),
        libc::MS_NOSUID | libc::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620".into()),
    ));
    ops.push(mount(
        Some("shm"),
        d.join("shm"),
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        Some("mode=1777,size=67108864".into()),
    ));
    for (target, link) in [
        ("pts/ptmx", "ptmx"),
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ] {
        ops.push(Op::Symlink {
            target: cs(target),
            link: c(d.join(link)),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_builds_overlay_binds_and_pivots_last() {
        let rootfs = RootfsSpec::Layers(vec!["/img/base".into(), "/img/top".into()]);
        let mounts = [
            BindMount::app_code("/srv/code"),
            BindMount::data("/srv/data"),
        ];
        let ops = plan(&MountInputs {
            dir: Path::new("/run/hako-x/c1"),
            rootfs: &rootfs,
            mounts: &mounts,
            scratch_bytes: 1 << 20,
            hostname: "web",
            hosts: "127.0.0.1 localhost\n".into(),
            resolv_conf: None,
            instance: Some("web-1a"),
        });
        let text: Vec<String> = ops.iter().map(|o| format!("{o:?}")).collect();
        let all = text.join("\n");
        // Top layer first in lowerdir.
        assert!(
            all.contains("lowerdir=/img/top:/img/base,upperdir=/run/hako-x/c1/upper"),
            "{all}"
        );
        assert!(all.contains("/run/hako-x/c1/root/app"));
        assert!(matches!(ops.last(), Some(Op::PivotRoot { .. })));
        // /app is remounted read-only, /data is not.
        let remounts: Vec<&Op> = ops
            .iter()
            .filter(|o| matches!(o, Op::Mount { flags, .. } if flags & libc::MS_REMOUNT != 0))
            .collect();
        let app_ro = remounts.iter().any(|o| {
            matches!(o, Op::Mount { target, flags, .. }
            if target.to_str().unwrap().ends_with("root/app") && flags & libc::MS_RDONLY != 0)
        });
        let data_rw = remounts.iter().any(|o| {
            matches!(o, Op::Mount { target, flags, .. }
            if target.to_str().unwrap().ends_with("root/data") && flags & libc::MS_RDONLY == 0)
        });
        assert!(app_ro && data_rw);
        // The instance file lies on the fresh /run, written after its tmpfs is mounted.
        let run = ops
            .iter()
            .position(|o| matches!(o, Op::Mount { target, .. } if target.to_str().unwrap().ends_with("root/run")))
            .unwrap();
        let file = ops
            .iter()
            .position(|o| matches!(o, Op::WriteFile { path, content } if path.to_str().unwrap().ends_with("root/run/hako/instance") && content == b"web-1a"))
            .expect("the instance file is written");
        assert!(run < file);
    }

    #[test]
    fn binds_may_lie_inside_run() {
        let rootfs = RootfsSpec::Layers(vec!["/img/base".into()]);
        let mounts = [BindMount {
            source: "/run/mysqld".into(),
            target: "/run/mysqld".into(),
            read_only: true,
        }];
        let ops = plan(&MountInputs {
            dir: Path::new("/run/hako-x/c1"),
            rootfs: &rootfs,
            mounts: &mounts,
            scratch_bytes: 1 << 20,
            hostname: "web",
            hosts: String::new(),
            resolv_conf: None,
            instance: None,
        });
        let position = |pred: &dyn Fn(&Op) -> bool| ops.iter().position(pred).unwrap();
        let run_tmpfs = position(&|o| {
            matches!(o, Op::Mount { target, fstype: Some(t), .. }
                if target.to_str().unwrap().ends_with("root/run") && t.to_str().unwrap() == "tmpfs")
        });
        let socket_bind = position(&|o| {
            matches!(o, Op::Mount { target, flags, .. }
                if target.to_str().unwrap().ends_with("root/run/mysqld") && flags & libc::MS_BIND != 0)
        });
        assert!(
            run_tmpfs < socket_bind,
            "the bind is not hidden by the tmpfs"
        );
    }
}
