//! `cargo xtask bench cold-start`: cold requests through a real `hako serve` against the
//! same sites started with `crun run`, side by side in one run.
//!
//! hako: three apps on the host image, a static site (`busybox httpd`), a PHP site
//! (`php -S`) and the same static site with a warm pool of one (`--warm-pool 1`: its cold
//! starts release a container parked in advance), with `--idle-timeout 100ms` so every
//! instance stops soon after its request.
//! Before each measured request the bench polls the API until no instance of any bench app
//! runs, so the request finds none ready and starts one; it times `GET /` with the site's
//! Host from connecting to the last byte of the 200 response, and checks through the app's
//! metrics that the request was counted cold (exactly one more cold request). For the warm
//! pool site it first waits until the pool holds its parked container again, and checks
//! afterwards that the start event says it came from the pool.
//!
//! crun (the baseline): the same two servers with the same rootfs (the host image's
//! skeleton plus the host's /usr and /etc binds, read-only), the same code dir at /app and
//! the same memory, CPU and pids limits, spawned with `crun run` and polled until HTTP 200
//! (time from the spawn to the 200). The crun code is `bench runtime`'s, compiled in here
//! unchanged (see [`baseline`]). crun shares the host's network (no network set-up at all),
//! while hako's instances get their own network namespace and veth: the comparison is
//! conservative for hako.
//!
//! HTTPS (beside the static series): the same static app, the same cold start, reached over
//! `hako serve --https` with a certificate uploaded for its host (a test CA's): the time runs
//! from connecting through a full TLS 1.3 handshake (no session resumption, as a new visitor's
//! browser) to the last byte of the same HTTP/1.1 200. The http series is its peer in the same
//! run: the difference is what TLS adds to a cold start.
//!
//! Every start is spaced at least `--spacing-ms` (200 ms) after the previous one, and the
//! six series take turns within each round; one untimed round comes first.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use hako_image::{ImageStore, Rootfs};
use hako_runtime::Limits;

use hako_model::EventKind;
use hako_testkit::retry_until;

use crate::daemon::HakoServe;
use crate::options::Options;
use crate::request;
// `bench runtime`'s crun driver: crun from a thread in a private mount namespace where crun 1.8
// accepts this machine's hybrid cgroups.
use crate::runtime::Workload;
use crate::runtime::crun::{self, Crun};
use crate::samples::{Pacer, Samples, ms, print_table};

/// Default number of cold requests per series.
const DEFAULT_RUNS: usize = 100;

/// Longest wait for an idle instance to be stopped before the next request.
const IDLE_STOP_LIMIT: Duration = Duration::from_secs(15);

/// One hako site of the bench.
struct Site {
    app: &'static str,
    host: &'static str,
    cmd: &'static str,
    /// What its `GET /` answers.
    body: &'static str,
    /// Its `--warm-pool`.
    warm_pool: u32,
}

const STATIC: Site = Site {
    app: "bench-static",
    host: "static.bench",
    cmd: "busybox httpd -f -p $PORT -h /app",
    body: STATIC_BODY,
    warm_pool: 0,
};

const PHP: Site = Site {
    app: "bench-php",
    host: "php.bench",
    cmd: "php -S 0.0.0.0:$PORT -t /app",
    body: PHP_BODY,
    warm_pool: 0,
};

/// The static site with a warm pool of one.
const POOLED: Site = Site {
    app: "bench-pool",
    host: "pool.bench",
    warm_pool: 1,
    ..STATIC
};

const SITES: [&Site; 3] = [&STATIC, &PHP, &POOLED];

const STATIC_BODY: &str = "hako cold-start bench\n";
const PHP_BODY: &str = "hako php bench 42\n";

/// The same limits for hako's apps and crun's containers.
fn limits() -> Limits {
    Limits {
        memory_max: Some(256 << 20),
        cpu_cores: Some(1.0),
        pids_max: Some(128),
    }
}

/// The six series.
#[derive(Default)]
struct Results {
    hako_static: Samples,
    hako_https: Samples,
    hako_php: Samples,
    hako_pool: Samples,
    crun_static: Samples,
    crun_php: Samples,
}

/// Parses the options and runs the benchmark.
pub fn main(args: &[&str]) -> anyhow::Result<()> {
    run(&options(args)?)
}

/// `[--runs N] [--spacing-ms MS] [--verbose]`, with `--runs` 100 by default here and a
/// spacing of at least 200 ms.
fn options(args: &[&str]) -> anyhow::Result<Options> {
    let mut opts = Options::parse(args)?;
    if !args.iter().any(|a| a.starts_with("--runs")) {
        opts.runs = DEFAULT_RUNS;
    }
    if !opts.only.is_empty() {
        bail!("cold-start has no --only: it always measures its six series");
    }
    if opts.spacing < Duration::from_millis(200) {
        bail!("--spacing-ms must be at least 200 for cold starts to be comparable");
    }
    Ok(opts)
}

fn run(opts: &Options) -> anyhow::Result<()> {
    if !hako_runtime::is_root() {
        bail!("the cold-start benchmark runs containers: run it as root");
    }
    crate::tools::require(&[
        ("crun", "crun"),
        ("busybox", "busybox-static"),
        ("php", "php-cli"),
        ("nft", "nftables"),
        ("ip", "iproute2"),
    ])?;
    let hako_bin = crate::paths::hako_binary()?;

    // Dropped last (declared first): the code dir and images outlive hako and crun.
    let tmp = tempfile::Builder::new()
        .prefix(&format!("hako-bench-cold-{}-", std::process::id()))
        .tempdir()
        .context("create a temp dir")?;
    let code = tmp.path().join("code");
    write_code(&code)?;

    let serve = HakoServe::start_with_https(&hako_bin)?;
    for site in SITES {
        create_app(&serve, site, &code)?;
    }
    let tls = upload_cert(&serve, &STATIC, tmp.path())?;
    let crun = start_crun(tmp.path(), &code)?;
    eprintln!(
        "bench cold-start: {} rounds of 6 cold starts, {} ms apart (hako prefix {}, proxy {})",
        opts.runs,
        opts.spacing.as_millis(),
        serve.prefix,
        serve.proxy
    );

    let mut pacer = Pacer::new(opts.spacing);
    let mut r = Results::default();
    let mut port = free_port()?;
    for round in 0..=opts.runs {
        let keep = round > 0;
        let take = |name: &str, s: &mut Samples, d: Duration| {
            if opts.verbose {
                eprintln!("  {name} round {round}: {:.2} ms", d.as_secs_f64() * 1e3);
            }
            if keep {
                s.push(d);
            }
        };
        let d = hako_cold(&serve, &STATIC, &mut pacer, None, opts.verbose)
            .with_context(|| format!("hako static, round {round}"))?;
        take("hako static", &mut r.hako_static, d);
        let d = hako_cold(&serve, &STATIC, &mut pacer, Some(&tls), opts.verbose)
            .with_context(|| format!("hako static over https, round {round}"))?;
        take("hako static https", &mut r.hako_https, d);
        let d = hako_cold(&serve, &PHP, &mut pacer, None, opts.verbose)
            .with_context(|| format!("hako php, round {round}"))?;
        take("hako php", &mut r.hako_php, d);
        let d = hako_cold(&serve, &POOLED, &mut pacer, None, opts.verbose)
            .with_context(|| format!("hako warm pool, round {round}"))?;
        take("hako warm pool", &mut r.hako_pool, d);
        pacer.next();
        let d = crun
            .http_ready(
                Workload::Httpd {
                    bind: "127.0.0.1",
                    port,
                },
                port,
            )
            .with_context(|| format!("crun static, round {round}"))?;
        take("crun static", &mut r.crun_static, d);
        port = free_port()?;
        pacer.next();
        let d = crun
            .http_ready(
                Workload::Php {
                    bind: "127.0.0.1",
                    port,
                },
                port,
            )
            .with_context(|| format!("crun php, round {round}"))?;
        take("crun php", &mut r.crun_php, d);
        port = free_port()?;
        if keep && (round % 10 == 0 || round == opts.runs) {
            eprintln!("  {round}/{} rounds", opts.runs);
        }
    }
    // crun's containers and cgroups, then hako serve (SIGTERM, wait), then the temp dir.
    drop(crun);
    drop(serve);
    print_report(&r);
    Ok(())
}

/// One cold request to `site`: waits until no bench instance runs, keeps the spacing, then
/// times `GET /` (over HTTPS with `tls`, handshake included) and checks the body and that the
/// app counted exactly one more cold request.
fn hako_cold(
    serve: &HakoServe,
    site: &Site,
    pacer: &mut Pacer,
    tls: Option<&Arc<rustls::ClientConfig>>,
    verbose: bool,
) -> anyhow::Result<Duration> {
    for s in SITES {
        serve.wait_no_instances(s.app, IDLE_STOP_LIMIT)?;
    }
    if site.warm_pool > 0 {
        wait_parked(serve, site)?;
    }
    let cold_before = serve.cold_count(site.app)?;
    pacer.next();
    let started_before = hako_model::now_unix_ms();
    let limit = Duration::from_secs(30);
    let (resp, took) = match tls {
        None => request::get(serve.proxy, site.host, "/", &[], limit)?,
        Some(tls) => {
            let addr = serve.https.context("hako serve has no HTTPS listener")?;
            request::get_tls(addr, site.host, "/", tls, limit)?
        }
    };
    if resp.status != 200 || resp.text() != site.body {
        bail!(
            "{} answered {} {:?}, expected 200 {:?}",
            site.host,
            resp.status,
            resp.text(),
            site.body
        );
    }
    let cold_after = serve.cold_count(site.app)?;
    if cold_after != cold_before + 1 {
        bail!(
            "the request to {} was not a cold start (cold count {cold_before} → {cold_after})",
            site.app
        );
    }
    if site.warm_pool > 0 {
        let start = start_event_after(serve, site.app, started_before)?;
        if !start.reason.contains("from the warm pool") {
            bail!(
                "the start of {} did not use its warm pool: {}",
                site.app,
                start.reason
            );
        }
        if verbose {
            eprintln!("    {}", start.reason);
        }
    }
    Ok(took)
}

/// The app's latest start event of a time after `after_ms`; polled for, since the start is
/// recorded just after its instance is routed (the request does not wait for the record).
fn start_event_after(
    serve: &HakoServe,
    app: &str,
    after_ms: u64,
) -> anyhow::Result<hako_model::Event> {
    retry_until(
        &format!("the start event of {app}"),
        Duration::from_secs(5),
        Duration::from_millis(5),
        || {
            let events = serve.client.events(app, Some(20))?;
            anyhow::Ok(
                events
                    .into_iter()
                    .rev()
                    .find(|e| e.kind == EventKind::Start && e.time_unix_ms >= after_ms),
            )
        },
    )
}

/// Polls (every 5 ms) until the site's warm pool holds its parked containers again.
fn wait_parked(serve: &HakoServe, site: &Site) -> anyhow::Result<()> {
    retry_until(
        &format!("the warm pool of {} to refill", site.app),
        IDLE_STOP_LIMIT,
        Duration::from_millis(5),
        || {
            let m = serve.client.metrics(site.app)?;
            Ok((m["warm_pool_parked"].as_u64() == Some(site.warm_pool.into())).then_some(()))
        },
    )
}

fn create_app(serve: &HakoServe, site: &Site, code: &Path) -> anyhow::Result<()> {
    let code = code.to_str().context("the temp dir path is not UTF-8")?;
    let l = limits();
    let memory = format!("{}MiB", l.memory_max.unwrap_or(256 << 20) >> 20);
    let cpu = l.cpu_cores.unwrap_or(1.0).to_string();
    let pids = l.pids_max.unwrap_or(128).to_string();
    serve.cli(&[
        "app",
        "create",
        site.app,
        "--host",
        site.host,
        "--image",
        "base",
        "--code",
        code,
        "--cmd",
        site.cmd,
        "--idle-timeout",
        "100ms",
        "--memory",
        &memory,
        "--cpu",
        &cpu,
        "--pids",
        &pids,
    ])?;
    if site.warm_pool > 0 {
        // After the first release: the first parked container is made from it.
        serve.cli(&[
            "app",
            "update",
            site.app,
            "--warm-pool",
            &site.warm_pool.to_string(),
        ])?;
    }
    Ok(())
}

/// Uploads a test CA's certificate for `site`'s host (`hako app cert`) and returns a TLS
/// client that trusts that CA, offers HTTP/1.1 and never resumes a session.
fn upload_cert(
    serve: &HakoServe,
    site: &Site,
    dir: &Path,
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let ca = hako_testkit::pki::TestCa::new("hako bench CA");
    let issued = ca.issue(&[site.host]);
    let (cert, key) = (dir.join("site.pem"), dir.join("site.key"));
    std::fs::write(&cert, &issued.chain_pem)?;
    std::fs::write(&key, &issued.key_pem)?;
    let path = |p: &Path| {
        p.to_str()
            .context("the temp dir path is not UTF-8")
            .map(str::to_owned)
    };
    serve.cli(&[
        "app",
        "cert",
        site.app,
        "--cert",
        &path(&cert)?,
        "--key",
        &path(&key)?,
    ])?;
    let mut config = hako_testkit::https::client_config(&ca.pem, &[b"http/1.1"])?;
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// crun with the host image's rootfs (made in `dir`), the code dir and the same limits.
fn start_crun(dir: &Path, code: &Path) -> anyhow::Result<Crun> {
    let store = ImageStore::open(dir.join("images"))?;
    let (skeleton, binds) = match store.host("bench")?.rootfs() {
        Rootfs::Host { skeleton, binds } => (
            skeleton,
            binds.into_iter().map(|b| (b.source, b.target)).collect(),
        ),
        Rootfs::Layers(_) => bail!("a host image should be a skeleton with binds"),
    };
    let work = dir.join("crun");
    std::fs::create_dir(&work)?;
    Crun::new(crun::Setup {
        rootfs: skeleton,
        binds,
        app: code.to_path_buf(),
        limits: limits(),
        nofile: nofile(),
        work,
    })
}

/// hako's RLIMIT_NOFILE inside containers (65536, capped at our own hard limit), as `bench
/// runtime` gives crun.
fn nofile() -> u64 {
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
    hard.map_or(65536, |h| h.min(65536))
}

/// A loopback port nothing listens on right now (for crun's servers in the host network).
fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(l.local_addr()?.port())
}

/// The code both sites serve: /app/index.html (busybox) and /app/index.php (php -S).
fn write_code(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir(dir)?;
    std::fs::write(dir.join("index.html"), STATIC_BODY)?;
    std::fs::write(
        dir.join("index.php"),
        "<?php echo 'hako php bench ', 6 * 7, \"\\n\";\n",
    )?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    for f in ["index.html", "index.php"] {
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644))?;
    }
    Ok(())
}

fn print_report(r: &Results) {
    print_table(
        "cold start → full 200",
        &[
            ("hako static (busybox httpd)", &r.hako_static),
            (
                "hako static over HTTPS (+ TLS 1.3 handshake)",
                &r.hako_https,
            ),
            ("hako php (php -S)", &r.hako_php),
            ("hako static, warm pool of 1", &r.hako_pool),
            ("crun static (spawn → 200)", &r.crun_static),
            ("crun php (spawn → 200)", &r.crun_php),
        ],
    );
    let slow = Duration::from_millis(900);
    let n = r.hako_static.len() + r.hako_https.len() + r.hako_php.len() + r.hako_pool.len();
    let k = r.hako_static.count_at_least(slow)
        + r.hako_https.count_at_least(slow)
        + r.hako_php.count_at_least(slow)
        + r.hako_pool.count_at_least(slow);
    if k > 0 {
        println!(
            "- note: {k} of {n} hako cold requests took over 0.9 s (a 1 s kernel retry, e.g. \
             of ARP towards a new veth, shows up like this); they are in the p95 and max"
        );
    }
    println!();
    println!("{}", summary_line(r));
}

/// The last line: `cold-start: static_p50_ms=… … crun_php_p50_ms=… pool_p50_ms=… pool_p95_ms=…
/// https_static_p50_ms=… https_static_p95_ms=…`.
fn summary_line(r: &Results) -> String {
    format!(
        "cold-start: static_p50_ms={} static_p95_ms={} php_p50_ms={} php_p95_ms={} crun_static_p50_ms={} crun_php_p50_ms={} pool_p50_ms={} pool_p95_ms={} https_static_p50_ms={} https_static_p95_ms={}",
        ms(r.hako_static.p50()),
        ms(r.hako_static.p95()),
        ms(r.hako_php.p50()),
        ms(r.hako_php.p95()),
        ms(r.crun_static.p50()),
        ms(r.crun_php.p50()),
        ms(r.hako_pool.p50()),
        ms(r.hako_pool.p95()),
        ms(r.hako_https.p50()),
        ms(r.hako_https.p95()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_line_has_every_key_in_order() {
        let mut r = Results::default();
        for (s, v) in [
            (&mut r.hako_static, 3),
            (&mut r.hako_php, 12),
            (&mut r.crun_static, 25),
            (&mut r.crun_php, 40),
            (&mut r.hako_pool, 2),
            (&mut r.hako_https, 5),
        ] {
            s.push(Duration::from_millis(v));
        }
        assert_eq!(
            summary_line(&r),
            "cold-start: static_p50_ms=3.00 static_p95_ms=3.00 php_p50_ms=12.0 php_p95_ms=12.0 crun_static_p50_ms=25.0 crun_php_p50_ms=40.0 pool_p50_ms=2.00 pool_p95_ms=2.00 https_static_p50_ms=5.00 https_static_p95_ms=5.00"
        );
    }

    #[test]
    fn code_serves_both_sites() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("code");
        write_code(&d).unwrap();
        assert_eq!(
            std::fs::read_to_string(d.join("index.html")).unwrap(),
            STATIC.body
        );
        let php = std::fs::read_to_string(d.join("index.php")).unwrap();
        assert!(php.starts_with("<?php"), "{php}");
        assert!(STATIC.cmd.contains("$PORT") && PHP.cmd.contains("$PORT"));
        assert_eq!((POOLED.cmd, POOLED.body), (STATIC.cmd, STATIC.body));
        assert_eq!((STATIC.warm_pool, POOLED.warm_pool), (0, 1));
    }

    #[test]
    fn runs_default_to_100_and_spacing_is_checked() {
        assert_eq!(options(&[]).unwrap().runs, DEFAULT_RUNS);
        assert_eq!(options(&["--runs", "3"]).unwrap().runs, 3);
        assert_eq!(options(&["--runs=7"]).unwrap().runs, 7);
        assert!(options(&["--spacing-ms", "50"]).is_err());
        assert!(options(&["--only", "x"]).is_err());
    }
}
