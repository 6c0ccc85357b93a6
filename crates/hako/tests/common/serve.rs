//! A real `hako serve` process for tests that stop it gracefully: a unique runtime prefix and
//! subnet (`RuntimeConfig::unique`), the addresses it logs, the CLI pointed at its API, and a
//! SIGTERM stop that must leave nothing behind (the `daemon` helper kills with -9 instead).

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Outcome;

/// A running `hako serve`; stopped gracefully (SIGTERM) when dropped.
pub struct Serve {
    child: Option<Child>,
    /// Where the proxy listens.
    pub proxy: String,
    /// Where the API listens.
    pub api: String,
    /// The data dir.
    pub data: PathBuf,
    /// The runtime prefix of its kernel objects.
    pub prefix: String,
}

impl Serve {
    /// Starts `hako serve` on `data` (loopback, free ports) and waits until it serves.
    pub fn start(data: &Path) -> Serve {
        Serve::start_with(data, &[])
    }

    /// Like [`Serve::start`] with more options for `hako serve` (e.g. `--config FILE`).
    pub fn start_with(data: &Path, more: &[&str]) -> Serve {
        let runtime = hako_runtime::RuntimeConfig::unique('l', "/run/hako");
        let mut child = Command::new(env!("CARGO_BIN_EXE_hako"))
            .args(["--data-dir", data.to_str().unwrap(), "serve"])
            .args(["--listen", "127.0.0.1:0", "--api", "127.0.0.1:0"])
            .args(["--prefix", &runtime.prefix])
            .args(["--subnet", &runtime.subnet.to_string()])
            .args(["--stop-grace", "2s"])
            .args(more)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        // From here on the guard stops the daemon if the test fails.
        let mut d = Serve {
            child: Some(child),
            proxy: String::new(),
            api: String::new(),
            data: data.to_path_buf(),
            prefix: runtime.prefix,
        };
        let mut err = std::io::BufReader::new(stderr);
        let mut line = String::new();
        loop {
            line.clear();
            if err.read_line(&mut line).unwrap() == 0 {
                panic!(
                    "hako serve exited early: {:?}",
                    d.child.as_mut().unwrap().try_wait()
                );
            }
            if let Some(rest) = line.strip_prefix("hako: serving sites on http://") {
                d.proxy = rest.split_whitespace().next().unwrap().to_string();
                d.api = rest
                    .split("API http://")
                    .nth(1)
                    .unwrap()
                    .split(',')
                    .next()
                    .unwrap()
                    .to_string();
                // Keep draining stderr so the daemon never blocks on it.
                std::thread::spawn(move || for _ in err.lines() {});
                return d;
            }
        }
    }

    /// `hako ARGS…` against this daemon's API, to its end.
    pub fn hako(&self, args: &[&str]) -> Outcome {
        let out = Command::new(env!("CARGO_BIN_EXE_hako"))
            .args(["--data-dir", self.data.to_str().unwrap()])
            .args(args)
            .env("HAKO_API", format!("http://{}", self.api))
            .env_remove("HAKO_TOKEN")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Outcome::from(out)
    }

    /// `hako ARGS…` that must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.hako(args);
        assert_eq!(out.code, 0, "hako {args:?}: {out:?}");
        out.stdout
    }

    /// Stops the daemon with SIGTERM and asserts that it exits cleanly and leaves no cgroup,
    /// link or state of its runtime behind.
    pub fn stop(mut self) {
        let status = self.terminate();
        assert!(status.is_some_and(|s| s.success()), "{status:?}");
        let left = super::leftovers(&self.prefix);
        assert!(left.is_empty(), "left behind: {left:?}");
    }

    fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// One HTTP/1.0 GET through the proxy; (status, body). Status 0 if nothing came back.
pub fn get(proxy: &str, host: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut r = String::new();
    let _ = s.read_to_string(&mut r);
    let status = r
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    let body = r
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    (status, body)
}
