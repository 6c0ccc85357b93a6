//! `hako instance list`: the running containers of apps, with the image version each runs,
//! its age and its limits now (a live resize changes them).

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
    let now = hako_model::now_unix_ms();
    let mut s = format!(
        "{:<24} {:<16} {:<20} {:<9} {:>9} {:<12} {:>8} {:<22} {}\n",
        "ID", "APP", "ADDR", "STATE", "READY_MS", "IMAGE", "AGE", "LIMITS", "STARTED"
    );
    for i in list {
        let limits = i.limits.map_or("-".to_string(), |l| {
            format!(
                "{} cpu {} pids {}",
                l.memory,
                l.cpu.map_or("-".to_string(), |c| c.to_string()),
                l.pids
            )
        });
        s += &format!(
            "{:<24} {:<16} {:<20} {:<9} {:>9.1} {:<12} {:>8} {:<22} {}\n",
            i.id,
            i.app,
            i.addr,
            format!("{:?}", i.state).to_lowercase(),
            i.ready_ms.unwrap_or(0.0),
            i.image,
            age(now.saturating_sub(i.started_unix_ms)),
            limits,
            super::format_time_ms(i.started_unix_ms)
        );
    }
    out(&s);
    Ok(0)
}

/// An instance's age in one or two units: `45s`, `12m`, `3h20m`, `2d4h`.
pub(crate) fn age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages_read_in_one_or_two_units() {
        assert_eq!(super::age(999), "0s");
        assert_eq!(super::age(45_000), "45s");
        assert_eq!(super::age(12 * 60_000 + 5_000), "12m");
        assert_eq!(super::age((3 * 3600 + 20 * 60) * 1000), "3h20m");
        assert_eq!(super::age((2 * 86_400 + 4 * 3600) * 1000), "2d4h");
    }
}
