//! A runtime killed with SIGKILL: its containers die with it, and the next runtime with the
//! same prefix removes the cgroups, veths, bridge and directories it left.

mod common;

use std::io::BufRead;
use std::time::{Duration, Instant};

use hako_runtime::{ContainerSpec, LogSpec, Runtime, RuntimeConfig};

const TEST: &str = "a_killed_runtime_leaves_nothing_after_the_next_start";

fn config(prefix: &str, root: &str) -> RuntimeConfig {
    let mut c = RuntimeConfig::unique('k', root);
    c.prefix = prefix.to_string();
    c
}

/// Runs in the child process: a runtime with two running containers, then waits to be killed.
fn holder(prefix: &str, root: &str) -> ! {
    let tmp = tempfile::tempdir().unwrap();
    let image = common::busybox_image(&tmp.path().join("image"));
    let rt = Runtime::new(config(prefix, root)).unwrap();
    let mut pids = Vec::new();
    let mut keep = Vec::new();
    for _ in 0..2 {
        let mut spec = ContainerSpec::new(image.clone(), "/bin/sh");
        spec.args = vec!["-c".into(), "sleep 1000 & exec sleep 1000".into()];
        spec.log = LogSpec::Null;
        let c = rt.run(&spec).unwrap();
        pids.push(c.pid());
        keep.push(c);
    }
    println!("ready {} {}", pids[0], pids[1]);
    loop {
        std::thread::park();
    }
}

#[test]
fn a_killed_runtime_leaves_nothing_after_the_next_start() {
    if let (Ok(prefix), Ok(root)) = (
        std::env::var("HAKO_HOLDER_PREFIX"),
        std::env::var("HAKO_HOLDER_ROOT"),
    ) {
        holder(&prefix, &root);
    }
    common::require_root();
    // A state root of its own: runtimes of other tests sweep the leftovers of dead runtimes
    // under theirs, which would clean up before this test can see the leftovers.
    let root_dir = tempfile::Builder::new()
        .prefix("hako-crash-root")
        .tempdir()
        .unwrap();
    let root = root_dir.path().to_str().unwrap();
    let prefix = RuntimeConfig::unique('k', root).prefix;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture"])
        .env("HAKO_HOLDER_PREFIX", &prefix)
        .env("HAKO_HOLDER_ROOT", root)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "holder exited early");
        if line.starts_with("ready ") {
            break;
        }
    }
    let pids: Vec<i32> = line
        .split_whitespace()
        .skip(1)
        .map(|p| p.parse().unwrap())
        .collect();
    let cgroup_dir = std::path::Path::new("/sys/fs/cgroup/pids").join(&prefix);
    assert!(cgroup_dir.exists());
    child.kill().unwrap();
    child.wait().unwrap();

    // The containers' inits die with their runtime (and take their pid namespaces along).
    let deadline = Instant::now() + Duration::from_secs(10);
    for pid in &pids {
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            assert!(
                Instant::now() < deadline,
                "container init {pid} outlived its runtime"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // Left behind until the next start: the cgroups.
    assert!(cgroup_dir.exists(), "expected leftovers to clean");

    let rt = Runtime::new(config(&prefix, root)).unwrap();
    let links = std::process::Command::new("ip")
        .args(["-o", "link"])
        .output()
        .unwrap();
    let links = String::from_utf8_lossy(&links.stdout).into_owned();
    let leftover_cgroups: Vec<_> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .filter_map(|c| std::fs::read_dir(c.path().join(&prefix)).ok())
        .flat_map(|d| d.flatten().filter(|e| e.path().is_dir()).map(|e| e.path()))
        .collect();
    let state: Vec<_> = std::fs::read_dir(rt.config().state_dir())
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    rt.shutdown();
    assert!(leftover_cgroups.is_empty(), "{leftover_cgroups:?}");
    assert!(!links.contains(&format!("{prefix}v")), "{links}");
    assert!(state.is_empty(), "{state:?}");
    assert!(!cgroup_dir.exists());
}
