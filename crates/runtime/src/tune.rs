//! Host kernel tuning the runtime applies at start (each step optional, each idempotent).
//!
//! `favordynmods`: moving a process into a cgroup takes the kernel's global cgroup
//! threadgroup lock for writing, which by default waits for an RCU grace period: 5–12 ms on
//! this class of machine after an idle moment, paid by every container start on cgroup v1.
//! The `favordynmods` option of a cgroup hierarchy switches that lock to a mode where writers
//! are cheap (~0.3 ms) at a small cost to fork and exit. On cgroup v2 it is a remount option of
//! the unified hierarchy; on v1 mounting any hierarchy with it flips the (global) lock mode,
//! which then stays in effect, so hako mounts a throw-away named hierarchy once and unmounts it.

use std::ffi::CString;

use hako_cgroup::Version;

/// Turns on `favordynmods`; logs and carries on if the kernel does not support it.
pub(crate) fn favor_dynmods(version: Version) {
    let result = match version {
        Version::V2 => remount_v2(),
        Version::V1 => mount_named_v1(),
    };
    match result {
        Ok(()) => tracing::debug!("cgroup favordynmods enabled"),
        Err(e) => {
            tracing::info!(error = %e, "cgroup favordynmods not available; container starts pay the slower cgroup move")
        }
    }
}

fn remount_v2() -> std::io::Result<()> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
    let Some(line) = mountinfo.lines().find(|l| l.contains(" - cgroup2 ")) else {
        return Err(std::io::Error::other("no cgroup2 mount"));
    };
    if line.contains("favordynmods") {
        return Ok(());
    }
    let target = line.split(' ').nth(4).unwrap_or("/sys/fs/cgroup");
    let t = CString::new(target)?;
    let opts = CString::new("favordynmods")?;
    // SAFETY: remount with valid C strings.
    let r = unsafe {
        libc::mount(
            std::ptr::null(),
            t.as_ptr(),
            std::ptr::null(),
            libc::MS_REMOUNT,
            opts.as_ptr().cast(),
        )
    };
    if r == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn mount_named_v1() -> std::io::Result<()> {
    let dir = tempdir_path();
    std::fs::create_dir(&dir)?;
    let d = CString::new(dir.as_os_str().as_encoded_bytes())?;
    let opts = CString::new(format!(
        "none,name=hakofdm{},favordynmods",
        std::process::id()
    ))?;
    // SAFETY: mount/umount with valid C strings on a directory we just made.
    let r = unsafe {
        let r = libc::mount(
            c"cgroup".as_ptr(),
            d.as_ptr(),
            c"cgroup".as_ptr(),
            0,
            opts.as_ptr().cast(),
        );
        if r == 0 {
            libc::umount2(d.as_ptr(), libc::MNT_DETACH);
        }
        r
    };
    let err = std::io::Error::last_os_error();
    let _ = std::fs::remove_dir(&dir);
    if r == -1 {
        return Err(err);
    }
    Ok(())
}

fn tempdir_path() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("hako-fdm-{}", std::process::id()))
}

/// The host's neighbour (ARP) table must hold an entry per running isolated instance: the
/// kernel's default limit (`gc_thresh3` = 1024) overflows past about a thousand, and then
/// the proxy meets "No route to host". Raises `gc_thresh1/2/3` to at least these values
/// (never lowers them); kernel-wide, like every container engine's networking tuning.
pub(crate) const NEIGH_THRESHOLDS: [(&str, u64); 3] = [
    ("gc_thresh1", 4096),
    ("gc_thresh2", 8192),
    ("gc_thresh3", 16384),
];

/// Raises the neighbour table limits under `dir` (normally
/// `/proc/sys/net/ipv4/neigh/default`) to [`NEIGH_THRESHOLDS`]; logs and carries on on failure.
pub(crate) fn neighbour_table(dir: &std::path::Path) {
    for (name, want) in NEIGH_THRESHOLDS {
        let path = dir.join(name);
        let now = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok());
        match now {
            Some(v) if v >= want => {}
            _ => {
                if let Err(e) = std::fs::write(&path, want.to_string()) {
                    tracing::info!(path = %path.display(), error = %e, "cannot raise the neighbour table limit");
                }
            }
        }
    }
}

/// How long the bridge waits before it asks again for a neighbour (ARP) that did not answer,
/// ms. The kernel's 1 s default turned into a 1 s step in cold starts: the first ARP request
/// to a new instance can go while its bridge port is not forwarding yet (on a loaded host,
/// later than [`crate::network`]'s bounded wait), and is then repeated a second later. 50 ms
/// keeps a lost request cheap; the 3 tries still give up within 150 ms on an address that
/// nothing answers (a stopped instance).
pub(crate) const BRIDGE_ARP_RETRY_MS: u64 = 50;

/// Sets the bridge's ARP retry time (under `dir`, normally
/// `/proc/sys/net/ipv4/neigh/<bridge>`) to [`BRIDGE_ARP_RETRY_MS`]; only hako's own bridge is
/// touched. Logs and carries on on failure.
pub(crate) fn bridge_arp_retry(dir: &std::path::Path) {
    let path = dir.join("retrans_time_ms");
    if let Err(e) = std::fs::write(&path, BRIDGE_ARP_RETRY_MS.to_string()) {
        tracing::info!(path = %path.display(), error = %e, "cannot shorten the bridge's ARP retry time");
    }
}

#[cfg(test)]
mod neighbour_tests {
    use super::*;

    #[test]
    fn the_bridge_asks_again_soon() {
        let dir = tempfile::Builder::new()
            .prefix("hako-neigh-")
            .tempdir()
            .unwrap();
        std::fs::write(dir.path().join("retrans_time_ms"), "1000\n").unwrap();
        bridge_arp_retry(dir.path());
        let v = std::fs::read_to_string(dir.path().join("retrans_time_ms")).unwrap();
        assert_eq!(v, "50");
    }

    #[test]
    fn limits_are_raised_and_never_lowered() {
        let dir = tempfile::Builder::new()
            .prefix("hako-neigh-")
            .tempdir()
            .unwrap();
        std::fs::write(dir.path().join("gc_thresh1"), "128\n").unwrap();
        std::fs::write(dir.path().join("gc_thresh2"), "100000\n").unwrap();
        std::fs::write(dir.path().join("gc_thresh3"), "1024\n").unwrap();
        neighbour_table(dir.path());
        let read = |n: &str| std::fs::read_to_string(dir.path().join(n)).unwrap();
        assert_eq!(read("gc_thresh1"), "4096");
        assert_eq!(read("gc_thresh2"), "100000\n", "a higher setting is kept");
        assert_eq!(read("gc_thresh3"), "16384");
    }
}
