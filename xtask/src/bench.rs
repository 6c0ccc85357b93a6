//! `cargo xtask bench NAME …` and `cargo xtask experiment NAME …`: the documented entries to
//! hako's benchmarks and experiments, which live in the release-built `hako-bench` crate
//! (crates/bench). xtask installs the Debian packages a benchmark needs, builds hako (and
//! the examples it runs) in release, then runs `cargo run --release -p hako-bench -- NAME …`.
//!
//! `cargo xtask bench check` runs the bench crate's own tests (statistics, parsers, the crun
//! worker, nginx, the efficiency experiment's 20-second smoke run); `cargo xtask test` leaves
//! that crate out so that it builds neither plots nor benchmark code.

use std::process::Command;

use anyhow::{Context, bail};

use crate::setup;
use crate::test::{require_root, run};

/// What one benchmark or experiment needs before it runs.
#[derive(Debug)]
struct Entry {
    /// Its `hako-bench` subcommand.
    name: &'static str,
    /// Commands it runs and the Debian packages that bring them.
    packages: &'static [(&'static str, &'static str)],
    /// It needs the MariaDB server running.
    mariadb: bool,
    /// It needs the pinned CRIU (checkpoint/restore).
    criu: bool,
    /// Examples to build in release: (package, example).
    examples: &'static [(&'static str, &'static str)],
}

const CONTAINERS: &[(&str, &str)] = &[
    ("busybox", "busybox-static"),
    ("php", "php-cli"),
    ("nft", "nftables"),
    ("ip", "iproute2"),
];

const BENCHES: &[Entry] = &[
    Entry {
        name: "runtime",
        packages: &[
            ("crun", "crun"),
            ("busybox", "busybox-static"),
            ("php", "php-cli"),
        ],
        mariadb: false,
        criu: false,
        examples: &[],
    },
    Entry {
        name: "cold-start",
        packages: &[
            ("crun", "crun"),
            ("busybox", "busybox-static"),
            ("php", "php-cli"),
            ("nft", "nftables"),
            ("ip", "iproute2"),
        ],
        mariadb: false,
        criu: false,
        examples: &[],
    },
    Entry {
        name: "proxy",
        packages: &[
            ("wrk", "wrk"),
            ("nginx", "nginx-light"),
            ("nft", "nftables"),
            ("ip", "iproute2"),
        ],
        mariadb: false,
        criu: false,
        examples: &[("hako-proxy", "bench_proxy")],
    },
    Entry {
        name: "wordpress",
        packages: &[
            ("wrk", "wrk"),
            ("debootstrap", "debootstrap"),
            ("curl", "curl"),
            ("nft", "nftables"),
        ],
        mariadb: true,
        criu: false,
        examples: &[],
    },
    Entry {
        name: "digest",
        packages: &[("debootstrap", "debootstrap")],
        mariadb: false,
        criu: false,
        examples: &[],
    },
    Entry {
        name: "autoscaler",
        packages: CONTAINERS,
        mariadb: false,
        criu: false,
        examples: &[],
    },
    Entry {
        name: "cycling",
        packages: &[
            ("wrk", "wrk"),
            ("busybox", "busybox-static"),
            ("nft", "nftables"),
            ("ip", "iproute2"),
        ],
        mariadb: false,
        criu: false,
        examples: &[],
    },
    Entry {
        name: "chaos",
        packages: &[
            ("busybox", "busybox-static"),
            // The benchmark runs a MariaDB server of its own (kill -9 must disturb no one).
            ("mariadbd", "mariadb-server"),
            ("mariadb-install-db", "mariadb-server"),
            ("mariadb", "mariadb-client"),
            ("etcd", "etcd-server"),
            ("nft", "nftables"),
            ("ip", "iproute2"),
        ],
        mariadb: false,
        criu: false,
        examples: &[],
    },
    Entry {
        name: "restore",
        packages: &[
            ("php", "php-cli"),
            ("python3", "python3"),
            ("nft", "nftables"),
        ],
        mariadb: false,
        criu: true,
        examples: &[],
    },
    Entry {
        name: "mitigation",
        packages: &[
            ("busybox", "busybox-static"),
            ("php", "php-cli"),
            ("python3", "python3"),
            ("debootstrap", "debootstrap"),
            ("curl", "curl"),
            ("mariadb", "mariadb-client"),
            ("nft", "nftables"),
            ("ip", "iproute2"),
        ],
        mariadb: true,
        criu: true,
        examples: &[],
    },
    Entry {
        name: "cluster",
        packages: &[
            ("busybox", "busybox-static"),
            ("etcd", "etcd-server"),
            ("nft", "nftables"),
            ("ip", "iproute2"),
            ("nsenter", "util-linux"),
            ("unshare", "util-linux"),
        ],
        mariadb: false,
        criu: false,
        examples: &[],
    },
];

const EXPERIMENTS: &[Entry] = &[
    Entry {
        name: "efficiency",
        packages: &[
            ("busybox", "busybox-static"),
            ("php", "php-cli"),
            ("nft", "nftables"),
            ("ip", "iproute2"),
            ("debootstrap", "debootstrap"),
            ("curl", "curl"),
            ("mariadb", "mariadb-client"),
        ],
        mariadb: true,
        criu: false,
        examples: &[],
    },
    Entry {
        name: "density",
        packages: CONTAINERS,
        mariadb: false,
        criu: false,
        examples: &[],
    },
];

/// What `cargo xtask bench check` installs: what the bench crate's tests run.
const CHECK_PACKAGES: &[(&str, &str)] = &[
    ("busybox", "busybox-static"),
    ("php", "php-cli"),
    ("nft", "nftables"),
    ("ip", "iproute2"),
    ("crun", "crun"),
    ("nginx", "nginx-light"),
    // The efficiency experiment's smoke test has a WordPress site.
    ("debootstrap", "debootstrap"),
    ("curl", "curl"),
    ("mariadb", "mariadb-client"),
];

/// `cargo xtask bench ARGS…`.
pub fn bench(args: &[&str]) -> anyhow::Result<()> {
    match args {
        ["check", rest @ ..] => check(rest),
        [name, rest @ ..] => run_entry(find(BENCHES, name, "benchmark")?, rest),
        [] => bail!("name a benchmark: {}, or check", names(BENCHES)),
    }
}

/// `cargo xtask experiment ARGS…`.
pub fn experiment(args: &[&str]) -> anyhow::Result<()> {
    match args {
        [name, rest @ ..] => run_entry(find(EXPERIMENTS, name, "experiment")?, rest),
        [] => bail!("name an experiment: {}", names(EXPERIMENTS)),
    }
}

fn find<'a>(entries: &'a [Entry], name: &str, what: &str) -> anyhow::Result<&'a Entry> {
    entries
        .iter()
        .find(|e| e.name == name)
        .with_context(|| format!("unknown {what} {name:?}; known: {}", names(entries)))
}

fn names(entries: &[Entry]) -> String {
    entries
        .iter()
        .map(|e| e.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Installs what `e` needs, builds hako (and its examples) in release, runs `hako-bench`.
fn run_entry(e: &Entry, args: &[&str]) -> anyhow::Result<()> {
    // The simulation alone needs neither root nor containers.
    let sim_only = e.name == "efficiency" && args.contains(&"--sim-only");
    if !sim_only {
        require_root()?;
        setup::ensure_packages(e.packages)?;
        if e.mariadb {
            setup::ensure_mariadb()?;
        }
        if e.criu {
            setup::ensure_criu()?;
        }
    }
    let root = crate::workspace_root();
    if !sim_only {
        run(cargo(&root).args(["build", "--release", "-p", "hako"]))
            .context("building hako failed")?;
    }
    for (package, example) in e.examples {
        run(cargo(&root).args(["build", "--release", "-p", package, "--example", example]))
            .with_context(|| format!("building the example {example} failed"))?;
    }
    exec(
        cargo(&root)
            .args([
                "run",
                "--quiet",
                "--release",
                "-p",
                "hako-bench",
                "--",
                e.name,
            ])
            .args(args),
    )
}

/// `cargo xtask bench check`: the bench crate's tests, with hako built for them.
fn check(args: &[&str]) -> anyhow::Result<()> {
    require_root()?;
    setup::ensure_packages(CHECK_PACKAGES)?;
    setup::ensure_mariadb()?;
    crate::test::ensure_nextest()?;
    let root = crate::workspace_root();
    // Release, like the benchmarks: the simulator's tests take seconds there, a minute in a
    // debug build.
    run(cargo(&root).args(["build", "--release", "-p", "hako"])).context("building hako failed")?;
    exec(
        cargo(&root)
            .args([
                "nextest",
                "run",
                "--release",
                "-p",
                "hako-bench",
                "--no-fail-fast",
            ])
            .args(args),
    )
}

/// Replaces this process with `cmd`, so that Ctrl-C and SIGTERM reach the benchmark itself
/// (the experiment stops cleanly on them) and its exit code is ours. Returns only on failure.
fn exec(cmd: &mut Command) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let err = cmd.exec();
    Err(err).with_context(|| format!("cannot run {cmd:?}"))
}

fn cargo(root: &std::path::Path) -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_is_known_and_names_its_packages() {
        for e in BENCHES.iter().chain(EXPERIMENTS) {
            assert!(!e.packages.is_empty(), "{}", e.name);
        }
        assert_eq!(
            find(BENCHES, "proxy", "benchmark").unwrap().examples.len(),
            1
        );
        let err = find(BENCHES, "nope", "benchmark").unwrap_err().to_string();
        assert!(
            err.contains("runtime, cold-start, proxy, wordpress"),
            "{err}"
        );
        assert!(bench(&[]).is_err() && experiment(&[]).is_err());
    }
}
