//! The experiment's report: docs/experiments/efficiency.md with its SVG charts and a JSON file
//! of the figures, and the summary line.
//!
//! Over 600 lines on purpose: it is one document, written section by section in reading
//! order (findings, real run, simulation, method, charts); split, its parts would only call
//! each other.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde_json::json;

use super::plot::{self, Chart, Region, Series, Style};
use super::real::{ModeRun, RealRun};
use super::simulate::SimPoint;
use super::workload::Kind;
use super::{Options, PREDICTED_SWEEP_LEAD, Results, Summary, human, summary_line};

/// The goal of issue 4, point 4.
const GOAL_MEMORY: f64 = 0.10;
const GOAL_COLD: f64 = 0.01;

/// Writes the report, charts and JSON under `opts.out`; returns the summary line.
pub fn write(opts: &Options, r: &Results) -> anyhow::Result<String> {
    std::fs::create_dir_all(&opts.out).with_context(|| format!("create {}", opts.out.display()))?;
    let summary = summary(r);
    let line = summary_line(&summary);
    if let Some(real) = &r.real {
        memory_chart(&opts.out.join("efficiency-memory.svg"), real, false)?;
        memory_chart(&opts.out.join("efficiency-host.svg"), real, true)?;
    }
    tradeoff_chart(&opts.out.join("efficiency-tradeoff.svg"), r)?;
    if let Some(l) = &r.latency {
        super::latency_report::charts(&opts.out, l)?;
    }
    let md = markdown(opts, r, &line);
    let path = opts.out.join("efficiency.md");
    std::fs::write(&path, md).with_context(|| format!("write {}", path.display()))?;
    let json_path = opts.out.join("efficiency.json");
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&figures(r, &line))?,
    )?;
    eprintln!("experiment: report in {}", path.display());
    Ok(line)
}

fn mode<'a>(real: &'a RealRun, name: &str) -> Option<&'a ModeRun> {
    real.modes.iter().find(|m| m.name == name)
}

/// The summary's figures: the real run's where there is one, else the simulator's.
pub fn summary(r: &Results) -> Summary {
    let model_vs_sim_err = r.headline.get(1).and_then(SimPoint::model_err);
    match &r.real {
        Some(real) => {
            let get = |n: &str| mode(real, n);
            let mib = |n: &str| get(n).map_or(0.0, ModeRun::mean_mib);
            let cold = |n: &str| get(n).map_or(0.0, ModeRun::cold_ratio);
            let on = mib("always-on");
            let warm = real.warm_by_kind();
            let p99_added = |n: &str| get(n)?.added_latency(&real.kinds, &warm, 99.0);
            let share = |n: &str| (on > 0.0 && get(n).is_some()).then(|| mib(n) / on);
            Summary {
                sites: real.sites,
                always_on_mib: on,
                cycling_mib: mib("cycling"),
                cold_ratio: cold("cycling"),
                model_vs_sim_err,
                predicted_mib: mib("cycling + prediction"),
                predicted_cold_ratio: cold("cycling + prediction"),
                predictor_ratio: share("predictor"),
                predictor_cold_ratio: get("predictor").map(ModeRun::cold_ratio),
                predictor_p99_added_ms: p99_added("predictor"),
                oracle_ratio: share("cycling + prediction"),
            }
        }
        None => {
            let sim = |i: usize| r.headline.get(i).map(|p| &p.report);
            let mib =
                |i: usize| sim(i).map_or(0.0, |s| s.mib_seconds / (s.simulated_hours * 3600.0));
            let pred = r.latency.as_ref().map(|l| &l.predictor.report);
            Summary {
                sites: sim(0).map_or(0, |s| s.sites),
                always_on_mib: mib(0),
                cycling_mib: mib(1),
                cold_ratio: sim(1).map_or(0.0, |s| s.cold_ratio),
                model_vs_sim_err,
                predicted_mib: mib(2),
                predicted_cold_ratio: sim(2).map_or(0.0, |s| s.cold_ratio),
                predictor_ratio: pred.map(|p| p.memory_time_vs_always_on),
                predictor_cold_ratio: pred.map(|p| p.cold_ratio),
                predictor_p99_added_ms: pred.map(|p| p.wait_p99_ms),
                oracle_ratio: sim(2).map(|s| s.memory_time_vs_always_on),
            }
        }
    }
}

fn pct(x: f64) -> String {
    if x == 0.0 {
        "0%".into()
    } else if x < 0.001 {
        format!("{:.4}%", x * 100.0)
    } else {
        format!("{:.2}%", x * 100.0)
    }
}

fn ms(s: Option<f64>) -> String {
    s.map_or("-".into(), |s| format!("{:.1}", s * 1e3))
}

fn markdown(opts: &Options, r: &Results, line: &str) -> String {
    let mut md = String::new();
    let w = |md: &mut String, s: &str| {
        md.push_str(s);
        md.push('\n');
    };
    w(&mut md, "# Resource efficiency: always-on against cycling");
    w(&mut md, "");
    w(
        &mut md,
        "Issue 4, point 4 (the experiment FastContainer's seed leaves open): memory and cold \
         requests of 1,000 real sites on one machine and 10,000 simulated sites, when every site \
         keeps an instance (always-on), when idle instances stop (cycling), and when they stop \
         but an instance is started shortly before a predicted request (cycling + prediction).",
    );
    w(&mut md, "");
    let _ = writeln!(
        md,
        "Reproduce: `cargo xtask experiment efficiency` (this run: `{}`; {} in all). \
         Host: {}.",
        command_line(opts),
        human_minutes(r.took),
        host_description()
    );
    w(&mut md, "");
    w(&mut md, "```text");
    w(&mut md, line);
    w(&mut md, "```");
    w(&mut md, "");
    findings(&mut md, r);
    if let Some(real) = &r.real {
        real_section(&mut md, opts, real);
    }
    sim_section(&mut md, opts, r);
    if let Some(l) = &r.latency {
        super::latency_report::section(&mut md, r, l);
    }
    method(&mut md, opts, r);
    md
}

fn command_line(opts: &Options) -> String {
    let mut s = String::from("cargo xtask experiment efficiency");
    let d = Options::default();
    if opts.sim_only {
        s.push_str(" --sim-only");
    }
    let mut add = |name: &str, v: String, default: String| {
        if v != default {
            let _ = write!(s, " --{name} {v}");
        }
    };
    add("sites", opts.sites.to_string(), d.sites.to_string());
    add("duration", human(opts.duration), human(d.duration));
    add("speedup", opts.speedup.to_string(), d.speedup.to_string());
    add("seed", opts.seed.to_string(), d.seed.to_string());
    add(
        "php-share",
        opts.php_share.to_string(),
        d.php_share.to_string(),
    );
    add(
        "wordpress-share",
        opts.wordpress_share.to_string(),
        d.wordpress_share.to_string(),
    );
    add(
        "idle-timeout",
        human(opts.idle_timeout),
        human(d.idle_timeout),
    );
    add(
        "predict-idle-timeout",
        human(opts.predict_idle_timeout),
        human(d.predict_idle_timeout),
    );
    add("lead", human(opts.lead), human(d.lead));
    add(
        "sim-sites",
        opts.sim_sites.to_string(),
        d.sim_sites.to_string(),
    );
    add(
        "sim-duration",
        human(opts.sim_duration),
        human(d.sim_duration),
    );
    if let Some(wu) = opts.warmup {
        add("warmup", human(wu), String::new());
    }
    s
}

fn human_minutes(d: std::time::Duration) -> String {
    format!("{:.0} min", d.as_secs_f64() / 60.0)
}

fn host_description() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or("?".into(), |kib| {
            format!("{:.1} GiB", kib as f64 / 1048576.0)
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or("?".into(), |s| s.trim().to_string());
    let cgroup = match hako_cgroup::detect("hako").map(|m| m.version()) {
        Ok(hako_cgroup::Version::V1) => "cgroup v1",
        Ok(hako_cgroup::Version::V2) => "cgroup v2",
        Err(_) => "no cgroup",
    };
    format!("{cores} cores, {mem} RAM, Linux {kernel}, {cgroup}")
}

/// The best simulated point within the goal, if any.
fn best_within_goal(r: &Results) -> Option<&SimPoint> {
    r.cycling_sweep
        .iter()
        .chain(&r.predicted_sweep)
        .chain(&r.headline)
        .filter(|p| {
            p.report.cold_ratio <= GOAL_COLD && p.report.memory_time_vs_always_on <= GOAL_MEMORY
        })
        .min_by(|a, b| {
            a.report
                .memory_time_vs_always_on
                .total_cmp(&b.report.memory_time_vs_always_on)
        })
}

/// The cheapest idle timeout of the sweep within 1% cold requests.
fn best_cycling(r: &Results) -> Option<&SimPoint> {
    r.cycling_sweep
        .iter()
        .filter(|p| p.report.cold_ratio <= GOAL_COLD)
        .min_by(|a, b| {
            a.report
                .memory_time_vs_always_on
                .total_cmp(&b.report.memory_time_vs_always_on)
        })
}

fn bound_at(r: &Results, target: f64) -> Option<f64> {
    r.bound.iter().find(|(c, _)| *c == target).map(|b| b.1)
}

fn findings(md: &mut String, r: &Results) {
    md.push_str("## Findings\n\n");
    if let Some(real) = &r.real {
        if let (Some(on), Some(cy)) = (mode(real, "always-on"), mode(real, "cycling")) {
            let _ = writeln!(
                md,
                "- **Real, {} sites** ({} PHP, {} WordPress): always-on holds {:.0} MiB in the instances' cgroups \
                 ({:.0} instances); cycling ({}) holds {:.0} MiB ({:.0} instances), **{} of always-on's \
                 memory-time**, with **{} cold requests** (mean wait for a start {} ms).",
                real.sites,
                real.php_sites,
                real.wordpress_sites,
                on.mean_mib(),
                on.mean_instances(),
                cy.policy.label(),
                cy.mean_mib(),
                cy.mean_instances(),
                pct(cy.mean_mib() / on.mean_mib()),
                pct(cy.cold_ratio()),
                ms(cy.mean_cold_wait()),
            );
        }
        if let (Some(on), Some(pr)) = (mode(real, "always-on"), mode(real, "cycling + prediction"))
        {
            let _ = writeln!(
                md,
                "- **Real, cycling + prediction** ({}): {:.0} MiB, **{} of always-on's memory-time**, \
                 **{} cold requests**.",
                pr.policy.label(),
                pr.mean_mib(),
                pct(pr.mean_mib() / on.mean_mib()),
                pct(pr.cold_ratio()),
            );
        }
    }
    if let Some(real) = &r.real {
        for m in real.modes.iter().filter(|m| !m.policy.always_on) {
            let span = m.window.1 - m.window.0;
            let real_is = m.mean_instances() * span;
            let _ = writeln!(
                md,
                "- **Real vs simulator on the same requests** ({}): cold {} real, {} simulated; \
                 instance-seconds {:.0} real, {:.0} simulated ({:+.1}%).",
                m.name,
                pct(m.cold_ratio()),
                pct(m.twin.cold_ratio()),
                real_is,
                m.twin.instance_seconds,
                (m.twin.instance_seconds / real_is - 1.0) * 100.0,
            );
        }
    }
    if let [on, cy, pr] = r.headline.as_slice() {
        let _ = writeln!(
            md,
            "- **Simulated, {} sites × {}**, same policies in the workload's own time: {} → \
             {} of always-on's memory-time at {} cold; {} → {} at {} cold (always-on: {}).",
            on.report.sites,
            human(std::time::Duration::from_secs_f64(
                on.report.simulated_hours * 3600.0
            )),
            cy.policy.label(),
            pct(cy.report.memory_time_vs_always_on),
            pct(cy.report.cold_ratio),
            pr.policy.label(),
            pct(pr.report.memory_time_vs_always_on),
            pct(pr.report.cold_ratio),
            pct(on.report.memory_time_vs_always_on),
        );
        if let Some(e) = cy.model_err() {
            let _ = writeln!(
                md,
                "- **Model vs simulator** (cycling, `model_vs_sim_err`): {:.2}% — the larger relative \
                 error of the cold ratio and the memory-time share.",
                e * 100.0
            );
        }
    }
    if let Some(b) = bound_at(r, GOAL_COLD) {
        let cyc = best_cycling(r).map_or(String::new(), |p| {
            format!(
                " The cheapest idle timeout of the sweep within 1% cold is {} at {} of the memory-time.",
                human(p.policy.idle_timeout),
                pct(p.report.memory_time_vs_always_on)
            )
        });
        let _ = writeln!(
            md,
            "- **The goal (≤ 10% of always-on's memory-time at ≤ 1% cold requests) is out of reach \
             for every policy that does not know when requests come**: on this workload they need at \
             least {} of the memory-time at 1% cold (a bound, derived below).{cyc}",
            pct(b)
        );
    }
    match best_within_goal(r) {
        Some(p) => {
            let _ = writeln!(
                md,
                "- **With prediction the goal is met in simulation**: {} uses {} of the memory-time at \
                 {} cold requests — at the price of {} instance starts ({:.0} a second over {} sites, \
                 {} of them pre-warm). The predictor there is perfect (it knows the next request); \
                 see the limits below.",
                p.policy.label(),
                pct(p.report.memory_time_vs_always_on),
                pct(p.report.cold_ratio),
                p.report.instance_starts,
                p.report.instance_starts as f64 / (p.report.simulated_hours * 3600.0),
                p.report.sites,
                p.report.prewarm_starts,
            );
        }
        None => md.push_str("- No simulated policy met the goal.\n"),
    }
    md.push('\n');
}

fn real_section(md: &mut String, opts: &Options, real: &RealRun) {
    let on = mode(real, "always-on");
    let clock = |s: f64| {
        format!(
            "{:02}:{:02}",
            (s / 3600.0) as u32,
            ((s % 3600.0) / 60.0) as u32
        )
    };
    let _ = writeln!(
        md,
        "## Real run: {} sites on this machine\n\n\
         Every mode replays the same {} requests (the workload's {}–{}, compressed {}×); the first \
         {} of each replay are warm-up, the next {} ({} requests) are measured. Times below are \
         real.\n",
        real.sites,
        real.requests,
        clock(real.day_offset),
        clock(real.day_offset + (opts.warmup() + opts.duration).as_secs_f64() * opts.speedup),
        opts.speedup,
        human(opts.warmup()),
        human(opts.duration),
        real.window_requests,
    );
    md.push_str(
        "| mode | policy (real time) | instances' memory, mean MiB | vs always-on | mean instances | \
         host memory in use, MiB | requests | cold | mean cold wait, ms | latency mean / p50 / p99, ms | \
         p99 added, ms | failed | dropped | sent late p99, ms |\n",
    );
    md.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    let warm = real.warm_by_kind();
    for m in &real.modes {
        let vs = on.map_or("-".into(), |o| pct(m.mean_mib() / o.mean_mib()));
        let p99 = m.latency(99.0);
        let added = m
            .added_latency(&real.kinds, &warm, 99.0)
            .map_or("-".into(), |a| format!("{a:.1}"));
        let _ = writeln!(
            md,
            "| {} | {} | {:.0} | {} | {:.0} | {:.0} | {} | {} ({}) | {} | {} / {} / {} | {} | {} | {} | {} |",
            m.name,
            m.policy.label(),
            m.mean_mib(),
            vs,
            m.mean_instances(),
            m.host_used_mib(real.baseline_available),
            m.counts.cold + m.counts.warm,
            m.counts.cold,
            pct(m.cold_ratio()),
            ms(m.mean_cold_wait()),
            ms(m.mean_latency()),
            ms(m.latency(50.0)),
            ms(p99),
            added,
            m.failed(),
            m.dropped,
            ms(m.lateness(99.0)),
        );
    }
    md.push_str(
        "\n*instances' memory*: the sum over instance cgroups of their memory usage, sampled every \
         second and integrated over the window (MiB·s ÷ s). *host memory in use*: MemAvailable before \
         any site existed minus MemAvailable during the window (includes hako itself, page cache and \
         the kernel's per-container objects). *cold*: requests the proxy counted as having waited for \
         a start, out of all it counted in the window. *latency*: the load generator's, from sending \
         the request to the last byte of the answer (loopback, keep-alive). *failed*: no answer or \
         not 2xx. *dropped*: requests the bounded generator could not send (its queue was full). \
         *sent late*: how long requests waited for a free worker of the generator. *p99 added*: \
         the 99th percentile of each request's latency past always-on's median for its kind of \
         site (a warm request; at least 0).\n\n",
    );
    by_kind(md, real);
    md.push_str("![Instances' memory over time](efficiency-memory.svg)\n\n");
    md.push_str("![Host memory in use over time](efficiency-host.svg)\n\n");
    if let Some(p) = mode(real, "cycling + prediction") {
        let mut late = p.prewarm_late.clone();
        let _ = writeln!(
            md,
            "Pre-warm driver (cycling + prediction): {} minimum changes sent through the API \
             (`PATCH /v1/apps/NAME {{\"min\": 1}}` a lead before a predicted request, back to 0 when \
             it is due); sent late by p50 {} ms, p99 {} ms.\n",
            p.prewarm_changes,
            ms(super::real::percentile(&mut late, 50.0)),
            ms(super::real::percentile(&mut late, 99.0)),
        );
    }
    md.push_str(
        "The simulator on the real run's exact requests and policies (its start time: the mode's \
         measured mean wait for a start), over the same window:\n\n\
         | mode | cold, real | cold, simulated | instance-seconds, real | instance-seconds, simulated |\n\
         |---|---|---|---|---|\n",
    );
    for m in &real.modes {
        let span = m.window.1 - m.window.0;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.0} | {:.0} |",
            m.name,
            pct(m.cold_ratio()),
            pct(m.twin.cold_ratio()),
            m.mean_instances() * span,
            m.twin.instance_seconds
        );
    }
    md.push('\n');
    let errors: Vec<&String> = real.modes.iter().flat_map(|m| &m.first_errors).collect();
    if !errors.is_empty() {
        md.push_str("First load-generator errors:\n\n```text\n");
        for e in errors.iter().take(10) {
            let _ = writeln!(md, "{e}");
        }
        md.push_str("```\n\n");
    }
}

/// The real run split by kind of site: what each kind holds and what its visitors feel.
fn by_kind(md: &mut String, real: &RealRun) {
    let on = mode(real, "always-on");
    md.push_str(
        "By kind of site (memory and instances: the daemon's own per-app figures, \
         `hako_app_memory_bytes` and `hako_instances` from its `/metrics`, read at each sample; \
         latency as above, *vs always-on* per kind):\n\n\
         | mode | kind | sites | mean instances | memory, mean MiB | MiB per instance | vs always-on | \
         requests | cold | latency p50 / p99, ms |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for m in &real.modes {
        for kind in Kind::ALL {
            let sites = real.kinds.iter().filter(|k| **k == kind).count();
            if sites == 0 {
                continue;
            }
            let (mib, instances) = (m.mean_mib_of(kind), m.mean_instances_of(kind));
            let per = if instances > 0.0 {
                format!("{:.1}", mib / instances)
            } else {
                "-".into()
            };
            let vs = on
                .map(|o| o.mean_mib_of(kind))
                .filter(|o| *o > 0.0)
                .map_or("-".into(), |o| pct(mib / o));
            let c = &m.counts_by_kind[kind.index()];
            let _ = writeln!(
                md,
                "| {} | {} | {sites} | {instances:.0} | {mib:.0} | {per} | {vs} | {} | {} ({}) | {} / {} |",
                m.name,
                kind.label(),
                c.cold + c.warm,
                c.cold,
                pct(m.cold_ratio_of(kind)),
                ms(m.latency_of(&real.kinds, kind, 50.0)),
                ms(m.latency_of(&real.kinds, kind, 99.0)),
            );
        }
    }
    md.push('\n');
}

fn sim_row(md: &mut String, p: &SimPoint) {
    let s = &p.report;
    let (mc, mm, err) = match p.model {
        Some((c, m)) => (
            pct(c),
            pct(m),
            p.model_err()
                .map_or("-".into(), |e| format!("{:.2}%", e * 100.0)),
        ),
        None => ("-".into(), "-".into(), "-".into()),
    };
    let _ = writeln!(
        md,
        "| {} | {} | {} | {:.2} / {:.1} | {} | {} | {} | {} | {} |",
        p.policy.label(),
        pct(s.cold_ratio),
        pct(s.memory_time_vs_always_on),
        s.wait_mean_ms,
        s.wait_p99_ms,
        s.instance_starts,
        s.peak_running,
        mc,
        mm,
        err
    );
}

fn sim_section(md: &mut String, opts: &Options, r: &Results) {
    let Some(first) = r.headline.first() else {
        return;
    };
    let _ = writeln!(
        md,
        "## Simulation: {} sites × {}\n\n\
         The simulator runs the daemon's keep-alive and pre-warm code (`hako-policy`) on the \
         Azure-like workload (seed {}: {} requests), with a start time of {:.0} ms (the real run's \
         mean wait for a start in cycling, else 50 ms) and {:.1} MiB per instance (the real \
         always-on mean) for MiB figures. *model*: the service-level model's prediction of the same \
         run (`hako_sim::predict`; it does not cover predicted pre-warm).\n",
        first.report.sites,
        human(opts.sim_duration),
        opts.seed,
        first.report.requests,
        r.start_time.as_secs_f64() * 1e3,
        r.memory_per_instance_mib,
    );
    let head = "| policy | cold | memory-time vs always-on | added wait mean / p99, ms | starts | peak instances | model: cold | model: memory-time | model error |\n|---|---|---|---|---|---|---|---|---|\n";
    md.push_str("The experiment's three policies:\n\n");
    md.push_str(head);
    for p in &r.headline {
        sim_row(md, p);
    }
    md.push_str("\nIdle timeouts (cycling):\n\n");
    md.push_str(head);
    for p in &r.cycling_sweep {
        sim_row(md, p);
    }
    let _ = writeln!(
        md,
        "\nPredicted pre-warm (perfect predictor, lead {}) with short idle timeouts:\n",
        human(PREDICTED_SWEEP_LEAD)
    );
    md.push_str(head);
    for p in &r.predicted_sweep {
        sim_row(md, p);
    }
    md.push_str(
        "\nThe least memory-time any policy without foresight can have (the bound, derived under \
         *Method*):\n\n| cold requests at most | memory-time vs always-on at least |\n|---|---|\n",
    );
    for (c, m) in &r.bound {
        let _ = writeln!(md, "| {} | {} |", pct(*c), pct(*m));
    }
    md.push_str("\n![Cold requests against memory-time](efficiency-tradeoff.svg)\n\n");
}

fn method(md: &mut String, opts: &Options, r: &Results) {
    let k = opts.speedup;
    let _ = writeln!(
        md,
        "## Method\n\n\
         **Workload.** The simulator's Azure-like preset (after Shahrad et al., ATC'20): per-site \
         mean rates log-normal with 45% of sites called at most once an hour and 81% at most once a \
         minute, capped at 1/s; a ±50% diurnal cycle peaking at 14:00; one 5-minute burst at 10× a \
         day per site. The real run replays exactly the simulator's requests \
         (`hako_sim::synthetic_arrivals`, same seed).\n\n\
         **Compressing time.** A day cannot run for each mode, so the real run compresses the \
         workload {k}×: every rate ×{k}, every policy time ÷{k} (idle timeout {} → {}, \
         with prediction {} → {}, lead {} → {}). The products rate × idle timeout that decide cold \
         requests and memory-time stay the same; only the start time — real, not compressed — \
         weighs {k}× more than it would, which makes the real run pessimistic for cycling. Each \
         replay covers {} of the day centred on 08:00, where the diurnal cycle crosses its daily \
         mean.\n\n\
         **Sites.** Each site is an app: a share {} of them WordPress (`--wordpress-share`: the \
         `wordpress` image — Debian's WordPress on Apache 2.4 + mod_php 8.2 under prefork, \
         started by `hako-wordpress` — with its own database and user on the host's MariaDB \
         (`--database`), installed by WordPress's own installer over HTTP through hako before the \
         run, 256 MiB limit, every request its home page), a share {} PHP (`php -S`, \
         `--stop-signal INT`, 128 MiB limit, a one-line index.php) and the rest static \
         (`busybox httpd`, 64 MiB limit, on the host image); which site runs what is a shuffle on \
         the seed, independent of traffic (`--php-share`). Measured on this host, a `php -S` \
         instance is charged about 8 MiB (6 MiB its own, the rest page cache; cgroup v1 charges \
         shared page cache to the instance that reads it first, so the first PHP instance also \
         carries ~16 MiB of PHP's files), a busybox one under 1 MiB, and a WordPress one tens of \
         MiB (Apache's workers with PHP and opcache). The always-on ramp refuses to continue \
         below 2 GiB available.\n\n\
         **Load.** A bounded open-loop generator: requests leave at their scheduled times from {} \
         worker threads (one HTTP/1.1 keep-alive connection each to the proxy, so at most {} in \
         flight), at most {} waiting for a worker (more are dropped and counted), at most {} per \
         replay, each with a 40 s limit.\n\n\
         **Modes.** Always-on: every site's minimum raised to 1 (ramped 20 sites at a time, each \
         batch ready before the next). Cycling: minimum 0 and the idle timeout. Cycling + \
         prediction: minimum 0, the short idle timeout, and a pre-warm driver that knows the trace \
         (the simulator's perfect predictor, `Prewarm::Predicted`): before every request that finds \
         its site idle for longer than the idle timeout it sets the site's minimum to 1 a lead \
         earlier — `hako serve`'s keep-alive loop starts an instance — and back to 0 when the \
         request is due, so the instance then idles out by the normal rules; the oracle cannot live \
         in a daemon (it knows the future), so this drives the real daemon through its API. \
         Predictor: every site on `--keep-alive predictive` with cycling's idle timeout as its \
         fallback — the daemon's own predictor, which learns each site's idle times as the replay \
         goes and knows nothing of the trace. Each replay's first {} (at least one idle timeout: afterwards a site's state depends only \
         on its recent requests, not on the previous mode) is not measured.\n\n\
         **Measures.** Every {} the sum of the instance cgroups' memory usage (hako's cgroup crate: \
         `memory.usage_in_bytes` on v1, `memory.current` on v2), their count, and MemAvailable; \
         integrated over the window with trapezoids. Cold requests and their waits from the \
         daemon's per-app metrics read at the window's start and end. The memory ratio is the \
         ratio of mean MiB over windows of equal length, i.e. of MiB·s.\n\n\
         **Bound for policies without foresight.** Within a 15-minute slice of a site's day (and \
         burst or not) requests are Poisson, so by PASTA (Poisson arrivals see time averages) the \
         share of a site's requests that find no instance equals the share of its time without \
         one, whatever a non-anticipating policy does. The memory-time is least when the instance is \
         absent exactly in the slices of lowest rate until the cold budget is spent (a fractional \
         knapsack over the model's slices); start times only add. This is why idle timeouts — or \
         any timeout or rate-based rule — cannot reach 10% at 1% on this workload: the busiest sites \
         carry 99% of the requests, and keeping them up alone takes {} of the memory-time.\n\n\
         **Host.** A thousand isolated instances are a thousand neighbours of hako's bridge: the \
         kernel's default ARP table limit (`net.ipv4.neigh.default.gc_thresh3` = 1024) overflows \
         (\"neighbour table overflow\", the proxy sees \"No route to host\"), so the run raises \
         `gc_thresh1/2/3` to 4096/8192/16384 and puts them back afterwards. The machine is shared \
         with other work, so *host memory in use* carries their page cache and noise; the \
         instances' cgroup sum does not.\n\n\
         **Limits.** The perfect predictor is an upper bound on what prediction gains; real \
         predictors need regularities (Shahrad et al.'s histograms exploit the periodic timers of \
         real Azure functions), while this synthetic workload is memoryless within a slice, so \
         only the oracle gains here. The simulator's pre-warm stops an instance at its idle \
         timeout and starts another at once when the next request is less than a lead away; the \
         real driver keeps it (the raised minimum holds it), so the simulator counts cold requests \
         that arrive within a start time of such a restart and the real run does not — and the \
         real run pays for late pre-warms when the daemon is busy. The model (`hako_policy::slo`) \
         has no closed form for predicted pre-warm, so `model_vs_sim_err` is the cycling \
         policy's.\n",
        human(opts.idle_timeout),
        human(opts.idle_timeout.div_f64(k)),
        human(opts.predict_idle_timeout),
        human(opts.predict_idle_timeout.div_f64(k)),
        human(opts.lead),
        human(opts.lead.div_f64(k)),
        human((opts.warmup() + opts.duration).mul_f64(k)),
        opts.wordpress_share,
        opts.php_share,
        opts.concurrency,
        opts.concurrency,
        opts.concurrency * 4,
        opts.max_requests,
        human(opts.warmup()),
        human(opts.sample_interval),
        bound_at(r, GOAL_COLD).map_or("-".into(), pct),
    );
}

fn memory_chart(path: &Path, real: &RealRun, host: bool) -> anyhow::Result<()> {
    let colors = [plot::BLUE_, plot::ORANGE, plot::GREEN_];
    let value = |s: &super::memory::Sample| {
        if host {
            super::memory::mib(real.baseline_available as f64 - s.available as f64)
        } else {
            super::memory::mib(s.memory as f64)
        }
    };
    let mut series: Vec<Series> = real
        .modes
        .iter()
        .zip(colors)
        .map(|(m, color)| Series {
            label: m.name.to_string(),
            color,
            style: Style::Line,
            points: m.samples.iter().map(|s| (s.t, value(s))).collect(),
        })
        .collect();
    let x_max = real
        .modes
        .iter()
        .flat_map(|m| m.samples.last())
        .map(|s| s.t)
        .fold(1.0, f64::max);
    let y_max = series
        .iter()
        .flat_map(|s| &s.points)
        .map(|p| p.1)
        .fold(1.0, f64::max)
        * 1.3;
    if let Some(m) = real.modes.first() {
        series.push(Series {
            label: "end of warm-up".into(),
            color: plot::GREY,
            style: Style::Dashed,
            points: vec![(m.window.0, 0.0), (m.window.0, y_max)],
        });
    }
    let (title, y_desc) = if host {
        (
            format!(
                "Host memory in use above the baseline, {} real sites",
                real.sites
            ),
            "MiB (baseline − MemAvailable)",
        )
    } else {
        (
            format!(
                "Instances' memory (sum of their cgroups), {} real sites",
                real.sites
            ),
            "MiB",
        )
    };
    plot::draw(
        path,
        &Chart {
            title: &title,
            x_desc: "seconds into the replay (real time)",
            y_desc,
            x: (0.0, x_max),
            y: (if host { y_max.min(0.0) } else { 0.0 }, y_max),
        },
        &series,
        &[],
    )
}

fn tradeoff_chart(path: &Path, r: &Results) -> anyhow::Result<()> {
    let pts = |ps: &[SimPoint]| -> Vec<(f64, f64)> {
        ps.iter()
            .map(|p| {
                (
                    p.report.memory_time_vs_always_on * 100.0,
                    p.report.cold_ratio * 100.0,
                )
            })
            .collect()
    };
    let mut series = vec![
        Series {
            label: "simulated: idle timeout 10s … 1h".into(),
            color: plot::BLUE_,
            style: Style::LinePoints,
            points: pts(&r.cycling_sweep),
        },
        Series {
            label: format!(
                "simulated: perfect prediction (lead {}), idle 1s … 5m",
                human(PREDICTED_SWEEP_LEAD)
            ),
            color: plot::GREEN_,
            style: Style::LinePoints,
            points: pts(&r.predicted_sweep),
        },
        Series {
            label: "least possible without foresight".into(),
            color: plot::GREY,
            style: Style::Dashed,
            points: r
                .bound
                .iter()
                .map(|(c, m)| (m * 100.0, c * 100.0))
                .collect(),
        },
        Series {
            label: "simulated: the experiment's policies".into(),
            color: plot::PURPLE,
            style: Style::Points,
            points: pts(&r.headline),
        },
    ];
    if let Some(real) = &r.real
        && let Some(on) = mode(real, "always-on")
    {
        series.push(Series {
            label: format!("real: {} sites", real.sites),
            color: plot::ORANGE,
            style: Style::Points,
            points: real
                .modes
                .iter()
                .map(|m| (m.mean_mib() / on.mean_mib() * 100.0, m.cold_ratio() * 100.0))
                .collect(),
        });
    }
    plot::draw(
        path,
        &Chart {
            title: "Cold requests against memory-time",
            x_desc: "memory-time, % of always-on",
            y_desc: "cold requests, %",
            x: (0.0, 100.0),
            y: (0.0, 5.0),
        },
        &series,
        &[Region {
            label: "goal: ≤ 10% memory-time, ≤ 1% cold".into(),
            x: (0.0, GOAL_MEMORY * 100.0),
            y: (0.0, GOAL_COLD * 100.0),
        }],
    )
}

/// The figures as JSON, for tools.
fn figures(r: &Results, line: &str) -> serde_json::Value {
    let sim = |p: &SimPoint| {
        json!({
            "policy": p.policy.label(),
            "cold_ratio": p.report.cold_ratio,
            "memory_time_vs_always_on": p.report.memory_time_vs_always_on,
            "wait_mean_ms": p.report.wait_mean_ms,
            "instance_starts": p.report.instance_starts,
            "model": p.model.map(|(c, m)| json!({"cold_ratio": c, "memory_time_vs_always_on": m})),
        })
    };
    let real = r.real.as_ref().map(|real| {
        json!({
            "sites": real.sites,
            "php_sites": real.php_sites,
            "wordpress_sites": real.wordpress_sites,
            "modes": real.modes.iter().map(|m| json!({
                "mode": m.name,
                "policy": m.policy.label(),
                "mean_mib": m.mean_mib(),
                "mib_seconds": m.mib_seconds(),
                "mean_instances": m.mean_instances(),
                "host_used_mib": m.host_used_mib(real.baseline_available),
                "cold": m.counts.cold,
                "warm": m.counts.warm,
                "cold_ratio": m.cold_ratio(),
                "mean_cold_wait_ms": m.mean_cold_wait().map(|s| s * 1e3),
                "latency_p50_ms": m.latency(50.0).map(|s| s * 1e3),
                "latency_p99_ms": m.latency(99.0).map(|s| s * 1e3),
                "failed": m.failed(),
                "dropped": m.dropped,
                "twin_cold_ratio": m.twin.cold_ratio(),
                "twin_instance_seconds": m.twin.instance_seconds,
                "by_kind": Kind::ALL.iter().map(|k| json!({
                    "kind": k.label(),
                    "mean_mib": m.mean_mib_of(*k),
                    "mean_instances": m.mean_instances_of(*k),
                    "cold": m.counts_by_kind[k.index()].cold,
                    "warm": m.counts_by_kind[k.index()].warm,
                    "latency_p50_ms": m.latency_of(&real.kinds, *k, 50.0).map(|s| s * 1e3),
                    "latency_p99_ms": m.latency_of(&real.kinds, *k, 99.0).map(|s| s * 1e3),
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    });
    json!({
        "summary": line,
        "real": real,
        "simulated": {
            "start_time_ms": r.start_time.as_secs_f64() * 1e3,
            "headline": r.headline.iter().map(sim).collect::<Vec<_>>(),
            "cycling_sweep": r.cycling_sweep.iter().map(sim).collect::<Vec<_>>(),
            "predicted_sweep": r.predicted_sweep.iter().map(sim).collect::<Vec<_>>(),
            "bound": r.bound.iter().map(|(c, m)| json!({"cold_ratio": c, "memory_time_vs_always_on": m})).collect::<Vec<_>>(),
        },
    })
}
