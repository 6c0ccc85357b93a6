//! The experiment's sites: `d00000`… served at `sN.density.test`, static (`busybox httpd`)
//! or PHP (`php -S`, every k-th site for the PHP share), with the short idle timeout that
//! makes cycling throw their instances away; registered through the API with the time of
//! each create + deploy taken.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use hako_model::AppSpec;
use serde_json::{Value, json};

use super::Options;
use crate::daemon::HakoServe;

/// API calls in flight at once while registering.
const API_THREADS: usize = 4;

/// Sites whose create time makes the "first" and "last" figures: 1% of them, at least 20.
fn edge(sites: usize) -> usize {
    (sites / 100).max(20).min(sites)
}

/// App name of site `i`.
pub fn app_name(i: usize) -> String {
    format!("d{i:05}")
}

/// Host name of site `i`.
pub fn host_name(i: usize) -> String {
    format!("s{i}.density.test")
}

/// Whether site `i` runs PHP: spread evenly, `share` of the sites.
pub fn is_php(i: usize, share: f64) -> bool {
    // Site i is PHP when the running count of PHP sites steps up at i.
    let php = |n: usize| (n as f64 * share).floor() as usize;
    php(i + 1) > php(i)
}

fn spec_json(i: usize, php: bool, idle_timeout: Duration) -> Value {
    let (cmd, memory, stop_signal) = if php {
        ("php -S 0.0.0.0:$PORT -t /app", "128MiB", "INT")
    } else {
        ("busybox httpd -f -p $PORT -h /app", "64MiB", "TERM")
    };
    json!({
        "name": app_name(i),
        "hosts": [host_name(i)],
        "image": "base",
        "cmd": cmd,
        "memory": memory,
        "pids": 32,
        "min": 0,
        "idle_timeout": crate::efficiency::sites::duration(idle_timeout),
        "stop_signal": stop_signal,
    })
}

/// The app spec of site `i`.
pub fn spec(i: usize, php: bool, idle_timeout: Duration) -> anyhow::Result<AppSpec> {
    serde_json::from_value(spec_json(i, php, idle_timeout))
        .with_context(|| format!("the spec of site {i} is not an app spec"))
}

/// What registering measured.
#[derive(Debug, Clone)]
pub struct Registered {
    pub seconds: f64,
    /// Mean create + deploy of the first and the last [`edge`] sites, ms.
    pub first_ms: f64,
    pub last_ms: f64,
    pub php: usize,
}

/// Creates and deploys every site; fails on the first refused call.
pub fn register(serve: &HakoServe, o: &Options, code: &Path) -> anyhow::Result<Registered> {
    let specs: Vec<AppSpec> = (0..o.sites)
        .map(|i| spec(i, is_php(i, o.php_share), o.idle_timeout))
        .collect::<anyhow::Result<_>>()?;
    let took: Vec<Mutex<f64>> = (0..o.sites).map(|_| Mutex::new(0.0)).collect();
    let next = AtomicUsize::new(0);
    let t0 = Instant::now();
    let report = (o.sites / 10).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..API_THREADS)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= o.sites {
                            return Ok(());
                        }
                        let t = Instant::now();
                        serve
                            .client
                            .create_app(&specs[i])
                            .with_context(|| format!("create site {i}"))?;
                        serve
                            .client
                            .deploy_dir(&app_name(i), code)
                            .with_context(|| format!("deploy site {i}"))?;
                        *took[i].lock().expect("slot") = t.elapsed().as_secs_f64() * 1e3;
                        if (i + 1).is_multiple_of(report) {
                            eprintln!(
                                "density: {} sites after {:.1} s (this one {:.1} ms)",
                                i + 1,
                                t0.elapsed().as_secs_f64(),
                                t.elapsed().as_secs_f64() * 1e3
                            );
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("register thread panicked"))
            .collect::<anyhow::Result<Vec<()>>>()
    })?;
    let took: Vec<f64> = took
        .into_iter()
        .map(|m| m.into_inner().expect("slot"))
        .collect();
    let n = edge(o.sites);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    Ok(Registered {
        seconds: t0.elapsed().as_secs_f64(),
        first_ms: mean(&took[..n]),
        last_ms: mean(&took[o.sites - n..]),
        php: (0..o.sites).filter(|i| is_php(*i, o.php_share)).count(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_sites_are_spread_by_share() {
        let n = |share: f64| (0..1000).filter(|i| is_php(*i, share)).count();
        assert_eq!(n(0.2), 200);
        assert_eq!(n(0.0), 0);
        assert_eq!(n(1.0), 1000);
        // Evenly: every fifth site at 20%.
        assert_eq!(
            (0..10).filter(|i| is_php(*i, 0.2)).collect::<Vec<_>>(),
            [4, 9]
        );
    }

    #[test]
    fn specs_are_valid_apps() {
        let mut s = spec(42, true, Duration::from_secs(2)).unwrap();
        s.validate().unwrap();
        assert_eq!(s.name, "d00042");
        assert_eq!(s.hosts, ["s42.density.test"]);
        assert!(s.cmd.starts_with("php -S"));
        let mut s = spec(7, false, Duration::from_millis(1500)).unwrap();
        s.validate().unwrap();
        assert!(s.cmd.starts_with("busybox httpd"));
    }

    #[test]
    fn edges_are_one_percent_at_least_twenty() {
        assert_eq!(edge(10_000), 100);
        assert_eq!(edge(200), 20);
        assert_eq!(edge(5), 5);
    }
}
