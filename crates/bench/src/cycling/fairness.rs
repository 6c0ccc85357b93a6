//! One site flooded by wrk, another probed at a steady rate: its p99 alone and during the
//! flood. hako gives every instance the kernel's default CPU weight (cgroup v1 `cpu.shares`
//! 1024, v2 `cpu.weight` 100), so two busy instances share the CPU equally; the proxy and
//! everything outside hako's cgroups compete with them as ordinary processes.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::daemon::HakoServe;
use crate::efficiency::loadgen;
use crate::phases;

/// The probe: requests per second, and seconds.
const PROBE_RATE: f64 = 50.0;
const PROBE_SECS: f64 = 10.0;

/// What the fairness part measured.
pub struct Fairness {
    pub quiet_p99_ms: f64,
    pub flooded_p99_ms: f64,
    pub flood_rps: f64,
}

/// Two sites, a probe alone, then the probe beside wrk's flood of the other site.
pub fn run(serve: &HakoServe, tmp: &std::path::Path) -> anyhow::Result<Fairness> {
    for name in ["quiet", "flood"] {
        let code = tmp.join(format!("code-{name}"));
        phases::site_code(&code, 1)?;
        phases::create_app(serve, name, &code, &["--idle-timeout", "10m", "--max", "1"])?;
    }
    let probe = || -> anyhow::Result<f64> {
        let schedule = phases::constant(0.0, PROBE_SECS, PROBE_RATE);
        let config = loadgen::Config {
            proxy: serve.proxy,
            concurrency: 8,
            queue: 256,
            max_requests: schedule.len(),
            timeout: Duration::from_secs(10),
        };
        let requests = vec![phases::request("quiet.bench", "/index.html")];
        let report = loadgen::run(
            &config,
            &schedule,
            &requests,
            Instant::now(),
            &AtomicBool::new(false),
        )?;
        let failed = phases::failed(&report.outcomes, 0.0, PROBE_SECS);
        if failed > 0 || report.dropped > 0 {
            anyhow::bail!(
                "the quiet site failed {failed} requests ({} not sent)",
                report.dropped
            );
        }
        phases::p99_ms(&report.outcomes, 1.0, PROBE_SECS)
            .ok_or_else(|| anyhow::anyhow!("no probe requests"))
    };
    eprintln!("fairness: probing the quiet site alone, then beside wrk on the other");
    let quiet = probe()?;
    let (flooded, flood) = std::thread::scope(|scope| {
        let flood = scope.spawn(|| {
            crate::proxy::wrk::run(
                serve.proxy,
                "flood.bench",
                Duration::from_secs_f64(PROBE_SECS + 2.0),
            )
        });
        // wrk's connections open first.
        std::thread::sleep(Duration::from_millis(500));
        let flooded = probe();
        (flooded, flood.join().expect("wrk thread panicked"))
    });
    Ok(Fairness {
        quiet_p99_ms: quiet,
        flooded_p99_ms: flooded?,
        flood_rps: flood?.rps,
    })
}
