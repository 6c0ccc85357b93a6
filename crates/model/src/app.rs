//! An app: a hosted site, as the user describes it (hostnames, image, code, command, port,
//! limits, keep-alive) plus what hako tracks about it (current release, times). A change to
//! its settings is an [`AppPatch`].

mod patch;
mod validate;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::ignored_clients::IgnoredClients;
use crate::image_ref::ImageRef;
use crate::schedule::ScheduleEntry;
use crate::seccomp::SeccompProfile;
use crate::units::{ByteSize, HumanDuration};

pub use patch::AppPatch;
pub use validate::{AppError, valid_host, valid_name};

/// Network mode of an app's instances.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum AppNetwork {
    /// Own network namespace and address; only the proxy reaches it.
    #[default]
    Isolated,
    /// The host's network, on a free port hako picks.
    Host,
}

/// The signal that asks an app's instance to stop (then, after the grace period, SIGKILL).
/// Most servers stop on TERM; `php -S` stops on INT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum StopSignal {
    #[default]
    Term,
    Int,
    Quit,
    Hup,
    Usr1,
    Usr2,
    Winch,
}

impl StopSignal {
    /// The Linux signal number.
    pub fn number(self) -> i32 {
        match self {
            StopSignal::Term => 15,
            StopSignal::Int => 2,
            StopSignal::Quit => 3,
            StopSignal::Hup => 1,
            StopSignal::Usr1 => 10,
            StopSignal::Usr2 => 12,
            StopSignal::Winch => 28,
        }
    }
}

impl std::str::FromStr for AppNetwork {
    type Err = String;
    /// `isolated` or `host`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "isolated" => Ok(AppNetwork::Isolated),
            "host" => Ok(AppNetwork::Host),
            other => Err(format!(
                "network {other:?} is not valid: use isolated or host"
            )),
        }
    }
}

impl std::str::FromStr for StopSignal {
    type Err = String;
    /// `TERM`, `SIGTERM`, `term`…
    fn from_str(s: &str) -> Result<Self, String> {
        let up = s.trim().to_ascii_uppercase();
        let name = up.strip_prefix("SIG").unwrap_or(&up);
        serde_json::from_value(serde_json::Value::String(name.to_string())).map_err(|_| {
            format!("stop signal {s:?} is not one of TERM, INT, QUIT, HUP, USR1, USR2, WINCH")
        })
    }
}

/// What a user sets when creating or updating an app. Every field but `name`, `hosts`,
/// `image` and `cmd` has a default, documented on the field.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSpec {
    /// `[a-z0-9][a-z0-9-]*`, at most 63 characters.
    pub name: String,
    /// Hostnames the proxy routes to this app (lowercase, no port).
    pub hosts: Vec<String>,
    /// Image reference: `NAME` or `NAME:latest` (latest version when an instance starts) or
    /// `NAME:VERSION`; stored as a string.
    pub image: ImageRef,
    /// Command line; `$PORT` and the app's env are expanded by hako.
    pub cmd: String,
    /// Port the app listens on inside its container (also given as `PORT`). Default 8080.
    #[serde(default = "defaults::port")]
    pub port: u16,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// User inside the container: a name from the image or `uid[:gid]`. Default: nobody.
    #[serde(default)]
    pub user: Option<String>,
    /// Working directory. Default `/app`.
    #[serde(default = "defaults::workdir")]
    pub workdir: String,
    /// Memory limit per instance. Default 256MiB.
    #[serde(default = "defaults::memory")]
    pub memory: ByteSize,
    /// CPU limit per instance in cores (at most what the node has). Default: none.
    #[serde(default)]
    pub cpu: Option<f64>,
    /// Process limit per instance. Default 512.
    #[serde(default = "defaults::pids")]
    pub pids: u64,
    /// Instances kept running even when idle. Default 0 (start on the first request).
    #[serde(default)]
    pub min: u32,
    /// Most instances at once. Default 4.
    #[serde(default = "defaults::max")]
    pub max: u32,
    /// Stop an instance after this long without requests. Default 5m.
    #[serde(default = "defaults::idle_timeout")]
    pub idle_timeout: HumanDuration,
    /// Recycle an instance after this long even if busy (it drains first). Default 24h.
    #[serde(default = "defaults::max_lifetime")]
    pub max_lifetime: Option<HumanDuration>,
    /// A start that is not ready by then fails (503). Default 30s.
    #[serde(default = "defaults::start_timeout")]
    pub start_timeout: HumanDuration,
    /// If set, ready means this path answers (any status below 500), not just that the port accepts.
    #[serde(default)]
    pub health_path: Option<String>,
    #[serde(default)]
    pub network: AppNetwork,
    /// Signal that asks an instance to stop. Default TERM (`php -S` wants INT).
    #[serde(default)]
    pub stop_signal: StopSignal,
    /// Give the app its own database and user on the shared database service (MariaDB);
    /// the credentials reach its containers as `DB_*` variables. Default: none.
    #[serde(default)]
    pub database: bool,
    /// Containers kept prepared for the next cold start, at most [`MAX_WARM_POOL`]. Each is
    /// made exactly as a start would make it (cgroup, namespaces, network, root filesystem,
    /// mounts) and parked just before the app's command runs, so that a cold start only
    /// releases it. A parked container holds a process, a cgroup, a veth and its mounts but
    /// runs none of the app's code. Isolated network only. Default 0 (every start makes its
    /// container).
    #[serde(default)]
    pub warm_pool: u32,
    /// The system-call filter of its instances. Default: hako's profile.
    #[serde(default)]
    pub seccomp: SeccompProfile,
    /// Why the app runs `unconfined` (required then, shown with the app; dropped otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp_reason: Option<String>,
    /// Whether instances may start from a checkpoint of this app version. Default auto.
    #[serde(default)]
    pub restore: crate::RestoreMode,
    /// Requests in flight per instance the autoscaler aims for (`--target-concurrency`).
    /// Default 10: about two thirds of the PHP workers a 512 MiB WordPress instance runs; set
    /// it near 1 for apps that serve one request at a time (`php -S`), higher for static and
    /// asynchronous servers. See docs/autoscaling.md.
    #[serde(default = "defaults::target_concurrency")]
    pub target_concurrency: f64,
    /// The app's timed work (`--cron`), at most [`MAX_SCHEDULES`]: a request to the app or a
    /// command in a fresh instance, by a cron expression in UTC. hako wakes the app for each
    /// run; runs are counted apart from visitors and keep it awake only as long as they need.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<ScheduleEntry>,
    /// Clients (uptime checkers, probes, bots) whose requests are answered but do not keep
    /// the app awake. Default: none.
    #[serde(default, skip_serializing_if = "IgnoredClients::is_empty")]
    pub ignored_clients: IgnoredClients,
    /// Answer plain-HTTP requests with a 308 redirect to the same URL over HTTPS (when
    /// `hako serve` has an HTTPS listener; ACME challenges are never redirected). Default off.
    #[serde(default)]
    pub https_redirect: bool,
    /// Send `Strict-Transport-Security: max-age=<this>` on HTTPS responses (browsers then
    /// use HTTPS only for that long). Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hsts: Option<HumanDuration>,
    /// Obtain and renew the app's certificate from the ACME server of `hako serve`'s `[acme]`
    /// config (HTTP-01 on its hosts). Default off: an uploaded certificate, or none.
    #[serde(default)]
    pub acme: bool,
    /// Which keep-alive stops its idle instances: `fixed` (the idle timeout) or `predictive`
    /// (learns the app's idle periods, pre-warms before an expected visit). Default fixed.
    #[serde(default)]
    pub keep_alive: crate::KeepAliveMode,
}

/// Most schedules an app may declare ([`AppSpec::schedules`]).
pub const MAX_SCHEDULES: usize = 32;

/// Most parked containers an app may keep ready ([`AppSpec::warm_pool`]).
pub const MAX_WARM_POOL: u32 = 8;

impl AppSpec {
    /// A spec with every optional setting at its default (not yet validated).
    pub fn new(
        name: impl Into<String>,
        hosts: Vec<String>,
        image: ImageRef,
        cmd: impl Into<String>,
    ) -> AppSpec {
        AppSpec {
            name: name.into(),
            hosts,
            image,
            cmd: cmd.into(),
            port: defaults::port(),
            env: BTreeMap::new(),
            user: None,
            workdir: defaults::workdir(),
            memory: defaults::memory(),
            cpu: None,
            pids: defaults::pids(),
            min: 0,
            max: defaults::max(),
            idle_timeout: defaults::idle_timeout(),
            max_lifetime: defaults::max_lifetime(),
            start_timeout: defaults::start_timeout(),
            health_path: None,
            network: AppNetwork::default(),
            stop_signal: StopSignal::default(),
            database: false,
            warm_pool: 0,
            seccomp: SeccompProfile::default(),
            seccomp_reason: None,
            restore: crate::RestoreMode::default(),
            target_concurrency: defaults::target_concurrency(),
            schedules: Vec::new(),
            ignored_clients: IgnoredClients::default(),
            https_redirect: false,
            hsts: None,
            acme: false,
            keep_alive: crate::KeepAliveMode::default(),
        }
    }
}

mod defaults {
    use super::*;
    pub fn port() -> u16 {
        8080
    }
    pub fn workdir() -> String {
        "/app".into()
    }
    pub fn memory() -> ByteSize {
        ByteSize(256 << 20)
    }
    pub fn pids() -> u64 {
        512
    }
    pub fn max() -> u32 {
        4
    }
    pub fn idle_timeout() -> HumanDuration {
        HumanDuration(Duration::from_secs(300))
    }
    pub fn max_lifetime() -> Option<HumanDuration> {
        Some(HumanDuration(Duration::from_secs(24 * 3600)))
    }
    pub fn start_timeout() -> HumanDuration {
        HumanDuration(Duration::from_secs(30))
    }
    pub fn target_concurrency() -> f64 {
        10.0
    }
}

/// An app as stored: the spec plus what hako tracks.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct App {
    #[serde(flatten)]
    pub spec: AppSpec,
    /// Tells this app apart from an earlier or later app of the same name: what outlives the
    /// app on a node (code releases, data, logs, parked containers) is keyed by
    /// [`App::storage_key`], never by the name alone, so deleting an app and creating one of
    /// the same name never mixes the two. Set once at create; empty for apps stored before it
    /// existed (their files keep the name-only key).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// The code release new instances get (`None`: no code, /app is empty).
    #[serde(default)]
    pub release: Option<u64>,
    /// The digest of that release's tree, set with [`App::release`] by whoever points the app
    /// at a release (a deploy): a node of a cluster runs the release only if its bytes hash
    /// to it. `None` with no release, or for a release made before hako recorded digests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_digest: Option<crate::Digest>,
    /// The image version an instance runs and the digests of its layers, from the cluster
    /// store: set by the leader in an assignment only (never stored with the app), so that the
    /// node runs exactly that version and only once its layers verify. `None` on one host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_record: Option<crate::ImageRecord>,
    /// Bumped by `rollout`: instances started before it are replaced.
    #[serde(default)]
    pub generation: u64,
    pub created_unix: u64,
    pub updated_unix: u64,
    /// The app's database, once the control plane has made it (see [`AppSpec::database`]).
    /// Kept when `database` is switched off; dropped only when the app is deleted and the
    /// deleter says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_grant: Option<crate::DatabaseGrant>,
    /// The tenant that owns the app (set once, at create: the creating token's tenant, or
    /// the one the admin names); `None` for the admin's own apps, which no tenant sees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// Hex digits of an [`App::uid`].
pub const APP_UID_LEN: usize = 12;

impl App {
    /// The key of what this app keeps on a node (releases, data, logs, warm pool):
    /// `<name>_<uid>` (the name cut to fit 63 characters), or the name alone for an app stored
    /// before uids existed. `_` never occurs in app names, so keys of different apps never meet.
    pub fn storage_key(&self) -> String {
        if self.uid.is_empty() {
            return self.spec.name.clone();
        }
        let keep = 63 - 1 - self.uid.len().min(APP_UID_LEN);
        let name: String = self.spec.name.chars().take(keep).collect();
        format!("{name}_{}", &self.uid[..self.uid.len().min(APP_UID_LEN)])
    }

    /// A copy safe to show: the database password hidden.
    pub fn redacted(&self) -> App {
        App {
            database_grant: self.database_grant.as_ref().map(|g| g.redacted()),
            ..self.clone()
        }
    }

    /// The environment of an instance on `port`: the spec's ([`AppSpec::environment`]) plus
    /// the database's credentials when the app uses one.
    pub fn environment(&self, port: u16) -> BTreeMap<String, String> {
        let mut env = self.spec.environment(port);
        if self.spec.database
            && let Some(g) = &self.database_grant
        {
            env.extend(g.environment());
        }
        env
    }

    /// What the app's containers are made from: code release, rollout generation, image
    /// reference, command, environment (with the database's credentials), user, working
    /// directory, network and system-call filter. An instance (or a parked container of the
    /// warm pool) whose fingerprint differs from its app's current one is out of date and is
    /// replaced. Settings that only steer hako (hosts, keep-alive, minimum and maximum, warm
    /// pool, stop signal, autoscaling, schedules, HTTPS redirect, HSTS, ACME) are not part of
    /// it, nor are the limits
    /// (memory, CPU, pids): those change live on running instances ([`App::limits`]).
    /// Stable within one build of hako, not across builds: never store it.
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let s = &self.spec;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (
            self.release,
            self.generation,
            &s.name,
            &s.image,
            &s.cmd,
            &s.env,
            s.port,
            &s.user,
            &s.workdir,
        )
            .hash(&mut h);
        // The database's credentials reach instances through their environment.
        (
            s.database,
            self.database_grant
                .as_ref()
                .map(|g| (&g.database, &g.password)),
        )
            .hash(&mut h);
        s.network.hash(&mut h);
        s.seccomp.hash(&mut h);
        h.finish()
    }

    /// The cgroup limits its instances get: memory and pids always, CPU if set. A change of
    /// them resizes running instances in place; it does not replace them.
    pub fn limits(&self) -> InstanceLimits {
        InstanceLimits {
            memory: self.spec.memory,
            cpu: self.spec.cpu,
            pids: self.spec.pids,
        }
    }
}

/// The cgroup limits of one instance (or those an app gives its instances).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InstanceLimits {
    /// Memory (cgroup v1 memory.limit_in_bytes, v2 memory.max).
    pub memory: ByteSize,
    /// CPU in cores (the CFS quota per 100 ms period); `None`: no quota.
    #[serde(default)]
    pub cpu: Option<f64>,
    /// Processes and threads.
    pub pids: u64,
}

impl AppSpec {
    /// The environment an instance gets: the app's env plus `PORT`.
    pub fn environment(&self, port: u16) -> BTreeMap<String, String> {
        let mut env = self.env.clone();
        env.insert("PORT".into(), port.to_string());
        env
    }

    /// The program and arguments for an instance listening on `port`.
    pub fn command(&self, port: u16) -> Result<Vec<String>, AppError> {
        let env = self.environment(port);
        Ok(crate::command::split(&self.cmd, &|k| env.get(k).cloned())?)
    }
}

#[cfg(test)]
mod tests;
