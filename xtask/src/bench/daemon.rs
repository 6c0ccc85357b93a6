//! A real `hako serve` process for the benchmarks that measure what users get: built in
//! release, started on loopback with its own temp data dir and a `hakob…` name prefix, and
//! stopped with SIGTERM (every instance stopped, everything removed) when the guard drops,
//! also when a benchmark fails midway.

pub mod request;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long `hako serve` gets to stop its instances after SIGTERM before it is killed.
const STOP_WAIT: Duration = Duration::from_secs(30);

/// Builds `cargo build --release -p PACKAGE [ARGS…]` and returns the target dir (from
/// `CARGO_TARGET_DIR`, else the workspace's `target`).
pub fn build_release(package: &str, args: &[&str]) -> anyhow::Result<PathBuf> {
    let root = crate::workspace_root();
    eprintln!(
        "bench: cargo build --release -p {package} {}",
        args.join(" ")
    );
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&root)
        .args(["build", "--release", "--quiet", "-p", package])
        .args(args)
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("building {package} failed ({status}); see cargo's output above");
    }
    Ok(target_dir(&root))
}

/// The target dir: `CARGO_TARGET_DIR` (absolute, or relative to `root`), else `root/target`.
pub fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if Path::new(&d).is_absolute() => PathBuf::from(d),
        Some(d) => root.join(d),
        None => root.join("target"),
    }
}

/// The kernel-object name prefix of this bench process: `hakob` and 4 base-36 characters.
pub fn prefix(pid: u32) -> String {
    named_prefix("hakob", pid)
}

/// `head` (`hako` and one letter naming the tool) and 4 base-36 characters of `pid`.
pub fn named_prefix(head: &str, pid: u32) -> String {
    const D: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut n = pid;
    let mut s = String::from(head);
    for _ in 0..4 {
        s.push(D[(n % 36) as usize] as char);
        n /= 36;
    }
    s
}

/// A /24 for isolated instances that no other bench or test process of another pid uses.
fn subnet(pid: u32) -> String {
    let n = pid % 1000;
    format!("10.{}.{}.0/24", 100 + n / 250, n % 250)
}

/// A running `hako serve`; dropping it stops it (SIGTERM, wait, then SIGKILL) and removes
/// its data dir.
pub struct HakoServe {
    child: Child,
    hako: PathBuf,
    /// Where the proxy listens.
    pub proxy: SocketAddr,
    /// Where the API listens.
    pub api: SocketAddr,
    /// The kernel-object prefix it was started with.
    pub prefix: String,
    token: String,
    data: PathBuf,
    /// Removed after the daemon stopped (fields drop after `Drop::drop`).
    _tmp: tempfile::TempDir,
}

impl HakoServe {
    /// Makes the host image `base` in a fresh data dir and starts `hako serve` on loopback
    /// (ports picked by the kernel) with `--stop-grace 1s`, the `hakob…` prefix and a /24.
    pub fn start(hako: &Path) -> anyhow::Result<HakoServe> {
        HakoServe::start_with_images(hako, None)
    }

    /// Like [`HakoServe::start`], with the data dir's image store at `images` (a store kept
    /// between runs, so that a debootstrap-built image is built once per machine).
    pub fn start_with_images(hako: &Path, images: Option<&Path>) -> anyhow::Result<HakoServe> {
        let pid = std::process::id();
        HakoServe::start_inner(hako, &prefix(pid), &subnet(pid), images)
    }

    /// [`start`](Self::start) with a given kernel-object `prefix` and instance `subnet`.
    pub fn start_with(hako: &Path, prefix: &str, subnet: &str) -> anyhow::Result<HakoServe> {
        HakoServe::start_inner(hako, prefix, subnet, None)
    }

    fn start_inner(
        hako: &Path,
        prefix: &str,
        subnet: &str,
        images: Option<&Path>,
    ) -> anyhow::Result<HakoServe> {
        let pid = std::process::id();
        let tmp = tempfile::Builder::new()
            .prefix(&format!("hako-bench-serve-{pid}-"))
            .tempdir()
            .context("create a temp dir")?;
        let data = tmp.path().join("data");
        if let Some(images) = images {
            std::fs::create_dir_all(images)?;
            std::fs::create_dir_all(&data)?;
            std::os::unix::fs::symlink(images, data.join("images"))?;
        }
        let prefix = prefix.to_string();
        let out = Command::new(hako)
            .arg("--data-dir")
            .arg(&data)
            .args(["image", "host", "base"])
            .env("HAKO_API", "http://127.0.0.1:1")
            .output()
            .with_context(|| format!("cannot run {}", hako.display()))?;
        if !out.status.success() {
            bail!(
                "hako image host base failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let mut child = Command::new(hako)
            .arg("--data-dir")
            .arg(&data)
            .args(["serve", "--listen", "127.0.0.1:0", "--api", "127.0.0.1:0"])
            .args(["--prefix", &prefix, "--subnet", subnet])
            .args(["--stop-grace", "1s"])
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start hako serve")?;
        let stderr = child.stderr.take().expect("piped");
        let mut serve = HakoServe {
            child,
            hako: hako.to_path_buf(),
            proxy: ([127, 0, 0, 1], 0).into(),
            api: ([127, 0, 0, 1], 0).into(),
            prefix,
            token: String::new(),
            data,
            _tmp: tmp,
        };
        let mut err = BufReader::new(stderr);
        let mut line = String::new();
        loop {
            line.clear();
            if err.read_line(&mut line)? == 0 {
                bail!("hako serve exited early: {:?}", serve.child.try_wait());
            }
            if let Some((proxy, api)) = parse_serving_line(&line) {
                serve.proxy = proxy;
                serve.api = api;
                break;
            }
            eprint!("  hako serve: {line}");
        }
        // Keep draining stderr so the daemon never blocks on a full pipe; show warnings.
        std::thread::spawn(move || {
            for l in err.lines().map_while(Result::ok) {
                if l.contains("WARN") || l.contains("ERROR") || l.starts_with("hako:") {
                    eprintln!("  hako serve: {l}");
                }
            }
        });
        serve.token = std::fs::read_to_string(serve.data.join("admin.token"))
            .context("read hako's admin token")?
            .trim()
            .to_string();
        Ok(serve)
    }

    /// Runs the `hako` CLI against this daemon; fails with its output unless it succeeds.
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(&self.hako)
            .arg("--data-dir")
            .arg(&self.data)
            .args(args)
            .env("HAKO_API", format!("http://{}", self.api))
            .output()
            .context("cannot run hako")?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() {
            bail!("hako {} failed: {}", args.join(" "), text.trim());
        }
        Ok(text)
    }

    /// `GET path` on the API with the admin token, as JSON.
    pub fn api_get(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        let auth = format!("Bearer {}", self.token);
        let (r, _) = request::get(
            self.api,
            "hako-api",
            path,
            &[("Authorization", &auth)],
            Duration::from_secs(10),
        )?;
        if r.status != 200 {
            bail!("API GET {path}: {} {}", r.status, r.text());
        }
        serde_json::from_slice(&r.body).with_context(|| format!("API GET {path}: not JSON"))
    }

    /// `METHOD path` on the API with the admin token and a JSON body; the answer as JSON
    /// (`null` for an empty one). Fails unless the status is 2xx.
    pub fn api_send(
        &self,
        method: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let auth = format!("Bearer {}", self.token);
        let body = serde_json::to_vec(body)?;
        let (r, _) = request::send(
            self.api,
            method,
            "hako-api",
            path,
            &[("Authorization", &auth)],
            Some(&body),
            Duration::from_secs(30),
        )?;
        if !(200..300).contains(&r.status) {
            bail!("API {method} {path}: {} {}", r.status, r.text());
        }
        if r.body.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&r.body).with_context(|| format!("API {method} {path}: not JSON"))
    }

    /// Every running instance (`GET /v1/instances`).
    pub fn all_instances(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        match self.api_get("/v1/instances")? {
            serde_json::Value::Array(v) => Ok(v),
            other => bail!("instances: expected a list, got {other}"),
        }
    }

    /// The app's running instances (`GET /v1/instances?app=NAME`).
    pub fn instances(&self, app: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        match self.api_get(&format!("/v1/instances?app={app}"))? {
            serde_json::Value::Array(v) => Ok(v),
            other => bail!("instances: expected a list, got {other}"),
        }
    }

    /// The app's count of cold requests (`GET /v1/apps/NAME/metrics`).
    pub fn cold_count(&self, app: &str) -> anyhow::Result<u64> {
        let m = self.api_get(&format!("/v1/apps/{app}/metrics"))?;
        m["cold"]
            .as_u64()
            .with_context(|| format!("metrics of {app} have no cold count: {m}"))
    }

    /// Polls (every 5 ms, up to `limit`) until the app has no running instance.
    pub fn wait_no_instances(&self, app: &str, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if self.instances(app)?.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("{app} still has instances after {limit:?}: is the idle stop working?");
            }
            // The poll interval, not a readiness guess.
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The daemon's data dir.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// Stops the daemon with SIGTERM and waits for it (bounded); SIGKILL after that.
    fn stop(&mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM)
            .context("SIGTERM hako serve")?;
        let deadline = Instant::now() + STOP_WAIT;
        while self.child.try_wait()?.is_none() {
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("hako serve did not stop within {STOP_WAIT:?} of SIGTERM; killed it");
            }
            // Waiting for a process exit has no readiness signal to block on here.
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }
}

impl Drop for HakoServe {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("bench: {e:#}");
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_serving_line() {
        let line = "hako: serving sites on http://127.0.0.1:4321 (API http://127.0.0.1:9876, data /tmp/x)\n";
        let (p, a) = parse_serving_line(line).unwrap();
        assert_eq!(p, "127.0.0.1:4321".parse().unwrap());
        assert_eq!(a, "127.0.0.1:9876".parse().unwrap());
        assert!(parse_serving_line("hako: stopping").is_none());
    }

    #[test]
    fn prefixes_are_short_and_distinct() {
        let a = prefix(12345);
        assert!(a.starts_with("hakob") && a.len() == 9, "{a}");
        assert_ne!(a, prefix(12346));
        assert_ne!(subnet(1), subnet(2));
        assert!(subnet(999).starts_with("10.103."), "{}", subnet(999));
    }

    #[test]
    fn target_dir_follows_cargo_target_dir() {
        // Only reads the variable; the test cannot set it without racing other tests.
        let root = Path::new("/ws");
        let d = target_dir(root);
        match std::env::var_os("CARGO_TARGET_DIR") {
            Some(v) if Path::new(&v).is_absolute() => assert_eq!(d, PathBuf::from(v)),
            Some(v) => assert_eq!(d, root.join(v)),
            None => assert_eq!(d, root.join("target")),
        }
    }
}
