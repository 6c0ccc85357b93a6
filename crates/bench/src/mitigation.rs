//! `hako-bench mitigation` (`cargo xtask bench mitigation`): what each way of hiding a cold
//! start gives the first visitor, and what the predictive keep-alive gives a bursty,
//! partly periodic set of sites — all through one real `hako serve` with real containers and
//! the installed CRIU.
//!
//! **First request.** Four apps — a static site (busybox httpd), a `php -S` site, WordPress
//! (Apache + mod_php, its own MariaDB database) and a slow-init app (python that fills
//! 100 MiB and works 0.5 s before it listens) — each measured four ways, side by side in one
//! run: time from sending `GET /` through hako's proxy to the response's first byte when the
//! app has no instance and starts **cold** (a new container, `--restore never`), from the
//! **warm pool** (`--warm-pool 1`), **restored** from the daemon's own checkpoint
//! (`--restore always`, made in the background after a start), and with a running instance
//! (**min=1**, warm). Between samples the app's instance stops (1 s idle timeout).
//!
//! **Trace.** Four kinds of site replayed for `--trace-seconds` (default 420 s): periodic
//! every 6 s and every 32 s (cron-like, ±2% jitter), and bursty (1–4 requests 200 ms
//! apart, exponential gaps of 15 s and 40 s mean). Each is served twice at once, as one site
//! with the fixed keep-alive and one with `--keep-alive predictive`, both with a 5 s idle
//! timeout, the same schedule sent to both. Per variant: the cold ratio (daemon's metrics), p99
//! added latency (each request's first byte minus a warm request's p50, at least 0) and
//! instance-seconds (the instances running, sampled every 250 ms).
//!
//! Last line: `mitigation: static_pool_p50_ms=… php_restore_p50_ms=… wp_cold_p50_ms=…
//! wp_restore_p50_ms=… wp_warm_p50_ms=… slow_cold_p50_ms=… slow_restore_p50_ms=…
//! restore_speedup=… predict_p99_added_ms=… fixed_p99_added_ms=…` (`restore_speedup`: the
//! slow-init app's cold p50 over its restore p50).

mod trace;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::daemon::HakoServe;
use crate::samples::{Pacer, Samples, ms, print_table};
use crate::wordpress::{IMAGES, first_byte};

/// The slow-init app (as in `bench restore`).
const SLOW_APP: &str = r#"
import http.server, os, time
ballast = bytearray(100 << 20)
for i in range(0, len(ballast), 4096):
    ballast[i] = 1
t = time.time()
while time.time() - t < 0.5:
    pass
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ready\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("0.0.0.0", int(os.environ["PORT"])), H).serve_forever()
"#;

struct Opts {
    runs: usize,
    trace_seconds: u64,
    wordpress: bool,
    /// Run only this part: first (the four start paths), trace, shared.
    only: Option<String>,
}

fn options(args: &[&str]) -> anyhow::Result<Opts> {
    let mut o = Opts {
        runs: 10,
        trace_seconds: 420,
        wordpress: true,
        only: None,
    };
    let mut it = args.iter();
    while let Some(&a) = it.next() {
        let mut num = |what: &str| -> anyhow::Result<u64> {
            let v = it.next().with_context(|| format!("{what} needs a value"))?;
            v.parse()
                .ok()
                .filter(|n| *n > 0)
                .with_context(|| format!("{what} {v:?}: give a positive number"))
        };
        match a {
            "--runs" => o.runs = num("--runs")? as usize,
            "--trace-seconds" => o.trace_seconds = num("--trace-seconds")?,
            "--no-wordpress" => o.wordpress = false,
            "--only" => {
                let v = it.next().context("--only needs first, trace or shared")?;
                if !matches!(*v, "first" | "trace" | "shared") {
                    bail!("--only {v:?}: give first, trace or shared");
                }
                o.only = Some(v.to_string());
            }
            other => bail!(
                "unknown option {other:?} (known: --runs N, --trace-seconds S, --no-wordpress, --only first|trace)"
            ),
        }
    }
    Ok(o)
}

/// Slots of the shared warm pool of the second daemon.
const SHARED_POOL: usize = 4;

/// A `hako serve` config file: the machine's CRIU and `shared_pool` slots.
struct Config(tempfile::NamedTempFile);

impl Config {
    fn new(shared_pool: usize) -> anyhow::Result<Config> {
        let f = tempfile::Builder::new()
            .prefix("hako-bench-mitigation")
            .suffix(".toml")
            .tempfile()?;
        std::fs::write(
            f.path(),
            format!(
                "criu_dir = {:?}\nshared_pool = {shared_pool}\n",
                hako_criu::default_dir().display().to_string()
            ),
        )?;
        Ok(Config(f))
    }

    fn start(&self, hako: &Path) -> anyhow::Result<HakoServe> {
        let path = self.0.path().to_str().context("temp path is not UTF-8")?;
        HakoServe::from_builder(
            HakoServe::builder(hako)
                .shared_images(Path::new(IMAGES))
                .args(&["--config", path]),
        )
    }
}

/// One app's starts with the shared warm pool: from a slot, and restored into one.
#[derive(Default)]
struct Shared {
    cold: Samples,
    from_slot: usize,
    restore: Samples,
    restored: usize,
}

/// One app of the first-request measures.
struct Site {
    /// Short name in the table and the last line.
    key: &'static str,
    app: String,
    host: String,
}

/// The four series of one app.
#[derive(Default)]
struct Series {
    cold: Samples,
    pool: Samples,
    restore: Samples,
    warm: Samples,
    /// Restore samples that did restore (the others fell back).
    restored: usize,
}

pub fn main(args: &[&str]) -> anyhow::Result<()> {
    let opts = options(args)?;
    if !hako_testkit::is_root() {
        bail!("the mitigation benchmark runs hako serve and containers: run it as root");
    }
    crate::tools::require(&[
        ("php", "php-cli"),
        ("python3", "python3"),
        ("curl", "curl"),
        ("debootstrap", "debootstrap"),
        ("mariadb", "mariadb-client"),
    ])?;
    let hako = crate::paths::hako_binary()?;
    let config = Config::new(0)?;
    let serve = config.start(&hako)?;
    let code = tempfile::tempdir()?;

    let mut first: Vec<(Site, Series)> = Vec::new();
    if opts.only.is_none() || opts.only.as_deref() == Some("first") {
        for site in sites(&serve, code.path(), opts.wordpress)? {
            eprintln!("bench mitigation: {}", site.key);
            let series = measure(&serve, &site, opts.runs)?;
            first.push((site, series));
        }
    }
    if first.iter().any(|(s, _)| s.key == "wp") {
        // Its database goes with it.
        serve.cli(&["app", "delete", "m-wp", "--yes", "--drop-database"])?;
    }
    let trace = if opts.only.is_none() || opts.only.as_deref() == Some("trace") {
        Some(trace::run(&serve, code.path(), opts.trace_seconds)?)
    } else {
        None
    };
    drop(serve);
    // The shared warm pool: a daemon whose node keeps slots, the same apps (not WordPress).
    let mut shared: Vec<(Site, Shared)> = Vec::new();
    if opts.only.is_none() || opts.only.as_deref() == Some("shared") {
        let config = Config::new(SHARED_POOL)?;
        let serve = config.start(&hako)?;
        let code = tempfile::tempdir()?;
        for site in sites(&serve, code.path(), false)? {
            eprintln!("bench mitigation: {} with the shared warm pool", site.key);
            let s = measure_shared(&serve, &site, opts.runs)?;
            shared.push((site, s));
        }
    }

    let mut rows: Vec<(String, &Samples)> = Vec::new();
    for (site, s) in &first {
        rows.push((format!("{} cold", site.key), &s.cold));
        rows.push((format!("{} warm pool", site.key), &s.pool));
        rows.push((
            format!("{} restore ({} restored)", site.key, s.restored),
            &s.restore,
        ));
        rows.push((format!("{} min=1 (warm)", site.key), &s.warm));
    }
    for (site, s) in &shared {
        rows.push((
            format!("{} shared pool ({} from a slot)", site.key, s.from_slot),
            &s.cold,
        ));
        rows.push((
            format!("{} restore into a slot ({} restored)", site.key, s.restored),
            &s.restore,
        ));
    }
    let refs: Vec<(&str, &Samples)> = rows.iter().map(|(n, s)| (n.as_str(), *s)).collect();
    print_table("first request through hako's proxy, first byte", &refs);
    if let Some(t) = &trace {
        println!();
        t.print();
    }
    let get = |key: &str, f: fn(&Series) -> &Samples| {
        first
            .iter()
            .find(|(s, _)| s.key == key)
            .and_then(|(_, s)| f(s).p50())
    };
    let slow_cold = get("slow", |s| &s.cold);
    let slow_restore = get("slow", |s| &s.restore);
    let speedup = match (slow_cold, slow_restore) {
        (Some(c), Some(r)) if r > 0.0 => format!("{:.1}", c / r),
        _ => "n/a".into(),
    };
    println!();
    println!(
        "mitigation: static_pool_p50_ms={} php_restore_p50_ms={} wp_cold_p50_ms={} wp_restore_p50_ms={} wp_warm_p50_ms={} slow_cold_p50_ms={} slow_restore_p50_ms={} restore_speedup={speedup} predict_p99_added_ms={} fixed_p99_added_ms={}",
        ms(get("static", |s| &s.pool)),
        ms(get("php", |s| &s.restore)),
        ms(get("wp", |s| &s.cold)),
        ms(get("wp", |s| &s.restore)),
        ms(get("wp", |s| &s.warm)),
        ms(slow_cold),
        ms(slow_restore),
        ms(trace.as_ref().map(|t| t.predictive.p99_added_ms)),
        ms(trace.as_ref().map(|t| t.fixed.p99_added_ms)),
    );
    Ok(())
}

/// Creates the four apps (WordPress with its image, database and installer run).
fn sites(serve: &HakoServe, code: &Path, wordpress: bool) -> anyhow::Result<Vec<Site>> {
    let add = |key: &'static str, cmd: &str, file: &str, body: &str, extra: &[&str]| {
        let dir = code.join(key);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(file), body)?;
        readable(&dir, file)?;
        let app = format!("m-{key}");
        let host = format!("{app}.example");
        let dir_s = dir.to_str().context("code path is not UTF-8")?.to_string();
        let mut args = vec![
            "app",
            "create",
            &app,
            "--host",
            &host,
            "--image",
            "base",
            "--cmd",
            cmd,
            "--idle-timeout",
            "1s",
            "--restore",
            "never",
            "--code",
            &dir_s,
        ];
        args.extend_from_slice(extra);
        serve.cli(&args)?;
        anyhow::Ok(Site { key, app, host })
    };
    let mut out = vec![
        add(
            "static",
            hako_testkit::site::STATIC_CMD,
            "index.html",
            "<h1>hello</h1>\n",
            &[],
        )?,
        add(
            "php",
            "php -S 0.0.0.0:$PORT -t /app",
            "index.php",
            "<?php echo \"hello\\n\";\n",
            &["--stop-signal", "INT"],
        )?,
        add(
            "slow",
            "python3 /app/app.py",
            "app.py",
            SLOW_APP,
            &["--memory", "512MiB", "--start-timeout", "20s"],
        )?,
    ];
    if wordpress {
        out.push(wordpress_site(serve)?);
    }
    Ok(out)
}

/// WordPress: the image (built once per machine, cached), its database, its installer run.
fn wordpress_site(serve: &HakoServe) -> anyhow::Result<Site> {
    crate::wordpress::build_image(serve, "bench mitigation")?;
    let (app, host) = ("m-wp".to_string(), "m-wp.example".to_string());
    serve.cli(&[
        "app",
        "create",
        &app,
        "--host",
        &host,
        "--image",
        "wordpress",
        "--database",
        "--cmd",
        "hako-wordpress",
        "--env",
        "WP_HTTP_BLOCK_EXTERNAL=1",
        "--memory",
        "1GiB",
        "--idle-timeout",
        "1s",
        "--restore",
        "never",
    ])?;
    crate::wordpress::install(serve.proxy, &host)?;
    Ok(Site {
        key: "wp",
        app,
        host,
    })
}

/// The code dir 0755 and its file 0644: readable by the instances' user.
fn readable(dir: &Path, file: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    std::fs::set_permissions(dir.join(file), std::fs::Permissions::from_mode(0o644))
}

/// The four series of one app, `runs` samples each.
fn measure(serve: &HakoServe, site: &Site, runs: usize) -> anyhow::Result<Series> {
    let app = site.app.as_str();
    let update = |more: &[&str]| -> anyhow::Result<()> {
        let mut a = vec!["app", "update", app];
        a.extend_from_slice(more);
        serve.cli(&a)?;
        Ok(())
    };
    let mut s = Series::default();
    let mut pacer = Pacer::new(Duration::from_millis(200));
    let mut cold_once = |s: &mut Samples| -> anyhow::Result<hako_model::StartPath> {
        serve.wait_no_instances(app, Duration::from_secs(60))?;
        pacer.next();
        s.push(first_byte(serve.proxy, &site.host, "/")?);
        let path = serve
            .instances(app)?
            .last()
            .map(|i| i.start_path)
            .unwrap_or_default();
        Ok(path)
    };
    // One untimed start first (page cache, the image's files).
    cold_once(&mut Samples::default())?;
    for _ in 0..runs {
        cold_once(&mut s.cold)?;
    }
    update(&["--warm-pool", "1"])?;
    for _ in 0..runs {
        wait_parked(serve, app)?;
        cold_once(&mut s.pool)?;
    }
    update(&["--warm-pool", "0", "--restore", "always"])?;
    wait_checkpoint(serve, app)?;
    for _ in 0..runs {
        if cold_once(&mut s.restore)? == hako_model::StartPath::Restore {
            s.restored += 1;
        }
    }
    update(&["--restore", "never", "--min", "1"])?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while serve.instances(app)?.is_empty() {
        if Instant::now() > deadline {
            bail!("{app}: its min=1 instance did not start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    first_byte(serve.proxy, &site.host, "/")?;
    for _ in 0..runs {
        pacer.next();
        s.warm.push(first_byte(serve.proxy, &site.host, "/")?);
    }
    update(&["--min", "0"])?;
    Ok(s)
}

/// Starts from a slot of the shared warm pool, then restores into one.
fn measure_shared(serve: &HakoServe, site: &Site, runs: usize) -> anyhow::Result<Shared> {
    let app = site.app.as_str();
    let mut s = Shared::default();
    let mut pacer = Pacer::new(Duration::from_millis(200));
    let mut once = |samples: &mut Samples| -> anyhow::Result<hako_model::StartPath> {
        serve.wait_no_instances(app, Duration::from_secs(60))?;
        wait_slot(serve, app)?;
        pacer.next();
        samples.push(first_byte(serve.proxy, &site.host, "/")?);
        Ok(serve
            .instances(app)?
            .last()
            .map(|i| i.start_path)
            .unwrap_or_default())
    };
    once(&mut Samples::default())?;
    for _ in 0..runs {
        if once(&mut s.cold)? == hako_model::StartPath::Shared {
            s.from_slot += 1;
        }
    }
    serve.cli(&["app", "update", app, "--restore", "always"])?;
    wait_checkpoint(serve, app)?;
    for _ in 0..runs {
        if once(&mut s.restore)? == hako_model::StartPath::Restore {
            s.restored += 1;
        }
    }
    Ok(s)
}

/// Polls until the node's shared warm pool holds a slot.
fn wait_slot(serve: &HakoServe, app: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = serve.client.metrics(app).unwrap_or_default();
        // Before the app's first request it has no metrics: the pool is filled at start.
        if m.is_null() || m["shared_pool_parked"].as_u64().unwrap_or(0) > 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("no slot in the shared warm pool after 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls until the app's warm pool holds a parked container.
fn wait_parked(serve: &HakoServe, app: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = serve.client.metrics(app).unwrap_or_default();
        if m["warm_pool_parked"].as_u64().unwrap_or(0) > 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{app}: no parked container after 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls until the daemon made the app's checkpoint and its starts restore.
fn wait_checkpoint(serve: &HakoServe, app: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let c = serve.client.checkpoint(app)?;
        if c["restores"] == true {
            eprintln!(
                "bench mitigation: {app}: checkpoint of {} MiB; {}",
                c["checkpoint"]["bytes"].as_u64().unwrap_or(0) >> 20,
                c["reason"].as_str().unwrap_or("")
            );
            return Ok(());
        }
        if c["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("no checkpoint of this version:"))
        {
            bail!("{app}: {}", c["reason"]);
        }
        if Instant::now() > deadline {
            bail!("{app}: no checkpoint after 180 s: {c}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
