//! A real `hako serve` process, as users run it: started on loopback (ports picked by the
//! kernel) with its own data dir, runtime prefix and subnet, ready once it logs where it
//! serves, and stopped with SIGTERM — every instance stopped, every kernel object removed —
//! when dropped, also when a test or benchmark fails midway.
//!
//! ```no_run
//! # fn main() -> Result<(), hako_testkit::Error> {
//! let serve = hako_testkit::Serve::builder("target/debug/hako")
//!     .host_image("base")
//!     .start()?;
//! let apps = serve.client().list_apps();
//! serve.stop(); // asserts a clean exit that left nothing behind
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

use crate::{Error, Names, Outcome, hako_command};

/// How long `hako serve` gets to stop its instances after SIGTERM before it is killed.
pub const STOP_WAIT: Duration = Duration::from_secs(30);

/// Lines of the daemon's early output kept for the error when it exits before serving.
const TAIL_LINES: usize = 40;

/// How to start a [`Serve`]; from [`Serve::builder`].
#[derive(Debug, Clone)]
pub struct ServeBuilder {
    hako: PathBuf,
    data: Option<PathBuf>,
    names: Option<Names>,
    tag: char,
    stop_grace: Duration,
    host_image: Option<String>,
    shared_images: Option<PathBuf>,
    echo_warnings: bool,
    more: Vec<String>,
}

impl ServeBuilder {
    /// Use `dir` as the data dir (default: a fresh temp dir, removed after the daemon stops).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data = Some(dir.into());
        self
    }

    /// Use exactly these prefix and subnet (default: [`Names::unique`] with the tag).
    pub fn names(mut self, names: Names) -> Self {
        self.names = Some(names);
        self
    }

    /// The tag letter of the unique names (default `l`; see [`crate::names`]).
    pub fn tag(mut self, tag: char) -> Self {
        self.tag = tag;
        self
    }

    /// `--stop-grace` (default 2 s).
    pub fn stop_grace(mut self, d: Duration) -> Self {
        self.stop_grace = d;
        self
    }

    /// Make the host image `name` in the data dir before starting.
    pub fn host_image(mut self, name: &str) -> Self {
        self.host_image = Some(name.to_string());
        self
    }

    /// Keep the data dir's image store at `dir` (a symlink), so that an image built with
    /// debootstrap is built once per machine and shared between runs.
    pub fn shared_images(mut self, dir: impl Into<PathBuf>) -> Self {
        self.shared_images = Some(dir.into());
        self
    }

    /// More options for `hako serve` (e.g. `["--config", FILE]`).
    pub fn args(mut self, more: &[&str]) -> Self {
        self.more.extend(more.iter().map(|s| s.to_string()));
        self
    }

    /// Print the daemon's warnings and errors (and its `hako:` lines) on our stderr
    /// (default: its output is read and dropped).
    pub fn echo_warnings(mut self, on: bool) -> Self {
        self.echo_warnings = on;
        self
    }

    /// Starts `hako serve` and returns once it serves.
    pub fn start(self) -> Result<Serve, Error> {
        let tmp = match self.data {
            Some(_) => None,
            None => Some(
                tempfile::Builder::new()
                    .prefix("hako-serve-")
                    .tempdir()
                    .map_err(Error::io("cannot create a temp dir"))?,
            ),
        };
        let data = match (&self.data, &tmp) {
            (Some(d), _) => d.clone(),
            (None, Some(t)) => t.path().join("data"),
            (None, None) => unreachable!("a temp dir is made when no data dir is given"),
        };
        if let Some(images) = &self.shared_images {
            std::fs::create_dir_all(images)
                .map_err(Error::io(format!("cannot create {}", images.display())))?;
            std::fs::create_dir_all(&data)
                .map_err(Error::io(format!("cannot create {}", data.display())))?;
            let link = data.join("images");
            if !link.exists() {
                std::os::unix::fs::symlink(images, &link)
                    .map_err(Error::io(format!("cannot link {}", link.display())))?;
            }
        }
        if let Some(name) = &self.host_image {
            crate::site::host_image(&data, name)?;
        }
        let names = self.names.unwrap_or_else(|| Names::unique(self.tag));
        let mut child = hako_command(&self.hako, &data)
            .args(["serve", "--listen", "127.0.0.1:0", "--api", "127.0.0.1:0"])
            .args(["--prefix", &names.prefix, "--subnet", &names.subnet])
            .args(["--stop-grace", &duration_arg(self.stop_grace)])
            .args(&self.more)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| Error::Spawn {
                program: self.hako.clone(),
                source,
            })?;
        let stderr = child.stderr.take().expect("stderr is piped");
        // From here on the guard stops the daemon if anything fails.
        let mut serve = Serve {
            child: Some(child),
            hako: self.hako,
            proxy: ([127, 0, 0, 1], 0).into(),
            https: None,
            api: ([127, 0, 0, 1], 0).into(),
            prefix: names.prefix,
            subnet: names.subnet,
            token: String::new(),
            data,
            _tmp: tmp,
        };
        let mut err = BufReader::new(stderr);
        let mut tail = VecDeque::new();
        let mut line = String::new();
        loop {
            line.clear();
            let n = err
                .read_line(&mut line)
                .map_err(Error::io("cannot read hako serve's output"))?;
            if n == 0 {
                let status = serve.terminate().map_or_else(
                    |e| e.to_string(),
                    |s| s.map_or("gone".into(), |s| s.to_string()),
                );
                return Err(Error::Exited {
                    status,
                    output: Vec::from(tail).join(""),
                });
            }
            if let Some((proxy, api)) = parse_serving_line(&line) {
                serve.proxy = proxy;
                serve.api = api;
                serve.https = parse_https(&line);
                break;
            }
            if self.echo_warnings {
                eprint!("  hako serve: {line}");
            }
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line.clone());
        }
        // Keep draining its output so the daemon never blocks on a full pipe.
        let echo = self.echo_warnings;
        std::thread::spawn(move || {
            for l in err.lines().map_while(Result::ok) {
                if echo && (l.contains("WARN") || l.contains("ERROR") || l.starts_with("hako:")) {
                    eprintln!("  hako serve: {l}");
                }
            }
        });
        let token_file = serve.data.join("admin.token");
        serve.token = std::fs::read_to_string(&token_file)
            .map_err(Error::io(format!("cannot read {}", token_file.display())))?
            .trim()
            .to_string();
        Ok(serve)
    }
}

/// A running `hako serve`; dropping it stops it (SIGTERM, a bounded wait, then SIGKILL) and
/// then removes its temp data dir, if it made one.
#[derive(Debug)]
pub struct Serve {
    child: Option<Child>,
    hako: PathBuf,
    /// Where the proxy listens.
    pub proxy: SocketAddr,
    /// Where the proxy serves HTTPS (started with `--https`).
    pub https: Option<SocketAddr>,
    /// Where the API listens.
    pub api: SocketAddr,
    /// The runtime prefix of its kernel objects.
    pub prefix: String,
    /// The subnet of its isolated instances.
    pub subnet: String,
    token: String,
    data: PathBuf,
    /// Removed after the daemon stopped (fields drop after `Drop::drop`).
    _tmp: Option<tempfile::TempDir>,
}

impl Serve {
    /// A builder for a `hako serve` of the binary `hako` (in a package's own integration
    /// tests: `env!("CARGO_BIN_EXE_hako")`).
    pub fn builder(hako: impl Into<PathBuf>) -> ServeBuilder {
        ServeBuilder {
            hako: hako.into(),
            data: None,
            names: None,
            tag: 'l',
            stop_grace: Duration::from_secs(2),
            host_image: None,
            shared_images: None,
            echo_warnings: false,
            more: Vec::new(),
        }
    }

    /// The daemon's data dir.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The API's base URL, `http://ADDR`.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api)
    }

    /// An API client with the admin token.
    pub fn client(&self) -> hako_api::Client {
        hako_api::Client::new(self.api_url(), self.token.clone())
    }

    /// The daemon's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `hako ARGS…` against this daemon's API, run to its end. Panics only if the binary
    /// cannot be run at all.
    #[track_caller]
    pub fn hako(&self, args: &[&str]) -> Outcome {
        self.run_cli(args)
            .unwrap_or_else(|e| panic!("hako {}: {e}", args.join(" ")))
    }

    /// `hako ARGS…` that must succeed; returns its stdout (panics with its output if not).
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.hako(args);
        assert_eq!(out.code, 0, "hako {args:?}: {out:?}");
        out.stdout
    }

    /// `hako ARGS…` against this daemon's API; its stdout and stderr, or [`Error::Cli`] with
    /// them unless it succeeds.
    pub fn cli(&self, args: &[&str]) -> Result<String, Error> {
        let out = self.run_cli(args)?;
        if !out.success() {
            return Err(Error::Cli {
                args: args.join(" "),
                code: out.code,
                output: out.text().trim().to_string(),
            });
        }
        Ok(out.text())
    }

    fn run_cli(&self, args: &[&str]) -> Result<Outcome, Error> {
        hako_command(&self.hako, &self.data)
            .args(args)
            .env("HAKO_API", self.api_url())
            .output()
            .map(Outcome::from)
            .map_err(|source| Error::Spawn {
                program: self.hako.clone(),
                source,
            })
    }

    /// Kills the daemon with SIGKILL (its instances die with it; their cgroups stay for the
    /// next start to remove) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the daemon with SIGTERM and waits for it, up to [`STOP_WAIT`]; kills it after
    /// that ([`Error::Stop`]). `None` if it was already stopped by an earlier call.
    pub fn terminate(&mut self) -> Result<Option<ExitStatus>, Error> {
        let Some(mut child) = self.child.take() else {
            return Ok(None);
        };
        if let Some(status) = child.try_wait().map_err(Error::io("wait for hako serve"))? {
            return Ok(Some(status));
        }
        // ESRCH only: it exited between the check and the signal; the wait below reaps it.
        let _ = kill_process(Pid::from_child(&child), Signal::TERM);
        let deadline = Instant::now() + STOP_WAIT;
        loop {
            if let Some(status) = child.try_wait().map_err(Error::io("wait for hako serve"))? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Stop(STOP_WAIT));
            }
            // Waiting for a process to exit: there is nothing to block on but the poll.
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the daemon with SIGTERM and asserts that it exits cleanly and leaves no cgroup,
    /// link or state of its runtime behind.
    #[track_caller]
    pub fn stop(mut self) {
        let status = self.terminate();
        assert!(
            matches!(status, Ok(Some(s)) if s.success()),
            "hako serve did not stop cleanly: {status:?}"
        );
        let left = crate::leftovers(&self.prefix);
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Err(e) = self.terminate() {
            eprintln!("hako-testkit: {e}");
        }
    }
}

/// A client of the API at `api` with the admin token of the data dir `data_dir`, as the CLI
/// on the daemon's machine finds it (`<data-dir>/admin.token`). Panics if there is none.
#[track_caller]
pub fn api_client(api: SocketAddr, data_dir: &Path) -> hako_api::Client {
    hako_api::Client::configure(Some(&format!("http://{api}")), None, data_dir)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A duration as a command-line value: whole seconds as `Ns`, else `Nms`.
fn duration_arg(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// The proxy and API addresses from `hako: serving sites on http://ADDR (API http://ADDR, …`.
fn parse_serving_line(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let rest = line.strip_prefix("hako: serving sites on http://")?;
    let proxy = rest.split_whitespace().next()?.parse().ok()?;
    let api = rest
        .split("API http://")
        .nth(1)?
        .split([',', ')'])
        .next()?
        .parse()
        .ok()?;
    Some((proxy, api))
}

/// The HTTPS address of `hako: serving sites on http://ADDR and https://ADDR (…`.
fn parse_https(line: &str) -> Option<SocketAddr> {
    line.split(" and https://")
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_serving_line() {
        let line = "hako: serving sites on http://127.0.0.1:4321 and https://127.0.0.1:4443 (API http://127.0.0.1:9876, data /tmp/x)\n";
        let (p, a) = parse_serving_line(line).unwrap();
        assert_eq!(p, "127.0.0.1:4321".parse().unwrap());
        assert_eq!(a, "127.0.0.1:9876".parse().unwrap());
        assert_eq!(parse_https(line), Some("127.0.0.1:4443".parse().unwrap()));
        let line = "hako: serving sites on http://127.0.0.1:4321 (API http://127.0.0.1:9876, data /tmp/x)\n";
        let (p, a) = parse_serving_line(line).unwrap();
        assert_eq!(p, "127.0.0.1:4321".parse().unwrap());
        assert_eq!(a, "127.0.0.1:9876".parse().unwrap());
        assert!(parse_serving_line("hako: stopping").is_none());
        assert!(parse_serving_line("hako: serving sites on http://nowhere (API x)").is_none());
        assert_eq!(duration_arg(Duration::from_secs(2)), "2s");
        assert_eq!(duration_arg(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn clients_take_the_data_dirs_token() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let token = "t".repeat(40);
        let file = t.path().join("admin.token");
        std::fs::write(&file, format!("{token}\n")).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = api_client("127.0.0.1:7".parse().unwrap(), t.path());
        assert_eq!(
            (c.base_url.as_str(), c.token.as_str()),
            ("http://127.0.0.1:7", token.as_str())
        );
        let none = tempfile::tempdir().unwrap();
        let err =
            std::panic::catch_unwind(|| api_client("127.0.0.1:7".parse().unwrap(), none.path()))
                .unwrap_err();
        let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("no API token"), "{msg}");
    }

    #[test]
    fn a_daemon_that_exits_early_is_reported_with_its_output() {
        // A stand-in for hako that complains and exits, as hako serve does on a bad option.
        let t = tempfile::tempdir().unwrap();
        let fake = t.path().join("hako");
        std::fs::write(
            &fake,
            "#!/bin/sh\necho 'error: the API port is taken' >&2\nexit 2\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = Serve::builder(&fake).start().unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Exited { .. }), "{err:?}");
        assert!(msg.contains("the API port is taken"), "{msg}");
        assert!(msg.contains("exit status: 2"), "{msg}");
        let missing = Serve::builder(t.path().join("nope")).start().unwrap_err();
        assert!(matches!(missing, Error::Spawn { .. }), "{missing:?}");
    }
}
