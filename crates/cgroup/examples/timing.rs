//! Times the cgroup steps on a container's start and stop path on this host:
//! `create` (with memory, cpu and pids limits), `add_pid`, and `destroy` of a cgroup holding
//! one process. Run as root: `cargo run --release -p hako-cgroup --example timing [N]`.
//! Starts are spaced 200 ms apart, because the first cgroup.procs write after an idle
//! moment is the slow one that matters on the hot path.

use std::process::Command;
use std::time::{Duration, Instant};

use hako_cgroup::{Limits, detect};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(20);
    let manager = detect(&format!("hako-timing-{}", std::process::id()))?;
    let limits = Limits {
        memory_max: Some(64 << 20),
        cpu_cores: Some(0.5),
        pids_max: Some(64),
    };
    let (mut create, mut add, mut destroy) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        std::thread::sleep(Duration::from_millis(200));
        let mut child = Command::new("sleep").arg("1000").spawn()?;
        let t = Instant::now();
        let cg = manager.create(&format!("t{i}"), &limits)?;
        create.push(t.elapsed());
        let t = Instant::now();
        cg.add_pid(child.id() as i32)?;
        add.push(t.elapsed());
        let t = Instant::now();
        cg.destroy()?;
        destroy.push(t.elapsed());
        child.wait()?;
    }
    manager.remove_scope()?;
    let p = |v: &mut Vec<Duration>, q: f64| {
        v.sort();
        v[((v.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3
    };
    println!(
        "cgroup-{:?}: create_p50_ms={:.3} create_p95_ms={:.3} add_pid_p50_ms={:.3} add_pid_p95_ms={:.3} destroy_p50_ms={:.3} destroy_p95_ms={:.3}",
        manager.version(),
        p(&mut create, 0.5),
        p(&mut create, 0.95),
        p(&mut add, 0.5),
        p(&mut add, 0.95),
        p(&mut destroy, 0.5),
        p(&mut destroy, 0.95),
    );
    Ok(())
}
