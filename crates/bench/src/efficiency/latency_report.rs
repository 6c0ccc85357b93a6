//! The report's part on what users feel ([`super::latency`]): the predictor beside the oracle
//! on both workloads, and the trade-off charts — memory-time against the p99 added latency
//! and against the cold ratio, one series per start path, with the Pareto front marked.

use std::fmt::Write as _;
use std::path::Path;

use super::Results;
use super::latency::{Latency, Point};
use super::plot::{self, Chart, Region, Series, Style};
use super::simulate::SimPoint;

/// The latency goal of issue 11 §3: ≤ 10% of always-on's memory-time with p99 added latency
/// ≤ 10 ms.
const GOAL_MEMORY: f64 = 0.10;
const GOAL_P99_MS: f64 = 10.0;

fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

/// The points no other point beats on both memory and p99 added latency.
pub fn pareto(points: &[Point]) -> Vec<&Point> {
    let mut front: Vec<&Point> = points
        .iter()
        .filter(|p| {
            !points.iter().any(|q| {
                q.memory <= p.memory
                    && q.p99_added_ms <= p.p99_added_ms
                    && (q.memory < p.memory || q.p99_added_ms < p.p99_added_ms)
            })
        })
        .collect();
    front.sort_by(|a, b| a.memory.total_cmp(&b.memory));
    front
}

/// The SVG charts: for each workload, memory-time against p99 added latency, and against the
/// cold ratio.
pub fn charts(dir: &Path, l: &Latency) -> anyhow::Result<()> {
    for (file, points, what) in [
        ("efficiency-latency.svg", &l.tradeoff, "Azure-like sites"),
        (
            "efficiency-latency-timers.svg",
            &l.timer_tradeoff,
            "with timer-driven sites",
        ),
    ] {
        let series = |y: fn(&Point) -> f64| -> Vec<Series> {
            let colors = [
                plot::BLUE_,
                plot::ORANGE,
                plot::GREEN_,
                plot::PURPLE,
                plot::GREY,
            ];
            let mut names: Vec<&str> = points.iter().map(|p| p.series).collect();
            names.dedup();
            names.sort();
            names.dedup();
            let mut out: Vec<Series> = names
                .iter()
                .enumerate()
                .map(|(i, n)| Series {
                    label: (*n).to_string(),
                    color: colors[i % colors.len()],
                    style: Style::LinePoints,
                    points: points
                        .iter()
                        .filter(|p| p.series == *n)
                        .map(|p| (p.memory * 100.0, y(p)))
                        .collect(),
                })
                .collect();
            out.push(Series {
                label: "Pareto front (memory, p99 added)".into(),
                color: plot::GREY,
                style: Style::Dashed,
                points: pareto(points)
                    .iter()
                    .map(|p| (p.memory * 100.0, y(p)))
                    .collect(),
            });
            out
        };
        let title = format!("p99 added latency against memory-time, {what}");
        plot::draw(
            &dir.join(file),
            &Chart {
                title: &title,
                x_desc: "memory-time, % of always-on",
                y_desc: "p99 added latency, ms",
                x: (0.0, 100.0),
                y: (0.0, 120.0),
            },
            &series(|p| p.p99_added_ms),
            &[Region {
                label: "goal: ≤ 10% memory-time, p99 added ≤ 10 ms".into(),
                x: (0.0, GOAL_MEMORY * 100.0),
                y: (0.0, GOAL_P99_MS),
            }],
        )?;
        let title = format!("Cold requests against memory-time, {what}");
        plot::draw(
            &dir.join(file.replace(".svg", "-cold.svg")),
            &Chart {
                title: &title,
                x_desc: "memory-time, % of always-on",
                y_desc: "cold requests, %",
                x: (0.0, 100.0),
                y: (0.0, 10.0),
            },
            &series(|p| p.cold * 100.0),
            &[],
        )?;
    }
    Ok(())
}

fn row(md: &mut String, name: &str, p: &SimPoint) {
    let _ = writeln!(
        md,
        "| {name} | {} | {} | {} | {:.1} | {} |",
        p.policy.label(),
        pct(p.report.memory_time_vs_always_on),
        pct(p.report.cold_ratio),
        p.report.wait_p99_ms,
        p.report.prewarm_starts
    );
}

/// The markdown section.
pub fn section(md: &mut String, r: &Results, l: &Latency) {
    md.push_str("## What users feel: the real predictor, timer-driven sites, start paths\n\n");
    let _ = writeln!(
        md,
        "The **predictor** is the daemon's own predictive keep-alive (`--keep-alive predictive`, \
         `hako_policy::predict`): it knows nothing of the future. The **oracle** pre-warms with \
         the trace in hand (the bound, not a policy). The timer workload turns {} of the sites \
         (Shahrad et al., ATC'20: 15.6% of Azure's functions are timer-triggered) into cron-like \
         ones (every 1–60 min, ±1 s); the rest keep their requests. *p99 added* is the 99th \
         percentile over all requests of the time a request waited for a start (0 when warm).\n",
        pct(l.timer_share)
    );
    md.push_str("| workload | policy | memory-time | cold | p99 added (ms) | pre-warm starts |\n");
    md.push_str("|---|---|---|---|---|---|\n");
    for p in &r.headline {
        row(md, "Azure-like", p);
    }
    row(md, "Azure-like", &l.predictor);
    for p in &l.timer {
        row(md, "with timers", p);
    }
    md.push('\n');
    if let (Some(pred), Some(fixed)) = (
        l.timer_predictor(),
        l.timer
            .iter()
            .find(|p| !p.policy.always_on && p.policy.lead.is_none() && !p.policy.predictor),
    ) {
        let _ = writeln!(
            md,
            "With timer-driven sites the predictor has something to learn: {} of the memory-time \
             at {} cold against the fixed keep-alive's {} at {} ({} pre-warm starts).\n",
            pct(pred.report.memory_time_vs_always_on),
            pct(pred.report.cold_ratio),
            pct(fixed.report.memory_time_vs_always_on),
            pct(fixed.report.cold_ratio),
            pred.report.prewarm_starts
        );
    }
    let _ = writeln!(
        md,
        "**Start paths** in the trade-off: a cold start as the real run measured it; the shared \
         warm pool ({:.1} ms; its slots run no process and are counted as no memory); a restore \
         ({:.1} ms to the first answered request, its checkpoint counted as {:.1} MiB per site \
         held in the page cache all the time). Each path is swept over idle timeouts 10 s … 30 \
         min; the charts mark the Pareto front of memory-time against p99 added latency \
         (`efficiency-latency.svg`, `efficiency-latency-timers.svg`, and the cold ratio in \
         `*-cold.svg`).\n",
        l.paths.pool_start.as_secs_f64() * 1e3,
        l.paths.restore_start.as_secs_f64() * 1e3,
        l.paths.checkpoint_mib
    );
    for (what, points) in [
        ("Azure-like", &l.tradeoff),
        ("with timers", &l.timer_tradeoff),
    ] {
        let _ = writeln!(md, "Pareto front, {what}:\n");
        md.push_str(
            "| start path / policy | idle timeout | memory-time | cold | p99 added (ms) |\n",
        );
        md.push_str("|---|---|---|---|---|\n");
        for p in pareto(points) {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {:.1} |",
                p.series,
                super::human(p.policy.idle_timeout),
                pct(p.memory),
                pct(p.cold),
                p.p99_added_ms
            );
        }
        let met: Vec<&Point> = points
            .iter()
            .filter(|p| p.memory <= GOAL_MEMORY && p.p99_added_ms <= GOAL_P99_MS)
            .collect();
        let _ = match met.iter().min_by(|a, b| a.memory.total_cmp(&b.memory)) {
            Some(p) => writeln!(
                md,
                "\n**Goal (≤ 10% memory-time, p99 added ≤ 10 ms) met in simulation, {what}**: {} with \
                 a {} idle timeout, {} of the memory-time, p99 added {:.1} ms.\n",
                p.series,
                super::human(p.policy.idle_timeout),
                pct(p.memory),
                p.p99_added_ms
            ),
            None => writeln!(
                md,
                "\n**Goal (≤ 10% memory-time, p99 added ≤ 10 ms) not met in simulation, {what}**: no \
                 start path and idle timeout of the sweep reaches both.\n"
            ),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::efficiency::simulate::Policy;

    fn pt(memory: f64, p99: f64) -> Point {
        Point {
            series: "x",
            policy: Policy::cycling(std::time::Duration::from_secs(60)),
            memory,
            cold: 0.0,
            p99_added_ms: p99,
        }
    }

    #[test]
    fn the_front_keeps_only_points_nothing_beats_on_both() {
        let ps = [
            pt(0.1, 50.0),
            pt(0.2, 10.0),
            pt(0.3, 20.0),
            pt(0.05, 80.0),
            pt(0.2, 30.0),
        ];
        let f: Vec<(f64, f64)> = pareto(&ps)
            .iter()
            .map(|p| (p.memory, p.p99_added_ms))
            .collect();
        assert_eq!(f, [(0.05, 80.0), (0.1, 50.0), (0.2, 10.0)]);
    }
}
