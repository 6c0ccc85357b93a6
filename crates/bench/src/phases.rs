//! What the autoscaler and cycling benchmarks share: a site whose requests take a known
//! time (a CGI that sleeps), an open-loop request schedule at stepped rates, the p99 of the
//! requests sent within a window of the run, and a wait for an app's event.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::daemon::HakoServe;
use crate::efficiency::loadgen::Outcome;

/// Writes a site's code into `dir`: `index.html` and `cgi-bin/work`, a CGI script that
/// answers after `work_ms` (sleeping: an app waiting on its database).
pub fn site_code(dir: &Path, work_ms: u64) -> anyhow::Result<()> {
    let cgi = dir.join("cgi-bin");
    std::fs::create_dir_all(&cgi)?;
    std::fs::write(dir.join("index.html"), "hello\n")?;
    let script = cgi.join("work");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nsleep {}\necho 'Content-Type: text/plain'\necho\necho \"$HAKO_INSTANCE\"\n",
            work_ms as f64 / 1000.0
        ),
    )?;
    for (p, mode) in [(dir, 0o755), (&cgi, 0o755), (&script, 0o755)] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))?;
    }
    std::fs::set_permissions(
        dir.join("index.html"),
        std::fs::Permissions::from_mode(0o644),
    )?;
    Ok(())
}

/// `rate` requests per second from `from` to `to` seconds, evenly spaced, for site 0.
pub fn constant(from: f64, to: f64, rate: f64) -> Vec<(f64, u32)> {
    let n = ((to - from) * rate).round() as usize;
    (0..n).map(|i| (from + i as f64 / rate, 0)).collect()
}

/// The raw keep-alive request the load generator sends.
pub fn request(host: &str, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: hako-bench\r\n\r\n").into_bytes()
}

/// The p99 (ms, nearest rank) of the time from when each request was due to its last byte,
/// over requests due in `[from, to)` seconds of the run; `None` without any.
pub fn p99_ms(outcomes: &[Outcome], from: f64, to: f64) -> Option<f64> {
    let mut v: Vec<f64> = outcomes
        .iter()
        .filter(|o| o.due >= from && o.due < to)
        .map(|o| f64::from(o.late + o.latency) * 1e3)
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = (0.99 * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

/// Requests due in `[from, to)` that did not get a 2xx answer.
pub fn failed(outcomes: &[Outcome], from: f64, to: f64) -> usize {
    outcomes
        .iter()
        .filter(|o| o.due >= from && o.due < to && !(200..300).contains(&o.status))
        .count()
}

/// Polls (every 20 ms, at most `limit`) until `app` has an event of `kind` matching `what`;
/// returns its time (Unix ms).
pub fn wait_event(
    serve: &HakoServe,
    app: &str,
    kind: hako_model::EventKind,
    limit: Duration,
    what: impl Fn(&str) -> bool,
) -> anyhow::Result<u64> {
    let deadline = Instant::now() + limit;
    loop {
        let events = serve.client.events(app, Some(1000))?;
        if let Some(e) = events.iter().find(|e| e.kind == kind && what(&e.reason)) {
            return Ok(e.time_unix_ms);
        }
        if Instant::now() >= deadline {
            bail!("no {kind:?} event of {app} within {limit:?}");
        }
        // The poll interval of a wait with a deadline.
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Seconds into a run that started at Unix time `t0_unix_ms`, of an event at `at_unix_ms`.
pub fn run_secs(t0_unix_ms: u64, at_unix_ms: u64) -> f64 {
    at_unix_ms.saturating_sub(t0_unix_ms) as f64 / 1e3
}

/// Creates app `name` (host `NAME.bench`) with code `dir` and the extra `hako app create`
/// options, and checks it answers.
pub fn create_app(serve: &HakoServe, name: &str, dir: &Path, extra: &[&str]) -> anyhow::Result<()> {
    let host = format!("{name}.bench");
    let mut args = vec![
        "app",
        "create",
        name,
        "--host",
        &host,
        "--image",
        "base",
        "--code",
        dir.to_str().context("the temp dir path is not UTF-8")?,
        "--cmd",
        "busybox httpd -f -p $PORT -h /app",
    ];
    args.extend_from_slice(extra);
    serve.cli(&args)?;
    let (r, _) = crate::request::get(
        serve.proxy,
        &host,
        "/index.html",
        &[],
        Duration::from_secs(30),
    )?;
    if r.status != 200 {
        bail!("{name} answered {} {:?}", r.status, r.text());
    }
    Ok(())
}

/// Polls `check` every 20 ms until it holds, at most `limit`.
pub fn wait_until(
    limit: Duration,
    what: &str,
    mut check: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while !check()? {
        if Instant::now() >= deadline {
            bail!("{what}: not within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}
