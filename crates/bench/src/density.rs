//! `cargo xtask experiment density`: how many sites one host registers and serves with
//! cycling on — 10,000 by default, static `busybox httpd` and PHP `php -S` — on a
//! bench-started `hako serve` whose short idle timeout throws instances away again.
//!
//! 1. **Register** ([`sites`]): every site is created and deployed through the API, four calls
//!    in flight; the time of one create + deploy is taken for every site, so the first sites'
//!    time (an empty daemon: the in-run baseline) stands beside the last ones'.
//! 2. **Drive** ([`drive`]): each site gets one request (a cold start: it has no instance),
//!    in a shuffled order at an even rate over the window (9 minutes for 10,000), from the
//!    bounded open-loop generator; the first tenth's cold latency is the baseline of the last
//!    tenth's.
//! 3. **Measure** ([`objects`]): every 500 ms the running instances (instance cgroups), the
//!    daemon's RSS and open fds, the host's memory in use above the start, the veths and the
//!    network namespaces of the run; the nftables rules every 5 s.
//! 4. **Drain and stop**: every instance must stop by its idle timeout, then the daemon stops
//!    and nothing of the run may stay ([`objects::leaks`]: cgroups, netns, links, mounts,
//!    processes, state dirs).
//!
//! Last line: `density: sites=… register_s=… create_first_ms=… create_last_ms=… peak_running=…
//! peak_mib=… daemon_rss_mib=… peak_veths=… peak_cgroups=… peak_netns=… nft_rules=…
//! peak_fds=… cold_p50_ms=… cold_p99_ms=… cold_first_p99_ms=… static_p99_ms=… php_p99_ms=…
//! failed=… leaked=…`.

mod drive;
mod objects;
mod sites;

use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::daemon::HakoServe;
use crate::efficiency::neighbours::NeighbourLimits;

/// The experiment's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub sites: usize,
    /// Share of PHP sites (the rest are static).
    pub php_share: f64,
    /// The sites' idle timeout: how long an instance outlives its last request.
    pub idle_timeout: Duration,
    /// How long driving every site takes.
    pub window: Duration,
    /// Requests in flight at most.
    pub concurrency: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            sites: 10_000,
            php_share: 0.2,
            idle_timeout: Duration::from_secs(2),
            window: Duration::from_secs(9 * 60),
            concurrency: 32,
        }
    }
}

/// How long the instances get to stop after the window, beyond the idle timeout.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

const USAGE: &str = "usage: hako-bench density [--quick] [--sites N] [--php-share F] [--idle-timeout D] [--window D] [--concurrency N]";

impl Options {
    /// `--quick`: 200 sites over 20 s.
    fn quick() -> Options {
        Options {
            sites: 200,
            window: Duration::from_secs(20),
            ..Options::default()
        }
    }

    pub fn parse(args: &[&str]) -> anyhow::Result<Options> {
        let mut o = if args.contains(&"--quick") {
            Options::quick()
        } else {
            Options::default()
        };
        let mut it = args.iter();
        while let Some(&a) = it.next() {
            if a == "--quick" {
                continue;
            }
            let v = it
                .next()
                .with_context(|| format!("{a} needs a value\n{USAGE}"))?;
            let dur = || {
                v.parse::<hako_model::HumanDuration>()
                    .map(|d| d.0)
                    .with_context(|| format!("{a}: {v:?} is no duration"))
            };
            match a {
                "--sites" => o.sites = v.parse().context("--sites: a count")?,
                "--php-share" => o.php_share = v.parse().context("--php-share: a fraction")?,
                "--idle-timeout" => o.idle_timeout = dur()?,
                "--window" => o.window = dur()?,
                "--concurrency" => o.concurrency = v.parse().context("--concurrency: a count")?,
                _ => bail!("unknown option {a}\n{USAGE}"),
            }
        }
        if o.sites == 0 || o.concurrency == 0 {
            bail!("--sites and --concurrency must be at least 1");
        }
        if !(0.0..=1.0).contains(&o.php_share) {
            bail!("--php-share is a fraction from 0 to 1");
        }
        if o.window.is_zero() {
            bail!("--window must be longer than 0");
        }
        Ok(o)
    }
}

/// Parses the options and runs the experiment.
pub fn main(args: &[&str]) -> anyhow::Result<()> {
    let o = Options::parse(args)?;
    if !hako_runtime::is_root() {
        bail!("the density experiment runs hako serve and containers: run it as root");
    }
    crate::tools::require(&[
        ("busybox", "busybox-static"),
        ("php", "php-cli"),
        ("nft", "nftables"),
        ("ip", "iproute2"),
    ])?;
    let hako = crate::paths::hako_binary()?;
    let tmp = tempfile::Builder::new()
        .prefix("hako-bench-density-")
        .tempdir()
        .context("create a temp dir")?;
    let code = tmp.path().join("code");
    crate::efficiency::sites::write_code(&code)?;
    // Dropped after the daemon (declared first): the limits hold until every instance is gone.
    let _neighbours = NeighbourLimits::raise()?;
    let names = hako_testkit::Names::unique('d').with_subnet(subnet(std::process::id()));
    let serve = HakoServe::start_with(&hako, names)?;
    let pid = serve.pid().context("hako serve has no pid")?;
    let prefix = serve.prefix.clone();
    let data_dir = serve.data_dir().to_path_buf();
    eprintln!(
        "density: hako serve on {} (prefix {prefix}, subnet {}), {} sites, {:.0}% PHP, idle timeout {:?}, window {:?}",
        serve.proxy,
        serve.subnet,
        o.sites,
        o.php_share * 100.0,
        o.idle_timeout,
        o.window
    );
    let sampler = objects::Sampler::start(&prefix, pid)?;
    let reg = sites::register(&serve, &o, &code)?;
    eprintln!(
        "density: registered {} sites in {:.1} s (create+deploy {:.1} ms first, {:.1} ms last)",
        o.sites, reg.seconds, reg.first_ms, reg.last_ms
    );
    let run = drive::run(&serve, &o)?;
    eprintln!(
        "density: drove {} sites in {:.1} s: {} failed, {} not sent",
        o.sites, run.seconds, run.failed, run.dropped
    );
    if !run.errors.is_empty() {
        eprintln!("  first errors: {:?}", run.errors);
    }
    let t = Instant::now();
    let drained = objects::wait_no_instances(&prefix, o.idle_timeout + DRAIN_LIMIT);
    let drain_s = t.elapsed().as_secs_f64();
    let peak = sampler.finish()?;
    drop(serve);
    let leaks = objects::leaks(&prefix, pid, &data_dir);
    for l in &leaks {
        eprintln!("density: left behind: {l}");
    }
    if let Err(e) = &drained {
        eprintln!("density: {e:#}");
    }

    println!();
    println!("{:<34} {:>12}", "measure", "value");
    let rows: [(&str, String); 9] = [
        ("sites (PHP)", format!("{} ({})", o.sites, reg.php)),
        ("register, s", format!("{:.1}", reg.seconds)),
        (
            "create+deploy first/last, ms",
            format!("{:.1} / {:.1}", reg.first_ms, reg.last_ms),
        ),
        (
            "cold p50 / p99, ms",
            format!("{} / {}", ms(run.cold_p50_ms), ms(run.cold_p99_ms)),
        ),
        (
            "cold p99 first / last tenth, ms",
            format!("{} / {}", ms(run.first_p99_ms), ms(run.last_p99_ms)),
        ),
        (
            "cold p99 static / PHP, ms",
            format!("{} / {}", ms(run.static_p99_ms), ms(run.php_p99_ms)),
        ),
        ("peak running instances", peak.running.to_string()),
        (
            "peak host MiB / daemon RSS MiB",
            format!("{:.0} / {:.0}", peak.host_mib, peak.daemon_rss_mib),
        ),
        (
            "peak veths / cgroups / netns / fds",
            format!(
                "{} / {} / {} / {}",
                peak.veths, peak.cgroups, peak.netns, peak.fds
            ),
        ),
    ];
    for (k, v) in rows {
        println!("{k:<34} {v:>12}");
    }
    println!(
        "instances gone {drain_s:.1} s after the last request; nft rules at most {}",
        peak.nft_rules
    );
    println!(
        "density: sites={} register_s={:.1} create_first_ms={:.1} create_last_ms={:.1} peak_running={} peak_mib={:.0} daemon_rss_mib={:.0} peak_veths={} peak_cgroups={} peak_netns={} nft_rules={} peak_fds={} cold_p50_ms={} cold_p99_ms={} cold_first_p99_ms={} static_p99_ms={} php_p99_ms={} failed={} leaked={}",
        o.sites,
        reg.seconds,
        reg.first_ms,
        reg.last_ms,
        peak.running,
        peak.host_mib,
        peak.daemon_rss_mib,
        peak.veths,
        peak.cgroups,
        peak.netns,
        peak.nft_rules,
        peak.fds,
        ms(run.cold_p50_ms),
        ms(run.cold_p99_ms),
        ms(run.first_p99_ms),
        ms(run.static_p99_ms),
        ms(run.php_p99_ms),
        run.failed as u64 + run.dropped,
        leaks.len() + usize::from(drained.is_err()),
    );
    if !leaks.is_empty() || drained.is_err() {
        bail!("the run left kernel objects or instances behind (see above)");
    }
    Ok(())
}

/// A /21 per pid (2,046 addresses: the instances running at once and their replacements),
/// apart from the efficiency experiment's (10.160–167).
pub fn subnet(pid: u32) -> String {
    let n = pid % 256;
    format!("10.{}.{}.0/21", 168 + n / 32, (n % 32) * 8)
}

fn ms(v: Option<f64>) -> String {
    v.map_or("none".into(), |v| format!("{v:.1}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse() {
        let o = Options::parse(&[]).unwrap();
        assert_eq!(o, Options::default());
        assert_eq!(o.sites, 10_000);
        let q = Options::parse(&["--quick", "--sites", "50"]).unwrap();
        assert_eq!((q.sites, q.window), (50, Duration::from_secs(20)));
        let o = Options::parse(&["--idle-timeout", "500ms", "--window", "1m"]).unwrap();
        assert_eq!(o.idle_timeout, Duration::from_millis(500));
        assert_eq!(o.window, Duration::from_secs(60));
        assert!(Options::parse(&["--sites"]).is_err());
        assert!(Options::parse(&["--sites", "0"]).is_err());
        assert!(Options::parse(&["--php-share", "2"]).is_err());
        assert!(Options::parse(&["--bogus", "1"]).is_err());
    }

    #[test]
    fn subnets_are_apart_from_the_efficiency_experiments() {
        assert_eq!(subnet(0), "10.168.0.0/21");
        assert_eq!(subnet(255), "10.175.248.0/21");
        assert_ne!(subnet(1), subnet(2));
    }
}
