//! Memory pressure on the host: a bounded hog in a cgroup of its own (`<prefix>hog/hog`,
//! memory limit a little above what it takes), so the pressure is real but cannot grow past
//! its bound. The hog is this binary (`hako-bench chaos-hog BYTES`): it waits until it is in its
//! cgroup, takes and touches BYTES, says `held`, and frees them when its stdin closes.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hako_cgroup::Limits;

/// Room above the hog's bytes in its cgroup (its code, stack, page tables).
const SLACK: u64 = 64 << 20;

/// What the hog did.
#[derive(Debug)]
pub struct Held {
    pub bytes: u64,
    /// When it held all its memory, and when it let go (seconds of the run's clock).
    pub held_at: Instant,
    pub released_at: Instant,
}

/// How much to take: half of what the host has available now, at most `cap`.
pub fn bytes_to_take(mem_available: u64, cap: u64) -> u64 {
    (mem_available / 2).min(cap)
}

/// `MemAvailable` from /proc/meminfo, in bytes.
pub fn mem_available() -> anyhow::Result<u64> {
    let text = std::fs::read_to_string("/proc/meminfo")?;
    parse_mem_available(&text).context("no MemAvailable in /proc/meminfo")
}

fn parse_mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Runs the hog of `bytes` in cgroup scope `scope` for `hold`, then ends it and removes its
/// cgroup.
pub fn run(scope: &str, bytes: u64, hold: Duration) -> anyhow::Result<Held> {
    let manager = hako_cgroup::detect(scope)?;
    let cg = manager.create(
        "hog",
        &Limits {
            memory_max: Some(bytes + SLACK),
            cpu_cores: None,
            pids_max: Some(16),
        },
    )?;
    let result = (|| {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["chaos-hog", &bytes.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start the hog")?;
        let pid = i32::try_from(child.id()).context("pid")?;
        cg.add_pid(pid)?;
        let mut stdin = child.stdin.take().expect("piped");
        stdin.write_all(b"go\n")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
        if line.trim() != "held" {
            let _ = child.kill();
            let status = child.wait()?;
            bail!("the hog did not hold its memory ({status}); its cgroup's limit stopped it?");
        }
        let held_at = Instant::now();
        // The fault's length: the pressure lasts this long.
        std::thread::sleep(hold);
        drop(stdin);
        let status = child.wait()?;
        if !status.success() {
            bail!("the hog ended with {status}");
        }
        Ok(Held {
            bytes,
            held_at,
            released_at: Instant::now(),
        })
    })();
    let _ = cg.kill_all();
    cg.destroy()?;
    manager.remove_scope()?;
    result
}

/// The hog's own side (`hako-bench chaos-hog BYTES`).
pub fn child(args: &[&str]) -> anyhow::Result<()> {
    let bytes: usize = args
        .first()
        .context("chaos-hog BYTES")?
        .parse()
        .context("BYTES")?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let mut v = vec![0u8; bytes];
    // Touch every page so that the memory is really taken.
    for i in (0..bytes).step_by(4096) {
        v[i] = 1;
    }
    println!("held");
    std::io::stdout().flush()?;
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    std::hint::black_box(&v);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_half_of_what_is_available_up_to_the_cap() {
        assert_eq!(bytes_to_take(8 << 30, 2 << 30), 2 << 30);
        assert_eq!(bytes_to_take(1 << 30, 2 << 30), 512 << 20);
        let meminfo =
            "MemTotal:       24684000 kB\nMemFree:  348000 kB\nMemAvailable:   22945000 kB\n";
        assert_eq!(parse_mem_available(meminfo), Some(22_945_000 * 1024));
        assert_eq!(parse_mem_available("MemTotal: 1 kB\n"), None);
    }
}
