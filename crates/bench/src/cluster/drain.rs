//! Drain of a node holding running sites, under bounded load. `sites` static sites are
//! started on host2 (the other hosts cordoned meanwhile, then active again), each with
//! `--idle-timeout 10m` so that they stay up. The open-loop generator then sends 100
//! requests/s spread evenly over them through the front (keep-alive connections, at most 32
//! in flight, every request given up after 10 s); 2 s in, host2 is set draining through the
//! API, and the benchmark polls the instances until host2 runs none; the load goes on 2 s
//! more. Failed: requests without a 2xx answer, plus any the generator could not send.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hako_model::NodeState;

use super::bed::{Bed, host};
use crate::efficiency::loadgen;

/// The drained node.
const NODE: usize = 2;
/// Requests per second over all the sites.
const RATE: f64 = 100.0;
/// Load before the drain starts, and after it ends.
const BEFORE: f64 = 2.0;
const AFTER: f64 = 2.0;
/// Longest drain waited for (the load's schedule runs this long at most).
const LIMIT: Duration = Duration::from_secs(120);

/// What the drain measured.
#[derive(Debug)]
pub struct Drain {
    pub sites: usize,
    pub requests: usize,
    pub failed: u64,
    pub seconds: f64,
    /// Where the sites run afterwards (node → sites).
    pub moved_to: std::collections::BTreeMap<String, usize>,
}

pub fn run(bed: &Bed, code: &Path, sites: usize) -> anyhow::Result<Drain> {
    let node = bed.bed.node(NODE).name.clone();
    let names: Vec<String> = (0..sites).map(|i| format!("drain{i}")).collect();
    eprintln!("bench cluster: starting {sites} sites on {node}");
    bed.sites_on(NODE, &names, code)?;

    let requests: Vec<Vec<u8>> = names
        .iter()
        .map(|n| crate::phases::request(&host(n), "/index.html"))
        .collect();
    let end = BEFORE + LIMIT.as_secs_f64() + AFTER;
    let schedule: Vec<(f64, u32)> = crate::phases::constant(0.0, end, RATE)
        .into_iter()
        .enumerate()
        .map(|(i, (due, _))| (due, (i % sites) as u32))
        .collect();
    let config = loadgen::Config {
        proxy: bed.proxy,
        concurrency: 32,
        queue: 512,
        max_requests: schedule.len(),
        timeout: Duration::from_secs(10),
    };
    eprintln!("bench cluster: draining {node} under {RATE} requests/s over its {sites} sites");
    let stop = AtomicBool::new(false);
    let t0 = Instant::now();
    let (load, drained) = std::thread::scope(|scope| {
        let load = scope.spawn(|| loadgen::run(&config, &schedule, &requests, t0, &stop));
        let drained = drive(bed, &node, t0);
        stop.store(true, Ordering::Relaxed);
        (load.join().expect("the load thread panicked"), drained)
    });
    let seconds = drained?;
    let load = load?;
    if !load.errors.is_empty() {
        eprintln!("  first errors: {:?}", load.errors);
    }
    let failed = load
        .outcomes
        .iter()
        .filter(|o| !(200..300).contains(&o.status))
        .count() as u64
        + load.dropped;
    let mut moved_to = std::collections::BTreeMap::new();
    for name in &names {
        for i in bed.client.instances(Some(name))? {
            *moved_to.entry(i.node).or_default() += 1;
        }
    }
    bed.client.set_node_state(&node, NodeState::Active)?;
    for name in &names {
        bed.cli(&["app", "delete", name, "--yes"])?;
    }
    Ok(Drain {
        sites,
        requests: load.outcomes.len(),
        failed,
        seconds,
        moved_to,
    })
}

/// Starts the drain `BEFORE` seconds into the load, waits until the node runs nothing, lets
/// the load run `AFTER` seconds more; returns the drain's time in seconds.
fn drive(bed: &Bed, node: &str, t0: Instant) -> anyhow::Result<f64> {
    let at = t0 + Duration::from_secs_f64(BEFORE);
    // The benchmark's script (load first, then the drain), not a readiness wait.
    std::thread::sleep(at.saturating_duration_since(Instant::now()));
    let started = Instant::now();
    bed.client
        .set_node_state(node, NodeState::Draining)
        .context("cannot set the node draining")?;
    loop {
        let left = bed
            .client
            .instances(None)?
            .iter()
            .filter(|i| i.node == node)
            .count();
        if left == 0 {
            break;
        }
        if started.elapsed() > LIMIT {
            bail!("{node} still runs {left} instances after {LIMIT:?} of draining");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs_f64(AFTER));
    Ok(took)
}
