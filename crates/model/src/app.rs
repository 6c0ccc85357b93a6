//! An app: a hosted site, as the user describes it (hostnames, image, code, command, port,
//! limits, keep-alive) plus what hako tracks about it (current release, times).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::units::{ByteSize, HumanDuration};

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
    /// Image reference: `NAME` (latest version when an instance starts) or `NAME:VERSION`.
    pub image: String,
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
    /// CPU limit per instance in cores. Default: none.
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
    /// Whether instances may start from a checkpoint of this app version. Default auto.
    #[serde(default)]
    pub restore: crate::RestoreMode,
}

/// Most parked containers an app may keep ready ([`AppSpec::warm_pool`]).
pub const MAX_WARM_POOL: u32 = 8;

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
}

/// An app as stored: the spec plus what hako tracks.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct App {
    #[serde(flatten)]
    pub spec: AppSpec,
    /// The code release new instances get (`None`: no code, /app is empty).
    #[serde(default)]
    pub release: Option<u64>,
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
}

impl App {
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
    /// directory, limits and network. An instance (or a parked container of the warm pool)
    /// whose fingerprint differs from its app's current one is out of date. Settings that
    /// only steer hako (hosts, keep-alive, minimum and maximum, warm pool, stop signal) are
    /// not part of it. Stable within one build of hako, not across builds: never store it.
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
        (s.memory, s.cpu.map(f64::to_bits), s.pids, s.network).hash(&mut h);
        h.finish()
    }
}

/// Why an app spec was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AppError {
    #[error(
        "app name {0:?} is not valid: use 1-63 lowercase letters, digits and '-', starting with a letter or digit"
    )]
    Name(String),
    #[error("an app needs at least one host (--host blog.example)")]
    NoHosts,
    #[error(
        "host {0:?} is not a valid hostname: use letters, digits, '-' and '.', no port, no scheme"
    )]
    Host(String),
    #[error("image reference {0:?} is not valid: use NAME or NAME:VERSION")]
    Image(String),
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
    #[error("health path {0:?} must start with '/'")]
    HealthPath(String),
    #[error("environment variable name {0:?} is not valid")]
    Env(String),
    #[error("working directory {0:?} must be an absolute path")]
    Workdir(String),
    #[error("a warm pool of {0} is too large: give at most {MAX_WARM_POOL}")]
    WarmPool(u32),
    #[error(
        "a warm pool needs the isolated network (a host-network instance's port is picked when it starts): use --net isolated or --warm-pool 0"
    )]
    WarmPoolHostNetwork,
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

/// Splits `NAME[:VERSION]`.
pub fn parse_image_ref(r: &str) -> Option<(String, Option<u32>)> {
    let (name, version) = match r.split_once(':') {
        Some((n, v)) => (n, Some(v.parse::<u32>().ok().filter(|v| *v > 0)?)),
        None => (r, None),
    };
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric();
    ok.then(|| (name.to_string(), version))
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
        if parse_image_ref(&self.image).is_none() {
            return Err(AppError::Image(self.image.clone()));
        }
        for k in self.env.keys() {
            if k.is_empty()
                || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                || k.as_bytes()[0].is_ascii_digit()
            {
                return Err(AppError::Env(k.clone()));
            }
        }
        self.command(self.port)?;
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
        if let Some(p) = &self.health_path
            && !p.starts_with('/')
        {
            return Err(AppError::HealthPath(p.clone()));
        }
        if !self.workdir.starts_with('/') {
            return Err(AppError::Workdir(self.workdir.clone()));
        }
        if self.warm_pool > MAX_WARM_POOL {
            return Err(AppError::WarmPool(self.warm_pool));
        }
        if self.warm_pool > 0 && self.network == AppNetwork::Host {
            return Err(AppError::WarmPoolHostNetwork);
        }
        Ok(())
    }

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
mod tests {
    use super::*;

    pub(crate) fn spec() -> AppSpec {
        serde_json::from_value(serde_json::json!({
            "name": "blog",
            "hosts": ["Blog.Example.", "blog.example", "www.blog.example"],
            "image": "php",
            "cmd": "php -S 0.0.0.0:$PORT -t /app"
        }))
        .unwrap()
    }

    #[test]
    fn defaults_and_normalisation() {
        let mut s = spec();
        s.validate().unwrap();
        assert_eq!(s.hosts, ["blog.example", "www.blog.example"]);
        assert_eq!(s.port, 8080);
        assert_eq!(s.memory, ByteSize(256 << 20));
        assert_eq!(s.idle_timeout.0, Duration::from_secs(300));
        assert_eq!(
            s.command(8080).unwrap(),
            ["php", "-S", "0.0.0.0:8080", "-t", "/app"]
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["idle_timeout"], "5m");
        assert_eq!(json["memory"], "256MiB");
    }

    #[test]
    fn rejects_bad_specs() {
        let cases: Vec<(&str, serde_json::Value)> = vec![
            ("name", serde_json::json!("Bad_Name")),
            ("hosts", serde_json::json!([])),
            ("hosts", serde_json::json!(["http://x.example"])),
            ("hosts", serde_json::json!(["x.example:8080"])),
            ("image", serde_json::json!("php:0")),
            ("cmd", serde_json::json!("  ")),
            ("cmd", serde_json::json!("echo 'x")),
            ("memory", serde_json::json!("1MiB")),
            ("cpu", serde_json::json!(-1.0)),
            ("pids", serde_json::json!(0)),
            ("max", serde_json::json!(0)),
            ("idle_timeout", serde_json::json!("1ms")),
            ("health_path", serde_json::json!("healthz")),
            ("warm_pool", serde_json::json!(9)),
        ];
        for (field, value) in cases {
            let mut v = serde_json::to_value(spec()).unwrap();
            v[field] = value.clone();
            let mut s: AppSpec = serde_json::from_value(v).unwrap();
            assert!(s.validate().is_err(), "{field} = {value} accepted");
        }
        let mut v = serde_json::to_value(spec()).unwrap();
        v["memroy"] = serde_json::json!("1GiB");
        assert!(
            serde_json::from_value::<AppSpec>(v).is_err(),
            "typo'd field accepted"
        );
    }

    #[test]
    fn warm_pool_defaults_to_none_and_needs_the_isolated_network() {
        let mut s = spec();
        s.validate().unwrap();
        assert_eq!(s.warm_pool, 0);
        s.warm_pool = MAX_WARM_POOL;
        s.validate().unwrap();
        s.network = AppNetwork::Host;
        assert_eq!(s.validate(), Err(AppError::WarmPoolHostNetwork));
        s.warm_pool = 0;
        s.validate().unwrap();
    }

    #[test]
    fn the_fingerprint_follows_what_shapes_a_container() {
        let app = |spec: AppSpec| App {
            spec,
            release: Some(1),
            generation: 0,
            created_unix: 0,
            updated_unix: 0,
            database_grant: None,
        };
        let base = app(spec());
        let same = base.fingerprint();
        assert_eq!(same, app(spec()).fingerprint());
        // Settings that steer hako, not the container, keep it.
        let mut steer = base.clone();
        steer.spec.warm_pool = 2;
        steer.spec.min = 1;
        steer.spec.idle_timeout = "20m".parse().unwrap();
        steer.spec.hosts.push("other.example".into());
        steer.spec.stop_signal = StopSignal::Int;
        assert_eq!(steer.fingerprint(), same);
        // What the container is made from changes it.
        let changes: Vec<fn(&mut App)> = vec![
            |a| a.release = Some(2),
            |a| a.generation = 1,
            |a| a.spec.image = "php:2".into(),
            |a| a.spec.cmd = "php -S 0.0.0.0:$PORT".into(),
            |a| {
                a.spec.env.insert("A".into(), "1".into());
            },
            |a| a.spec.port = 9000,
            |a| a.spec.user = Some("1000".into()),
            |a| a.spec.memory = ByteSize(512 << 20),
            |a| a.spec.cpu = Some(0.5),
            |a| a.spec.pids = 64,
            |a| a.spec.network = AppNetwork::Host,
            |a| a.spec.database = true,
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut a = base.clone();
            change(&mut a);
            assert_ne!(a.fingerprint(), same, "change {i} kept the fingerprint");
        }
    }

    #[test]
    fn stop_signals() {
        assert_eq!("sigint".parse::<StopSignal>().unwrap(), StopSignal::Int);
        assert_eq!("TERM".parse::<StopSignal>().unwrap().number(), 15);
        assert!("KILL".parse::<StopSignal>().is_err());
        assert_eq!(spec().stop_signal, StopSignal::Term);
        assert_eq!(serde_json::to_value(StopSignal::Int).unwrap(), "INT");
    }

    #[test]
    fn image_refs() {
        assert_eq!(parse_image_ref("php"), Some(("php".into(), None)));
        assert_eq!(parse_image_ref("php:3"), Some(("php".into(), Some(3))));
        assert_eq!(parse_image_ref("php:x"), None);
        assert_eq!(parse_image_ref(":3"), None);
    }

    #[test]
    fn an_app_with_a_database_round_trips_and_shows_no_password() {
        let mut spec = spec();
        spec.database = true;
        let app = App {
            spec,
            release: Some(2),
            generation: 1,
            created_unix: 1,
            updated_unix: 2,
            database_grant: Some(crate::DatabaseGrant {
                database: "hako_blog".into(),
                user: "hako_blog".into(),
                password: "pw-secret".into(),
                created_unix: 1,
            }),
        };
        // The spec's `database` switch and the grant live side by side in one JSON object.
        let json = serde_json::to_value(&app).unwrap();
        assert_eq!(json["database"], true);
        assert_eq!(json["database_grant"]["database"], "hako_blog");
        let back: App = serde_json::from_value(json).unwrap();
        assert_eq!(back, app);
        let shown = serde_json::to_string(&app.redacted()).unwrap();
        assert!(!shown.contains("pw-secret"), "{shown}");
        assert_eq!(app.environment(8080)["DB_PASSWORD"], "pw-secret");
        // Switched off: the grant is kept but no longer given to instances.
        let mut off = app.clone();
        off.spec.database = false;
        assert!(!off.environment(8080).contains_key("DB_PASSWORD"));
    }
}
