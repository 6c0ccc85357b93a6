//! `cargo xtask bench chaos`: faults under bounded load, and what each cost.
//!
//! A `hako serve` started by the benchmark (data dir on a 512 MiB tmpfs of its own, the
//! benchmark's own MariaDB server) hosts a static site and a site that writes to its database;
//! bounded probes run all the time ([`probe`]: 50 pages/s, 10 database writes/s through the
//! site, 4 app creates/s through the API — writes to hako's store). One fault at a time:
//!
//! 1. `app-kill`: kill -9 of the static site's instance processes;
//! 2. `serve-kill`: kill -9 of `hako serve`, started again on the same data dir at once;
//! 3. `mariadb-kill`: kill -9 of the MariaDB server, started again at once;
//! 4. `disk-full`: the data dir's filesystem filled to the last byte for 3 s, then freed;
//! 5. `memory`: a hog in its own cgroup takes half the host's available memory (at most
//!    `--hog-max-mib`, default 4096) for 3 s;
//! 6. `etcd-member`: a second `hako serve --store etcd://…` on a 3-member etcd the benchmark
//!    starts; kill -9 of one member, started again 3 s later.
//!
//! For each: the site requests that failed, the writes acknowledged (2xx) and refused, the
//! acknowledged writes not read back after recovery (database rows read as root from the
//! server, apps listed through the API; must be 0), and the time from undoing the fault until
//! every kind of probe that failed succeeded again ([`report::recovery`]). A per-case table,
//! then `chaos: cases=… lost_writes=… max_recovery_s=… failed_requests=…`.

mod cases;
mod disk;
mod etcd;
pub mod hog;
mod mariadb;
mod probe;
mod report;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hako_testkit::{Names, Serve};

use probe::{Plan, Probes, Target};
use report::{Fault, Outcome, Row};

/// The cases, in the order they run.
const CASES: [&str; 6] = [
    "app-kill",
    "serve-kill",
    "mariadb-kill",
    "disk-full",
    "memory",
    "etcd-member",
];
/// Size of the data dir's filesystem.
const DATA_FS_SIZE: &str = "512m";
/// Load before each fault.
const BASELINE: Duration = Duration::from_secs(2);
/// How long a held fault (full disk, memory hog, a missing etcd member) lasts.
const HOLD: Duration = Duration::from_secs(3);
/// Load after the recovery, before the case ends.
const SETTLE: f64 = 2.0;
/// A case that has not recovered by then fails the benchmark.
const RECOVERY_LIMIT: Duration = Duration::from_secs(90);
/// API writes sent at once while the disk is full, at most (they stop at the first refusal).
const FULL_BURST: usize = 2_000;
/// How long a site gets to answer after it is created.
const SITE_LIMIT: Duration = Duration::from_secs(60);

const STATIC_APP: &str = "chs";
const DB_APP: &str = "chd";

/// The options.
#[derive(Debug, Clone)]
struct Options {
    only: Option<Vec<String>>,
    hog_max: u64,
}

impl Options {
    fn parse(args: &[&str]) -> anyhow::Result<Options> {
        let mut o = Options {
            only: None,
            hog_max: 4096 << 20,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match *a {
                "--only" => {
                    let v: Vec<String> = it
                        .next()
                        .context("--only CASE,…")?
                        .split(',')
                        .map(str::to_string)
                        .collect();
                    if let Some(bad) = v.iter().find(|c| !CASES.contains(&c.as_str())) {
                        bail!("unknown case {bad:?}; cases: {}", CASES.join(", "));
                    }
                    o.only = Some(v);
                }
                "--hog-max-mib" => {
                    let mib: u64 = it.next().context("--hog-max-mib N")?.parse()?;
                    o.hog_max = mib << 20;
                }
                other => {
                    bail!("unknown option {other:?}; bench chaos [--only CASE,…] [--hog-max-mib N]")
                }
            }
        }
        Ok(o)
    }

    fn wants(&self, case: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|v| v.iter().any(|c| c == case))
    }
}

/// Parses the options and runs the benchmark.
pub fn main(args: &[&str]) -> anyhow::Result<()> {
    let opts = Options::parse(args)?;
    if !hako_runtime::is_root() {
        bail!("the chaos benchmark mounts, kills and starts servers: run it as root");
    }
    crate::tools::require(&[
        ("busybox", "busybox-static"),
        ("mariadbd", "mariadb-server"),
        ("mariadb-install-db", "mariadb-server"),
        ("mariadb", "mariadb-client"),
        ("etcd", "etcd-server"),
        ("nft", "nftables"),
        ("ip", "iproute2"),
    ])?;
    let hako = crate::paths::hako_binary()?;
    let tmp = tempfile::Builder::new()
        .prefix("hako-bench-chaos-")
        .tempdir()
        .context("create a temp dir")?;
    let t0 = Instant::now();
    let mut rows = Vec::new();
    let mut leftovers = Vec::new();
    if CASES[..5].iter().any(|c| opts.wants(c)) {
        let (r, left) = single_host(&hako, tmp.path(), t0, &opts)?;
        rows.extend(r);
        leftovers.extend(left);
    }
    if opts.wants("etcd-member") {
        let (r, left) = etcd::etcd_member(&hako, tmp.path(), t0)?;
        rows.push(r);
        leftovers.extend(left);
    }
    println!();
    print!("{}", report::table(&rows));
    println!(
        "leftovers after the daemons stopped: {}",
        if leftovers.is_empty() {
            "none".to_string()
        } else {
            leftovers.join(", ")
        }
    );
    println!("{}", report::last_line(&rows));
    Ok(())
}

/// One daemon and what the faults act on.
struct World<'a> {
    hako: &'a Path,
    serve: Serve,
    names: Names,
    data: PathBuf,
    serve_args: Vec<String>,
    probes: Probes,
    db: Option<mariadb::MariaDb>,
    fs: Option<disk::Tmpfs>,
}

impl World<'_> {
    /// The names written through the API and the database rows present now.
    fn present(&self) -> anyhow::Result<HashSet<String>> {
        let client = self
            .probes
            .target
            .read()
            .expect("target lock")
            .client
            .clone();
        let mut present: HashSet<String> = client
            .list_apps()
            .context("listing apps to read the API writes back")?
            .into_iter()
            .map(|a| a.spec.name)
            .collect();
        if let Some(db) = &self.db {
            let app = client.app(DB_APP)?;
            let grant = app
                .database_grant
                .context("the database site has no database")?;
            let rows = db.query(&format!("SELECT id FROM `{}`.w", grant.database))?;
            present.extend(rows.lines().map(|l| l.trim().to_string()));
        }
        Ok(present)
    }

    /// Runs one case: load, the fault, the wait for recovery, the read-back.
    fn case(
        &mut self,
        name: &'static str,
        inject: impl FnOnce(&mut World<'_>) -> anyhow::Result<(Fault, String)>,
    ) -> anyhow::Result<Row> {
        eprintln!("bench chaos: {name}");
        let from = self.probes.now();
        // The load's steady part before the fault (the case's script, not a readiness wait).
        std::thread::sleep(BASELINE);
        let (fault, note) = inject(self)?;
        let deadline = Instant::now() + RECOVERY_LIMIT;
        let window = loop {
            // Polling the probes' outcomes for the recovery, bounded by the deadline.
            std::thread::sleep(Duration::from_millis(100));
            let now = self.probes.now();
            let window: Vec<Outcome> = self
                .probes
                .outcomes()
                .into_iter()
                .filter(|o| o.sent >= from)
                .collect();
            let state = report::recovery(&window, fault);
            if now >= fault.lift + SETTLE && state.is_ok() && all_back(&window, fault.lift) {
                break window;
            }
            if Instant::now() >= deadline {
                bail!("{name}: not recovered within {RECOVERY_LIMIT:?} ({state:?}; {note})");
            }
        };
        let present = self.present()?;
        let row = report::row(name, &window, fault, &present, note)
            .map_err(|k| anyhow::anyhow!("{name}: {k:?} did not recover"))?;
        eprintln!("  {row:?}");
        for o in window.iter().filter(|o| !o.ok) {
            eprintln!(
                "    failed {:?} sent {:+.2} s after the fault, {:.2} s: status {:?}",
                o.kind,
                o.sent - fault.start,
                o.done - o.sent,
                o.status
            );
        }
        Ok(row)
    }
}

/// Every kind of probe that ran has succeeded since `lift`.
fn all_back(window: &[Outcome], lift: f64) -> bool {
    report::Kind::ALL.iter().all(|k| {
        let mut of_kind = window.iter().filter(|o| o.kind == *k).peekable();
        of_kind.peek().is_none()
            || window
                .iter()
                .any(|o| o.kind == *k && o.ok && o.sent >= lift)
    })
}

/// Starts `hako serve` on `data` with `names` (the first time, with the host image `base`).
fn start_serve(
    hako: &Path,
    data: &Path,
    names: &Names,
    args: &[String],
    first: bool,
) -> anyhow::Result<Serve> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut b = Serve::builder(hako)
        .tag('b')
        .data_dir(data)
        .names(names.clone())
        .stop_grace(Duration::from_secs(1))
        .echo_warnings(true)
        .args(&args);
    if first {
        b = b.host_image("base");
    }
    b.start().context("cannot start hako serve")
}

fn target(serve: &Serve) -> Target {
    Target {
        proxy: serve.proxy,
        client: serve.client(),
    }
}

/// Creates a site (min 1) with `code`, and waits until `probe_path` answers 2xx.
fn create_site(
    serve: &Serve,
    name: &str,
    code: &Path,
    extra: &[&str],
    probe_path: &str,
) -> anyhow::Result<()> {
    let host = format!("{name}.chaos");
    let code = code.to_str().context("the temp dir path is not UTF-8")?;
    let mut args = vec![
        "app",
        "create",
        name,
        "--host",
        &host,
        "--image",
        "base",
        "--code",
        code,
        "--cmd",
        "busybox httpd -f -p $PORT -h /app",
        "--min",
        "1",
        "--idle-timeout",
        "1h",
    ];
    args.extend_from_slice(extra);
    serve.cli(&args)?;
    let deadline = Instant::now() + SITE_LIMIT;
    loop {
        let r = crate::request::get(serve.proxy, &host, probe_path, &[], Duration::from_secs(10));
        match r {
            Ok((r, _)) if (200..300).contains(&r.status) => return Ok(()),
            _ if Instant::now() >= deadline => {
                bail!("{name} does not answer {probe_path} within {SITE_LIMIT:?}: {r:?}")
            }
            // Polling the new site's readiness, bounded by the deadline.
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The five cases on one host's `hako serve` (embedded store).
fn single_host(
    hako: &Path,
    tmp: &Path,
    t0: Instant,
    opts: &Options,
) -> anyhow::Result<(Vec<Row>, Vec<String>)> {
    let names = Names::unique('b');
    let fs = disk::Tmpfs::mount(&tmp.join("datafs"), DATA_FS_SIZE, &names.prefix)?;
    let data = fs.path().join("data");
    eprintln!("bench chaos: starting the benchmark's MariaDB server");
    let db = mariadb::MariaDb::start(&tmp.join("mysql"))?;
    let config = tmp.join("serve.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nsocket = {:?}\nprefix = {:?}\n",
            db.socket().display().to_string(),
            names.prefix
        ),
    )?;
    let serve_args = vec!["--config".to_string(), config.display().to_string()];
    let serve = start_serve(hako, &data, &names, &serve_args, true)?;
    eprintln!(
        "bench chaos: hako serve {} on a {DATA_FS_SIZE} tmpfs, MariaDB at {}",
        names.prefix,
        db.socket().display()
    );
    let static_code = tmp.join("static");
    crate::phases::site_code(&static_code, 1)?;
    create_site(&serve, STATIC_APP, &static_code, &[], "/index.html")?;
    let db_code = tmp.join("dbsite");
    mariadb::site_code(&db_code)?;
    create_site(&serve, DB_APP, &db_code, &["--database"], "/cgi-bin/w?0")?;
    let plan = Plan::new(
        format!("{STATIC_APP}.chaos"),
        Some(format!("{DB_APP}.chaos")),
    );
    let probes = Probes::start(t0, target(&serve), &plan);
    let mut w = World {
        hako,
        serve,
        names: names.clone(),
        data,
        serve_args,
        probes,
        db: Some(db),
        fs: Some(fs),
    };
    let rows = cases::run_single_host_cases(&mut w, opts);
    let World {
        mut serve,
        probes,
        mut fs,
        db,
        ..
    } = w;
    probes.stop();
    let stopped = serve.terminate();
    drop(db);
    let mut left = leftovers_swept(&names)?;
    if !matches!(stopped, Ok(Some(s)) if s.success()) {
        left.push(format!("hako serve did not stop cleanly: {stopped:?}"));
    }
    if let Some(fs) = fs.as_mut() {
        fs.unmount();
    }
    Ok((rows?, left))
}

/// What a stopped daemon left of its kernel objects (reported), then removed: a runtime of the
/// same prefix removes its dead predecessor's leftovers when it starts. Fails if some remain.
fn leftovers_swept(names: &Names) -> anyhow::Result<Vec<String>> {
    let left = hako_testkit::leftovers(&names.prefix);
    if left.is_empty() {
        return Ok(left);
    }
    let mut config = hako_runtime::RuntimeConfig::unique('b', "/run/hako");
    config.prefix = names.prefix.clone();
    config.subnet = names.subnet.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let runtime = hako_runtime::Runtime::new(config)?;
    runtime.shutdown();
    drop(runtime);
    let _ = std::fs::remove_dir(format!("/run/hako/{}", names.prefix));
    let _ = std::fs::remove_file(format!("/run/hako/{}.lock", names.prefix));
    let still = hako_testkit::leftovers(&names.prefix);
    if !still.is_empty() {
        bail!("left behind, and not removed by a sweep: {still:?}");
    }
    eprintln!("bench chaos: {} left {left:?}; swept", names.prefix);
    Ok(left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_pick_cases() {
        let o = Options::parse(&["--only", "disk-full,memory", "--hog-max-mib", "512"]).unwrap();
        assert!(o.wants("memory") && o.wants("disk-full") && !o.wants("app-kill"));
        assert_eq!(o.hog_max, 512 << 20);
        assert!(Options::parse(&[]).unwrap().wants("etcd-member"));
        assert!(Options::parse(&["--only", "nope"]).is_err());
        assert!(Options::parse(&["--bogus"]).is_err());
    }

    #[test]
    fn every_kind_that_ran_must_be_back_after_the_lift() {
        let o = |kind, ok, sent| Outcome {
            kind,
            sent,
            done: sent,
            ok,
            status: None,
            write: None,
        };
        let v = [
            o(report::Kind::Page, true, 3.0),
            o(report::Kind::ApiWrite, true, 1.0),
        ];
        assert!(
            !all_back(&v, 2.0),
            "the API write succeeded before the lift only"
        );
        assert!(all_back(&v, 1.0));
    }
}
