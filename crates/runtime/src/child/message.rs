//! The messages between a container's child and its parent (the runtime).
//!
//! Parent → child: one byte, [`ParentMessage`]. Child → parent: a fixed-size [`Report`] of a
//! [`Stage`] (12 bytes, so a write is atomic on a pipe). The transport is in
//! [`super::channel`].

/// What the parent tells the child.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParentMessage {
    /// The cgroup is joined and the veth is in the child's network namespace: go on.
    Go = b'G',
    /// Leave the parked state and exec the command.
    Release = b'R',
}

/// What a report is about.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Op = 1,
    Stdio,
    HostNetwork,
    Hostname,
    SyncWait,
    Network,
    Rlimit,
    Capabilities,
    Groups,
    SetGid,
    SetUid,
    NoNewPrivs,
    Workdir,
    Exec,
    Session,
    Seccomp,
    /// Not a failure: the container is prepared and waits for release.
    Parked = 100,
}

impl Stage {
    fn from_u32(v: u32) -> Option<Stage> {
        use Stage::*;
        [
            Op,
            Stdio,
            HostNetwork,
            Hostname,
            SyncWait,
            Network,
            Rlimit,
            Capabilities,
            Groups,
            SetGid,
            SetUid,
            NoNewPrivs,
            Workdir,
            Exec,
            Session,
            Seccomp,
            Parked,
        ]
        .into_iter()
        .find(|s| *s as u32 == v)
    }

    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Stage::Op => "filesystem setup",
            Stage::Stdio => "setting up stdin/stdout/stderr",
            Stage::HostNetwork => "joining the host's network namespace",
            Stage::Hostname => "setting the hostname",
            Stage::SyncWait => "waiting for the runtime (it went away)",
            Stage::Network => "configuring the network inside the container",
            Stage::Rlimit => "setting resource limits",
            Stage::Capabilities => "dropping capabilities",
            Stage::Groups => "setting supplementary groups",
            Stage::SetGid => "setting the group id",
            Stage::SetUid => "setting the user id",
            Stage::NoNewPrivs => "setting no_new_privs",
            Stage::Workdir => "changing to the working directory",
            Stage::Exec => "executing the command",
            Stage::Session => "starting a new session",
            Stage::Seccomp => "installing the system-call filter (seccomp)",
            Stage::Parked => "parked",
        }
    }
}

/// A fixed-size message from the child (12 bytes: atomic on a pipe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Report {
    pub stage: Stage,
    pub index: u32,
    pub errno: i32,
}

impl Report {
    pub(crate) const SIZE: usize = 12;

    pub(crate) fn encode(stage: Stage, index: u32, errno: i32) -> [u8; Report::SIZE] {
        let mut b = [0u8; Report::SIZE];
        b[0..4].copy_from_slice(&(stage as u32).to_ne_bytes());
        b[4..8].copy_from_slice(&index.to_ne_bytes());
        b[8..12].copy_from_slice(&errno.to_ne_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8; Report::SIZE]) -> Option<Report> {
        let stage = Stage::from_u32(u32::from_ne_bytes(b[0..4].try_into().ok()?))?;
        Some(Report {
            stage,
            index: u32::from_ne_bytes(b[4..8].try_into().ok()?),
            errno: i32::from_ne_bytes(b[8..12].try_into().ok()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip() {
        let b = Report::encode(Stage::Exec, 7, libc::ENOENT);
        assert_eq!(
            Report::decode(&b),
            Some(Report {
                stage: Stage::Exec,
                index: 7,
                errno: libc::ENOENT
            })
        );
        let mut bad = b;
        bad[0..4].copy_from_slice(&999u32.to_ne_bytes());
        assert_eq!(Report::decode(&bad), None);
    }

    #[test]
    fn every_stage_decodes_to_itself() {
        for s in [Stage::Op, Stage::Session, Stage::Parked, Stage::NoNewPrivs] {
            let r = Report::decode(&Report::encode(s, 0, 0)).expect("known stage");
            assert_eq!(r.stage, s);
        }
    }
}
