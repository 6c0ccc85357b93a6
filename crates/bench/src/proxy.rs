//! `cargo xtask bench proxy`: wrk against hako's proxy and against Debian's nginx as reverse
//! proxy, both in front of the same backend, one after the other in one run.
//!
//! The backend is one hako instance: an app whose command is the hyper backend of hako-proxy's
//! `bench_proxy` example (answers `hello world`), started by a first request and kept running
//! (30 min idle timeout), so no cold start is measured (checked: the app's cold count does
//! not move). Three proxies in front of it, all running for the whole bench:
//! 1. hako serve's proxy (what users get: the daemon's multi-threaded runtime, one worker
//!    per core), with the app's Host;
//! 2. nginx (`worker_processes` = the number of cores, the same as hako's worker threads;
//!    upstream keepalive) proxying to the instance's address;
//! 3. for reference, hako's proxy as the `bench_proxy` example in thread-per-core mode
//!    (`--per-core` = the number of cores) in front of the same instance.
//!
//! Each gets a 2 s warm-up, then `--rounds` (3) measured wrk runs of `--seconds` (10) with
//! 2 threads and 64 connections, the order rotating each round so that background load on
//! the machine falls on all of them alike; each figure is the median over the rounds.

mod nginx;
pub(super) mod process;
pub(super) mod wrk;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use rustix::process::Signal;

use self::process::Guarded;
use self::wrk::Figures;
use crate::daemon::HakoServe;
use crate::request;

/// The backend app.
const APP: &str = "bench-backend";
const HOST: &str = "backend.bench";

/// wrk's untimed warm-up of each proxy before the measured rounds.
const WARM_UP: Duration = Duration::from_secs(2);

/// Options of `bench proxy`.
#[derive(Debug, Clone, PartialEq)]
struct ProxyOptions {
    /// Length of each measured wrk run.
    seconds: u64,
    /// Measured runs per proxy (the median is reported).
    rounds: usize,
}

fn options(args: &[&str]) -> anyhow::Result<ProxyOptions> {
    let mut o = ProxyOptions {
        seconds: 10,
        rounds: 3,
    };
    let mut it = args.iter();
    while let Some(&arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (arg, None),
        };
        let mut value = || {
            inline
                .or_else(|| it.next().copied())
                .with_context(|| format!("{name} needs a value"))
        };
        match name {
            "--rounds" => {
                let v = value()?;
                o.rounds = v
                    .parse()
                    .ok()
                    .filter(|r| (1..=20).contains(r))
                    .with_context(|| format!("--rounds {v:?}: give 1 to 20"))?;
            }
            "--seconds" => {
                let v = value()?;
                o.seconds = v
                    .parse()
                    .ok()
                    .filter(|s| (1..=600).contains(s))
                    .with_context(|| format!("--seconds {v:?}: give 1 to 600"))?;
            }
            other => bail!("unknown option {other:?} (bench proxy takes --seconds S, --rounds N)"),
        }
    }
    Ok(o)
}

/// Parses the options and runs the benchmark.
pub fn main(args: &[&str]) -> anyhow::Result<()> {
    run(&options(args)?)
}

fn run(opts: &ProxyOptions) -> anyhow::Result<()> {
    if !hako_runtime::is_root() {
        bail!("the proxy benchmark runs hako serve and containers: run it as root");
    }
    crate::tools::require(&[
        ("wrk", "wrk"),
        ("nginx", "nginx-light"),
        ("nft", "nftables"),
        ("ip", "iproute2"),
    ])?;
    let hako_bin = crate::paths::hako_binary()?;
    let example = crate::paths::example(
        "bench_proxy",
        "cargo build --release -p hako-proxy --example bench_proxy",
    )?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let duration = Duration::from_secs(opts.seconds);

    // Dropped last (declared first): outlives hako serve, nginx and the example.
    let tmp = tempfile::Builder::new()
        .prefix(&format!("hako-bench-proxy-{}-", std::process::id()))
        .tempdir()
        .context("create a temp dir")?;
    let code = tmp.path().join("code");
    std::fs::create_dir(&code)?;
    std::fs::set_permissions(&code, std::fs::Permissions::from_mode(0o755))?;
    std::fs::copy(&example, code.join("bench_proxy"))
        .with_context(|| format!("copy {}", example.display()))?;
    std::fs::set_permissions(
        code.join("bench_proxy"),
        std::fs::Permissions::from_mode(0o755),
    )?;

    let serve = HakoServe::start(&hako_bin)?;
    let backend = start_backend(&serve, &code)?;
    eprintln!(
        "bench proxy: backend instance at {backend}; wrk -t{} -c{} -d{}s, {cores} cores \
         (hako prefix {}, proxy {})",
        wrk::THREADS,
        wrk::CONNECTIONS,
        opts.seconds,
        serve.prefix,
        serve.proxy
    );

    let nginx_dir = tmp.path().join("nginx");
    let nginx_addr = free_addr()?;
    let _nginx = nginx::start(&nginx_dir, nginx_addr, backend, cores)?;
    let (_per_core, per_core_addr) = start_per_core(&example, backend, cores)?;
    let targets = [
        Target {
            label: "hako serve",
            addr: serve.proxy,
            host: HOST,
        },
        Target {
            label: "nginx",
            addr: nginx_addr,
            host: HOST,
        },
        Target {
            label: "hako proxy per-core example",
            addr: per_core_addr,
            host: "bench.local",
        },
    ];
    for t in &targets {
        eprintln!("  {}: warm-up {}s", t.label, WARM_UP.as_secs());
        wrk::run(t.addr, t.host, WARM_UP).with_context(|| format!("{} warm-up", t.label))?;
    }
    let cold_before = serve.cold_count(APP)?;
    let mut runs: [Vec<Figures>; 3] = Default::default();
    for round in 0..opts.rounds {
        // Rotate the order each round so no proxy always runs first or last.
        for k in 0..targets.len() {
            let i = (k + round) % targets.len();
            let t = &targets[i];
            let f = wrk::run(t.addr, t.host, duration)
                .with_context(|| format!("{}, round {round}", t.label))?;
            eprintln!(
                "  round {round} {}: {:.0} req/s, p99 {:.2} ms ({} requests)",
                t.label, f.rps, f.p99_ms, f.requests
            );
            runs[i].push(f);
        }
    }
    if serve.cold_count(APP)? != cold_before || serve.instances(APP)?.len() != 1 {
        bail!("the backend instance was restarted during the runs: the figures mix in cold starts");
    }
    drop(serve);
    let [hako, nginx, per_core] = runs.map(|r| median(&r));

    println!();
    println!(
        "{:<40} {:>10} {:>9} {:>9}",
        "proxy (same backend)", "req/s", "p50 ms", "p99 ms"
    );
    for (label, f) in [
        (format!("hako serve ({cores} worker threads)"), &hako),
        (format!("nginx (worker_processes {cores})"), &nginx),
        (
            format!("hako proxy example (--per-core {cores})"),
            &per_core,
        ),
    ] {
        println!(
            "{label:<40} {:>10.0} {:>9.2} {:>9.2}",
            f.rps, f.p50_ms, f.p99_ms
        );
    }
    println!();
    println!(
        "proxy-per-core: hako_rps={:.0} ratio={:.2} hako_p99_ms={:.2}",
        per_core.rps,
        per_core.rps / nginx.rps,
        per_core.p99_ms
    );
    println!("{}", summary_line(&hako, &nginx));
    Ok(())
}

/// Creates the backend app, starts its instance with a first request and returns the
/// instance's address.
fn start_backend(serve: &HakoServe, code: &Path) -> anyhow::Result<SocketAddr> {
    serve.cli(&[
        "app",
        "create",
        APP,
        "--host",
        HOST,
        "--image",
        "base",
        "--code",
        code.to_str().context("the temp dir path is not UTF-8")?,
        "--cmd",
        "/app/bench_proxy backend --listen 0.0.0.0:$PORT",
        "--idle-timeout",
        "30m",
        "--memory",
        "256MiB",
    ])?;
    let (r, _) = request::get(serve.proxy, HOST, "/", &[], Duration::from_secs(30))?;
    if r.status != 200 || r.text() != "hello world" {
        bail!("the backend app answered {} {:?}", r.status, r.text());
    }
    let instances = serve.instances(APP)?;
    let [one] = instances.as_slice() else {
        bail!("expected one backend instance, found {}", instances.len());
    };
    one.addr
        .parse()
        .with_context(|| format!("instance address {:?}", one.addr))
}

/// The `bench_proxy` example as a thread-per-core proxy to `backend`; returns its address.
fn start_per_core(
    example: &Path,
    backend: SocketAddr,
    threads: usize,
) -> anyhow::Result<(Guarded, SocketAddr)> {
    let child = Command::new(example)
        .args(["proxy", "--listen", "127.0.0.1:0", "--backend"])
        .arg(backend.to_string())
        .args(["--per-core", &threads.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", example.display()))?;
    // SIGINT: the example stops on Ctrl-C.
    let mut g = Guarded::new("bench_proxy", child, Signal::INT);
    let line = g.read_stdout_line("proxy:")?;
    let addr = line
        .split_whitespace()
        .next()
        .and_then(|a| a.parse().ok())
        .with_context(|| format!("bench_proxy printed {line:?}, not an address"))?;
    Ok((g, addr))
}

/// A proxy under test.
struct Target {
    label: &'static str,
    addr: SocketAddr,
    /// The Host header it routes by.
    host: &'static str,
}

/// Each figure's median over the runs (upper median for an even count).
fn median(runs: &[Figures]) -> Figures {
    let mid = |f: fn(&Figures) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut requests: Vec<u64> = runs.iter().map(|f| f.requests).collect();
    requests.sort();
    Figures {
        rps: mid(|f| f.rps),
        p50_ms: mid(|f| f.p50_ms),
        p99_ms: mid(|f| f.p99_ms),
        requests: requests[requests.len() / 2],
    }
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(l.local_addr()?)
}

/// The last line: `proxy: hako_rps=… nginx_rps=… ratio=… hako_p99_ms=… nginx_p99_ms=…`.
fn summary_line(hako: &Figures, nginx: &Figures) -> String {
    format!(
        "proxy: hako_rps={:.0} nginx_rps={:.0} ratio={:.2} hako_p99_ms={:.2} nginx_p99_ms={:.2}",
        hako.rps,
        nginx.rps,
        hako.rps / nginx.rps,
        hako.p99_ms,
        nginx.p99_ms
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(rps: f64, p99_ms: f64) -> Figures {
        Figures {
            rps,
            p50_ms: p99_ms / 2.0,
            p99_ms,
            requests: (rps * 10.0) as u64,
        }
    }

    #[test]
    fn summary_line_compares_hako_with_nginx() {
        assert_eq!(
            summary_line(&figures(30000.4, 3.456), &figures(20000.0, 5.0)),
            "proxy: hako_rps=30000 nginx_rps=20000 ratio=1.50 hako_p99_ms=3.46 nginx_p99_ms=5.00"
        );
    }

    #[test]
    fn median_run_by_rps() {
        let m = median(&[
            figures(300.0, 1.0),
            figures(100.0, 9.0),
            figures(200.0, 5.0),
        ]);
        assert_eq!((m.rps, m.p99_ms, m.p50_ms), (200.0, 5.0, 2.5));
        assert_eq!(median(&[figures(7.0, 2.0)]).rps, 7.0);
    }

    #[test]
    fn parses_seconds_and_rounds() {
        assert_eq!(options(&[]).unwrap().seconds, 10);
        assert_eq!(options(&[]).unwrap().rounds, 3);
        assert_eq!(options(&["--rounds", "5"]).unwrap().rounds, 5);
        assert!(options(&["--rounds", "0"]).is_err());
        assert_eq!(options(&["--seconds", "3"]).unwrap().seconds, 3);
        assert_eq!(options(&["--seconds=20"]).unwrap().seconds, 20);
        assert!(options(&["--seconds", "0"]).is_err());
        assert!(options(&["--seconds"]).is_err());
        assert!(options(&["--runs", "3"]).is_err());
    }
}
