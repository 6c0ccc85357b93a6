//! Cold start on a remote node vs on one host. The same static site (busybox httpd, the host
//! image, `--idle-timeout 100ms`) on the bed — the request reaches the front's proxy, the
//! instance starts on one of the three nodes (the front runs none itself) — and on a
//! single-host `hako serve` the benchmark started on loopback. The two series take turns;
//! before each request the benchmark polls the API until the app has no instance, then times
//! `GET /` from connecting to the last byte of the 200, and checks in the app's metrics that
//! the request was counted cold.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::bail;

use super::bed::{Bed, host};
use crate::daemon::HakoServe;
use crate::samples::{Pacer, Samples};

/// The measured app, on both.
const APP: &str = "cold";
/// Longest wait for the idle instance to be stopped (a cluster's leader sees the fronts'
/// activity about once a second).
const IDLE_STOP_LIMIT: Duration = Duration::from_secs(20);

/// Both series, and the nodes the remote instances ran on.
#[derive(Debug, Default)]
pub struct Cold {
    pub remote: Samples,
    pub single: Samples,
    pub remote_nodes: BTreeMap<String, usize>,
}

/// One side of the comparison.
trait Side {
    fn cold_count(&self) -> anyhow::Result<u64>;
    fn has_instances(&self) -> anyhow::Result<bool>;
    fn proxy(&self) -> SocketAddr;
}

impl Side for Bed {
    fn cold_count(&self) -> anyhow::Result<u64> {
        cold_of(&self.client.metrics(APP)?)
    }
    fn has_instances(&self) -> anyhow::Result<bool> {
        Ok(!self.client.instances(Some(APP))?.is_empty())
    }
    fn proxy(&self) -> SocketAddr {
        self.proxy
    }
}

impl Side for HakoServe {
    fn cold_count(&self) -> anyhow::Result<u64> {
        HakoServe::cold_count(self, APP)
    }
    fn has_instances(&self) -> anyhow::Result<bool> {
        Ok(!self.instances(APP)?.is_empty())
    }
    fn proxy(&self) -> SocketAddr {
        self.proxy
    }
}

fn cold_of(metrics: &serde_json::Value) -> anyhow::Result<u64> {
    metrics["cold"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("metrics of {APP} have no cold count: {metrics}"))
}

const OPTIONS: [&str; 4] = ["--idle-timeout", "100ms", "--memory", "64MiB"];

/// Creates the app on both and takes `runs` cold requests on each, in turns (one untimed
/// round first).
pub fn run(bed: &Bed, single: &HakoServe, code: &Path, runs: usize) -> anyhow::Result<Cold> {
    bed.create(APP, code, &OPTIONS)?;
    let code_arg = code.to_str().unwrap_or_default();
    single.cli(&[
        "app",
        "create",
        APP,
        "--host",
        &host(APP),
        "--image",
        "base",
        "--code",
        code_arg,
        "--cmd",
        "busybox httpd -f -p $PORT -h /app",
        OPTIONS[0],
        OPTIONS[1],
        OPTIONS[2],
        OPTIONS[3],
    ])?;
    eprintln!("bench cluster: {runs} cold starts on a remote node and on one host, in turns");
    let mut out = Cold::default();
    let mut pacer = Pacer::new(Duration::from_millis(200));
    for round in 0..=runs {
        let remote = sample(bed, &mut pacer)?;
        let node = bed.node_of(APP).unwrap_or_else(|_| "?".into());
        let one = sample(single, &mut pacer)?;
        if round > 0 {
            out.remote.push(remote);
            out.single.push(one);
            *out.remote_nodes.entry(node).or_default() += 1;
        }
    }
    bed.cli(&["app", "delete", APP])?;
    Ok(out)
}

/// One cold request: waits until the app has no instance, then times `GET /`.
fn sample(side: &dyn Side, pacer: &mut Pacer) -> anyhow::Result<Duration> {
    hako_testkit::retry_until(
        &format!("{APP} to have no instance (is the idle stop working?)"),
        IDLE_STOP_LIMIT,
        Duration::from_millis(10),
        || -> anyhow::Result<Option<()>> { Ok((!side.has_instances()?).then_some(())) },
    )?;
    let before = side.cold_count()?;
    pacer.next();
    let (r, took) = crate::request::get(
        side.proxy(),
        &host(APP),
        "/index.html",
        &[],
        Duration::from_secs(30),
    )?;
    if r.status != 200 {
        bail!("{APP} answered {} {:?}", r.status, r.text());
    }
    let after = side.cold_count()?;
    if after != before + 1 {
        bail!("the request was not a cold start (cold count {before} → {after})");
    }
    Ok(took)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cold_count() {
        assert_eq!(cold_of(&serde_json::json!({"cold": 3})).unwrap(), 3);
        assert!(cold_of(&serde_json::json!({"warm": 3})).is_err());
    }
}
