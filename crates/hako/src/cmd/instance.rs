//! `hako instance list`: the running containers of apps.

use std::path::Path;

use anyhow::Context;
use hako_api::Client;

use super::{Exit, Failure, OrExit, out};

#[derive(Debug, clap::Args)]
pub struct InstanceArgs {
    #[command(subcommand)]
    pub command: InstanceCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum InstanceCommand {
    /// List running instances.
    List {
        /// Only this app's.
        #[arg(long)]
        app: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

pub async fn execute(args: InstanceArgs, data_dir: &Path) -> Result<u8, Failure> {
    let client = Client::from_env(data_dir)
        .context("cannot find hako's API (is `hako serve` running?)")
        .or_exit(Exit::Failure)?;
    let InstanceCommand::List { app, json } = args.command;
    let list = tokio::task::spawn_blocking(move || client.instances(app.as_deref()))
        .await
        .map_err(|e| Failure::new(Exit::Failure, e))?
        .map_err(super::api_failure)?;
    if json {
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&list).expect("serializable")
        ));
        return Ok(0);
    }
    let mut s = format!(
        "{:<24} {:<16} {:<22} {:<9} {:>9} {:<10} {}\n",
        "ID", "APP", "ADDR", "STATE", "READY_MS", "IMAGE", "STARTED"
    );
    for i in list {
        s += &format!(
            "{:<24} {:<16} {:<22} {:<9} {:>9.1} {:<10} {}\n",
            i.id,
            i.app,
            i.addr,
            format!("{:?}", i.state).to_lowercase(),
            i.ready_ms.unwrap_or(0.0),
            i.image,
            super::format_time_ms(i.started_unix_ms)
        );
    }
    out(&s);
    Ok(0)
}
