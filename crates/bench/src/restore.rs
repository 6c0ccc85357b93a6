//! `hako-bench restore` (`cargo xtask bench restore`): an instance's first response after a cold start against after
//! a restore from a checkpoint, for a `php -S` site and a slow-init app (python that fills
//! 100 MiB and works 0.5 s before it listens), side by side in one run, through hako's agent
//! (real containers, the installed CRIU).
//!
//! Each app gets one checkpoint first (untimed: a private instance started, warmed with one
//! request, dumped, tried). Then, per round and spaced `--spacing-ms` (200 ms) apart, the
//! four series take turns: a launch that makes a new container (`StartMode::Cold`: neither
//! warm pool nor checkpoint) or one that restores (`StartMode::Restore`), timed from the
//! launch call to the end of the first `GET /` answering 200; the instance is stopped after
//! each sample. The last line:
//! `restore-probe: php_cold_p50_ms=… php_restore_p50_ms=… slow_cold_p50_ms=… slow_restore_p50_ms=…`.
//! [`measure`] is the function a larger benchmark (`bench mitigation`) can call.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hako_agent::{Agent, AgentConfig, StartMode};
use hako_model::{App, AppSpec};
use hako_runtime::RuntimeConfig;

use crate::options::Options;
use crate::samples::{Pacer, Samples, ms, print_table};

const DEFAULT_RUNS: usize = 20;

/// The slow-init app: 100 MiB of memory it writes, 0.5 s of work, then it listens.
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

/// First-response times of the four series.
#[derive(Debug, Default)]
pub struct Figures {
    pub php_cold: Samples,
    pub php_restore: Samples,
    pub slow_cold: Samples,
    pub slow_restore: Samples,
}

pub fn main(args: &[&str]) -> anyhow::Result<()> {
    hako_testkit::require_root();
    crate::tools::require(&[("php", "php-cli"), ("python3", "python3")])?;
    let mut opts = Options::parse(args)?;
    if !args.iter().any(|a| a.starts_with("--runs")) {
        opts.runs = DEFAULT_RUNS;
    }
    let f = measure(&opts)?;
    print_table(
        "first response (launch → 200)",
        &[
            ("php -S cold", &f.php_cold),
            ("php -S restore", &f.php_restore),
            ("slow-init cold", &f.slow_cold),
            ("slow-init restore", &f.slow_restore),
        ],
    );
    println!(
        "restore-probe: php_cold_p50_ms={} php_restore_p50_ms={} slow_cold_p50_ms={} slow_restore_p50_ms={}",
        ms(f.php_cold.p50()),
        ms(f.php_restore.p50()),
        ms(f.slow_cold.p50()),
        ms(f.slow_restore.p50())
    );
    Ok(())
}

/// Runs the four series with `opts.runs` samples each (see the module doc).
pub fn measure(opts: &Options) -> anyhow::Result<Figures> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(measure_async(opts))
}

async fn measure_async(opts: &Options) -> anyhow::Result<Figures> {
    let tmp = tempfile::Builder::new()
        .prefix("hako-bench-restore")
        .tempdir()?;
    let mut cfg = AgentConfig::new(tmp.path(), RuntimeConfig::unique('b', "/run/hako"));
    cfg.criu_dir = Some(hako_criu::default_dir());
    let (agent, _exits) = Agent::new(cfg).context("start an agent")?;
    let r = series(&agent, tmp.path(), opts).await;
    agent.shutdown(Duration::from_secs(2)).await;
    r
}

async fn series(
    agent: &Arc<Agent>,
    dir: &std::path::Path,
    opts: &Options,
) -> anyhow::Result<Figures> {
    agent.images().host("base")?;
    if let Err(e) = agent.criu() {
        bail!("CRIU does not work here: {e}");
    }
    let php = app(
        agent,
        dir,
        "bench-php",
        "php -S 0.0.0.0:$PORT -t /app",
        "index.php",
        "<?php echo \"hello\\n\";\n",
        "INT",
    )?;
    let slow = app(
        agent,
        dir,
        "bench-slow",
        "python3 /app/app.py",
        "app.py",
        SLOW_APP,
        "TERM",
    )?;
    for a in [&php, &slow] {
        let series = if a.spec.name == "bench-php" {
            "php"
        } else {
            "slow"
        };
        if !opts.only.is_empty() && !opts.only.iter().any(|o| o == series) {
            continue;
        }
        let c = agent
            .checkpoint(a)
            .await
            .with_context(|| format!("checkpoint {}", a.spec.name))?;
        println!(
            "checkpoint of {}: {:.1} MiB, cold ready {:.0} ms, dump {:.0} ms, trial restore ready {:.1} ms",
            a.spec.name,
            c.bytes as f64 / (1 << 20) as f64,
            c.cold_ready_ms,
            c.dump_ms,
            c.restore_ready_ms
        );
    }
    let mut f = Figures::default();
    let mut pacer = Pacer::new(opts.spacing);
    // One untimed round first (page cache, the CRIU thread, the bridge).
    for round in 0..=opts.runs {
        for (a, mode, samples) in [
            (&php, StartMode::Cold, &mut f.php_cold),
            (&php, StartMode::Restore, &mut f.php_restore),
            (&slow, StartMode::Cold, &mut f.slow_cold),
            (&slow, StartMode::Restore, &mut f.slow_restore),
        ] {
            let series = if a.spec.name == "bench-php" {
                "php"
            } else {
                "slow"
            };
            if !opts.only.is_empty() && !opts.only.iter().any(|o| o == series) {
                continue;
            }
            pacer.next();
            let t = Instant::now();
            let info = agent
                .launch_with(a, mode)
                .await
                .map_err(|e| anyhow::anyhow!("{} ({mode:?}): {e}: {}", a.spec.name, e.log_tail))?;
            let addr: SocketAddr = info.addr.parse()?;
            crate::http::wait_for_200(addr, Instant::now() + Duration::from_secs(10))?;
            let took = t.elapsed();
            if round > 0 {
                samples.push(took);
            }
            if opts.verbose {
                println!(
                    "{} {mode:?}: {:.1} ms ({})",
                    a.spec.name,
                    took.as_secs_f64() * 1000.0,
                    info.start_path
                );
            }
            agent.stop(&info.id, Duration::from_secs(2)).await;
        }
    }
    Ok(f)
}

/// An app on the host image with one file of code.
fn app(
    agent: &Agent,
    dir: &std::path::Path,
    name: &str,
    cmd: &str,
    file: &str,
    code: &str,
    stop_signal: &str,
) -> anyhow::Result<App> {
    let src = dir.join(format!("src-{name}"));
    std::fs::create_dir_all(&src)?;
    std::fs::write(src.join(file), code)?;
    agent.releases().create(name, 1, &src, "bench")?;
    let mut spec: AppSpec = serde_json::from_value(serde_json::json!({
        "name": name, "hosts": [format!("{name}.example")], "image": "base", "cmd": cmd,
        "stop_signal": stop_signal, "memory": "256MiB", "start_timeout": "20s",
    }))?;
    spec.validate()?;
    Ok(App {
        spec,
        uid: String::new(),
        release: Some(1),
        generation: 0,
        created_unix: 0,
        updated_unix: 0,
        database_grant: None,
        tenant: None,
    })
}
