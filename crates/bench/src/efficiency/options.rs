//! The experiment's settings and how they are read from the command line.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

use super::simulate::Policy;
use super::workload::Mix;
use super::{CHECKPOINT_MIB, POOL_START_US, RESTORE_START_US};

/// The experiment's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Real sites.
    pub sites: usize,
    /// Measured real time per mode.
    pub duration: Duration,
    /// Unmeasured real time at the start of each mode (default: the cycling idle timeout,
    /// compressed, plus 10 s).
    pub warmup: Option<Duration>,
    /// Time compression of the real run.
    pub speedup: f64,
    pub seed: u64,
    /// Share of PHP (`php -S`) sites.
    pub php_share: f64,
    /// Share of WordPress sites (the rest, after PHP, are static).
    pub wordpress_share: f64,
    /// Cycling's idle timeout (workload time).
    pub idle_timeout: Duration,
    /// Idle timeout with predicted pre-warm (workload time).
    pub predict_idle_timeout: Duration,
    /// Pre-warm lead (workload time).
    pub lead: Duration,
    /// Simulated sites and time.
    pub sim_sites: usize,
    pub sim_duration: Duration,
    /// Load generator: workers (= most requests in flight) and the cap on requests per mode.
    pub concurrency: usize,
    pub max_requests: usize,
    pub sample_interval: Duration,
    /// Where the report goes.
    pub out: PathBuf,
    /// Skip the real run (report the simulation only).
    pub sim_only: bool,
    /// Start times and memory of the mitigations for the latency trade-off
    /// ([`latency::Paths`]; defaults from `cargo xtask bench mitigation`).
    pub pool_start: Duration,
    pub restore_start: Duration,
    pub checkpoint_mib: f64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            sites: 1000,
            duration: Duration::from_secs(12 * 60),
            warmup: None,
            speedup: 4.0,
            seed: 1,
            php_share: 0.3,
            wordpress_share: 0.1,
            idle_timeout: Duration::from_secs(300),
            predict_idle_timeout: Duration::from_secs(60),
            lead: Duration::from_secs(4),
            sim_sites: 10_000,
            sim_duration: Duration::from_secs(24 * 3600),
            concurrency: 64,
            max_requests: 2_000_000,
            sample_interval: Duration::from_secs(1),
            out: crate::paths::workspace_root().join("docs/experiments"),
            sim_only: false,
            pool_start: Duration::from_micros(POOL_START_US),
            restore_start: Duration::from_micros(RESTORE_START_US),
            checkpoint_mib: CHECKPOINT_MIB,
        }
    }
}

impl Options {
    /// `--quick`: a small smoke run (40 sites, 1 minute per mode compressed 10×, 1,000
    /// simulated sites over 6 hours) reported under the target dir, not docs/.
    pub(super) fn quick() -> Options {
        Options {
            sites: 40,
            duration: Duration::from_secs(60),
            speedup: 10.0,
            sim_sites: 1000,
            sim_duration: Duration::from_secs(6 * 3600),
            out: crate::paths::target_dir(&crate::paths::workspace_root()).join("experiments"),
            ..Options::default()
        }
    }

    /// Parses the command line (see `cargo xtask help`).
    pub fn parse(args: &[&str]) -> anyhow::Result<Options> {
        let mut o = if args.contains(&"--quick") {
            Options::quick()
        } else {
            Options::default()
        };
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
                "--quick" => {}
                "--sim-only" => o.sim_only = true,
                "--sites" => o.sites = number(name, value()?)?,
                "--duration" => o.duration = human_duration(name, value()?)?,
                "--warmup" => o.warmup = Some(human_duration(name, value()?)?),
                "--speedup" => o.speedup = number(name, value()?)?,
                "--seed" => o.seed = number(name, value()?)?,
                "--php-share" => o.php_share = number(name, value()?)?,
                "--wordpress-share" => o.wordpress_share = number(name, value()?)?,
                "--idle-timeout" => o.idle_timeout = human_duration(name, value()?)?,
                "--predict-idle-timeout" => {
                    o.predict_idle_timeout = human_duration(name, value()?)?
                }
                "--lead" => o.lead = human_duration(name, value()?)?,
                "--sim-sites" => o.sim_sites = number(name, value()?)?,
                "--sim-duration" => o.sim_duration = human_duration(name, value()?)?,
                "--concurrency" => o.concurrency = number(name, value()?)?,
                "--max-requests" => o.max_requests = number(name, value()?)?,
                "--out" => o.out = PathBuf::from(value()?),
                "--pool-start-ms" => {
                    o.pool_start = Duration::from_secs_f64(number::<f64>(name, value()?)? / 1e3)
                }
                "--restore-start-ms" => {
                    o.restore_start = Duration::from_secs_f64(number::<f64>(name, value()?)? / 1e3)
                }
                "--checkpoint-mib" => o.checkpoint_mib = number(name, value()?)?,
                other => bail!("unknown option {other:?}"),
            }
        }
        o.check()?;
        Ok(o)
    }

    pub(super) fn check(&self) -> anyhow::Result<()> {
        if self.sites == 0 || self.sim_sites == 0 || self.concurrency == 0 {
            bail!("--sites, --sim-sites and --concurrency must be positive");
        }
        if !(self.speedup >= 1.0 && self.speedup.is_finite()) {
            bail!("--speedup must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.php_share)
            || !(0.0..=1.0).contains(&self.wordpress_share)
            || self.php_share + self.wordpress_share > 1.0
        {
            bail!("--php-share and --wordpress-share must be within 0 and 1, and their sum too");
        }
        if self.lead >= self.predict_idle_timeout {
            bail!("--lead must be shorter than --predict-idle-timeout");
        }
        let floor = Duration::from_millis(100);
        if self.predict_idle_timeout.div_f64(self.speedup) < floor
            || self.idle_timeout.div_f64(self.speedup) < floor
        {
            bail!("idle timeouts divided by --speedup must stay at least 100ms (hako's floor)");
        }
        if self.duration.is_zero() || self.sim_duration.is_zero() {
            bail!("--duration and --sim-duration must be positive");
        }
        Ok(())
    }

    /// The three policies, in workload time.
    pub fn policies(&self) -> [(&'static str, Policy); 3] {
        [
            ("always-on", Policy::always_on()),
            ("cycling", Policy::cycling(self.idle_timeout)),
            (
                "cycling + prediction",
                Policy::predicted(self.predict_idle_timeout, self.lead),
            ),
        ]
    }

    /// The modes of the real run: the three policies, then the real predictor.
    pub fn real_modes(&self) -> Vec<(&'static str, Policy)> {
        let mut m: Vec<(&'static str, Policy)> = self.policies().into_iter().collect();
        m.push(("predictor", Policy::predictor(self.idle_timeout)));
        m
    }

    /// The servers' shares.
    pub fn mix(&self) -> Mix {
        Mix {
            php: self.php_share,
            wordpress: self.wordpress_share,
        }
    }

    /// The unmeasured start of each mode, real time.
    pub fn warmup(&self) -> Duration {
        self.warmup.unwrap_or_else(|| {
            self.idle_timeout
                .max(self.predict_idle_timeout)
                .div_f64(self.speedup)
                + Duration::from_secs(10)
        })
    }
}

fn number<T: std::str::FromStr>(name: &str, v: &str) -> anyhow::Result<T> {
    v.parse()
        .ok()
        .with_context(|| format!("{name} {v:?}: give a number"))
}

fn human_duration(name: &str, v: &str) -> anyhow::Result<Duration> {
    v.parse::<hako_model::HumanDuration>()
        .map(|d| d.0)
        .map_err(|e| anyhow::anyhow!("{name} {v:?}: {e}"))
}

/// A duration in the largest unit that divides it ("5m", "30s", "500ms", "1.5s").
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1000)] {
        if ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options_and_refuses_bad_ones() {
        let o = Options::parse(&[]).unwrap();
        assert_eq!(o, Options::default());
        assert_eq!(o.warmup(), Duration::from_secs(75 + 10));
        assert_eq!(
            o.policies()[2].1.compressed(o.speedup).lead,
            Some(Duration::from_secs(1))
        );
        let o = Options::parse(&[
            "--sites",
            "10",
            "--duration=30s",
            "--speedup",
            "60",
            "--seed",
            "7",
            "--idle-timeout",
            "1m",
            "--predict-idle-timeout",
            "30s",
            "--lead",
            "6s",
            "--sim-only",
        ])
        .unwrap();
        assert_eq!((o.sites, o.seed, o.speedup), (10, 7, 60.0));
        assert_eq!(o.duration, Duration::from_secs(30));
        assert!(o.sim_only);
        assert_eq!(
            o.policies()[2].1.compressed(60.0).lead,
            Some(Duration::from_millis(100))
        );
        let o = Options::parse(&["--wordpress-share", "0.2"]).unwrap();
        assert_eq!(
            o.mix(),
            Mix {
                php: 0.3,
                wordpress: 0.2
            }
        );
        let q = Options::parse(&["--quick", "--sites", "12"]).unwrap();
        assert_eq!((q.sites, q.sim_sites), (12, 1000));
        assert!(!q.out.ends_with("docs/experiments"));
        for bad in [
            &["--sites", "0"][..],
            &["--speedup", "0.5"],
            &["--php-share", "2"],
            &["--php-share", "0.5", "--wordpress-share", "0.6"],
            &["--wordpress-share", "-0.1"],
            &["--lead", "1m"],
            &["--speedup", "10000"],
            &["--duration", "soon"],
            &["--frobnicate"],
            &["--sites"],
        ] {
            assert!(Options::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::from_secs(300)), "5m");
        assert_eq!(human(Duration::from_secs(3600)), "1h");
        assert_eq!(human(Duration::from_secs(30)), "30s");
        assert_eq!(human(Duration::from_millis(500)), "500ms");
        assert_eq!(human(Duration::from_millis(7500)), "7.5s");
        assert_eq!(human(Duration::ZERO), "0s");
    }
}
