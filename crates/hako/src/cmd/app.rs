//! `hako app …`: hosted sites, through the API of a running `hako serve`. One file per
//! concern: the settings flags ([`settings`]), deploys and manifests ([`deploy`]), listing and
//! showing ([`show`]), events and logs ([`logs`]), deletion ([`delete`]).

mod delete;
mod deploy;
mod logs;
mod settings;
mod show;

use std::path::{Path, PathBuf};

use anyhow::Context;
use hako_api::Client;
use hako_model::{App, AppPatch, AppSpec};

pub use settings::Settings;
#[cfg(test)]
pub(crate) use settings::create_spec;

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
    /// Deploy new code: a directory, or a .tar / .tar.gz file. New instances get it; old ones
    /// drain. A directory with a hako.toml manifest also creates the app if it is missing and
    /// makes its settings the file's (NAME, if given, wins over the file's name).
    Deploy {
        /// The app (default: the manifest's `name`).
        name: Option<String>,
        #[arg(long, value_name = "DIR|TARBALL")]
        code: PathBuf,
        /// The tenant to own the app if the manifest creates it (admin token only).
        #[arg(long, value_name = "TENANT")]
        tenant: Option<String>,
    },
    /// Replace every instance (e.g. to pick up a new image version), successor first.
    Rollout {
        name: String,
        /// Wait until no instance of an older generation is left, showing progress.
        #[arg(long)]
        wait: bool,
        /// With --wait: give up waiting after this long (the rollout goes on).
        #[arg(long, default_value = "5m", value_name = "DURATION", requires = "wait")]
        timeout: hako_model::HumanDuration,
    },
    /// The app's code releases, newest first.
    Releases {
        name: String,
        #[arg(long)]
        json: bool,
    },
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

pub async fn execute(args: AppArgs, data_dir: &Path) -> Result<u8, Failure> {
    let client = Client::from_env(data_dir)
        .context("cannot find hako's API (is `hako serve` running? set HAKO_API and HAKO_TOKEN for a remote one)")
        .or_exit(Exit::Failure)?;
    let data_dir = data_dir.to_path_buf();
    tokio::task::spawn_blocking(move || run(args.command, &client, &data_dir))
        .await
        .map_err(|e| Failure::new(Exit::Failure, e))?
}

fn run(command: AppCommand, client: &Client, data_dir: &Path) -> Result<u8, Failure> {
    match command {
        AppCommand::Create(a) => {
            let spec = settings::create_spec(&a.name, a.settings, data_dir)?;
            match a.code {
                Some(code) => create_with_code(client, &spec, a.tenant.as_deref(), &code)?,
                None => {
                    create(client, &spec, a.tenant.as_deref())?;
                }
            }
            Ok(0)
        }
        AppCommand::List { json } => show::list(client, json),
        AppCommand::Show { name, json } => show::show(client, name, json),
        AppCommand::Update(a) => {
            update(client, &a.name, &a.settings.patch()?)?;
            Ok(0)
        }
        AppCommand::Deploy { name, code, tenant } => {
            deploy::with_manifest(client, name.as_deref(), &code, tenant.as_deref(), data_dir)
        }
        AppCommand::Rollout {
            name,
            wait,
            timeout,
        } => {
            let app = api(client.rollout(&name))?;
            out(&format!(
                "rolling out {} (generation {})\n",
                app.spec.name, app.generation
            ));
            if wait {
                deploy::wait_for_rollout(client, &name, app.generation, timeout)?;
            }
            Ok(0)
        }
        AppCommand::Releases { name, json } => show::releases(client, &name, json),
        AppCommand::Delete {
            name,
            yes,
            drop_database,
            keep_database,
        } => delete::delete(client, name, yes, drop_database, keep_database),
        AppCommand::Events { name, limit, json } => logs::events(client, name, limit, json),
        AppCommand::Logs {
            name,
            bytes,
            follow,
        } => logs::logs(client, name, bytes, follow),
        AppCommand::Cert {
            name,
            cert,
            key,
            remove,
            json,
        } => show::cert(client, name, cert.zip(key), remove, json),
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

/// Creates an app from a validated spec and says what was made.
/// Creates an app and deploys its first release. Its minimum instances start once that
/// release is there: started with the app, they would serve an empty `/app` (404s) until
/// their successors with the code replace them.
fn create_with_code(
    client: &Client,
    spec: &AppSpec,
    tenant: Option<&str>,
    code: &Path,
) -> Result<(), Failure> {
    let mut first = spec.clone();
    first.min = 0;
    create(client, &first, tenant)?;
    deploy::deploy(client, &spec.name, code)?;
    if spec.min > 0 {
        let patch = AppPatch {
            min: Some(spec.min),
            ..AppPatch::default()
        };
        api(client.update_app(&spec.name, &patch))?;
    }
    Ok(())
}

fn create(client: &Client, spec: &AppSpec, tenant: Option<&str>) -> Result<App, Failure> {
    let app = match tenant {
        Some(t) => api(client.create_app_for(spec, t))?,
        None => api(client.create_app(spec))?,
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
    Ok(app)
}

/// Applies a patch and says what changed on the running instances.
fn update(client: &Client, name: &str, patch: &AppPatch) -> Result<App, Failure> {
    let (app, resized) = api(client.update_app_resized(name, patch))?;
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
    Ok(app)
}
