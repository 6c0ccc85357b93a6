//! `cargo xtask bench cluster`: hako as a cluster, on a test bed the benchmark brings up
//! itself (three hosts as network namespaces, a 3-member etcd, an agent per host, a front on
//! the first host) and always takes down, also on an error.
//!
//! 1. **Remote cold start** ([`cold`]): a site's cold request through the front, its instance
//!    started on another node, beside the same site's cold request on a single-host
//!    `hako serve` started by the benchmark in the same run (p50/p95 each).
//! 2. **Drain** ([`drain`]): a node holding 50 running sites drained under 100 requests/s:
//!    failed requests (goal 0) and the drain's time.
//! 3. **Lost node** ([`loss`]): a node's agent killed with SIGKILL: time from the kill until
//!    each of its sites answers again from another node, also from its lease's expiry (goal
//!    ≤ 5 s after it).
//! 4. **Route propagation** ([`propagation`]): with 10,000 apps stored, time from a change in
//!    the store until the proxy routes by it; p99 (goal ≤ 100 ms).
//!
//! Ends with `cluster: remote_cold_p50_ms=… single_cold_p50_ms=… drain_failed=… drain_s=…
//! node_loss_recovery_s=… route_propagation_p99_ms=… apps=…`. `--quick` runs every part
//! smaller (see [`options`]).

mod bed;
mod cold;
mod drain;
mod loss;
mod options;
mod propagation;

use anyhow::{Context, bail};

use crate::daemon::HakoServe;
use crate::samples::{ms, print_table};
use options::Options;

/// Everything measured, for the report.
struct Results {
    cold: cold::Cold,
    drain: drain::Drain,
    loss: loss::Loss,
    propagation: propagation::Propagation,
}

pub fn main(args: &[&str]) -> anyhow::Result<()> {
    let opts = Options::parse(args)?;
    if !hako_runtime::is_root() {
        bail!("the cluster benchmark makes network namespaces and containers: run it as root");
    }
    crate::tools::require(&[
        ("busybox", "busybox-static"),
        ("etcd", "etcd-server"),
        ("nft", "nftables"),
        ("ip", "iproute2"),
        ("nsenter", "util-linux"),
        ("unshare", "util-linux"),
    ])?;
    let hako = crate::paths::hako_binary()?;
    let tmp = tempfile::Builder::new()
        .prefix("hako-bench-cluster-")
        .tempdir()
        .context("create a temp dir")?;
    let code = tmp.path().join("code");
    crate::phases::site_code(&code, 1)?;
    // The single-host peer first: its own data dir, loopback, `hakob…` names.
    let single = HakoServe::start(&hako)?;
    // Dropped (taken down) on every way out of this function.
    let mut bed = bed::Bed::up(&hako, tmp.path())?;
    let results = measure(&mut bed, &single, &code, &opts);
    drop(single);
    let down = bed.down();
    let results = results?;
    down?;
    print_report(&results);
    println!("{}", summary_line(&results));
    Ok(())
}

fn measure(
    bed: &mut bed::Bed,
    single: &HakoServe,
    code: &std::path::Path,
    opts: &Options,
) -> anyhow::Result<Results> {
    let cold = cold::run(bed, single, code, opts.runs)?;
    let drain = drain::run(bed, code, opts.drain_sites)?;
    let loss = loss::run(bed, code, opts.loss_sites)?;
    let propagation = propagation::run(bed, code, opts.apps, opts.changes)?;
    Ok(Results {
        cold,
        drain,
        loss,
        propagation,
    })
}

fn print_report(r: &Results) {
    print_table(
        "cold start",
        &[
            ("remote node (front → another node)", &r.cold.remote),
            ("single host (hako serve)", &r.cold.single),
        ],
    );
    let ratio = ratio(r.cold.remote.p50(), r.cold.single.p50());
    println!(
        "remote/single p50 ratio: {} (goal ≤ 1.2); remote instances ran on {:?}",
        ratio.map_or("-".into(), |x| format!("{x:.2}")),
        r.cold.remote_nodes
    );
    println!();
    println!(
        "drain: {} sites moved off the node in {:.2} s; {} of {} requests failed (goal 0); now on {:?}",
        r.drain.sites, r.drain.seconds, r.drain.failed, r.drain.requests, r.drain.moved_to
    );
    println!(
        "lost node: {} sites answer again {:.2} s after the kill; the lease expired {:.2} s after it: {:.2} s after the lease (goal ≤ 5); per site {:?}",
        r.loss.sites,
        r.loss.recovery_s,
        r.loss.lease_expired_s,
        r.loss.after_lease_s(),
        r.loss
            .per_site_s
            .iter()
            .map(|s| format!("{s:.2}"))
            .collect::<Vec<_>>()
    );
    print_table(
        &format!("route propagation, {} apps stored", r.propagation.apps),
        &[("store change → routed by the front", &r.propagation.changes)],
    );
    println!(
        "p99 {} ms (goal ≤ 100); {} apps written in {:.2} s, all routed {:.2} s after the first write",
        ms(r.propagation.changes.percentile_ms(99.0)),
        r.propagation.apps,
        r.propagation.write_s,
        r.propagation.ingest_s
    );
    println!(
        "cluster-extra: remote_cold_p95_ms={} single_cold_p95_ms={} node_loss_after_lease_s={:.2} ingest_s={:.2}",
        ms(r.cold.remote.p95()),
        ms(r.cold.single.p95()),
        r.loss.after_lease_s(),
        r.propagation.ingest_s
    );
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn summary_line(r: &Results) -> String {
    format!(
        "cluster: remote_cold_p50_ms={} single_cold_p50_ms={} drain_failed={} drain_s={:.1} node_loss_recovery_s={:.1} route_propagation_p99_ms={} apps={}",
        ms(r.cold.remote.p50()),
        ms(r.cold.single.p50()),
        r.drain.failed,
        r.drain.seconds,
        r.loss.recovery_s,
        ms(r.propagation.changes.percentile_ms(99.0)),
        r.propagation.apps
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::Samples;
    use std::time::Duration;

    fn samples(ms: &[u64]) -> Samples {
        let mut s = Samples::default();
        for m in ms {
            s.push(Duration::from_millis(*m));
        }
        s
    }

    #[test]
    fn summary_line_has_every_key_in_order() {
        let r = Results {
            cold: cold::Cold {
                remote: samples(&[20, 22, 30]),
                single: samples(&[12, 11, 13]),
                remote_nodes: Default::default(),
            },
            drain: drain::Drain {
                sites: 50,
                requests: 500,
                failed: 0,
                seconds: 3.04,
                moved_to: Default::default(),
            },
            loss: loss::Loss {
                sites: 5,
                recovery_s: 6.26,
                lease_expired_s: 5.0,
                per_site_s: vec![6.26],
            },
            propagation: propagation::Propagation {
                apps: 10_000,
                ingest_s: 0.8,
                write_s: 0.5,
                changes: samples(&[5, 7, 40]),
            },
        };
        assert_eq!(
            summary_line(&r),
            "cluster: remote_cold_p50_ms=22.0 single_cold_p50_ms=12.0 drain_failed=0 drain_s=3.0 \
             node_loss_recovery_s=6.3 route_propagation_p99_ms=40.0 apps=10000"
        );
        assert_eq!(ratio(Some(22.0), Some(11.0)), Some(2.0));
        assert_eq!(ratio(Some(1.0), None), None);
    }
}
