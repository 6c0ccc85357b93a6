//! What makes an app spec valid: names, hosts, limits and timings a node can act on, and
//! the error that says which one is not and what to give instead.

use std::time::Duration;

use super::{AppNetwork, AppSpec, MAX_SCHEDULES, MAX_WARM_POOL};
use crate::units::{ByteSize, HumanDuration};

/// Why an app spec was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AppError {
    #[error(
        "app name {0:?} is not valid: use 1-63 lowercase letters, digits and '-', starting with a letter or digit"
    )]
    Name(String),
    #[error("an app needs at least one host (--host blog.example)")]
    NoHosts,
    #[error("an app needs an image (--image NAME, see 'hako image list')")]
    NoImage,
    #[error("an app needs a command (--cmd 'CMD')")]
    NoCommand,
    #[error("an app's name cannot change: create a new app and delete the old one")]
    Rename,
    #[error(
        "host {0:?} is not a valid hostname: use letters, digits, '-' and '.', no port, no scheme"
    )]
    Host(String),
    #[error("bad command line: {0}")]
    Command(#[from] crate::command::CommandError),
    #[error("port 0 is not valid: give 1-65535")]
    Port,
    #[error("memory limit {0} is too small: give at least 4MiB")]
    Memory(ByteSize),
    #[error("cpu limit {0} is not valid: give a positive number of cores such as 0.5")]
    Cpu(f64),
    #[error("pids limit 0 is not valid: give at least 1")]
    Pids,
    #[error("max instances must be at least 1 and at least min ({min} > {max})")]
    MinMax { min: u32, max: u32 },
    #[error("{field} of {value} is too short: give at least {floor}")]
    TooShort {
        field: &'static str,
        value: HumanDuration,
        floor: HumanDuration,
    },
    #[error("health path {0:?} must start with '/' and hold no spaces or control characters")]
    HealthPath(String),
    #[error("environment variable name {0:?} is not valid")]
    Env(String),
    #[error("environment variable {0} has a NUL character in its value: remove it")]
    EnvValue(String),
    #[error("the command line has a NUL character: remove it")]
    NulInCommand,
    #[error("working directory {0:?} must be an absolute path without control characters")]
    Workdir(String),
    #[error("user {0:?} is not valid: give a name from the image's /etc/passwd, a uid or uid:gid")]
    User(String),
    #[error("a warm pool of {0} is too large: give at most {MAX_WARM_POOL}")]
    WarmPool(u32),
    #[error(
        "a warm pool needs the isolated network (a host-network instance's port is picked when it starts): use --net isolated or --warm-pool 0"
    )]
    WarmPoolHostNetwork,
    #[error(
        "seccomp unconfined needs a reason (at most 500 characters): set seccomp_reason to why the app needs system calls hako's profile denies"
    )]
    SeccompReason,
    #[error(
        "target concurrency {0} is not valid: give the requests in flight one instance should carry, from 0.1 to 10000 (e.g. 1 for php -S, 10 for WordPress)"
    )]
    TargetConcurrency(f64),
    #[error("{0} schedules are too many: give at most {MAX_SCHEDULES}")]
    TooManySchedules(usize),
    #[error("ignored clients: {0}")]
    IgnoredClients(#[from] crate::IgnoredClientsError),
}

/// Checks a name of an app (also used for images): `[a-z0-9][a-z0-9-]{0,62}`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
}

/// Checks a hostname (lowercased by the caller).
pub fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

impl AppSpec {
    /// Normalises (lowercases hosts, dedups) and validates.
    pub fn validate(&mut self) -> Result<(), AppError> {
        if !valid_name(&self.name) {
            return Err(AppError::Name(self.name.clone()));
        }
        for h in &mut self.hosts {
            let lower = h.trim().to_ascii_lowercase();
            *h = lower.strip_suffix('.').unwrap_or(&lower).to_string();
            if !valid_host(h) {
                return Err(AppError::Host(h.clone()));
            }
        }
        self.hosts.sort();
        self.hosts.dedup();
        if self.hosts.is_empty() {
            return Err(AppError::NoHosts);
        }
        for (k, v) in &self.env {
            if k.is_empty()
                || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                || k.as_bytes()[0].is_ascii_digit()
            {
                return Err(AppError::Env(k.clone()));
            }
            if v.contains('\0') {
                return Err(AppError::EnvValue(k.clone()));
            }
        }
        if self.command(self.port)?.iter().any(|w| w.contains('\0')) {
            return Err(AppError::NulInCommand);
        }
        if let Some(u) = &self.user
            && (u.is_empty()
                || u.len() > 64
                || u.starts_with(':')
                || u.chars().any(|c| c.is_control() || c.is_whitespace()))
        {
            return Err(AppError::User(u.clone()));
        }
        if self.port == 0 {
            return Err(AppError::Port);
        }
        if self.memory.0 < 4 << 20 {
            return Err(AppError::Memory(self.memory));
        }
        if let Some(c) = self.cpu
            && !(c.is_finite() && (0.01..=1024.0).contains(&c))
        {
            return Err(AppError::Cpu(c));
        }
        if self.pids == 0 {
            return Err(AppError::Pids);
        }
        if self.max == 0 || self.min > self.max {
            return Err(AppError::MinMax {
                min: self.min,
                max: self.max,
            });
        }
        let floor = |field, value: HumanDuration, floor: Duration| {
            if value.0 < floor {
                Err(AppError::TooShort {
                    field,
                    value,
                    floor: HumanDuration(floor),
                })
            } else {
                Ok(())
            }
        };
        floor(
            "idle timeout",
            self.idle_timeout,
            Duration::from_millis(100),
        )?;
        floor(
            "start timeout",
            self.start_timeout,
            Duration::from_millis(100),
        )?;
        if let Some(l) = self.max_lifetime {
            floor("max lifetime", l, Duration::from_secs(1))?;
        }
        // The health path goes into the readiness probe's request line.
        if let Some(p) = &self.health_path
            && !(p.starts_with('/') && p.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(AppError::HealthPath(p.clone()));
        }
        if !self.workdir.starts_with('/') || self.workdir.chars().any(char::is_control) {
            return Err(AppError::Workdir(self.workdir.clone()));
        }
        if self.warm_pool > MAX_WARM_POOL {
            return Err(AppError::WarmPool(self.warm_pool));
        }
        if self.warm_pool > 0 && self.network == AppNetwork::Host {
            return Err(AppError::WarmPoolHostNetwork);
        }
        if !crate::seccomp::check_reason(self.seccomp, &mut self.seccomp_reason) {
            return Err(AppError::SeccompReason);
        }
        let t = self.target_concurrency;
        if !(t.is_finite() && (0.1..=10_000.0).contains(&t)) {
            return Err(AppError::TargetConcurrency(t));
        }
        if self.schedules.len() > MAX_SCHEDULES {
            return Err(AppError::TooManySchedules(self.schedules.len()));
        }
        self.ignored_clients.validate()?;
        Ok(())
    }
}
