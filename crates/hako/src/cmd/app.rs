//! `hako app …`: hosted sites, through the API of a running `hako serve`.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;
use hako_api::{Client, DatabaseOnDelete};
use hako_model::units::{format_size, parse_cpu};
use hako_model::{App, AppNetwork, AppPatch, ByteSize, HumanDuration, ImageRef, StopSignal};

use super::{Exit, Failure, OrExit, api, out};

#[derive(Debug, clap::Args)]
pub struct AppArgs {
    #[command(subcommand)]
    pub command: AppCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AppCommand {
    /// Create an app (a site) and, with --code, deploy its first release.
    Create(CreateArgs),
    /// List apps.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one app with its instances.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Change an app's settings (only the options given change).
    Update(UpdateArgs),
    /// Deploy new code: a directory, or a .tar / .tar.gz file. New instances get it; old ones drain.
    Deploy {
        name: String,
        #[arg(long, value_name = "DIR|TARBALL")]
        code: PathBuf,
    },
    /// Replace every instance (e.g. to pick up a new image version).
    Rollout { name: String },
    /// Delete an app, its releases and its data (asks first unless --yes). If it has a
    /// database, asks separately whether to drop it (or say --drop-database / --keep-database).
    Delete {
        name: String,
        #[arg(long, short)]
        yes: bool,
        /// Drop the app's database and its data too.
        #[arg(long, conflicts_with = "keep_database")]
        drop_database: bool,
        /// Leave the app's database on the server (a new app of the same name with
        /// --database takes it over).
        #[arg(long)]
        keep_database: bool,
    },
    /// The app's events: every start, stop and failure, with its reason.
    Events {
        name: String,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// The end of the app's recent logs; with --follow, then what its instances write, as
    /// they write it (also instances started later), until Ctrl-C.
    Logs {
        name: String,
        /// How much of the end to show (with --follow: before following).
        #[arg(long)]
        bytes: Option<usize>,
        /// Keep printing new lines as the app's instances write them.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Request metrics: cold and warm requests, wait and upstream time percentiles.
    Metrics { name: String },
    /// The app's HTTPS certificate: upload one (--cert and --key, PEM), show it, or --remove it.
    Cert {
        name: String,
        /// The PEM certificate chain, the site's certificate first.
        #[arg(long, value_name = "FILE", requires = "key", conflicts_with = "remove")]
        cert: Option<PathBuf>,
        /// The PEM private key of the certificate.
        #[arg(long, value_name = "FILE", requires = "cert")]
        key: Option<PathBuf>,
        /// Stop serving the app's certificate (HTTPS to its hosts is refused until it has
        /// another).
        #[arg(long)]
        remove: bool,
        #[arg(long)]
        json: bool,
    },
}

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
    #[arg(long)]
    pub cmd: Option<String>,
    /// Port the app listens on inside its container (also in $PORT). Default 8080.
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

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    pub name: String,
    #[command(flatten)]
    pub settings: Settings,
    /// The tenant to own the app (admin token only; a tenant's token makes apps of its own).
    #[arg(long, value_name = "TENANT")]
    pub tenant: Option<String>,
    /// Code to deploy as the first release: a directory or a .tar / .tar.gz file.
    #[arg(long, value_name = "DIR|TARBALL")]
    pub code: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    pub name: String,
    #[command(flatten)]
    pub settings: Settings,
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

/// The spec `hako app create NAME` sends: the settings given, the defaults for the rest,
/// validated here with the server's own rules (limits against the node are the server's).
pub(crate) fn create_spec(name: &str, settings: Settings) -> Result<hako_model::AppSpec, Failure> {
    let usage = |m: &str| Failure::new(Exit::Usage, anyhow::anyhow!("{m}"));
    if settings.image.is_none() {
        return Err(usage("--image is required"));
    }
    if settings.cmd.is_none() {
        return Err(usage("--cmd is required"));
    }
    let spec = settings.patch()?.create(name).or_exit(Exit::Usage)?;
    for entry in &spec.schedules {
        hako_policy::schedule::validate(entry)
            .map_err(|e| usage(&format!("--cron {:?}: {e}", entry.to_string())))?;
    }
    Ok(spec)
}

pub async fn execute(args: AppArgs, data_dir: &Path) -> Result<u8, Failure> {
    let client = Client::from_env(data_dir)
        .context("cannot find hako's API (is `hako serve` running? set HAKO_API and HAKO_TOKEN for a remote one)")
        .or_exit(Exit::Failure)?;
    let data_dir = data_dir.to_path_buf();
    tokio::task::spawn_blocking(move || run(args.command, &client, &data_dir))
        .await
        .map_err(|e| Failure::new(Exit::Failure, e))?
}

fn run(command: AppCommand, client: &Client, _data_dir: &Path) -> Result<u8, Failure> {
    match command {
        AppCommand::Create(a) => {
            let spec = create_spec(&a.name, a.settings)?;
            let app = match &a.tenant {
                Some(t) => api(client.create_app_for(&spec, t))?,
                None => api(client.create_app(&spec))?,
            };
            out(&format!(
                "created app {} ({})\n",
                app.spec.name,
                app.spec.hosts.join(", ")
            ));
            if let Some(g) = &app.database_grant {
                out(&format!(
                    "database {} (user {}): its containers get DB_NAME, DB_USER, DB_PASSWORD, DB_SOCKET\n",
                    g.database, g.user
                ));
            }
            if let Some(code) = a.code {
                deploy(client, &app.spec.name, &code)?;
            }
            Ok(0)
        }
        AppCommand::List { json } => {
            let apps = api(client.list_apps())?;
            if json {
                out(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&apps).expect("serializable")
                ));
            } else {
                // A tenant's apps are all its own: the column is the admin's.
                out(&table(&apps, !client.uses_tenant_token()));
            }
            Ok(0)
        }
        AppCommand::Show { name, json } => {
            let app = api(client.app(&name))?;
            let instances = api(client.instances(Some(&name)))?;
            // Whether starts restore a checkpoint, and why (absent from an older daemon).
            let checkpoint = client.checkpoint(&name).ok();
            if json {
                let cert = api(client.cert(&name))?;
                let v = serde_json::json!({
                    "app": app,
                    "instances": instances,
                    "certificate": cert,
                    "checkpoint": checkpoint,
                });
                out(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&v).expect("serializable")
                ));
            } else {
                let mut s = serde_json::to_string_pretty(&app).expect("serializable");
                s.push('\n');
                s += &cert_line(api(client.cert(&name))?.as_ref(), app.spec.acme);
                if let Some(c) = &checkpoint {
                    s += &checkpoint_lines(c);
                }
                s += &format!("instances: {}\n", instances.len());
                for i in instances {
                    s += &format!(
                        "  {} {} {:?} ready in {:.1} ms{}, image {}, release {}\n",
                        i.id,
                        i.addr,
                        i.state,
                        i.ready_ms.unwrap_or(0.0),
                        match i.start_path {
                            hako_model::StartPath::Pool => " (from the warm pool)",
                            hako_model::StartPath::Restore => " (restored from a checkpoint)",
                            hako_model::StartPath::Shared => " (from the shared warm pool)",
                            hako_model::StartPath::Cold => "",
                        },
                        i.image,
                        i.release.map_or("-".into(), |r| r.to_string())
                    );
                }
                out(&s);
            }
            Ok(0)
        }
        AppCommand::Update(a) => {
            let patch = a.settings.patch()?;
            let (app, resized) = api(client.update_app_resized(&a.name, &patch))?;
            let mut s = format!("updated app {}\n", app.spec.name);
            for r in &resized {
                s += &match (&r.reason, r.applied) {
                    (_, true) => format!(
                        "  {}: resized live to memory {}, cpu {}, pids {}\n",
                        r.instance,
                        r.limits.memory,
                        r.limits.cpu.map_or("none".into(), |c| c.to_string()),
                        r.limits.pids
                    ),
                    (Some(why), false) => format!("  {}: {why}\n", r.instance),
                    (None, false) => format!("  {}: not resized\n", r.instance),
                };
            }
            out(&s);
            Ok(0)
        }
        AppCommand::Deploy { name, code } => {
            deploy(client, &name, &code)?;
            Ok(0)
        }
        AppCommand::Rollout { name } => {
            let app = api(client.rollout(&name))?;
            out(&format!(
                "rolling out {} (generation {})\n",
                app.spec.name, app.generation
            ));
            Ok(0)
        }
        AppCommand::Delete {
            name,
            yes,
            drop_database,
            keep_database,
        } => {
            let app = api(client.app(&name))?;
            let interactive = std::io::stdin().is_terminal();
            if !yes {
                if !interactive {
                    return Err(Failure::new(
                        Exit::Usage,
                        anyhow::anyhow!(
                            "deleting {name} removes its releases and data: add --yes to confirm"
                        ),
                    ));
                }
                if !ask(&format!("delete app {name} with its releases and data?")) {
                    out("not deleted\n");
                    return Ok(1);
                }
            }
            let choice = match (&app.database_grant, drop_database, keep_database) {
                (None, _, _) => None,
                (Some(_), true, _) => Some(DatabaseOnDelete::Drop),
                (Some(_), _, true) => Some(DatabaseOnDelete::Keep),
                (Some(g), false, false) if interactive => Some(
                    if ask(&format!(
                        "also drop its database {} with all its data? This cannot be undone.",
                        g.database
                    )) {
                        DatabaseOnDelete::Drop
                    } else {
                        DatabaseOnDelete::Keep
                    },
                ),
                (Some(g), false, false) => {
                    return Err(Failure::new(
                        Exit::Usage,
                        anyhow::anyhow!(
                            "{name} has a database ({}): add --drop-database to drop it with the app, or --keep-database to keep it",
                            g.database
                        ),
                    ));
                }
            };
            match choice {
                Some(c) => api(client.delete_app_with(&name, c))?,
                None => api(client.delete_app(&name))?,
            }
            out(&format!("deleted app {name}\n"));
            if let (Some(g), Some(c)) = (&app.database_grant, choice) {
                out(&match c {
                    DatabaseOnDelete::Drop => format!("dropped database {}\n", g.database),
                    DatabaseOnDelete::Keep => format!("kept database {}\n", g.database),
                });
            }
            Ok(0)
        }
        AppCommand::Events { name, limit, json } => {
            let events = api(client.events(&name, Some(limit)))?;
            if json {
                out(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&events).expect("serializable")
                ));
                return Ok(0);
            }
            let mut s = String::new();
            for e in events {
                s += &format!(
                    "{} {:<12} {:<14} {}\n",
                    super::format_time_ms(e.time_unix_ms),
                    format!("{:?}", e.kind).to_lowercase(),
                    e.instance.as_deref().unwrap_or("-"),
                    e.reason
                );
                if let Some(t) = e.log_tail {
                    for line in t
                        .lines()
                        .rev()
                        .take(10)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                    {
                        s += &format!("    | {line}\n");
                    }
                }
            }
            out(&s);
            Ok(0)
        }
        AppCommand::Logs {
            name,
            bytes,
            follow: false,
        } => {
            out(&api(client.logs(&name, Some(bytes.unwrap_or(16384))))?);
            Ok(0)
        }
        AppCommand::Logs {
            name,
            bytes,
            follow: true,
        } => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            let mut first = true;
            api(client.follow_logs(&name, bytes, |piece| {
                let written = match piece {
                    hako_api::LogPiece::Instance(id) => {
                        let gap = if first { "" } else { "\n" };
                        first = false;
                        writeln!(stdout, "{gap}==> {id} <==")
                    }
                    hako_api::LogPiece::Text(text) => stdout.write_all(text.as_bytes()),
                };
                // A closed stdout (`| head`) ends the following.
                written.and_then(|()| stdout.flush()).is_ok()
            }))?;
            Ok(0)
        }
        AppCommand::Cert {
            name,
            cert,
            key,
            remove,
            json,
        } => {
            if remove {
                api(client.remove_cert(&name))?;
                out(&format!("removed the certificate of {name}\n"));
                return Ok(0);
            }
            let info = match (cert, key) {
                (Some(cert), Some(key)) => {
                    let read = |p: &Path| {
                        std::fs::read_to_string(p)
                            .with_context(|| format!("cannot read {}", p.display()))
                            .or_exit(Exit::Usage)
                    };
                    Some(api(client.set_cert(&name, &read(&cert)?, &read(&key)?))?)
                }
                _ => api(client.cert(&name))?,
            };
            if json {
                out(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&info).expect("serializable")
                ));
            } else {
                let acme = api(client.app(&name))?.spec.acme;
                out(&cert_line(info.as_ref(), acme));
            }
            Ok(0)
        }
        AppCommand::Metrics { name } => {
            let m = api(client.metrics(&name))?;
            out(&format!(
                "{}\n",
                serde_json::to_string_pretty(&m).expect("serializable")
            ));
            Ok(0)
        }
    }
}

/// One line about an app's certificate: source, issuer, names and expiry (never the key).
fn cert_line(info: Option<&hako_tls::CertInfo>, acme: bool) -> String {
    let Some(c) = info else {
        return if acme {
            "certificate: none yet (ACME is ordering one; see 'hako app events')\n".into()
        } else {
            "certificate: none (HTTPS refused; 'hako app cert NAME --cert F --key F' or --acme)\n"
                .into()
        };
    };
    let now = hako_model::now_unix() as i64;
    format!(
        "certificate: {} by {} for {}, not after {} ({})\n",
        match c.source {
            hako_tls::CertSource::Uploaded => "uploaded",
            hako_tls::CertSource::Acme => "ACME",
        },
        c.issuer,
        c.names.join(", "),
        super::format_time_ms(c.not_after_unix.max(0) as u64 * 1000),
        match c.not_after_unix - now {
            left if left <= 0 => "expired".to_string(),
            left => format!("in {}", hako_tls::schedule::in_words(left)),
        }
    )
}

/// `hako app show`'s lines on checkpoint/restore: which start path and why, the checkpoint's
/// size, the node's checkpoint disk use against its bound.
fn checkpoint_lines(c: &serde_json::Value) -> String {
    let mut s = format!(
        "restore: {} — {}\n",
        c["restore"].as_str().unwrap_or("auto"),
        c["reason"].as_str().unwrap_or("")
    );
    if let Some(bytes) = c["checkpoint"]["bytes"].as_u64() {
        s += &format!("  checkpoint: {}", format_size(bytes));
        if let Some(image) = c["checkpoint"]["image"].as_str() {
            s += &format!(" of image {image}");
        }
        s.push('\n');
    }
    if let (Some(used), Some(bound)) = (
        c["node_checkpoint_bytes"].as_u64(),
        c["node_checkpoint_max_bytes"].as_u64(),
    ) {
        s += &format!(
            "  node's checkpoints: {} of {}\n",
            format_size(used),
            format_size(bound)
        );
    }
    s
}

/// Asks a yes/no question on the terminal; only an explicit yes is yes.
fn ask(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}

/// Deploys a directory or an archive file. A directory goes by its path only with the admin
/// token to an API on this machine (the server reads it in place); otherwise — a tenant's
/// token, a remote API — it is packed into a tar.gz and uploaded.
fn deploy(client: &Client, name: &str, code: &Path) -> Result<(), Failure> {
    let code = std::fs::canonicalize(code)
        .with_context(|| format!("code {} does not exist", code.display()))
        .or_exit(Exit::Usage)?;
    let release = if !code.is_dir() {
        api(client.deploy_archive_file(name, &code))?
    } else if client.uses_tenant_token() || !api_is_local(&client.base_url) {
        api(client.deploy_dir_upload(name, &code))?
    } else {
        api(client.deploy_dir(name, &code))?
    };
    out(&format!(
        "deployed release {} of {name} ({})\n",
        release.number,
        format_size(release.size_bytes)
    ));
    Ok(())
}

/// True when the API's URL names this machine (loopback or `localhost`).
fn api_is_local(base_url: &str) -> bool {
    let rest = base_url
        .split_once("://")
        .map_or(base_url, |(_, r)| r)
        .split('/')
        .next()
        .unwrap_or("");
    let host = match rest.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => rest.rsplit_once(':').map_or(rest, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The app list; with `tenants`, a TENANT column (`-` for the admin's own apps).
fn table(apps: &[App], tenants: bool) -> String {
    let tenant_col = |t: &str| {
        if tenants {
            format!("{t:<14} ")
        } else {
            String::new()
        }
    };
    let mut s = format!(
        "{:<20} {}{:<30} {:<12} {:<8} {:<8} {}\n",
        "NAME",
        tenant_col("TENANT"),
        "HOSTS",
        "IMAGE",
        "RELEASE",
        "MEMORY",
        "IDLE"
    );
    for a in apps {
        s += &format!(
            "{:<20} {}{:<30} {:<12} {:<8} {:<8} {}\n",
            a.spec.name,
            tenant_col(a.tenant.as_deref().unwrap_or("-")),
            a.spec.hosts.join(","),
            a.spec.image,
            a.release.map_or("-".into(), |r| r.to_string()),
            a.spec.memory.to_string(),
            a.spec.idle_timeout
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_apis_take_a_directory_by_path() {
        for local in [
            "http://127.0.0.1:7070",
            "http://localhost:7070/",
            "http://[::1]:7070",
            "127.0.0.1:7070",
        ] {
            assert!(api_is_local(local), "{local}");
        }
        for remote in [
            "http://10.0.0.5:7070",
            "https://hako.example",
            "http://[2001:db8::1]:7070",
            "http://localhost.evil.example",
        ] {
            assert!(!api_is_local(remote), "{remote}");
        }
    }

    #[test]
    fn the_tenant_column_is_the_admins() {
        let mut app: App = serde_json::from_value(serde_json::json!({
            "name": "blog", "hosts": ["blog.example"], "image": "php", "cmd": "x",
            "created_unix": 0, "updated_unix": 0, "tenant": "acme"
        }))
        .unwrap();
        let admin = table(std::slice::from_ref(&app), true);
        assert!(admin.lines().next().unwrap().contains("TENANT"), "{admin}");
        assert!(admin.lines().nth(1).unwrap().contains("acme"), "{admin}");
        let tenant = table(std::slice::from_ref(&app), false);
        assert!(!tenant.contains("TENANT"), "{tenant}");
        app.tenant = None;
        let own = table(std::slice::from_ref(&app), true);
        assert!(own.lines().nth(1).unwrap().contains(" - "), "{own}");
    }
}
