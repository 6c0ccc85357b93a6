//! `cargo xtask bench runtime`: hako's in-process containers against `crun run`, side by side
//! in one run, on the same rootfs (hako's host image: a skeleton plus read-only binds of the
//! host's /usr and /etc files) and the same limits.
//!
//! Every start is spaced at least `--spacing-ms` (200 ms) after the previous one, and the
//! measures take turns within each round, so both runtimes see the same machine state. What
//! is measured, per round:
//! - hako `/bin/true`, network `none` and `isolated`: create+start (exec) and exit, with the
//!   clone / prepare / release split from `Container::timings`;
//! - hako parked release: a prepared container's `start` → exec only (the warm-pool figure);
//! - crun `/bin/true` (its own network namespace, loopback only): spawn of `crun run` → exit
//!   (crun deletes the container before it exits, so hako's exit + remove is shown too);
//! - `busybox httpd` and `php -S` → first HTTP 200: hako `isolated` (veth on a bridge, polled
//!   at the container's address), hako `host` for httpd, and crun sharing the host's network
//!   (polled at 127.0.0.1). crun does no network set-up at all there, so hako `isolated`
//!   against crun is the conservative comparison and hako `host` the like-for-like one.

mod crun;
mod hako;

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, bail};
use hako_image::{ImageStore, Rootfs};
use hako_runtime::{Limits, NetworkMode, RootfsSpec};

use self::crun::Crun;
use self::hako::Hako;
use super::{Options, Pacer, Samples, ms, print_table};

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

/// Limits given to every container, hako's and crun's.
fn limits() -> Limits {
    Limits {
        memory_max: Some(256 << 20),
        cpu_cores: Some(1.0),
        pids_max: Some(128),
    }
}

/// Port inside an isolated container (its own address, so always free).
const ISOLATED_PORT: u16 = 8080;

/// Ports for servers in the host's network, rotated so no run waits on a previous socket.
struct Ports(u16);

impl Ports {
    fn next(&mut self) -> u16 {
        self.0 = self.0.wrapping_add(1);
        20_000 + self.0 % 10_000
    }
}

/// Every series of the benchmark.
#[derive(Default)]
struct Results {
    none_exec: Samples,
    none_exit: Samples,
    none_removed: Samples,
    none_clone: Samples,
    none_prepare: Samples,
    none_release: Samples,
    iso_exec: Samples,
    iso_exit: Samples,
    iso_prepare: Samples,
    parked: Samples,
    crun_exit: Samples,
    hako_httpd: Samples,
    hako_httpd_host: Samples,
    crun_httpd: Samples,
    hako_php: Samples,
    crun_php: Samples,
}

/// Runs the benchmark and prints the table and the summary line.
pub fn run(opts: &Options) -> anyhow::Result<()> {
    if !hako_runtime::is_root() {
        bail!("the runtime benchmark makes namespaces, mounts and cgroups: run it as root");
    }
    crate::setup::ensure_packages(&[
        ("crun", "crun"),
        ("busybox", "busybox-static"),
        ("php", "php-cli"),
        ("ip", "iproute2"),
    ])?;
    // Dropped last (declared first): the image and app dirs outlive both runtimes.
    let tmp = tempfile::Builder::new()
        .prefix("hako-bench-")
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

    let httpd = Workload::Httpd {
        bind: "0.0.0.0",
        port: ISOLATED_PORT,
    };
    let php = Workload::Php {
        bind: "0.0.0.0",
        port: ISOLATED_PORT,
    };
    let mut ports = Ports(std::process::id() as u16);
    let mut pacer = Pacer::new(opts.spacing);
    let mut r = Results::default();

    eprintln!(
        "bench runtime: {} rounds of 9 measures, starts {} ms apart (hako prefix {}, crun {})",
        opts.runs,
        opts.spacing.as_millis(),
        hako.prefix(),
        crun_version()
    );
    // One untimed round first: page cache, the bridge's first set-up, php's opcache files.
    for round in 0..=opts.runs {
        let keep = round > 0;
        let rec = |s: &mut Samples, d| {
            if keep {
                s.push(d)
            }
        };
        pacer.next();
        let t = hako.true_run(NetworkMode::None)?;
        rec(&mut r.none_exec, t.exec);
        rec(&mut r.none_exit, t.exit);
        rec(&mut r.none_removed, t.removed);
        rec(&mut r.none_clone, t.clone);
        rec(&mut r.none_prepare, t.prepare);
        rec(&mut r.none_release, t.release);
        pacer.next();
        let t = hako.true_run(NetworkMode::Isolated)?;
        rec(&mut r.iso_exec, t.exec);
        rec(&mut r.iso_exit, t.exit);
        rec(&mut r.iso_prepare, t.prepare);
        pacer.next();
        rec(&mut r.parked, hako.parked_release()?);
        pacer.next();
        rec(&mut r.crun_exit, crun.true_exit()?);
        pacer.next();
        rec(
            &mut r.hako_httpd,
            hako.http_ready(&httpd, NetworkMode::Isolated)?,
        );
        pacer.next();
        let host_httpd = Workload::Httpd {
            bind: "127.0.0.1",
            port: ports.next(),
        };
        rec(
            &mut r.hako_httpd_host,
            hako.http_ready(&host_httpd, NetworkMode::Host)?,
        );
        pacer.next();
        let crun_httpd = Workload::Httpd {
            bind: "127.0.0.1",
            port: ports.next(),
        };
        let port = crun_httpd.port();
        rec(&mut r.crun_httpd, crun.http_ready(crun_httpd, port)?);
        pacer.next();
        rec(
            &mut r.hako_php,
            hako.http_ready(&php, NetworkMode::Isolated)?,
        );
        pacer.next();
        let crun_php = Workload::Php {
            bind: "127.0.0.1",
            port: ports.next(),
        };
        let port = crun_php.port();
        rec(&mut r.crun_php, crun.http_ready(crun_php, port)?);
        if keep && (round % 10 == 0 || round == opts.runs) {
            eprintln!("  {round}/{} rounds", opts.runs);
        }
    }
    drop(crun);
    drop(hako);
    report(&r);
    Ok(())
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

fn report(r: &Results) {
    println!();
    print_table(
        "start → exit of /bin/true",
        &[
            ("hako, net none", &r.none_exit),
            ("hako, net none, then removed", &r.none_removed),
            ("hako, net isolated", &r.iso_exit),
            ("crun run, own netns (loopback)", &r.crun_exit),
        ],
    );
    println!();
    print_table(
        "start → exec of /bin/true (hako)",
        &[
            ("create+start, net none", &r.none_exec),
            ("  clone returned", &r.none_clone),
            ("  prepared (parked)", &r.none_prepare),
            ("  release → exec", &r.none_release),
            ("create+start, net isolated", &r.iso_exec),
            ("  prepared (parked)", &r.iso_prepare),
            ("parked container: start → exec", &r.parked),
        ],
    );
    println!();
    print_table(
        "start → first HTTP 200",
        &[
            ("hako busybox httpd, isolated", &r.hako_httpd),
            ("hako busybox httpd, host net", &r.hako_httpd_host),
            ("crun busybox httpd, host net", &r.crun_httpd),
            ("hako php -S, isolated", &r.hako_php),
            ("crun php -S, host net", &r.crun_php),
        ],
    );
    println!();
    let l = limits();
    println!("Fairness notes:");
    for note in [
        format!(
            "same rootfs (hako's host image: skeleton + read-only binds of /usr and /etc files) \
             and limits (memory {} MiB, cpu {} core, pids {}) for both",
            l.memory_max.unwrap_or(0) >> 20,
            l.cpu_cores.unwrap_or(0.0),
            l.pids_max.unwrap_or(0)
        ),
        "crun uses the skeleton directory as its root; hako also mounts an overlay with a \
         throw-away upper layer per container (in hako's time only)"
            .into(),
        "crun runs from one private mount namespace (cgroup2 unmounted) made once by a worker \
         thread of this process: no unshare/nsenter/sh process in crun's time"
            .into(),
        "crun's HTTP servers share the host network (no network set-up at all); hako's \
         `isolated` ones get a veth on a bridge each, hako's `host net` one is like-for-like"
            .into(),
        "hako's runtime turns on the kernel-wide cgroup favordynmods lock mode at start, so \
         crun's cgroup moves are just as cheap during the run"
            .into(),
    ] {
        println!("- {note}");
    }
    let ratio = match (r.none_exit.p50(), r.crun_exit.p50()) {
        (Some(h), Some(c)) if c > 0.0 => format!("{:.2}", h / c),
        _ => "-".into(),
    };
    println!(
        "runtime: hako_exit_p50_ms={} crun_exit_p50_ms={} ratio={ratio} \
         hako_httpd_ready_p50_ms={} crun_httpd_ready_p50_ms={} \
         hako_exec_p50_ms={} hako_parked_release_p50_ms={} hako_exit_isolated_p50_ms={} \
         hako_httpd_host_ready_p50_ms={} hako_php_ready_p50_ms={} crun_php_ready_p50_ms={} \
         hako_exit_removed_p50_ms={} hako_exit_p95_ms={} crun_exit_p95_ms={}",
        ms(r.none_exit.p50()),
        ms(r.crun_exit.p50()),
        ms(r.hako_httpd.p50()),
        ms(r.crun_httpd.p50()),
        ms(r.none_exec.p50()),
        ms(r.parked.p50()),
        ms(r.iso_exit.p50()),
        ms(r.hako_httpd_host.p50()),
        ms(r.hako_php.p50()),
        ms(r.crun_php.p50()),
        ms(r.none_removed.p50()),
        ms(r.none_exit.p95()),
        ms(r.crun_exit.p95()),
    );
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
    fn host_ports_rotate_in_range() {
        let mut p = Ports(u16::MAX - 1);
        let a = p.next();
        let b = p.next();
        assert_ne!(a, b);
        for _ in 0..30_000 {
            assert!((20_000..30_000).contains(&p.next()));
        }
    }
}
