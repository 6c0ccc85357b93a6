//! The experiment's sites on a real `hako serve`, through its API (hako-api's client):
//! creating them (static `busybox httpd`, `php -S`, or WordPress on Apache + mod_php with its
//! own MariaDB database, installed by WordPress's own installer), switching every site's
//! policy between runs, reading their request metrics (cold and warm counts, wait for a
//! start), and deleting the WordPress sites with their databases at the end.

use std::collections::HashSet;
use std::ops::Range;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use hako_api::AppPatch;
use hako_model::{AppSpec, HumanDuration, InstanceState};
use hako_testkit::retry_until;
use serde_json::{Value, json};

use super::workload::Kind;
use crate::daemon::HakoServe;

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
    /// The WordPress sites (their databases go with them).
    wordpress: Vec<usize>,
}

impl Drop for Sites<'_> {
    /// Deletes the WordPress sites and drops their databases (also after a failure): the
    /// shared MariaDB keeps nothing of the experiment.
    fn drop(&mut self) {
        for &i in &self.wordpress {
            if let Err(e) = self
                .serve
                .client
                .delete_app_with(&self.names[i], hako_api::DatabaseOnDelete::Drop)
            {
                eprintln!(
                    "experiment: warning: could not delete {} and its database: {e}",
                    self.names[i]
                );
            }
        }
    }
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
pub fn spec(i: usize, kind: Kind, idle_timeout: Duration) -> anyhow::Result<AppSpec> {
    serde_json::from_value(spec_json(i, kind, idle_timeout))
        .with_context(|| format!("the spec of site {i} is not an app spec"))
}

/// [`spec`] as the JSON the API takes.
fn spec_json(i: usize, kind: Kind, idle_timeout: Duration) -> Value {
    let mut spec = json!({
        "name": app_name(i),
        "hosts": [host_name(i)],
        "image": "base",
        "min": 0,
        "idle_timeout": duration(idle_timeout),
    });
    let kind_settings = match kind {
        Kind::Static => json!({
            "cmd": "busybox httpd -f -p $PORT -h /app",
            "memory": "64MiB",
            "pids": 32,
        }),
        Kind::Php => json!({
            "cmd": "php -S 0.0.0.0:$PORT -t /app",
            "memory": "128MiB",
            "pids": 32,
            "stop_signal": "INT",
        }),
        // A small shared-hosting plan: Apache's prefork workers (16 at most) in 256 MiB.
        Kind::WordPress => json!({
            "image": "wordpress",
            "cmd": "hako-wordpress",
            "memory": "256MiB",
            "pids": 64,
            "database": true,
            "env": {"WP_HTTP_BLOCK_EXTERNAL": "1"},
        }),
    };
    for (k, v) in kind_settings.as_object().expect("an object") {
        spec[k] = v.clone();
    }
    spec
}

/// A duration as the API writes it (whole milliseconds).
pub fn duration(d: Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}

/// A change of a site's minimum of instances and, if given, its idle timeout.
pub fn patch(min: Option<u32>, idle_timeout: Option<Duration>) -> AppPatch {
    patch_with(min, idle_timeout, None)
}

/// [`patch`], also setting the keep-alive (the real predictor's mode).
pub fn patch_with(
    min: Option<u32>,
    idle_timeout: Option<Duration>,
    keep_alive: Option<hako_model::KeepAliveMode>,
) -> AppPatch {
    AppPatch {
        keep_alive,
        min,
        // Whole milliseconds, as the API keeps them (and at least one).
        idle_timeout: idle_timeout
            .map(|d| HumanDuration(Duration::from_millis(d.as_millis().max(1) as u64))),
        ..AppPatch::default()
    }
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

    /// Adds `d` to these counts (the longest wait is the longer one).
    pub fn add(&mut self, d: &Counts) {
        self.cold += d.cold;
        self.warm += d.warm;
        self.errors += d.errors;
        self.wait_ms += d.wait_ms;
        self.wait_max_ms = self.wait_max_ms.max(d.wait_max_ms);
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
    /// Creates one app per site, all with `min` 0 and `idle_timeout`: static and PHP sites
    /// with `code`, WordPress sites on the `wordpress` image (which the daemon must have),
    /// each installed by WordPress's installer through the proxy.
    pub fn create(
        serve: &'a HakoServe,
        kinds: &[Kind],
        code: &Path,
        idle_timeout: Duration,
    ) -> anyhow::Result<Sites<'a>> {
        let specs: Vec<AppSpec> = kinds
            .iter()
            .enumerate()
            .map(|(i, k)| spec(i, *k, idle_timeout))
            .collect::<anyhow::Result<_>>()?;
        let t = Instant::now();
        let sites = Sites {
            serve,
            names: (0..kinds.len()).map(app_name).collect(),
            hosts: (0..kinds.len()).map(host_name).collect(),
            wordpress: kinds
                .iter()
                .enumerate()
                .filter(|(_, k)| **k == Kind::WordPress)
                .map(|(i, _)| i)
                .collect(),
        };
        parallel(specs.len(), |i| {
            serve.client.create_app(&specs[i])?;
            match kinds[i] {
                Kind::WordPress => crate::wordpress::install(serve.proxy, &sites.hosts[i])
                    .with_context(|| format!("install WordPress on {}", sites.names[i])),
                Kind::Static | Kind::Php => {
                    serve.client.deploy_dir(&app_name(i), code)?;
                    Ok(())
                }
            }
        })?;
        eprintln!(
            "experiment: created {} sites ({} WordPress, installed) in {:.1} s",
            kinds.len(),
            sites.wordpress.len(),
            t.elapsed().as_secs_f64()
        );
        Ok(sites)
    }

    /// Changes every site with `patch`.
    pub fn update_all(&self, patch: &AppPatch) -> anyhow::Result<()> {
        parallel(self.names.len(), |i| self.update(i, patch))
    }

    /// Changes site `i` with `patch`.
    pub fn update(&self, i: usize, patch: &AppPatch) -> anyhow::Result<()> {
        self.serve.client.update_app(&self.names[i], patch)?;
        Ok(())
    }

    /// Raises the minimum of the sites in `range` to 1 and waits until each has a ready
    /// instance.
    pub fn raise_min(&self, range: Range<usize>, deadline: Instant) -> anyhow::Result<()> {
        let first = range.start;
        parallel(range.len(), |k| {
            self.update(first + k, &patch(Some(1), None))
        })?;
        retry_until(
            "every always-on site to have a ready instance (see `hako app events`)",
            deadline.saturating_duration_since(Instant::now()),
            Duration::from_millis(100),
            || {
                let ready: HashSet<String> = self
                    .serve
                    .client
                    .instances(None)?
                    .into_iter()
                    .filter(|i| i.state == InstanceState::Ready)
                    .map(|i| i.app)
                    .collect();
                let all = range.clone().all(|i| ready.contains(&self.names[i]));
                Ok(all.then_some(()))
            },
        )
    }

    /// Every site's request counters now.
    pub fn counts(&self) -> anyhow::Result<Vec<Counts>> {
        let mut out = vec![Counts::default(); self.names.len()];
        let slots: Vec<std::sync::Mutex<Counts>> =
            out.iter().map(|c| std::sync::Mutex::new(*c)).collect();
        parallel(self.names.len(), |i| {
            let m = self.serve.client.metrics(&self.names[i])?;
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
    use anyhow::bail;

    #[test]
    fn specs_are_valid_apps() {
        let s = spec_json(7, Kind::Php, Duration::from_millis(12_500));
        assert_eq!(s["name"], "e00007");
        assert_eq!(s["hosts"][0], "s7.eff.test");
        assert_eq!(s["idle_timeout"], "12500ms");
        assert_eq!(s["stop_signal"], "INT");
        let mut app = spec(7, Kind::Php, Duration::from_millis(12_500)).unwrap();
        app.validate().unwrap();
        assert_eq!(
            app.idle_timeout,
            HumanDuration(Duration::from_millis(12_500))
        );
        let mut app = spec(0, Kind::Static, Duration::from_secs(50)).unwrap();
        app.validate().unwrap();
        assert!(app.cmd.starts_with("busybox httpd"));
        let mut wp = spec(3, Kind::WordPress, Duration::from_secs(50)).unwrap();
        wp.validate().unwrap();
        assert!(wp.database);
        assert_eq!(
            (wp.image.name.as_str(), wp.cmd.as_str()),
            ("wordpress", "hako-wordpress")
        );
        assert_eq!(
            wp.env.get("WP_HTTP_BLOCK_EXTERNAL").map(String::as_str),
            Some("1")
        );
        assert_eq!(wp.hosts, ["s3.eff.test"]);
    }

    #[test]
    fn patches_change_only_what_is_given() {
        let p = patch(Some(1), None);
        assert_eq!((p.min, p.idle_timeout), (Some(1), None));
        assert!(AppPatch { min: None, ..p }.is_empty());
        let p = patch(None, Some(Duration::from_micros(12_500_700)));
        assert_eq!(
            p.idle_timeout,
            Some(HumanDuration(Duration::from_millis(12_500)))
        );
        assert_eq!(p.min, None);
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
