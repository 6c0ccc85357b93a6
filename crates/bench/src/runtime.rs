//! `cargo xtask bench runtime`: hako's in-process containers against `crun run`, side by side
//! in one run, on the same rootfs (hako's host image: a skeleton plus read-only binds of the
//! host's /usr and /etc files) and the same limits.
//!
//! Every start is spaced at least `--spacing-ms` (200 ms) after the previous one, and the
//! measures take turns within each round, so both runtimes see the same machine state. What
//! is measured, per round:
//! - hako `/bin/true`, network `none` and `isolated`: create+start (exec) and exit, with the
//!   clone / prepare / release split from `Container::timings`;
//! - hako `/bin/true` in the host's network: the same without creating a network namespace
//!   (shows what the namespace costs);
//! - hako parked release: a prepared container's `start` → exec only (the warm-pool figure);
//! - crun created container: `crun create` first, then only `crun start` is timed (crun's
//!   counterpart of the parked release);
//! - crun `/bin/true` (its own network namespace, loopback only): spawn of `crun run` → exit
//!   (crun deletes the container before it exits, so hako's exit + remove is shown too);
//! - `busybox httpd` and `php -S` → first HTTP 200: hako `isolated` (veth on a bridge, polled
//!   at the container's address), hako `host` for httpd, and crun sharing the host's network
//!   (polled at 127.0.0.1). crun does no network set-up at all there, so hako `isolated`
//!   against crun is the conservative comparison and hako `host` the like-for-like one.

pub(crate) mod crun;
mod hako;
mod measure;
mod report;

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, bail};
use hako_image::{ImageStore, Rootfs};
use hako_runtime::{Limits, RootfsSpec};

use self::crun::Crun;
use self::hako::Hako;
use self::measure::{Bench, Measure, Results};
use crate::options::Options;
use crate::samples::Pacer;

/// What a container runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Workload {
    /// `/bin/true`.
    True,
    /// `busybox httpd` serving /app on `bind:port`.
    Httpd { bind: &'static str, port: u16 },
    /// `php -S bind:port -t /app`.
    Php { bind: &'static str, port: u16 },
}

impl Workload {
    /// The command line inside the container.
    pub fn argv(&self) -> Vec<String> {
        let v: Vec<String> = match self {
            Workload::True => vec!["/bin/true".into()],
            Workload::Httpd { bind, port } => vec![
                "/bin/busybox".into(),
                "httpd".into(),
                "-f".into(),
                "-p".into(),
                format!("{bind}:{port}"),
                "-h".into(),
                "/app".into(),
            ],
            Workload::Php { bind, port } => vec![
                "/usr/bin/php".into(),
                "-S".into(),
                format!("{bind}:{port}"),
                "-t".into(),
                "/app".into(),
            ],
        };
        v
    }

    /// The port it listens on (0 for `/bin/true`).
    pub fn port(&self) -> u16 {
        match self {
            Workload::True => 0,
            Workload::Httpd { port, .. } | Workload::Php { port, .. } => *port,
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.argv().join(" "))
    }
}

/// The programs the benchmark runs (command, Debian package).
pub const PACKAGES: &[(&str, &str)] = &[
    ("crun", "crun"),
    ("busybox", "busybox-static"),
    ("php", "php-cli"),
];

/// Limits given to every container, hako's and crun's.
fn limits() -> Limits {
    Limits {
        memory_max: Some(256 << 20),
        cpu_cores: Some(1.0),
        pids_max: Some(128),
    }
}

/// Runs the benchmark and prints the table and the summary line.
pub fn run(opts: &Options) -> anyhow::Result<()> {
    if !hako_runtime::is_root() {
        bail!("the runtime benchmark makes namespaces, mounts and cgroups: run it as root");
    }
    crate::tools::require(PACKAGES)?;
    sweep_temp_dirs();
    // Dropped last (declared first): the image and app dirs outlive both runtimes.
    let tmp = tempfile::Builder::new()
        .prefix(&temp_prefix(std::process::id()))
        .tempdir()
        .context("create a temp dir")?;
    let store = ImageStore::open(tmp.path().join("images"))?;
    let (skeleton, binds) = match store.host("bench")?.rootfs() {
        Rootfs::Host { skeleton, binds } => (
            skeleton,
            binds
                .into_iter()
                .map(|b| (b.source, b.target))
                .collect::<Vec<_>>(),
        ),
        Rootfs::Layers(_) => bail!("a host image should be a skeleton with binds"),
    };
    let app = tmp.path().join("app");
    write_app(&app)?;
    let hako = Hako::new(
        RootfsSpec::Host {
            skeleton: skeleton.clone(),
            binds: binds.clone(),
        },
        app.clone(),
        limits(),
    )?;
    let crun_work = tmp.path().join("crun");
    std::fs::create_dir(&crun_work)?;
    let crun = Crun::new(crun::Setup {
        rootfs: skeleton,
        binds,
        app,
        limits: limits(),
        nofile: nofile(),
        work: crun_work,
    })?;

    let measures = Measure::select(&opts.only)?;
    eprintln!(
        "bench runtime: {} rounds of {} measures, starts {} ms apart (hako prefix {}, {})",
        opts.runs,
        measures.len(),
        opts.spacing.as_millis(),
        hako.prefix(),
        crun_version()
    );
    let mut bench = Bench {
        hako,
        crun,
        ports: std::process::id() as u16,
    };
    let mut pacer = Pacer::new(opts.spacing);
    let mut r = Results::default();
    // One untimed round first: page cache, the bridge's first set-up, php's first start.
    for round in 0..=opts.runs {
        let keep = round > 0;
        for &m in &measures {
            pacer.next();
            let d = bench
                .take(m, &mut r, keep)
                .with_context(|| format!("measure {} (round {round})", m.name()))?;
            if opts.verbose {
                eprintln!(
                    "  {} round {round}: {:.2} ms",
                    m.name(),
                    d.as_secs_f64() * 1e3
                );
            }
        }
        if keep && (round % 10 == 0 || round == opts.runs) {
            eprintln!("  {round}/{} rounds", opts.runs);
        }
    }
    // Containers, crun state, cgroups and the bridge go before the temp dir they use.
    drop(bench);
    report::print(&r);
    Ok(())
}

/// Temp dirs of the bench process `pid` start with this.
fn temp_prefix(pid: u32) -> String {
    format!("hako-bench-{pid}-")
}

/// Removes temp dirs that killed bench processes left.
fn sweep_temp_dirs() {
    let tmp = std::env::temp_dir();
    for e in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("hako-bench-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The app both servers serve: /app/index.html (busybox) and /app/index.php (php -S).
fn write_app(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir(dir)?;
    std::fs::write(dir.join("index.html"), "hako bench\n")?;
    std::fs::write(dir.join("index.php"), "<?php echo \"hako bench\\n\";\n")?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    for f in ["index.html", "index.php"] {
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644))?;
    }
    Ok(())
}

/// hako's RLIMIT_NOFILE inside containers: 65536, capped at our own hard limit.
fn nofile() -> u64 {
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
    hard.map_or(65536, |h| h.min(65536))
}

fn crun_version() -> String {
    std::process::Command::new("crun")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "crun (version unknown)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_listen_where_asked() {
        let w = Workload::Httpd {
            bind: "127.0.0.1",
            port: 20001,
        };
        assert_eq!(w.port(), 20001);
        assert!(w.argv().contains(&"127.0.0.1:20001".to_string()));
        let p = Workload::Php {
            bind: "0.0.0.0",
            port: 8080,
        };
        assert_eq!(p.to_string(), "/usr/bin/php -S 0.0.0.0:8080 -t /app");
        assert_eq!(Workload::True.argv(), vec!["/bin/true"]);
    }

    #[test]
    fn sweeps_temp_dirs_of_dead_processes_only() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = std::env::temp_dir().join(format!("{}x", temp_prefix(dead)));
        std::fs::create_dir_all(stale.join("images")).unwrap();
        let live = tempfile::Builder::new()
            .prefix(&temp_prefix(std::process::id()))
            .tempdir()
            .unwrap();
        sweep_temp_dirs();
        assert!(!stale.exists());
        assert!(live.path().exists());
    }
}
