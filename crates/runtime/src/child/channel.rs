//! The parent↔child channel of a container: two close-on-exec pipes.
//!
//! `sync` carries [`ParentMessage`]s from the parent to the child, `report` carries
//! [`Report`]s back. The child's write end of `report` is close-on-exec, so the parent reading
//! EOF after a release means the exec succeeded; EOF before `Parked` means the child died.
//!
//! The parent side ([`ParentChannel`]) is ordinary Rust; the child side ([`ChildChannel`])
//! runs between clone and exec and so only makes raw system calls on descriptors it was given.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::message::{ParentMessage, Report, Stage};
use super::plan::ChildPlan;
use crate::error::RuntimeError;
use crate::spec::LogSpec;
use crate::sys;

/// The child's ends, kept open by the parent until the clone is done (then dropped).
pub(crate) struct ChildEnds {
    pub sync_r: OwnedFd,
    pub report_w: OwnedFd,
}

/// The parent's ends of one container's channel.
pub(crate) struct ParentChannel {
    sync_w: OwnedFd,
    report_r: OwnedFd,
}

/// Makes the two pipes of a new container's channel.
pub(crate) fn channel() -> io::Result<(ParentChannel, ChildEnds)> {
    let (sync_r, sync_w) = sys::pipe()?;
    let (report_r, report_w) = sys::pipe()?;
    Ok((
        ParentChannel { sync_w, report_r },
        ChildEnds { sync_r, report_w },
    ))
}

impl ParentChannel {
    /// Sends one message to the child.
    pub(crate) fn send(&self, msg: ParentMessage) -> io::Result<()> {
        sys::write_all(self.sync_w.as_raw_fd(), &[msg as u8])
    }

    /// Reads one report; `None` on EOF (the child exec'd or exited).
    pub(crate) fn recv(&self) -> Result<Option<Report>, RuntimeError> {
        let mut b = [0u8; Report::SIZE];
        let n = sys::read_full(self.report_r.as_raw_fd(), &mut b)
            .map_err(RuntimeError::sys("read from the container"))?;
        if n == 0 {
            return Ok(None);
        }
        match Report::decode(&b) {
            Some(r) if n == Report::SIZE => Ok(Some(r)),
            _ => Err(RuntimeError::Setup {
                step: "reading the container's report".into(),
                source: io::Error::other("the container sent a malformed report"),
            }),
        }
    }

    /// After [`ParentMessage::Go`]: waits until the child is parked before exec.
    pub(crate) fn wait_parked(&self, plan: &ChildPlan, log: &LogSpec) -> Result<(), RuntimeError> {
        match self.recv()? {
            Some(Report {
                stage: Stage::Parked,
                ..
            }) => Ok(()),
            Some(r) => Err(failure(plan, r, log)),
            None => Err(RuntimeError::Setup {
                step: "preparing the container (it exited)".into(),
                source: io::Error::other("the container's setup process ended early"),
            }),
        }
    }

    /// Releases a parked child and waits until its exec succeeded (`Ok(None)`) or a report
    /// of why it failed (`Ok(Some(error))`: the child exits right after).
    pub(crate) fn release(
        &self,
        plan: &ChildPlan,
        log: &LogSpec,
    ) -> Result<Option<RuntimeError>, RuntimeError> {
        self.send(ParentMessage::Release)
            .map_err(RuntimeError::sys("release the container"))?;
        Ok(self.recv()?.map(|r| failure(plan, r, log)))
    }
}

/// Turns a failure report into an error that names the step and the OS error.
pub(crate) fn failure(plan: &ChildPlan, r: Report, log: &LogSpec) -> RuntimeError {
    let source = io::Error::from_raw_os_error(r.errno);
    match r.stage {
        Stage::Exec => RuntimeError::Exec {
            command: plan.command(),
            source,
            log_tail: match log {
                LogSpec::File { path, .. } => crate::log::tail(path, 2048),
                _ => String::new(),
            },
        },
        Stage::Op => RuntimeError::Setup {
            step: plan
                .ops
                .get(r.index as usize)
                .map(|o| o.describe())
                .unwrap_or_else(|| "filesystem setup".into()),
            source,
        },
        other => RuntimeError::Setup {
            step: other.describe().into(),
            source,
        },
    }
}

/// The child's side: raw descriptors taken from the plan, used without allocation.
#[derive(Clone, Copy)]
pub(crate) struct ChildChannel {
    sync_fd: RawFd,
    report_fd: RawFd,
}

impl ChildChannel {
    pub(crate) fn of(plan: &ChildPlan) -> ChildChannel {
        ChildChannel {
            sync_fd: plan.sync_fd,
            report_fd: plan.report_fd,
        }
    }

    /// Sends a report (best effort: a parent that is gone cannot read it anyway).
    ///
    /// # Safety
    /// Only in the child, with the plan's descriptors still open.
    pub(crate) unsafe fn report(&self, stage: Stage, index: u32, err: i32) {
        let b = Report::encode(stage, index, err);
        // SAFETY: writing a stack buffer to our own pipe.
        unsafe {
            libc::write(self.report_fd, b.as_ptr().cast(), b.len());
        }
    }

    /// Reports a failure and exits the child.
    ///
    /// # Safety
    /// As [`ChildChannel::report`].
    pub(crate) unsafe fn fail(&self, stage: Stage, index: u32, err: i32) -> ! {
        // SAFETY: see `report`; _exit never returns.
        unsafe {
            self.report(stage, index, err);
            libc::_exit(127)
        }
    }

    /// Waits for `want` from the parent; false on EOF (the parent is gone) or another message.
    ///
    /// # Safety
    /// As [`ChildChannel::report`].
    pub(crate) unsafe fn wait_for(&self, want: ParentMessage) -> bool {
        let mut b = 0u8;
        loop {
            // SAFETY: reading one byte into a stack variable.
            let n = unsafe { libc::read(self.sync_fd, (&mut b as *mut u8).cast(), 1) };
            if n == 1 {
                return b == want as u8;
            }
            // SAFETY: errno read.
            if n == -1 && unsafe { super::errno() } == libc::EINTR {
                continue;
            }
            return false;
        }
    }

    /// Closes the parent→child pipe (nothing more comes after the release).
    ///
    /// # Safety
    /// As [`ChildChannel::report`]; call once.
    pub(crate) unsafe fn close_sync(&self) {
        // SAFETY: closing our own descriptor.
        unsafe {
            libc::close(self.sync_fd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_stub() -> ChildPlan {
        ChildPlan {
            ops: Vec::new(),
            hostname: c"h".into(),
            lo_up: false,
            net: None,
            uid: 0,
            gid: 0,
            groups: Vec::new(),
            keep_caps: 0,
            workdir: c"/".into(),
            exec_candidates: Vec::new(),
            argv: Vec::new(),
            envp: Vec::new(),
            _strings: vec![c"app".into()],
            stdio: [-1; 3],
            sync_fd: -1,
            report_fd: -1,
            nofile: 1024,
            host_netns_fd: -1,
            seccomp: None,
        }
    }

    #[test]
    fn parked_then_exec_failure_over_real_pipes() {
        let (parent, ends) = channel().expect("pipes");
        let child = ChildChannel {
            sync_fd: ends.sync_r.as_raw_fd(),
            report_fd: ends.report_w.as_raw_fd(),
        };
        let plan = plan_stub();
        parent.send(ParentMessage::Go).expect("send");
        // SAFETY: the descriptors are open for the whole test.
        unsafe {
            assert!(child.wait_for(ParentMessage::Go));
            child.report(Stage::Parked, 0, 0);
        }
        parent.wait_parked(&plan, &LogSpec::Null).expect("parked");
        // SAFETY: as above.
        unsafe { child.report(Stage::Exec, 0, libc::ENOENT) };
        let err = parent.release(&plan, &LogSpec::Null).expect("read");
        let msg = err.expect("a failure").to_string();
        assert!(msg.contains("\"app\""), "{msg}");
        // SAFETY: as above.
        assert!(unsafe { child.wait_for(ParentMessage::Release) });
    }

    #[test]
    fn eof_before_parked_is_an_early_exit() {
        let (parent, ends) = channel().expect("pipes");
        drop(ends);
        let err = parent
            .wait_parked(&plan_stub(), &LogSpec::Null)
            .expect_err("the child is gone");
        assert!(err.to_string().contains("ended early"), "{err}");
    }

    #[test]
    fn a_malformed_report_is_an_error_not_success() {
        let (parent, ends) = channel().expect("pipes");
        sys::write_all(ends.report_w.as_raw_fd(), &[0xff; Report::SIZE]).expect("write");
        assert!(parent.recv().is_err());
    }
}
