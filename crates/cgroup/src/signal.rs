//! Killing processes and waiting on the kernel with a bounded, backing-off poll.

use std::io;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::CgroupError;

/// Sends SIGKILL to each process; ones already gone are skipped. Refuses to signal hako
/// itself or pids that are not real processes (0, negative: process groups), whatever a
/// cgroup.procs file claims.
pub(crate) fn kill_each(pids: &[i32]) -> Result<(), CgroupError> {
    let me = std::process::id() as i32;
    let mut first_err = None;
    for &pid in pids {
        if pid <= 1 || pid == me {
            tracing::warn!(pid, "not killing a process listed in a container cgroup");
            continue;
        }
        match kill(Pid::from_raw(pid), Signal::SIGKILL) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => {
                first_err.get_or_insert(CgroupError::Signal {
                    pid,
                    source: io::Error::from_raw_os_error(e as i32),
                });
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// Calls `done` until it returns `true` or `timeout` has passed, sleeping between tries
/// from 50 µs up to 10 ms. Returns whether `done` became true.
pub(crate) fn poll_until(
    timeout: Duration,
    mut done: impl FnMut() -> Result<bool, CgroupError>,
) -> Result<bool, CgroupError> {
    let start = Instant::now();
    let mut pause = Duration::from_micros(50);
    loop {
        if done()? {
            return Ok(true);
        }
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            return Ok(false);
        }
        std::thread::sleep(pause.min(timeout - elapsed));
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn poll_until_stops_when_done_or_late() {
        let mut n = 0;
        assert!(
            poll_until(Duration::from_secs(5), || {
                n += 1;
                Ok(n == 3)
            })
            .unwrap()
        );
        assert_eq!(n, 3);
        let start = Instant::now();
        assert!(!poll_until(Duration::from_millis(20), || Ok(false)).unwrap());
        assert!(start.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn kill_each_kills_and_skips_self() {
        let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
        let pid = child.id() as i32;
        kill_each(&[std::process::id() as i32, 0, -1, pid]).unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        // A pid no process can have (above the kernel's maximum): gone, so not an error.
        kill_each(&[i32::MAX]).unwrap();
    }
}
