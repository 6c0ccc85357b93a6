//! Helpers shared by the integration tests: root check, unique names, gated child processes.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Fails the test, clearly, when not run as root.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test creates real cgroups and must run as root (e.g. `sudo -E cargo nextest run -p hako-cgroup`)"
    );
}

/// A scope name unique to this process and call: `hako-cgtest-<pid>-<n>`.
pub fn unique_scope() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "hako-cgtest-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A `sh -c script` child that first waits for a line on stdin, so it can be moved into a
/// cgroup before it does anything. `release` lets it go.
pub fn gated(script: &str) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg(format!("read _gate; {script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn sh")
}

/// Lets a `gated` child run.
pub fn release(child: &mut Child) {
    let stdin = child.stdin.as_mut().expect("gated child has stdin");
    stdin.write_all(b"go\n").expect("release gated child");
    stdin.flush().unwrap();
}

/// Reads one line the child prints (its readiness signal).
pub fn read_line(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("child stdout piped"))
        .read_line(&mut line)
        .expect("read child's line");
    line.trim().to_owned()
}

/// Waits for the child and returns the signal that killed it, if any.
pub fn killed_by(child: &mut Child) -> Option<i32> {
    child.wait().expect("wait child").signal()
}

/// The python3 to run memory hogs with.
pub fn python() -> &'static str {
    let p = "/usr/bin/python3";
    assert!(
        std::path::Path::new(p).exists(),
        "these tests need {p} (apt-get install -y python3)"
    );
    p
}

/// Waits (up to 10 s) until process `pid` runs `comm` and is asleep: it has then been
/// scheduled out, so the kernel has accounted the CPU time it used so far.
pub fn wait_asleep_in(pid: i32, comm: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // "pid (comm) state ..."
        let asleep = stat.rsplit_once(')').is_some_and(|(head, tail)| {
            head.ends_with(&format!("({comm}")) && tail.trim_start().starts_with('S')
        });
        if asleep {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "process {pid} never slept in {comm}: {stat}"
        );
        std::thread::yield_now();
    }
}
