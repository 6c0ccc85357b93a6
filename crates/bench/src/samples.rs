//! Measuring: [`Samples`] of one measure (percentiles by nearest rank, in milliseconds), the
//! [`Pacer`] that spaces container starts apart, and the table of n, p50, p95 and max every
//! benchmark prints.

use std::time::{Duration, Instant};

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
