//! The `hako` binary: the daemon (`hako serve`) and the command line.
//!
//! This file only parses arguments, sets up logging and the async runtime, dispatches to
//! one command in [`cmd`], prints a failure with its causes and exits with its code.
#![forbid(unsafe_code)]

mod cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cmd::{Exit, Failure};

/// hako: web hosting on throw-away containers started by the first request.
#[derive(Debug, Parser)]
#[command(name = "hako", version, max_term_width = 100)]
struct Cli {
    /// Where hako keeps its state (images, apps, logs).
    #[arg(
        long,
        global = true,
        env = "HAKO_DATA_DIR",
        default_value = "/var/lib/hako",
        value_name = "DIR"
    )]
    data_dir: PathBuf,

    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one container in the foreground, like `docker run --rm`.
    Run(Box<cmd::run::RunArgs>),
    /// Manage images: versioned read-only root filesystems.
    Image(cmd::image::ImageArgs),
    /// Serve sites: proxy, API and containers on this host (runs until stopped); with
    /// --store etcd://… a front of a cluster.
    Serve(cmd::serve::ServeArgs),
    /// Run a node of a cluster: the instances the cluster assigns to this host.
    Agent(cmd::agent::AgentArgs),
    /// Manage apps (sites) of a running `hako serve`.
    App(cmd::app::AppArgs),
    /// Look at running instances.
    Instance(cmd::instance::InstanceArgs),
    /// Manage tenants: site owners' accounts and their quotas (admin).
    Tenant(cmd::tenant::TenantArgs),
    /// Manage tenants' tokens: make, list, revoke (admin).
    Token(cmd::tenant::TokenArgs),
    /// The hosts of a cluster: list, cordon, uncordon, drain.
    Node(cmd::node::NodeArgs),
    /// Simulate thousands of sites under a keep-alive policy (same policy code as the daemon).
    Sim(cmd::sim::SimArgs),
    /// Service level of an app from its own measurements (or of a request rate): cold-start
    /// probability, added wait, memory-time; and the cheapest keep-alive for a target.
    Slo(cmd::slo::SloArgs),
    /// Install or check CRIU, which lets instances start from checkpoints.
    Criu(cmd::criu::CriuArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let result = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(dispatch(cli)),
        Err(e) => Err(Failure::new(
            Exit::Failure,
            anyhow::Error::new(e).context("cannot start the async runtime"),
        )),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            let lines = failure.lines();
            eprintln!("hako: error: {}", lines.first().map_or("", String::as_str));
            for cause in lines.iter().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(failure.exit.code())
        }
    }
}

async fn dispatch(cli: Cli) -> Result<u8, Failure> {
    match cli.command {
        Command::Run(args) => cmd::run::execute(*args, &cli.data_dir).await,
        Command::Image(args) => cmd::image::execute(args, &cli.data_dir),
        Command::Serve(args) => cmd::serve::execute(args, &cli.data_dir).await,
        Command::Agent(args) => cmd::agent::execute(args, &cli.data_dir).await,
        Command::App(args) => cmd::app::execute(args, &cli.data_dir).await,
        Command::Instance(args) => cmd::instance::execute(args, &cli.data_dir).await,
        Command::Tenant(args) => cmd::tenant::tenant(args, &cli.data_dir).await,
        Command::Token(args) => cmd::tenant::token(args, &cli.data_dir).await,
        Command::Node(args) => cmd::node::execute(args, &cli.data_dir).await,
        Command::Sim(args) => tokio::task::spawn_blocking(move || cmd::sim::sim(args))
            .await
            .map_err(|e| Failure::new(Exit::Failure, e))?,
        Command::Slo(args) => cmd::slo::execute(args, &cli.data_dir).await,
        Command::Criu(args) => {
            tokio::task::spawn_blocking(move || cmd::criu::execute(args, &cli.data_dir))
                .await
                .map_err(|e| Failure::new(Exit::Failure, e))?
        }
    }
}

/// Logs to stderr; `RUST_LOG` wins over `-v`.
fn init_tracing(verbose: u8) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_takes_the_command_after_its_options() {
        let cli = Cli::try_parse_from([
            "hako",
            "--data-dir",
            "/tmp/d",
            "run",
            "--image",
            "bb:2",
            "--memory",
            "64MiB",
            "--env",
            "A=b",
            "--",
            "sh",
            "-c",
            "exit 3",
        ])
        .unwrap();
        assert_eq!(cli.data_dir, PathBuf::from("/tmp/d"));
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(args.command, ["sh", "-c", "exit 3"]);
        assert_eq!(args.memory, Some(64 << 20));
        assert_eq!(args.image.version, Some(2));
    }

    #[test]
    fn bad_units_are_usage_errors() {
        let err = Cli::try_parse_from([
            "hako", "run", "--image", "bb", "--memory", "lots", "--", "true",
        ])
        .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("size"), "{err}");
    }
}
