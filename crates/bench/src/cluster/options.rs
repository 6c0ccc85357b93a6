//! `hako-bench cluster [--quick] [--runs N] [--drain-sites N] [--loss-sites N] [--apps N]
//! [--changes N]`: how big each part of the cluster benchmark is.

use anyhow::{Context, bail};

/// The sizes of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Cold requests per series (remote, single host).
    pub runs: usize,
    /// Running sites on the drained node.
    pub drain_sites: usize,
    /// Sites on the node whose agent is killed.
    pub loss_sites: usize,
    /// Apps stored for the route propagation measure.
    pub apps: usize,
    /// Changes timed for the route propagation measure.
    pub changes: usize,
}

impl Options {
    /// The run: 30 cold starts a series, 50 sites drained, 10,000 apps stored.
    pub fn full() -> Options {
        Options {
            runs: 30,
            drain_sites: 50,
            loss_sites: 5,
            apps: 10_000,
            changes: 200,
        }
    }

    /// `--quick`: a smaller run of every part (a few minutes less, the same figures' shape).
    pub fn quick() -> Options {
        Options {
            runs: 10,
            drain_sites: 10,
            loss_sites: 3,
            apps: 1_000,
            changes: 50,
        }
    }

    /// Parses the command line: `--quick` first picks the smaller sizes, the other options
    /// then set single sizes (in any order).
    pub fn parse(args: &[&str]) -> anyhow::Result<Options> {
        let mut o = if args.contains(&"--quick") {
            Options::quick()
        } else {
            Options::full()
        };
        let mut it = args.iter();
        while let Some(&arg) = it.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (arg, None),
            };
            if name == "--quick" {
                continue;
            }
            let v = inline
                .or_else(|| it.next().copied())
                .with_context(|| format!("{name} needs a value"))?;
            let n: usize = v
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .with_context(|| format!("{name} {v:?}: give a positive number"))?;
            match name {
                "--runs" => o.runs = n,
                "--drain-sites" => o.drain_sites = n,
                "--loss-sites" => o.loss_sites = n,
                "--apps" => o.apps = n,
                "--changes" => o.changes = n,
                other => bail!("unknown option {other:?}"),
            }
        }
        if o.drain_sites > 200 || o.loss_sites > 50 || o.apps > 100_000 || o.changes > 10_000 {
            bail!(
                "sizes above the bounds (200 drained sites, 50 lost sites, 100000 apps, \
                 10000 changes): {o:?}"
            );
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_quick_and_single_sizes() {
        assert_eq!(Options::parse(&[]).unwrap(), Options::full());
        assert_eq!(Options::parse(&["--quick"]).unwrap(), Options::quick());
        let o = Options::parse(&["--runs", "3", "--quick", "--apps=500"]).unwrap();
        assert_eq!((o.runs, o.apps, o.drain_sites), (3, 500, 10));
        assert_eq!(Options::full().apps, 10_000);
        assert_eq!(Options::full().drain_sites, 50);
    }

    #[test]
    fn refuses_bad_values() {
        for bad in [
            &["--runs"][..],
            &["--runs", "0"],
            &["--apps", "x"],
            &["--fast", "1"],
            &["--apps", "1000000"],
        ] {
            assert!(Options::parse(bad).is_err(), "{bad:?}");
        }
    }
}
