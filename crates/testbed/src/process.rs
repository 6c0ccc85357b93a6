//! The bed's processes (etcd members, agents, the front): started with their output in a log
//! file, in a process group of their own (a Ctrl-C at the terminal that ran `cargo xtask
//! testbed up` does not reach them), recorded by pid *and* start time so that a later `down`
//! — from another process, after the pid was perhaps reused — signals only what the bed
//! started.

use std::io::{BufRead, Seek};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};
use serde::{Deserialize, Serialize};

use crate::cmd::describe;
use crate::{Result, TestbedError};

/// How often the bed polls a process or a condition.
pub const POLL: Duration = Duration::from_millis(20);

/// A started process as the state file keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcRecord {
    /// What it is, e.g. `etcd host2` or `agent host1`.
    pub name: String,
    pub pid: i32,
    /// Its start time (clock ticks after boot, `/proc/<pid>/stat` field 22).
    pub start: u64,
    /// Its command line.
    pub command: String,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

/// `/proc/<pid>/stat`'s state and start time, if the process exists.
fn stat(pid: i32) -> Option<(char, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields after its last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

impl ProcRecord {
    /// Whether the recorded process still runs (same pid, same start time, not a zombie).
    pub fn alive(&self) -> bool {
        matches!(stat(self.pid), Some((state, start)) if start == self.start && state != 'Z')
    }

    /// Sends `sig` if the recorded process still runs; whether it was sent.
    pub fn signal(&self, sig: Signal) -> bool {
        if !self.alive() {
            return false;
        }
        let Some(pid) = Pid::from_raw(self.pid) else {
            return false;
        };
        kill_process(pid, sig).is_ok()
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }
}

/// The last `lines` lines of the file at `path` (empty if unreadable).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A process the bed started; the child handle (when this process started it) reaps it.
#[derive(Debug)]
pub struct Proc {
    pub record: ProcRecord,
    child: Option<Child>,
}

impl Proc {
    /// Starts `cmd` with stdin closed and stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Proc> {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)
                .map_err(TestbedError::io(format!("cannot create {}", dir.display())))?;
        }
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(TestbedError::io(format!("cannot open {}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(TestbedError::io("cannot duplicate a log descriptor"))?;
        let command = describe(&cmd);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|source| TestbedError::Io {
                what: format!("cannot start {name} ({command})"),
                source,
            })?;
        let pid = child.id() as i32;
        let start = stat(pid).map(|(_, s)| s).unwrap_or(0);
        Ok(Proc {
            record: ProcRecord {
                name: name.to_string(),
                pid,
                start,
                command,
                log: log.to_path_buf(),
            },
            child: Some(child),
        })
    }

    /// A process recorded by another run (nothing to reap).
    pub fn adopt(record: ProcRecord) -> Proc {
        Proc {
            record,
            child: None,
        }
    }

    pub fn pid(&self) -> i32 {
        self.record.pid
    }

    /// Whether it still runs (reaping it if it ended).
    pub fn alive(&mut self) -> bool {
        if let Some(c) = &mut self.child
            && let Ok(Some(_)) = c.try_wait()
        {
            return false;
        }
        self.record.alive()
    }

    /// How it ended, if it did and this process started it.
    pub fn exit_status(&mut self) -> Option<String> {
        let c = self.child.as_mut()?;
        c.try_wait().ok().flatten().map(|s| s.to_string())
    }

    /// An [`TestbedError::Exited`] for this process with the end of its log.
    pub fn exited(&mut self) -> TestbedError {
        TestbedError::Exited {
            name: self.record.name.clone(),
            status: self.exit_status().unwrap_or_else(|| "ended".into()),
            log: self.record.log.clone(),
            tail: self.record.log_tail(30),
        }
    }

    /// `kill -9` (no waiting).
    pub fn kill(&mut self) {
        self.record.signal(Signal::KILL);
    }

    /// SIGTERM, then SIGKILL after `grace`; returns once it is gone (and reaped); whether it
    /// ended within the grace.
    pub fn stop(&mut self, grace: Duration) -> bool {
        self.record.signal(Signal::TERM);
        let deadline = Instant::now() + grace;
        while self.alive() {
            if Instant::now() >= deadline {
                self.kill();
                while self.alive() {
                    std::thread::sleep(POLL);
                }
                return false;
            }
            std::thread::sleep(POLL);
        }
        true
    }

    /// Waits until its log has a line containing `needle` and returns the line; fails if the
    /// process ends first or after `limit`.
    pub fn wait_for_line(&mut self, needle: &str, limit: Duration) -> Result<String> {
        let deadline = Instant::now() + limit;
        let mut offset = 0u64;
        loop {
            if let Ok(mut f) = std::fs::File::open(&self.record.log)
                && f.seek(std::io::SeekFrom::Start(offset)).is_ok()
            {
                let mut r = std::io::BufReader::new(f);
                let mut line = String::new();
                while r.read_line(&mut line).unwrap_or(0) > 0 {
                    if !line.ends_with('\n') {
                        break; // a line still being written: read it whole next time
                    }
                    offset += line.len() as u64;
                    if line.contains(needle) {
                        return Ok(line.trim_end().to_string());
                    }
                    line.clear();
                }
            }
            if !self.alive() {
                return Err(self.exited());
            }
            if Instant::now() >= deadline {
                return Err(TestbedError::Timeout {
                    what: format!("{} saying {needle:?}", self.record.name),
                    limit,
                    log: Some(self.record.log.clone()),
                });
            }
            std::thread::sleep(POLL);
        }
    }

    /// Gives up the handle without stopping the process (it keeps running after this
    /// process exits; init reaps it).
    pub fn detach(mut self) -> ProcRecord {
        self.child = None;
        self.record
    }
}

/// Polls `ok` every [`POLL`] until it holds; [`TestbedError::Timeout`] naming `what` after
/// `limit`.
pub fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + limit;
    while !ok() {
        if Instant::now() >= deadline {
            return Err(TestbedError::Timeout {
                what: what.to_string(),
                limit,
                log: None,
            });
        }
        std::thread::sleep(POLL);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_knows_its_own_process_and_no_other() {
        let me = std::process::id() as i32;
        let (_, start) = stat(me).unwrap();
        let rec = |pid, start| ProcRecord {
            name: "t".into(),
            pid,
            start,
            command: String::new(),
            log: PathBuf::new(),
        };
        assert!(rec(me, start).alive());
        // The same pid with another start time is a reused pid: not ours, never signalled.
        assert!(!rec(me, start + 1).alive());
        assert!(!rec(me, start + 1).signal(Signal::TERM));
    }

    #[test]
    fn a_stopped_process_is_reaped_and_its_lines_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sh.log");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo starting; echo ready now; exec sleep 30"]);
        let mut p = Proc::spawn("sh", cmd, &log).unwrap();
        assert_eq!(
            p.wait_for_line("ready", Duration::from_secs(10)).unwrap(),
            "ready now"
        );
        assert!(p.alive());
        assert!(p.stop(Duration::from_secs(10)), "sleep ends on SIGTERM");
        assert!(!p.alive() && !p.record.alive());
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo bye; exit 3"]);
        let mut q = Proc::spawn("quitter", cmd, &log).unwrap();
        let err = q
            .wait_for_line("never", Duration::from_secs(10))
            .unwrap_err();
        assert!(err.to_string().contains("quitter exited"), "{err}");
        assert!(err.to_string().contains("bye"), "{err}");
    }
}
