//! What a container is made of: the spec a caller hands to [`crate::Runtime::create`].
//!
//! A spec is plain data. [`ContainerSpec::validate`] rejects nonsense before the kernel
//! is touched, so a bad spec never leaves anything behind.

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use hako_cgroup::Limits;

/// The root filesystem of a container, as the image store describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootfsSpec {
    /// Read-only directories stacked as overlayfs lower layers, lowest first.
    Layers(Vec<PathBuf>),
    /// The host's own system directories: a small skeleton directory as the lower layer and
    /// read-only bind mounts (host path, path inside the container) made on top of it.
    Host {
        skeleton: PathBuf,
        binds: Vec<(PathBuf, PathBuf)>,
    },
}

impl RootfsSpec {
    /// The lower layers of the overlay, lowest first.
    pub fn layers(&self) -> Vec<PathBuf> {
        match self {
            RootfsSpec::Layers(l) => l.clone(),
            RootfsSpec::Host { skeleton, .. } => vec![skeleton.clone()],
        }
    }

    /// Where the image's `/etc/passwd` is found on the host (top layer first).
    pub fn passwd_candidates(&self) -> Vec<PathBuf> {
        match self {
            RootfsSpec::Layers(l) => l.iter().rev().map(|d| d.join("etc/passwd")).collect(),
            RootfsSpec::Host { binds, skeleton } => {
                let mut v: Vec<PathBuf> = binds
                    .iter()
                    .filter(|(_, inner)| inner.as_os_str() == "/etc/passwd")
                    .map(|(host, _)| host.clone())
                    .collect();
                v.push(skeleton.join("etc/passwd"));
                v
            }
        }
    }
}

/// A host directory or file made visible inside the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub target: PathBuf,
    pub read_only: bool,
}

impl BindMount {
    /// App code: read-only at `/app`.
    pub fn app_code(source: impl Into<PathBuf>) -> Self {
        BindMount {
            source: source.into(),
            target: "/app".into(),
            read_only: true,
        }
    }

    /// Persistent data: read-write at `/data`.
    pub fn data(source: impl Into<PathBuf>) -> Self {
        BindMount {
            source: source.into(),
            target: "/data".into(),
            read_only: false,
        }
    }
}

/// How a container reaches the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Its own network namespace with a veth on hako's bridge, its own address, NAT out.
    /// Other instances and the host's services are not reachable.
    #[default]
    Isolated,
    /// Shares the host's network (the caller gives it a free port in `PORT`).
    Host,
    /// Its own network namespace with loopback only.
    None,
}

impl std::str::FromStr for NetworkMode {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        match s {
            "isolated" => Ok(NetworkMode::Isolated),
            "host" => Ok(NetworkMode::Host),
            "none" => Ok(NetworkMode::None),
            other => Err(SpecError::BadNetworkMode(other.to_string())),
        }
    }
}

/// Who the container's process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum User {
    /// A name looked up in the image's `/etc/passwd`.
    Name(String),
    /// Numeric ids, used as they are.
    Id { uid: u32, gid: u32 },
}

impl Default for User {
    /// Non-root by default: `nobody` (65534:65534).
    fn default() -> Self {
        User::Id {
            uid: 65534,
            gid: 65534,
        }
    }
}

impl std::str::FromStr for User {
    type Err = SpecError;
    /// `name`, `uid` or `uid:gid`.
    fn from_str(s: &str) -> Result<Self, SpecError> {
        if s.is_empty() {
            return Err(SpecError::UnknownUser(String::new()));
        }
        if let Some((u, g)) = s.split_once(':') {
            let uid = u
                .parse()
                .map_err(|_| SpecError::UnknownUser(s.to_string()))?;
            let gid = g
                .parse()
                .map_err(|_| SpecError::UnknownUser(s.to_string()))?;
            return Ok(User::Id { uid, gid });
        }
        match s.parse::<u32>() {
            Ok(uid) => Ok(User::Id { uid, gid: uid }),
            Err(_) => Ok(User::Name(s.to_string())),
        }
    }
}

/// Where the container's stdout and stderr go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSpec {
    /// The caller's own stdin/stdout/stderr (`hako run` in the foreground).
    Inherit,
    /// One file on the host, rotated to `<file>.1` when it passes `max_bytes`.
    File { path: PathBuf, max_bytes: u64 },
    /// Discarded.
    Null,
}

/// Everything needed to make one container.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    pub rootfs: RootfsSpec,
    pub mounts: Vec<BindMount>,
    /// The program: an absolute path, or a name searched in `PATH` inside the container.
    pub command: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub workdir: PathBuf,
    pub user: User,
    pub hostname: String,
    pub limits: Limits,
    pub network: NetworkMode,
    pub log: LogSpec,
    /// Size cap of the throw-away writable layer (and of /tmp and /run), in bytes.
    pub scratch_bytes: u64,
    /// The system-call filter (default: hako's profile, see [`crate::seccomp`]).
    pub seccomp: crate::seccomp::Seccomp,
    /// The instance this container is, written to
    /// [`INSTANCE_FILE`](crate::checkpoint::INSTANCE_FILE) (`/run/hako/instance`) inside it:
    /// the one place an app learns which instance it is, whether it started cold or was
    /// restored from a checkpoint (whose environment names the dumped instance). Letters,
    /// digits, `.`, `_` and `-`, at most 128.
    pub instance: Option<String>,
}

impl ContainerSpec {
    /// A spec with hako's defaults: non-root, isolated network, no limits, output discarded,
    /// the default system-call filter.
    pub fn new(rootfs: RootfsSpec, command: impl Into<String>) -> Self {
        ContainerSpec {
            rootfs,
            mounts: Vec::new(),
            command: command.into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            workdir: "/".into(),
            user: User::default(),
            hostname: "hako".into(),
            limits: Limits::default(),
            network: NetworkMode::default(),
            log: LogSpec::Null,
            scratch_bytes: 256 << 20,
            seccomp: crate::seccomp::Seccomp::default(),
            instance: None,
        }
    }

    /// Rejects specs that cannot work, with a message saying what to fix.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.command.trim().is_empty() {
            return Err(SpecError::EmptyCommand);
        }
        let layers = self.rootfs.layers();
        if layers.is_empty() {
            return Err(SpecError::NoLayers);
        }
        for l in &layers {
            if !l.is_dir() {
                return Err(SpecError::MissingLayer(l.clone()));
            }
        }
        if let RootfsSpec::Host { binds, .. } = &self.rootfs {
            for (host, inner) in binds {
                check_inner_path(inner)?;
                if !host.exists() {
                    return Err(SpecError::MissingMountSource(host.clone()));
                }
            }
        }
        for m in &self.mounts {
            check_inner_path(&m.target)?;
            if !m.source.exists() {
                return Err(SpecError::MissingMountSource(m.source.clone()));
            }
        }
        if let Some(id) = &self.instance
            && (id.is_empty()
                || id.len() > 128
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')))
        {
            return Err(SpecError::BadInstance(id.clone()));
        }
        if !self.workdir.is_absolute() {
            return Err(SpecError::RelativePath(self.workdir.clone()));
        }
        if self.hostname.is_empty()
            || self.hostname.len() > 63
            || !self
                .hostname
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(SpecError::BadHostname(self.hostname.clone()));
        }
        for (k, v) in &self.env {
            if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
                return Err(SpecError::BadEnv(k.clone()));
            }
        }
        if self.command.contains('\0') || self.args.iter().any(|a| a.contains('\0')) {
            return Err(SpecError::NulInCommand);
        }
        if self.scratch_bytes < (1 << 20) {
            return Err(SpecError::ScratchTooSmall(self.scratch_bytes));
        }
        if let LogSpec::File { max_bytes, .. } = &self.log
            && *max_bytes < 1024
        {
            return Err(SpecError::LogCapTooSmall(*max_bytes));
        }
        self.limits.validate()?;
        Ok(())
    }
}

fn check_inner_path(p: &std::path::Path) -> Result<(), SpecError> {
    use std::path::Component;
    if !p.is_absolute() {
        return Err(SpecError::RelativePath(p.to_path_buf()));
    }
    if p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(SpecError::DotDotPath(p.to_path_buf()));
    }
    if p.as_os_str() == "/" {
        return Err(SpecError::MountOverRoot);
    }
    Ok(())
}

/// Why a spec was rejected.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("the command is empty: give the program to run")]
    EmptyCommand,
    #[error("the command or an argument contains a NUL byte")]
    NulInCommand,
    #[error("the image has no layers")]
    NoLayers,
    #[error("image layer {0} does not exist: import or build the image first")]
    MissingLayer(PathBuf),
    #[error("mount source {0} does not exist")]
    MissingMountSource(PathBuf),
    #[error("path {0} must be absolute")]
    RelativePath(PathBuf),
    #[error("path {0} must not contain '..'")]
    DotDotPath(PathBuf),
    #[error("a mount cannot replace the container's root")]
    MountOverRoot,
    #[error("hostname {0:?} is not valid: use 1-63 letters, digits, '-' or '.'")]
    BadHostname(String),
    #[error("instance name {0:?} is not valid: use 1-128 letters, digits, '.', '_' or '-'")]
    BadInstance(String),
    #[error("environment variable name {0:?} is not valid")]
    BadEnv(String),
    #[error("unknown user {0:?}: not in the image's /etc/passwd (use a name from it, or uid:gid)")]
    UnknownUser(String),
    #[error("network mode {0:?} is not one of isolated, host, none")]
    BadNetworkMode(String),
    #[error("scratch space of {0} bytes is too small: give at least 1MiB")]
    ScratchTooSmall(u64),
    #[error("log cap of {0} bytes is too small: give at least 1KiB")]
    LogCapTooSmall(u64),
    #[error("bad limits: {0}")]
    Limits(#[from] hako_cgroup::LimitsError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ContainerSpec {
        ContainerSpec::new(RootfsSpec::Layers(vec!["/".into()]), "/bin/true")
    }

    #[test]
    fn default_spec_is_valid_and_non_root() {
        spec().validate().unwrap();
        assert_eq!(
            spec().user,
            User::Id {
                uid: 65534,
                gid: 65534
            }
        );
        assert_eq!(spec().network, NetworkMode::Isolated);
    }

    #[test]
    fn rejects_bad_specs() {
        let mut s = spec();
        s.command = " ".into();
        assert!(matches!(s.validate(), Err(SpecError::EmptyCommand)));

        let mut s = spec();
        s.rootfs = RootfsSpec::Layers(vec!["/nonexistent-hako-layer".into()]);
        assert!(matches!(s.validate(), Err(SpecError::MissingLayer(_))));

        let mut s = spec();
        s.mounts.push(BindMount {
            source: "/tmp".into(),
            target: "/app/../etc".into(),
            read_only: true,
        });
        assert!(matches!(s.validate(), Err(SpecError::DotDotPath(_))));

        let mut s = spec();
        s.hostname = "bad host".into();
        assert!(matches!(s.validate(), Err(SpecError::BadHostname(_))));

        let mut s = spec();
        s.env.insert("A=B".into(), "x".into());
        assert!(matches!(s.validate(), Err(SpecError::BadEnv(_))));
    }

    #[test]
    fn parses_users_and_modes() {
        assert_eq!(
            "33:44".parse::<User>().unwrap(),
            User::Id { uid: 33, gid: 44 }
        );
        assert_eq!("0".parse::<User>().unwrap(), User::Id { uid: 0, gid: 0 });
        assert_eq!(
            "www-data".parse::<User>().unwrap(),
            User::Name("www-data".into())
        );
        assert!("1:x".parse::<User>().is_err());
        assert_eq!("host".parse::<NetworkMode>().unwrap(), NetworkMode::Host);
        assert!("bridge".parse::<NetworkMode>().is_err());
    }
}
