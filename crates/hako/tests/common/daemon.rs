//! A real `hako serve` process for integration tests, killed (with its containers) on drop.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

pub const HAKO: &str = env!("CARGO_BIN_EXE_hako");

pub struct Daemon {
    pub child: Child,
    pub proxy: String,
    pub api: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // A test that fails midway must not leave a daemon (and its containers) running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A runtime prefix unique to this test process: `hako` + `tag` + 4 characters.
pub fn prefix(tag: char) -> String {
    const D: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut n = std::process::id() as u64 * 7919 + 13;
    let mut s = format!("hako{tag}");
    for _ in 0..4 {
        s.push(D[(n % 36) as usize] as char);
        n /= 36;
    }
    s
}

/// Starts `hako serve` on free loopback ports and waits until it says where it listens.
pub fn start(data: &std::path::Path, prefix: &str) -> Daemon {
    let n = std::process::id() % 200;
    let mut child = Command::new(HAKO)
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--api",
            "127.0.0.1:0",
        ])
        .args([
            "--prefix",
            prefix,
            "--subnet",
            &format!("10.{}.{}.0/24", 50 + n / 250, n % 250),
            "--stop-grace",
            "2s",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    // From here on the daemon is owned by a guard that kills it if the test fails.
    let mut d = Daemon {
        child,
        proxy: String::new(),
        api: String::new(),
    };
    let mut err = std::io::BufReader::new(stderr);
    let mut line = String::new();
    loop {
        line.clear();
        if err.read_line(&mut line).unwrap() == 0 {
            panic!("hako serve exited early: {:?}", d.child.try_wait());
        }
        if let Some(rest) = line.strip_prefix("hako: serving sites on http://") {
            let proxy = rest.split_whitespace().next().unwrap().to_string();
            let api = rest
                .split("API http://")
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap()
                .to_string();
            // Keep draining stderr so the daemon never blocks on it.
            std::thread::spawn(move || for _ in err.lines() {});
            d.proxy = proxy;
            d.api = api;
            return d;
        }
    }
}

/// Runs the CLI against the daemon's API: (exit code, stdout + stderr).
pub fn hako(data: &std::path::Path, api: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(HAKO)
        .args(["--data-dir", data.to_str().unwrap()])
        .args(args)
        .env("HAKO_API", format!("http://{api}"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}
