//! The measures of the runtime benchmark, each taking one sample per round, and the series
//! they fill.

use std::time::Duration;

use anyhow::bail;
use hako_runtime::NetworkMode;

use super::Workload;
use super::crun::Crun;
use super::hako::Hako;
use crate::samples::Samples;

/// One measure; its name is what `--only` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    HakoTrue,
    HakoTrueIsolated,
    HakoTrueHost,
    HakoParked,
    CrunTrue,
    CrunCreated,
    HakoHttpd,
    HakoHttpdHost,
    CrunHttpd,
    HakoPhp,
    CrunPhp,
}

impl Measure {
    /// Every measure, in the order a round takes them.
    pub const ALL: [Measure; 11] = [
        Measure::HakoTrue,
        Measure::HakoTrueIsolated,
        Measure::HakoTrueHost,
        Measure::HakoParked,
        Measure::CrunTrue,
        Measure::CrunCreated,
        Measure::HakoHttpd,
        Measure::HakoHttpdHost,
        Measure::CrunHttpd,
        Measure::HakoPhp,
        Measure::CrunPhp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Measure::HakoTrue => "hako-true",
            Measure::HakoTrueIsolated => "hako-true-isolated",
            Measure::HakoTrueHost => "hako-true-host",
            Measure::HakoParked => "hako-parked",
            Measure::CrunTrue => "crun-true",
            Measure::CrunCreated => "crun-created",
            Measure::HakoHttpd => "hako-httpd",
            Measure::HakoHttpdHost => "hako-httpd-host",
            Measure::CrunHttpd => "crun-httpd",
            Measure::HakoPhp => "hako-php",
            Measure::CrunPhp => "crun-php",
        }
    }

    /// The measures named in `only` (all when empty), in round order.
    pub fn select(only: &[String]) -> anyhow::Result<Vec<Measure>> {
        for name in only {
            if !Measure::ALL.iter().any(|m| m.name() == name) {
                let known: Vec<&str> = Measure::ALL.iter().map(|m| m.name()).collect();
                bail!("unknown measure {name:?}; known: {}", known.join(", "));
            }
        }
        Ok(Measure::ALL
            .into_iter()
            .filter(|m| only.is_empty() || only.iter().any(|n| n == m.name()))
            .collect())
    }
}

/// Every series of the benchmark.
#[derive(Debug, Default)]
pub struct Results {
    pub none_exec: Samples,
    pub none_exit: Samples,
    pub none_removed: Samples,
    pub none_clone: Samples,
    pub none_prepare: Samples,
    pub none_release: Samples,
    pub iso_exec: Samples,
    pub iso_exit: Samples,
    pub iso_prepare: Samples,
    pub host_exit: Samples,
    pub host_clone: Samples,
    pub parked: Samples,
    pub crun_exit: Samples,
    pub crun_created: Samples,
    pub hako_httpd: Samples,
    pub hako_httpd_host: Samples,
    pub crun_httpd: Samples,
    pub hako_php: Samples,
    pub crun_php: Samples,
}

/// Port inside an isolated container (its own address, so always free).
const ISOLATED_PORT: u16 = 8080;

/// What the measures run on.
pub struct Bench {
    pub hako: Hako,
    pub crun: Crun,
    /// Port counter for servers in the host's network, rotated so no run waits on a previous
    /// socket of the same port.
    pub ports: u16,
}

impl Bench {
    fn host_port(&mut self) -> u16 {
        self.ports = self.ports.wrapping_add(1);
        20_000 + self.ports % 10_000
    }

    /// Takes one sample of `m`; records it in `r` when `keep` (the warm-up round does not).
    /// Returns the headline duration of the sample.
    pub fn take(&mut self, m: Measure, r: &mut Results, keep: bool) -> anyhow::Result<Duration> {
        let rec = |s: &mut Samples, d: Duration| {
            if keep {
                s.push(d)
            }
        };
        let isolated_httpd = Workload::Httpd {
            bind: "0.0.0.0",
            port: ISOLATED_PORT,
        };
        let headline = match m {
            Measure::HakoTrue => {
                let t = self.hako.true_run(NetworkMode::None)?;
                rec(&mut r.none_exec, t.exec);
                rec(&mut r.none_exit, t.exit);
                rec(&mut r.none_removed, t.removed);
                rec(&mut r.none_clone, t.clone);
                rec(&mut r.none_prepare, t.prepare);
                rec(&mut r.none_release, t.release);
                t.exit
            }
            Measure::HakoTrueIsolated => {
                let t = self.hako.true_run(NetworkMode::Isolated)?;
                rec(&mut r.iso_exec, t.exec);
                rec(&mut r.iso_exit, t.exit);
                rec(&mut r.iso_prepare, t.prepare);
                t.exit
            }
            Measure::HakoTrueHost => {
                let t = self.hako.true_run(NetworkMode::Host)?;
                rec(&mut r.host_exit, t.exit);
                rec(&mut r.host_clone, t.clone);
                t.exit
            }
            Measure::HakoParked => {
                let d = self.hako.parked_release()?;
                rec(&mut r.parked, d);
                d
            }
            Measure::CrunTrue => {
                let d = self.crun.true_exit()?;
                rec(&mut r.crun_exit, d);
                d
            }
            Measure::CrunCreated => {
                let d = self.crun.created_start()?;
                rec(&mut r.crun_created, d);
                d
            }
            Measure::HakoHttpd => {
                let d = self
                    .hako
                    .http_ready(&isolated_httpd, NetworkMode::Isolated)?;
                rec(&mut r.hako_httpd, d);
                d
            }
            Measure::HakoHttpdHost => {
                let w = Workload::Httpd {
                    bind: "127.0.0.1",
                    port: self.host_port(),
                };
                let d = self.hako.http_ready(&w, NetworkMode::Host)?;
                rec(&mut r.hako_httpd_host, d);
                d
            }
            Measure::CrunHttpd => {
                let port = self.host_port();
                let d = self.crun.http_ready(
                    Workload::Httpd {
                        bind: "127.0.0.1",
                        port,
                    },
                    port,
                )?;
                rec(&mut r.crun_httpd, d);
                d
            }
            Measure::HakoPhp => {
                let w = Workload::Php {
                    bind: "0.0.0.0",
                    port: ISOLATED_PORT,
                };
                let d = self.hako.http_ready(&w, NetworkMode::Isolated)?;
                rec(&mut r.hako_php, d);
                d
            }
            Measure::CrunPhp => {
                let port = self.host_port();
                let d = self.crun.http_ready(
                    Workload::Php {
                        bind: "127.0.0.1",
                        port,
                    },
                    port,
                )?;
                rec(&mut r.crun_php, d);
                d
            }
        };
        Ok(headline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_measures_by_name_in_round_order() {
        assert_eq!(Measure::select(&[]).unwrap(), Measure::ALL.to_vec());
        let only = vec!["crun-true".to_string(), "hako-true".to_string()];
        assert_eq!(
            Measure::select(&only).unwrap(),
            vec![Measure::HakoTrue, Measure::CrunTrue]
        );
        let err = Measure::select(&["nope".to_string()]).unwrap_err();
        assert!(err.to_string().contains("hako-parked"), "{err}");
    }

    #[test]
    fn names_are_distinct() {
        let mut names: Vec<&str> = Measure::ALL.iter().map(|m| m.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Measure::ALL.len());
    }
}
