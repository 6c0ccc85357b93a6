//! A child process owned by a guard: on drop it gets a chosen signal, a bounded wait for its
//! exit, then SIGKILL. Used for nginx and the per-core proxy example, so a failing bench
//! leaves neither running.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rustix::process::{Pid, Signal, kill_process};

/// How long a stopping child gets before SIGKILL.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// A child that is stopped with `signal` when dropped.
pub struct Guarded {
    name: &'static str,
    child: Child,
    signal: Signal,
}

impl Guarded {
    /// Takes ownership of `child`; `name` is for messages.
    pub fn new(name: &'static str, child: Child, signal: Signal) -> Guarded {
        Guarded {
            name,
            child,
            signal,
        }
    }

    /// Fails if the child has already exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited early ({status})", self.name);
        }
        Ok(())
    }

    /// Reads the child's stdout until a line starting with `prefix`, returning that line's
    /// rest; further output is drained in a thread so the child never blocks on the pipe.
    pub fn read_stdout_line(&mut self, prefix: &str) -> anyhow::Result<String> {
        let out: ChildStdout = self
            .child
            .stdout
            .take()
            .with_context(|| format!("{}: stdout is not piped", self.name))?;
        let mut lines = BufReader::new(out);
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line)? == 0 {
                bail!(
                    "{} ended its output without a {prefix:?} line ({:?})",
                    self.name,
                    self.child.try_wait()
                );
            }
            if let Some(rest) = line.strip_prefix(prefix) {
                let rest = rest.trim().to_string();
                std::thread::spawn(move || for _ in lines.lines() {});
                return Ok(rest);
            }
        }
    }

    /// Sends the stop signal and waits (bounded); SIGKILL after that.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        kill_process(Pid::from_child(&self.child), self.signal)
            .with_context(|| format!("signal {}", self.name))?;
        let deadline = Instant::now() + STOP_WAIT;
        while self.child.try_wait()?.is_none() {
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("{} did not stop within {STOP_WAIT:?}; killed it", self.name);
            }
            // Waiting for a process exit: no readiness signal to block on here.
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("bench: {e:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn stops_a_child_with_its_signal_and_reads_its_lines() {
        let child = Command::new("sh")
            .args(["-c", "echo hello; echo addr: 1.2.3.4:5; exec sleep 60"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut g = Guarded::new("sleeper", child, Signal::TERM);
        assert_eq!(g.read_stdout_line("addr:").unwrap(), "1.2.3.4:5");
        g.check_running().unwrap();
        let t = Instant::now();
        drop(g);
        assert!(
            t.elapsed() < STOP_WAIT,
            "stopped by the signal, not the kill"
        );
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn an_exited_child_is_reported() {
        let child = Command::new("true").stdout(Stdio::piped()).spawn().unwrap();
        let mut g = Guarded::new("true", child, Signal::TERM);
        let err = g.read_stdout_line("never:").unwrap_err();
        assert!(err.to_string().contains("without"), "{err}");
        let _ = g.child.wait();
        assert!(g.check_running().is_err());
    }
}
