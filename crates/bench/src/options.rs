//! The options most benchmarks share: `[--runs N] [--spacing-ms MS] [--only NAME,…]
//! [--verbose]`.

use std::time::Duration;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
