//! The Debian package, installed as an operator would and run as systemd would run it.
//!
//! The .deb is made by cargo-deb from the package's metadata ([`deb::build`]), installed with
//! `apt-get install ./hako_….deb` in a fresh Debian root that has only the package's
//! `Depends` (a cached debootstrap system under a throw-away overlay, in a mount namespace of
//! the test's own: [`chroot::Root`]); then hako is started from the installed files — the
//! unit's `ExecStart=` line and `Environment=` read from the installed hako.service (systemd
//! does not run in a chroot), with the shipped /etc/hako/hako.toml — and a static site,
//! deployed with the installed CLI, answers over HTTP. Test-run additions to the unit's
//! command: loopback listeners on free ports and a unique prefix and subnet. Then hako is
//! stopped (nothing of its runtime left), the package purged, and the root unmounted with its
//! namespace. Needs root, cargo-deb and (once) the Debian mirror.

#[path = "../common/mod.rs"]
mod common;

mod chroot;
mod deb;
mod unit;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chroot::Root;
use common::{HAKO, Names};

/// How long the installed daemon gets to say it serves.
const START_WAIT: Duration = Duration::from_secs(60);
/// How long it gets to stop after SIGTERM.
const STOP_WAIT: Duration = Duration::from_secs(30);

#[test]
fn the_package_installs_in_a_fresh_debian_root_and_serves_a_site() {
    common::require_root();
    let t0 = Instant::now();
    let names = Names::unique('p');
    let target = Path::new(HAKO)
        .parent()
        .and_then(Path::parent)
        .expect("the test binary's hako is in <target>/<profile>/");
    let run = RunDir(target.join("package-test").join(&names.prefix));

    let deb = deb::build(Path::new(HAKO), &run.0);
    assert_eq!(deb::field(&deb, "Package"), "hako");
    assert!(
        deb::names(&deb::field(&deb, "Depends")).contains(&"nftables".to_string()),
        "{deb:?}"
    );
    let t_deb = t0.elapsed();
    let base = deb::base(&deb, &target.join("package-test/images"));
    let t_base = t0.elapsed();

    let root = Root::mount(&base, &run.0, &names.prefix);
    assert!(
        !root.path("usr/bin/hako").exists(),
        "the base system has no hako"
    );
    std::fs::copy(&deb, root.path("tmp/hako.deb")).expect("copy the .deb into the root");
    let out = root.ok(
        &[
            "apt-get",
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            "/tmp/hako.deb",
        ],
        &[],
    );
    assert!(out.contains("Setting up hako"), "{out}");
    let status = root.ok(&["dpkg-query", "-W", "-f=${Status}", "hako"], &[]);
    assert_eq!(status, "install ok installed");
    let conffiles = root.ok(&["dpkg-query", "-W", "-f=${Conffiles}", "hako"], &[]);
    assert!(conffiles.contains("/etc/hako/hako.toml"), "{conffiles:?}");
    let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode() & 0o7777);
    assert_eq!(mode(&root.path("var/lib/hako")).ok(), Some(0o700));
    assert_eq!(mode(&root.path("usr/bin/hako")).ok(), Some(0o755));
    let wants = root.path("etc/systemd/system/multi-user.target.wants/hako.service");
    let link = std::fs::read_link(&wants).expect("postinst enabled hako.service");
    assert!(link.ends_with("hako.service"), "{link:?}");

    let text = std::fs::read_to_string(root.path("usr/lib/systemd/system/hako.service"))
        .expect("the unit is installed");
    let service = unit::read(&text);
    assert_eq!(
        service.exec_start,
        ["/usr/bin/hako", "serve", "--config", "/etc/hako/hako.toml"]
    );
    assert_eq!(
        unit::setting(&text, "Service", "Restart"),
        Some("on-failure")
    );
    assert_eq!(
        unit::setting(&text, "Install", "WantedBy"),
        Some("multi-user.target")
    );
    verify_unit(&text, &run.0);
    let t_install = t0.elapsed();

    let mut command: Vec<&str> = service.exec_start.iter().map(String::as_str).collect();
    command.extend(["--listen", "127.0.0.1:0", "--api", "127.0.0.1:0"]);
    command.extend(["--prefix", &names.prefix, "--subnet", &names.subnet]);
    let mut daemon = Daemon::start(root.command(&command, &service.environment));
    assert_eq!(
        daemon.data, "/var/lib/hako",
        "the unit's data dir: {:?}",
        daemon.data
    );
    for (file, mode_wanted) in [("hako.db", None), ("admin.token", Some(0o600))] {
        let path = root.path(&format!("var/lib/hako/{file}"));
        let found = mode(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Some(m) = mode_wanted {
            assert_eq!(found, m, "{file}");
        }
    }

    let body = format!("served by the packaged hako ({})\n", names.prefix);
    hako_testkit::site::static_code(&root.path("srv/site"), &body);
    let mut cli_env = service.environment.clone();
    cli_env.push(("HAKO_API".into(), format!("http://{}", daemon.api)));
    let out = root.ok(&["hako", "image", "host", "base"], &cli_env);
    assert!(out.contains("base:1"), "{out}");
    let cmd = hako_testkit::site::STATIC_CMD;
    let create = [
        "hako",
        "app",
        "create",
        "site",
        "--host",
        "site.example",
        "--image",
        "base",
        "--code",
        "/srv/site",
        "--cmd",
        cmd,
    ];
    let out = root.ok(&create, &cli_env);
    assert!(out.contains("deployed release 1 of site"), "{out}");
    assert_eq!(
        common::get(daemon.proxy, "site.example", "/"),
        (200, body.clone()),
        "the site answers through the installed hako"
    );
    assert_eq!(common::get(daemon.proxy, "other.example", "/").0, 404);
    let t_served = t0.elapsed();

    let status = daemon.stop();
    assert!(status.success(), "hako serve stopped with {status}");
    let left = common::leftovers(&names.prefix);
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(!root.path(&format!("run/hako/{}", names.prefix)).exists());
    let tables = Command::new("nft").args(["list", "tables"]).output();
    let tables = String::from_utf8_lossy(&tables.expect("run nft").stdout).into_owned();
    assert!(!tables.contains(&names.prefix), "{tables}");

    let out = root.ok(&["dpkg", "--purge", "hako"], &[]);
    assert!(out.contains("kept /var/lib/hako"), "{out}");
    assert!(!root.path("usr/bin/hako").exists());
    assert!(!root.path("etc/hako").exists(), "purge removes the config");
    assert!(std::fs::symlink_metadata(&wants).is_err(), "purge disables");
    assert!(root.path("var/lib/hako/hako.db").exists(), "the sites stay");

    drop(root);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    assert!(!mounts.contains(&names.prefix), "a mount reached the host");
    drop(run);
    eprintln!(
        "package test: .deb {:.1}s, base system {:.1}s, install {:.1}s, serve and first \
         request {:.1}s, total {:.1}s",
        t_deb.as_secs_f64(),
        (t_base - t_deb).as_secs_f64(),
        (t_install - t_base).as_secs_f64(),
        (t_served - t_install).as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
}

/// Checks the unit as systemd reads it (`systemd-analyze verify`: unknown settings, bad values,
/// a missing binary), on the host, with `/usr/bin/hako` taken to be this test's binary (the
/// installed one is in the root); any message fails.
#[track_caller]
fn verify_unit(text: &str, run_dir: &Path) {
    let dir = run_dir.join("unit");
    std::fs::create_dir_all(&dir).expect("make the unit's dir");
    let path = dir.join("hako.service");
    std::fs::write(&path, text.replace("/usr/bin/hako", HAKO)).expect("write the unit");
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("run systemd-analyze (Debian's systemd package)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify hako.service ({}): {said}",
        out.status
    );
}

/// The run's dir under `target/package-test/`, removed when dropped (after the root's
/// namespace is gone: declared before it).
struct RunDir(PathBuf);

impl Drop for RunDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            eprintln!("cannot remove {}: {e}", self.0.display());
        }
    }
}

/// The installed `hako serve`, started from the unit's command; SIGTERM when dropped.
struct Daemon {
    child: Option<Child>,
    proxy: SocketAddr,
    api: SocketAddr,
    data: String,
}

impl Daemon {
    /// Starts `command` and waits (up to [`START_WAIT`]) for its line
    /// `hako: serving sites on http://ADDR (API http://ADDR, data DIR)`.
    #[track_caller]
    fn start(mut command: Command) -> Daemon {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hako serve in the root");
        let err = BufReader::new(child.stderr.take().expect("piped"));
        let mut daemon = Daemon {
            child: Some(child),
            proxy: ([127, 0, 0, 1], 0).into(),
            api: ([127, 0, 0, 1], 0).into(),
            data: String::new(),
        };
        let (tx, rx) = mpsc::channel();
        // Reads the daemon's output to its end, so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in err.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let deadline = Instant::now() + START_WAIT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => panic!(
                    "hako serve did not serve ({e:?}); it said:\n{}",
                    seen.join("\n")
                ),
            };
            if let Some(found) = serving(&line) {
                (daemon.proxy, daemon.api, daemon.data) = found;
                // Keep draining (and dropping) the rest of its output.
                std::thread::spawn(move || for _ in rx {});
                return daemon;
            }
            seen.push(line);
        }
    }

    /// SIGTERM, then waits up to [`STOP_WAIT`] (SIGKILL after that, and a failed test).
    fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + STOP_WAIT;
        loop {
            if let Some(status) = child.try_wait().expect("wait for hako serve") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("hako serve did not stop within {STOP_WAIT:?} of SIGTERM");
            }
            // Waiting for a process to exit: nothing to block on but the poll.
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.stop()));
        }
    }
}

/// (proxy, API, data dir) from `hako: serving sites on http://ADDR (API http://ADDR, data DIR)`.
fn serving(line: &str) -> Option<(SocketAddr, SocketAddr, String)> {
    let rest = line.strip_prefix("hako: serving sites on http://")?;
    let proxy = rest.split_whitespace().next()?.parse().ok()?;
    let api = rest.split("API http://").nth(1)?.split(',').next()?;
    let data = rest.split(", data ").nth(1)?.strip_suffix(')')?;
    Some((proxy, api.parse().ok()?, data.to_string()))
}

#[test]
fn reads_the_serving_line() {
    let line = "hako: serving sites on http://127.0.0.1:4000 (API http://127.0.0.1:5000, data /var/lib/hako)";
    assert_eq!(
        serving(line),
        Some((
            "127.0.0.1:4000".parse().unwrap(),
            "127.0.0.1:5000".parse().unwrap(),
            "/var/lib/hako".into()
        ))
    );
    assert_eq!(serving("hako: stopping"), None);
}
