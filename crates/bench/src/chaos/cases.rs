//! The five faults on one host's `hako serve`: an app's processes killed, the daemon killed
//! and started again, the MariaDB server killed and started again, the data dir's filesystem
//! full, memory pressure from a hog.

use std::time::Instant;

use anyhow::bail;

use super::report::{self, Fault, Outcome, Row};
use super::{FULL_BURST, HOLD, Options, STATIC_APP, World, hog, start_serve, target};

pub(super) fn run_single_host_cases(w: &mut World<'_>, opts: &Options) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    if opts.wants("app-kill") {
        rows.push(w.case("app-kill", |w| {
            let ids: Vec<String> = w
                .serve
                .client()
                .instances(Some(STATIC_APP))?
                .into_iter()
                .map(|i| i.id)
                .collect();
            let start = w.probes.now();
            let killed = kill_instances(&ids)?;
            Ok((
                Fault { start, lift: start },
                format!("kill -9 of {killed} processes of {} instance(s)", ids.len()),
            ))
        })?);
    }
    if opts.wants("serve-kill") {
        rows.push(w.case("serve-kill", |w| {
            let start = w.probes.now();
            w.serve.kill();
            let lift = w.probes.now();
            let t = Instant::now();
            w.serve = start_serve(w.hako, &w.data, &w.names, &w.serve_args, false)?;
            w.probes.retarget(target(&w.serve));
            Ok((
                Fault { start, lift },
                format!(
                    "kill -9 of hako serve; the new one served after {:.2} s",
                    t.elapsed().as_secs_f64()
                ),
            ))
        })?);
    }
    if opts.wants("mariadb-kill") {
        rows.push(w.case("mariadb-kill", |w| {
            let db = w.db.as_mut().expect("a database server");
            let start = w.probes.now();
            db.kill();
            let lift = w.probes.now();
            let t = Instant::now();
            db.launch()?;
            Ok((
                Fault { start, lift },
                format!(
                    "kill -9 of mariadbd; it answered again after {:.2} s",
                    t.elapsed().as_secs_f64()
                ),
            ))
        })?);
    }
    if opts.wants("disk-full") {
        rows.push(w.case("disk-full", |w| {
            let fs = w.fs.as_ref().expect("the data dir's filesystem");
            let bytes = fs.fill()?;
            let start = w.probes.now();
            let held = Instant::now();
            // The store's log may still have room inside files it already has: write until
            // the store has to grow and is refused (bounded), so that the refusal is measured.
            let mut burst = 0;
            while burst < FULL_BURST {
                burst += 1;
                if w.probes.api_write_now().is_some_and(|s| !(200..300).contains(&s)) {
                    break;
                }
            }
            // The rest of the fault's length.
            std::thread::sleep(HOLD.saturating_sub(held.elapsed()));
            let statuses = refusals(&w.probes.outcomes(), start);
            fs.free()?;
            let lift = w.probes.now();
            Ok((
                Fault { start, lift },
                format!(
                    "data dir full ({} MiB filler) for {:.1} s, {burst} more API writes; refused: {statuses}",
                    bytes >> 20,
                    lift - start
                ),
            ))
        })?);
    }
    if opts.wants("memory") {
        rows.push(w.case("memory", |w| {
            let bytes = hog::bytes_to_take(hog::mem_available()?, opts.hog_max);
            let start = w.probes.now();
            let held = hog::run(&format!("{}hog", w.names.prefix), bytes, HOLD)?;
            let lift = w.probes.now();
            Ok((
                Fault { start, lift },
                format!(
                    "a hog held {} MiB for {:.1} s in its own cgroup",
                    held.bytes >> 20,
                    (held.released_at - held.held_at).as_secs_f64()
                ),
            ))
        })?);
    }
    Ok(rows)
}

/// The statuses of the API writes refused since `since`, e.g. `507×11`.
fn refusals(outcomes: &[Outcome], since: f64) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for o in outcomes
        .iter()
        .filter(|o| o.kind == report::Kind::ApiWrite && !o.ok && o.sent >= since)
    {
        *counts
            .entry(o.status.map_or("none".to_string(), |s| s.to_string()))
            .or_insert(0) += 1;
    }
    if counts.is_empty() {
        return "none".into();
    }
    counts
        .iter()
        .map(|(s, n)| format!("{s}×{n}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Kills with SIGKILL every process whose environment names one of the instances `ids`
/// (`HAKO_INSTANCE=<id>`); returns how many.
fn kill_instances(ids: &[String]) -> anyhow::Result<usize> {
    let wanted: Vec<Vec<u8>> = ids
        .iter()
        .map(|id| format!("HAKO_INSTANCE={id}").into_bytes())
        .collect();
    let mut killed = 0;
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ
            .split(|b| *b == 0)
            .any(|var| wanted.iter().any(|w| var == w.as_slice()))
            && let Some(pid) = rustix::process::Pid::from_raw(pid)
            && rustix::process::kill_process(pid, rustix::process::Signal::KILL).is_ok()
        {
            killed += 1;
        }
    }
    if killed == 0 {
        bail!("no process of the instances {ids:?} found to kill");
    }
    Ok(killed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_counted_by_status() {
        let o = |ok: bool, status: Option<u16>, sent: f64| Outcome {
            kind: report::Kind::ApiWrite,
            sent,
            done: sent,
            ok,
            status,
            write: None,
        };
        let v = [
            o(false, Some(507), 1.0),
            o(false, Some(507), 2.0),
            o(false, None, 2.5),
            o(true, Some(201), 3.0),
            o(false, Some(500), 0.5),
        ];
        assert_eq!(refusals(&v, 1.0), "507×2,none×1");
        assert_eq!(refusals(&[], 0.0), "none");
    }
}
