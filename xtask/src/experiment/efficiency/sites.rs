//! The experiment's sites on a real `hako serve`, through its JSON API: creating them (static
//! `busybox httpd` or `php -S`), switching every site's policy between runs, and reading their
//! request metrics (cold and warm counts, wait for a start).

use std::collections::HashSet;
use std::ops::Range;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::workload::Kind;
use crate::bench::daemon::HakoServe;

/// API calls in flight at once when changing every site.
const API_THREADS: usize = 4;

/// What the static sites serve.
pub const STATIC_BODY: &str = "hako efficiency experiment\n";

/// The sites of one experiment.
pub struct Sites<'a> {
    serve: &'a HakoServe,
    /// App names, by site number.
    pub names: Vec<String>,
    /// Host names, by site number.
    pub hosts: Vec<String>,
}

/// App name of site `i`.
pub fn app_name(i: usize) -> String {
    format!("e{i:05}")
}

/// Host name of site `i`.
pub fn host_name(i: usize) -> String {
    format!("s{i}.eff.test")
}

/// The app spec of a site: the host image, its server, small limits, `idle_timeout` (real).
pub fn spec(i: usize, kind: Kind, idle_timeout: Duration) -> Value {
    let (cmd, memory, stop_signal) = match kind {
        Kind::Static => ("busybox httpd -f -p $PORT -h /app", "64MiB", "TERM"),
        Kind::Php => ("php -S 0.0.0.0:$PORT -t /app", "128MiB", "INT"),
    };
    json!({
        "name": app_name(i),
        "hosts": [host_name(i)],
        "image": "base",
        "cmd": cmd,
        "memory": memory,
        "pids": 32,
        "min": 0,
        "idle_timeout": duration(idle_timeout),
        "stop_signal": stop_signal,
    })
}

/// A duration as the API writes it (whole milliseconds).
pub fn duration(d: Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}

/// Writes the code every site gets: index.html (busybox) and index.php (php -S), readable by
/// the instances' user.
pub fn write_code(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("index.html"), STATIC_BODY)?;
    std::fs::write(
        dir.join("index.php"),
        "<?php echo 'hako efficiency experiment ', $_SERVER['HTTP_HOST'] ?? '', \"\\n\";\n",
    )?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    for f in ["index.html", "index.php"] {
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644))?;
    }
    Ok(())
}

/// A site's request counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub cold: u64,
    pub warm: u64,
    /// 5xx answers (from the app or the proxy).
    pub errors: u64,
    /// Cold requests' total wait for a start, milliseconds.
    pub wait_ms: f64,
    /// The longest wait so far, milliseconds.
    pub wait_max_ms: f64,
}

impl Counts {
    fn from_metrics(m: &Value) -> anyhow::Result<Counts> {
        let n = |k: &str| {
            m[k].as_u64()
                .with_context(|| format!("metrics without {k}: {m}"))
        };
        let wait = &m["wait"];
        Ok(Counts {
            cold: n("cold")?,
            warm: n("warm")?,
            errors: n("status_5xx")?,
            wait_ms: wait["count"].as_u64().unwrap_or(0) as f64
                * wait["mean_ms"].as_f64().unwrap_or(0.0),
            wait_max_ms: wait["max_ms"].as_f64().unwrap_or(0.0),
        })
    }

    /// The change from `before` to `self` (the maximum is kept as is).
    pub fn since(&self, before: &Counts) -> Counts {
        Counts {
            cold: self.cold - before.cold,
            warm: self.warm - before.warm,
            errors: self.errors - before.errors,
            wait_ms: self.wait_ms - before.wait_ms,
            wait_max_ms: self.wait_max_ms,
        }
    }
}

impl<'a> Sites<'a> {
    /// Creates one app per site with its code, all with `min` 0 and `idle_timeout`.
    pub fn create(
        serve: &'a HakoServe,
        kinds: &[Kind],
        code: &Path,
        idle_timeout: Duration,
    ) -> anyhow::Result<Sites<'a>> {
        let code = code.to_str().context("the code dir is not UTF-8")?;
        let specs: Vec<Value> = kinds
            .iter()
            .enumerate()
            .map(|(i, k)| spec(i, *k, idle_timeout))
            .collect();
        let t = Instant::now();
        parallel(specs.len(), |i| {
            serve.api_send("POST", "/v1/apps", &specs[i])?;
            serve.api_send(
                "POST",
                &format!("/v1/apps/{}/releases", app_name(i)),
                &json!({ "dir": code }),
            )?;
            Ok(())
        })?;
        eprintln!(
            "experiment: created {} sites in {:.1} s",
            kinds.len(),
            t.elapsed().as_secs_f64()
        );
        Ok(Sites {
            serve,
            names: (0..kinds.len()).map(app_name).collect(),
            hosts: (0..kinds.len()).map(host_name).collect(),
        })
    }

    /// PATCHes every site with `patch`.
    pub fn update_all(&self, patch: &Value) -> anyhow::Result<()> {
        parallel(self.names.len(), |i| self.update(i, patch))
    }

    /// PATCHes site `i`.
    pub fn update(&self, i: usize, patch: &Value) -> anyhow::Result<()> {
        self.serve
            .api_send("PATCH", &format!("/v1/apps/{}", self.names[i]), patch)?;
        Ok(())
    }

    /// Raises the minimum of the sites in `range` to 1 and waits until each has a ready
    /// instance.
    pub fn raise_min(&self, range: Range<usize>, deadline: Instant) -> anyhow::Result<()> {
        let first = range.start;
        parallel(range.len(), |k| {
            self.update(first + k, &json!({ "min": 1 }))
        })?;
        loop {
            let ready: HashSet<String> = self
                .serve
                .all_instances()?
                .iter()
                .filter(|i| i["state"] == "ready")
                .filter_map(|i| i["app"].as_str().map(str::to_string))
                .collect();
            let missing = range
                .clone()
                .filter(|i| !ready.contains(&self.names[*i]))
                .count();
            if missing == 0 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{missing} always-on sites have no ready instance in time: see `hako app events`"
                );
            }
            // The poll interval, not a readiness guess.
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every site's request counters now.
    pub fn counts(&self) -> anyhow::Result<Vec<Counts>> {
        let mut out = vec![Counts::default(); self.names.len()];
        let slots: Vec<std::sync::Mutex<Counts>> =
            out.iter().map(|c| std::sync::Mutex::new(*c)).collect();
        parallel(self.names.len(), |i| {
            let m = self
                .serve
                .api_get(&format!("/v1/apps/{}/metrics", self.names[i]))?;
            *slots[i].lock().expect("slot") = Counts::from_metrics(&m)?;
            Ok(())
        })?;
        for (o, s) in out.iter_mut().zip(slots) {
            *o = s.into_inner().expect("slot");
        }
        Ok(out)
    }
}

/// Runs `f(0..n)` on [`API_THREADS`] threads; the first error wins.
fn parallel(n: usize, f: impl Fn(usize) -> anyhow::Result<()> + Sync) -> anyhow::Result<()> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..API_THREADS.min(n.max(1)))
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= n {
                            return Ok(());
                        }
                        f(i)?;
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("API thread panicked"))
            .collect::<anyhow::Result<Vec<()>>>()
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_valid_apps() {
        let s = spec(7, Kind::Php, Duration::from_millis(12_500));
        assert_eq!(s["name"], "e00007");
        assert_eq!(s["hosts"][0], "s7.eff.test");
        assert_eq!(s["idle_timeout"], "12500ms");
        assert_eq!(s["stop_signal"], "INT");
        let mut app: hako_model::AppSpec = serde_json::from_value(s).unwrap();
        app.validate().unwrap();
        let mut app: hako_model::AppSpec =
            serde_json::from_value(spec(0, Kind::Static, Duration::from_secs(50))).unwrap();
        app.validate().unwrap();
        assert!(app.cmd.starts_with("busybox httpd"));
    }

    #[test]
    fn counts_from_metrics_and_differences() {
        let m = json!({"cold": 3, "warm": 10, "status_5xx": 1,
            "wait": {"count": 3, "mean_ms": 20.0, "max_ms": 40.0}});
        let c = Counts::from_metrics(&m).unwrap();
        assert_eq!((c.cold, c.warm, c.errors), (3, 10, 1));
        assert_eq!(c.wait_ms, 60.0);
        let d = c.since(&Counts {
            cold: 1,
            warm: 4,
            errors: 0,
            wait_ms: 10.0,
            wait_max_ms: 5.0,
        });
        assert_eq!(
            (d.cold, d.warm, d.wait_ms, d.wait_max_ms),
            (2, 6, 50.0, 40.0)
        );
        assert!(Counts::from_metrics(&json!({"warm": 1})).is_err());
    }

    #[test]
    fn parallel_runs_every_index_once_and_reports_errors() {
        let seen: Vec<std::sync::atomic::AtomicU32> = (0..50)
            .map(|_| std::sync::atomic::AtomicU32::new(0))
            .collect();
        parallel(50, |i| {
            seen[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        })
        .unwrap();
        assert!(
            seen.iter()
                .all(|s| s.load(std::sync::atomic::Ordering::Relaxed) == 1)
        );
        let e = parallel(10, |i| if i == 3 { bail!("three") } else { Ok(()) }).unwrap_err();
        assert_eq!(e.to_string(), "three");
    }
}
