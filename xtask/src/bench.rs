//! `cargo xtask bench NAME`: benchmarks that measure hako and its baseline side by side in one
//! run and end with one `NAME: key=value …` line (times in ms).
//!
//! Shared pieces live here: option parsing, [`Samples`] (p50/p95), the [`Pacer`] that spaces
//! starts apart, and the table printer.

mod cold_start;
pub mod daemon;
mod http;
mod proxy;
pub mod restore;
mod runtime;
mod wordpress;

use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Options common to the benchmarks.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Samples per measure.
    pub runs: usize,
    /// Minimum time between two starts.
    pub spacing: Duration,
    /// Names of the measures to run (all when empty).
    pub only: Vec<String>,
    /// Print every sample as it is taken.
    pub verbose: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            runs: 50,
            spacing: Duration::from_millis(200),
            only: Vec::new(),
            verbose: false,
        }
    }
}

impl Options {
    /// Parses `[--runs N] [--spacing-ms MS] [--only NAME[,NAME…]] [--verbose]`.
    pub fn parse(args: &[&str]) -> anyhow::Result<Options> {
        let mut o = Options::default();
        let mut it = args.iter();
        while let Some(&arg) = it.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (arg, None),
            };
            let mut value = || -> anyhow::Result<&str> {
                inline
                    .or_else(|| it.next().copied())
                    .with_context(|| format!("{name} needs a value"))
            };
            match name {
                "--runs" => {
                    let v = value()?;
                    o.runs = v
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .with_context(|| format!("--runs {v:?}: give a positive number"))?;
                }
                "--spacing-ms" => {
                    let v = value()?;
                    let ms: u64 = v
                        .parse()
                        .with_context(|| format!("--spacing-ms {v:?}: give milliseconds"))?;
                    o.spacing = Duration::from_millis(ms);
                }
                "--only" => {
                    o.only = value()?
                        .split(',')
                        .filter(|n| !n.is_empty())
                        .map(str::to_string)
                        .collect();
                }
                "--verbose" | "-v" => o.verbose = true,
                other => bail!("unknown option {other:?}"),
            }
        }
        Ok(o)
    }
}

/// Runs `cargo xtask bench ARGS…`.
pub fn main(args: &[&str]) -> anyhow::Result<()> {
    match args {
        ["runtime", rest @ ..] => runtime::run(&Options::parse(rest)?),
        ["cold-start", rest @ ..] => cold_start::main(rest),
        ["proxy", rest @ ..] => proxy::main(rest),
        ["wordpress", rest @ ..] => wordpress::main(rest),
        ["restore", rest @ ..] => restore::main(rest),
        [other, ..] => {
            bail!(
                "unknown benchmark {other:?}; known: runtime, cold-start, proxy, wordpress, restore"
            )
        }
        [] => bail!("name a benchmark: runtime, cold-start, proxy, wordpress, restore"),
    }
}

/// Durations of one measure.
#[derive(Debug, Clone, Default)]
pub struct Samples(Vec<Duration>);

impl Samples {
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The `p`-th percentile (0–100) by nearest rank, in milliseconds; `None` when empty.
    pub fn percentile_ms(&self, p: f64) -> Option<f64> {
        if self.0.is_empty() {
            return None;
        }
        let mut v = self.0.clone();
        v.sort();
        let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
        let i = rank.clamp(1, v.len()) - 1;
        Some(v[i].as_secs_f64() * 1000.0)
    }

    pub fn p50(&self) -> Option<f64> {
        self.percentile_ms(50.0)
    }

    pub fn p95(&self) -> Option<f64> {
        self.percentile_ms(95.0)
    }

    /// How many samples took at least `d`.
    pub fn count_at_least(&self, d: Duration) -> usize {
        self.0.iter().filter(|s| **s >= d).count()
    }

    pub fn max(&self) -> Option<f64> {
        self.percentile_ms(100.0)
    }
}

/// Spaces starts at least `spacing` apart, so every start pays what a start after an idle
/// moment pays (a tight loop would hide the cost of the first cgroup write after idling).
#[derive(Debug)]
pub struct Pacer {
    spacing: Duration,
    last: Option<Instant>,
}

impl Pacer {
    pub fn new(spacing: Duration) -> Pacer {
        Pacer {
            spacing,
            last: None,
        }
    }

    /// Waits until `spacing` has passed since the previous call returned, then returns.
    pub fn next(&mut self) {
        if let Some(last) = self.last {
            let due = last + self.spacing;
            let now = Instant::now();
            if due > now {
                // Idle time on purpose: this is the spacing itself, not a readiness wait.
                std::thread::sleep(due - now);
            }
        }
        self.last = Some(Instant::now());
    }
}

/// Formats milliseconds for the table and the summary line.
pub fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v < 10.0 => format!("{v:.2}"),
        Some(v) => format!("{v:.1}"),
        None => "-".into(),
    }
}

/// Prints rows of `(label, samples)` as a table of n, p50, p95 and max; rows without
/// samples (measures not run) are left out, and the whole table if none has any.
pub fn print_table(title: &str, rows: &[(&str, &Samples)]) {
    let rows: Vec<_> = rows.iter().filter(|(_, s)| s.len() > 0).collect();
    if rows.is_empty() {
        return;
    }
    println!();
    let width = rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0)
        .max(title.chars().count());
    println!(
        "{title:<width$}  {:>4}  {:>8}  {:>8}  {:>8}",
        "n", "p50 ms", "p95 ms", "max ms"
    );
    for (label, s) in rows {
        println!(
            "{label:<width$}  {:>4}  {:>8}  {:>8}  {:>8}",
            s.len(),
            ms(s.p50()),
            ms(s.p95()),
            ms(s.max())
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(ms: &[u64]) -> Samples {
        let mut s = Samples::default();
        for m in ms {
            s.push(Duration::from_millis(*m));
        }
        s
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let s = samples(&(1..=100).rev().collect::<Vec<_>>());
        assert_eq!(s.p50(), Some(50.0));
        assert_eq!(s.p95(), Some(95.0));
        assert_eq!(s.max(), Some(100.0));
        assert_eq!(s.count_at_least(Duration::from_millis(91)), 10);
        assert_eq!(s.percentile_ms(0.0), Some(1.0));
        let one = samples(&[7]);
        assert_eq!(one.p50(), Some(7.0));
        assert_eq!(one.p95(), Some(7.0));
        assert_eq!(Samples::default().p50(), None);
    }

    #[test]
    fn parses_options() {
        assert_eq!(Options::parse(&[]).unwrap(), Options::default());
        let o =
            Options::parse(&["--runs", "7", "--spacing-ms=300", "--only", "a,b", "-v"]).unwrap();
        assert_eq!(o.runs, 7);
        assert_eq!(o.only, vec!["a", "b"]);
        assert!(o.verbose);
        assert_eq!(o.spacing, Duration::from_millis(300));
        assert!(Options::parse(&["--runs", "0"]).is_err());
        assert!(Options::parse(&["--runs"]).is_err());
        assert!(Options::parse(&["--fast"]).is_err());
    }

    #[test]
    fn pacer_spaces_calls() {
        let spacing = Duration::from_millis(20);
        let mut p = Pacer::new(spacing);
        p.next();
        let t = Instant::now();
        p.next();
        p.next();
        assert!(t.elapsed() >= spacing * 2 - Duration::from_millis(1));
    }

    #[test]
    fn formats_ms() {
        assert_eq!(ms(Some(1.234)), "1.23");
        assert_eq!(ms(Some(23.46)), "23.5");
        assert_eq!(ms(None), "-");
    }
}
