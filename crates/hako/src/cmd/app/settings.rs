//! The settings of `hako app create` and `update`: one flag per [`AppPatch`] field, and the
//! spec a create sends, with the image's own defaults (its `Cmd`, `Env`, `WorkingDir`, `User`
//! and exposed port) for what is not given.

use std::collections::BTreeMap;
use std::path::Path;

use hako_model::units::parse_cpu;
use hako_model::{AppNetwork, AppPatch, ByteSize, HumanDuration, ImageRef, StopSignal};

use crate::cmd::{Exit, Failure, OrExit};

/// Settings shared by create and update: one flag per [`AppPatch`] field, read by the same
/// parsers as the API's JSON (`hako_model::units`, [`ImageRef`]).
#[derive(Debug, clap::Args)]
pub struct Settings {
    /// A hostname that reaches the app (repeat for more).
    #[arg(long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Image: NAME or NAME:latest (its latest version at each start) or NAME:VERSION.
    #[arg(long, value_name = "NAME[:VERSION]")]
    pub image: Option<ImageRef>,
    /// Command line; hako expands $PORT and the app's env and splits words like a shell.
    /// Needed at create unless the image (an imported OCI/Docker image) has its own.
    #[arg(long)]
    pub cmd: Option<String>,
    /// Port the app listens on inside its container (also in $PORT). Default 8080, or an
    /// imported OCI/Docker image's exposed port.
    #[arg(long)]
    pub port: Option<u16>,
    /// Memory per instance, e.g. 256MiB (MiB = 2^20 bytes, MB = 10^6).
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<ByteSize>,
    /// CPU per instance in cores, e.g. 0.5 (at most the node's cores).
    #[arg(long, value_name = "CORES", value_parser = parse_cpu)]
    pub cpu: Option<f64>,
    /// Process limit per instance.
    #[arg(long)]
    pub pids: Option<u64>,
    /// Instances kept running even when idle.
    #[arg(long)]
    pub min: Option<u32>,
    /// Most instances at once.
    #[arg(long)]
    pub max: Option<u32>,
    /// Stop an instance after this long without requests, e.g. 5m.
    #[arg(long, value_name = "DURATION")]
    pub idle_timeout: Option<HumanDuration>,
    /// Recycle instances after this long, e.g. 24h.
    #[arg(long, value_name = "DURATION")]
    pub max_lifetime: Option<HumanDuration>,
    /// A start not ready by then answers 503, e.g. 30s.
    #[arg(long, value_name = "DURATION")]
    pub start_timeout: Option<HumanDuration>,
    /// Ready means this path answers, not just that the port accepts.
    #[arg(long, value_name = "PATH")]
    pub health_path: Option<String>,
    /// Environment variable NAME=VALUE (repeat for more).
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// User inside the container: a name from the image or uid[:gid].
    #[arg(long)]
    pub user: Option<String>,
    /// isolated (default) or host.
    #[arg(long, value_name = "MODE")]
    pub net: Option<AppNetwork>,
    /// Signal that asks an instance to stop: TERM (default), INT (php -S), QUIT, HUP, USR1, USR2, WINCH.
    #[arg(long, value_name = "SIGNAL")]
    pub stop_signal: Option<StopSignal>,
    /// Give the app its own MariaDB database and user; the credentials reach its
    /// containers as DB_NAME, DB_USER, DB_PASSWORD, DB_HOST, DB_SOCKET and DATABASE_URL.
    #[arg(long)]
    pub database: bool,
    /// Stop giving the app its database (update only; the database itself is kept).
    #[arg(long, conflicts_with = "database")]
    pub no_database: bool,
    /// Containers kept prepared and parked just before the app's command, so that a cold
    /// start only releases one (0 to 8; isolated network only). Default 0.
    #[arg(long, value_name = "N")]
    pub warm_pool: Option<u32>,
    /// System-call filter: default (hako's profile) or unconfined (needs --seccomp-reason).
    #[arg(long, value_name = "PROFILE")]
    pub seccomp: Option<hako_model::SeccompProfile>,
    /// Why the app needs to run unconfined (shown with the app).
    #[arg(long, value_name = "TEXT")]
    pub seccomp_reason: Option<String>,
    /// Start from a checkpoint of this app version when there is one: auto (when it is
    /// faster than a cold start), always, or never. Default auto.
    #[arg(long, value_name = "auto|always|never")]
    pub restore: Option<hako_model::RestoreMode>,
    /// Requests in flight per instance the autoscaler aims for (default 10; ~1 for php -S,
    /// higher for static sites). Instances are added under load up to --max.
    #[arg(long, value_name = "N")]
    pub target_concurrency: Option<f64>,
    /// A schedule: a cron expression (5 fields, UTC, or @hourly/@daily/…) and a request
    /// (`*/15 * * * * GET /wp-cron.php`) or a command run in a fresh instance
    /// (`0 3 * * * php /app/cleanup.php`). Repeat for more; replaces every schedule.
    #[arg(long = "cron", value_name = "SCHEDULE")]
    pub cron: Vec<hako_model::ScheduleEntry>,
    /// Remove every schedule (update only).
    #[arg(long, conflicts_with = "cron")]
    pub no_cron: bool,
    /// Requests whose User-Agent contains this (case-insensitive) are answered but do not
    /// keep the app awake (uptime checkers, bots). Repeat for more; with --ignore-path and
    /// --ignore-uptime-checkers, replaces the list.
    #[arg(long = "ignore-user-agent", value_name = "TEXT")]
    pub ignore_user_agents: Vec<String>,
    /// Requests for this path (a trailing * matches any rest, e.g. /health*) do not keep the
    /// app awake. Repeat for more.
    #[arg(long = "ignore-path", value_name = "PATH")]
    pub ignore_paths: Vec<String>,
    /// Add the common uptime checkers (UptimeRobot, Pingdom, StatusCake, …) to the ignored
    /// user agents.
    #[arg(long)]
    pub ignore_uptime_checkers: bool,
    /// Clear the ignored clients (update only).
    #[arg(
        long,
        conflicts_with_all = ["ignore_user_agents", "ignore_paths", "ignore_uptime_checkers"]
    )]
    pub no_ignore: bool,
    /// Answer plain-HTTP requests with a redirect to HTTPS (needs `hako serve --https`).
    #[arg(long)]
    pub https_redirect: bool,
    /// Stop redirecting plain HTTP to HTTPS (update only).
    #[arg(long, conflicts_with = "https_redirect")]
    pub no_https_redirect: bool,
    /// Send Strict-Transport-Security with this max-age on HTTPS responses, e.g. 365d.
    #[arg(long, value_name = "DURATION")]
    pub hsts: Option<HumanDuration>,
    /// Stop sending Strict-Transport-Security (update only).
    #[arg(long, conflicts_with = "hsts")]
    pub no_hsts: bool,
    /// Obtain and renew the app's certificate from the ACME server in hako serve's [acme]
    /// config (HTTP-01 on the app's hosts, which must point at this server).
    #[arg(long)]
    pub acme: bool,
    /// Stop using ACME for the app (its last certificate is kept until replaced or removed).
    #[arg(long, conflicts_with = "acme")]
    pub no_acme: bool,
    /// Which keep-alive stops idle instances: fixed (the idle timeout) or predictive (learns
    /// the site's idle periods; unloads a periodic site after each visit and pre-warms it
    /// just before the next). Default fixed.
    #[arg(long, value_name = "fixed|predictive")]
    pub keep_alive: Option<hako_model::KeepAliveMode>,
}

impl Settings {
    /// The settings given, as the patch the API applies (only what was given changes).
    pub fn patch(self) -> Result<AppPatch, Failure> {
        Ok(AppPatch {
            hosts: (!self.hosts.is_empty()).then_some(self.hosts),
            image: self.image,
            cmd: self.cmd,
            port: self.port,
            env: if self.env.is_empty() {
                None
            } else {
                Some(env_map(&self.env)?)
            },
            user: self.user.map(Some),
            workdir: None,
            memory: self.memory,
            cpu: self.cpu.map(Some),
            pids: self.pids,
            min: self.min,
            max: self.max,
            idle_timeout: self.idle_timeout,
            max_lifetime: self.max_lifetime.map(Some),
            start_timeout: self.start_timeout,
            health_path: self.health_path.map(Some),
            network: self.net,
            stop_signal: self.stop_signal,
            database: switch(self.database, self.no_database),
            warm_pool: self.warm_pool,
            seccomp: self.seccomp,
            seccomp_reason: self.seccomp_reason.map(Some),
            restore: self.restore,
            target_concurrency: self.target_concurrency,
            schedules: if self.no_cron {
                Some(Vec::new())
            } else {
                (!self.cron.is_empty()).then_some(self.cron)
            },
            ignored_clients: if self.no_ignore {
                Some(hako_model::IgnoredClients::default())
            } else if self.ignore_user_agents.is_empty()
                && self.ignore_paths.is_empty()
                && !self.ignore_uptime_checkers
            {
                None
            } else {
                let mut user_agents = self.ignore_user_agents;
                if self.ignore_uptime_checkers {
                    user_agents.extend(hako_model::IgnoredClients::uptime_checkers().user_agents);
                }
                Some(hako_model::IgnoredClients {
                    user_agents,
                    paths: self.ignore_paths,
                })
            },
            https_redirect: switch(self.https_redirect, self.no_https_redirect),
            hsts: match (self.hsts, self.no_hsts) {
                (Some(d), _) => Some(Some(d)),
                (None, true) => Some(None),
                (None, false) => None,
            },
            acme: switch(self.acme, self.no_acme),
            keep_alive: self.keep_alive,
        })
    }
}

/// A `--x` / `--no-x` pair as a patch field: on, off, or unchanged.
fn switch(on: bool, off: bool) -> Option<bool> {
    match (on, off) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

fn env_map(pairs: &[String]) -> Result<BTreeMap<String, String>, Failure> {
    pairs
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow::anyhow!("--env {p:?} must be NAME=VALUE"))
                .or_exit(Exit::Usage)
        })
        .collect()
}

/// The spec `hako app create NAME` sends: the settings given, the image's own defaults for
/// what is not given ([`image_defaults`]), the defaults for the rest, validated here with the
/// server's own rules (limits against the node are the server's).
pub(crate) fn create_spec(
    name: &str,
    settings: Settings,
    data_dir: &Path,
) -> Result<hako_model::AppSpec, Failure> {
    let usage = |m: &str| Failure::new(Exit::Usage, anyhow::anyhow!("{m}"));
    if settings.image.is_none() {
        return Err(usage("--image is required"));
    }
    let mut patch = settings.patch()?;
    image_defaults(&mut patch, data_dir);
    if patch.cmd.is_none() {
        return Err(usage(
            "--cmd is required (the image gives no command of its own: no Cmd or Entrypoint)",
        ));
    }
    let spec = patch.create(name).or_exit(Exit::Usage)?;
    check_schedules(&spec).map_err(|e| usage(&e))?;
    Ok(spec)
}

/// Checks each schedule's cron expression as the server will.
pub(crate) fn check_schedules(spec: &hako_model::AppSpec) -> Result<(), String> {
    for entry in &spec.schedules {
        hako_policy::schedule::validate(entry)
            .map_err(|e| format!("--cron {:?}: {e}", entry.to_string()))?;
    }
    Ok(())
}

/// Fills what a new app leaves unset from its image's own configuration (an OCI or
/// `docker save` image's `Cmd`/`Entrypoint`, `Env`, `WorkingDir`, `User`, exposed port), when
/// the image is in this machine's store. A remote API's images are not seen here: give those
/// settings explicitly.
pub(crate) fn image_defaults(patch: &mut AppPatch, data_dir: &Path) {
    let Some(image) = &patch.image else { return };
    let root = data_dir.join("images");
    if !root.is_dir() {
        return;
    }
    let found =
        hako_image::ImageStore::open(&root).and_then(|store| store.get(&image.name, image.version));
    match found {
        Ok(img) => {
            if let Some(config) = &img.config {
                config.app_defaults(patch);
            }
        }
        Err(e) => {
            tracing::debug!(image = %image, error = %e, "no local image to take defaults from")
        }
    }
}
