//! `hako run`: one container in the foreground, like `docker run --rm`.
//!
//! Its output goes to the terminal, its exit code becomes hako's (128 + signal when it was
//! killed), SIGINT/SIGTERM/SIGHUP to hako stop it gracefully (SIGTERM, `--stop-timeout`,
//! then SIGKILL of everything in it; a second signal kills at once), and everything it had
//! on the host is removed at the end. hako's own failures exit 125 (the container could not
//! be made), 126 (its command could not be executed) or 127 (its command was not found).
//!
//! The runtime gets a prefix of its own (`hakor…`) under /run/hako, so `hako run` never
//! collides with a running `hako serve`.

pub(crate) mod spec;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use hako_image::ImageStore;
use hako_runtime::{
    Container, ContainerSpec, NetworkMode, Runtime, RuntimeConfig, RuntimeError, User,
};
use tokio::signal::unix::{Signal, SignalKind, signal};

use hako_model::ImageRef;
use hako_model::units::{format_duration, parse_cpu, parse_duration, parse_size};

use super::{Exit, Failure, OrExit};
pub use spec::{EnvArg, MountArg};

/// Where `hako run` keeps its runtime state.
const STATE_ROOT: &str = "/run/hako";

/// Options of `hako run`.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: the container's own, 128+N when it was killed by signal N, \
125 when the container could not be made, 126 when its command cannot be executed, \
127 when its command is not found."
)]
pub struct RunArgs {
    /// The image: NAME or NAME:latest (its latest version) or NAME:VERSION.
    #[arg(long, value_name = "NAME[:VERSION]")]
    pub image: ImageRef,
    /// Memory limit, e.g. 64MiB or 1G (MiB and single letters are powers of 1024, MB of 1000) [default: 256MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub memory: Option<u64>,
    /// CPU limit in cores, e.g. 0.5 (at most this host's cores) [default: 1].
    #[arg(long, value_name = "CORES", value_parser = parse_cpu)]
    pub cpu: Option<f64>,
    /// Maximum number of processes and threads [default: 512].
    #[arg(long, value_name = "N")]
    pub pids: Option<u64>,
    /// Network: isolated (own address, NAT out), host (the host's network, a free port in
    /// PORT) or none (loopback only).
    #[arg(long, value_name = "MODE", default_value = "isolated")]
    pub net: NetworkMode,
    /// System-call filter: default (hako's profile: kexec, modules, bpf, keys, mounts, new
    /// user namespaces… fail with EPERM) or unconfined.
    #[arg(long, value_name = "PROFILE", default_value = "default")]
    pub seccomp: hako_runtime::Seccomp,
    /// User to run as: a name from the image's /etc/passwd, UID or UID:GID [default: nobody].
    #[arg(long, value_name = "USER")]
    pub user: Option<User>,
    /// The container's hostname [default: hako].
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// An environment variable: NAME=VALUE, or NAME to pass hako's own value on (repeatable).
    #[arg(short, long, value_name = "NAME=VALUE")]
    pub env: Vec<EnvArg>,
    /// Working directory inside the container [default: /app with --app, else /].
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<std::path::PathBuf>,
    /// App code: a host directory mounted read-only at /app.
    #[arg(long, value_name = "DIR")]
    pub app: Option<std::path::PathBuf>,
    /// Persistent data: a host directory mounted read-write at /data.
    #[arg(long, value_name = "DIR")]
    pub data: Option<std::path::PathBuf>,
    /// A host path inside the container: SRC:DST, or SRC:DST:ro for read-only (repeatable).
    #[arg(long = "mount", value_name = "SRC:DST[:ro]")]
    pub mounts: Vec<MountArg>,
    /// Size cap of the container's throw-away writable layer, /tmp and /run.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub scratch: Option<u64>,
    /// How long a stopped container gets to exit after SIGTERM before it is killed.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub stop_timeout: Duration,
    /// The command and its arguments (after `--`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

/// Runs the container to its end and returns its exit code.
pub async fn execute(args: RunArgs, data_dir: &Path) -> Result<u8, Failure> {
    // Limits this host can never give are refused before anything is made, with the words
    // the API uses for an app's limits.
    spec::check_capacity(&args, &hako_agent::node_capacity())
        .context("invalid container options")
        .or_exit(Exit::RunSetup)?;
    // Signals are caught from here on, so one during setup still ends in a clean removal.
    let mut signals = Signals::new().or_exit(Exit::Failure)?;
    let store = ImageStore::open(data_dir.join("images"))
        .with_context(|| format!("cannot open the image store in {}", data_dir.display()))
        .or_exit(Exit::RunSetup)?;
    let image = store
        .get(&args.image.name, args.image.version)
        .or_exit(Exit::RunSetup)?;
    let spec = spec::build(&args, &image, |k| std::env::var(k).ok()).or_exit(Exit::RunSetup)?;
    spec.validate()
        .context("invalid container options")
        .or_exit(Exit::RunSetup)?;
    if let Some(port) = spec.env.get("PORT") {
        tracing::info!(%port, "PORT for the container");
    }
    let mut config = RuntimeConfig::unique('r', STATE_ROOT);
    config.nat = spec.network == NetworkMode::Isolated;
    let prefix = config.prefix.clone();
    let runtime = Runtime::new(config)
        .context("cannot set up the container runtime")
        .or_exit(Exit::RunSetup)?;
    tracing::info!(%prefix, image = %format!("{}:{}", image.name, image.version), "runtime ready");
    let result = run_container(&runtime, &spec, &mut signals, args.stop_timeout).await;
    runtime.shutdown();
    tracing::info!(%prefix, "runtime removed");
    result
}

/// Creates, starts and waits for the container; always removes it.
async fn run_container(
    runtime: &Arc<Runtime>,
    spec: &ContainerSpec,
    signals: &mut Signals,
    grace: Duration,
) -> Result<u8, Failure> {
    let container = runtime
        .create(spec)
        .context("cannot create the container")
        .or_exit(Exit::RunSetup)?;
    tracing::debug!(
        id = container.id(),
        pid = container.pid(),
        "container prepared"
    );
    // A signal that came during setup: remove the container without ever starting it.
    if let Some((name, number)) = signals.pending().await {
        tracing::info!(
            signal = name,
            "signal before start: not starting the container"
        );
        container
            .remove()
            .context("cannot remove the container")
            .or_exit(Exit::Failure)?;
        return Ok(128 + number);
    }
    if let Err(e) = container.start() {
        let exit = start_failure_exit(&e);
        let removed = container.remove();
        let failure = Failure::new(exit, e);
        if let Err(r) = removed {
            tracing::warn!(error = %r, "removing the failed container");
        }
        return Err(failure);
    }
    let status = wait_or_stop(&container, signals, grace).await;
    let removed = container
        .remove()
        .context("cannot remove the container")
        .or_exit(Exit::Failure);
    let status = status?;
    removed?;
    tracing::info!(%status, "container ended");
    Ok(status.code().clamp(0, 255) as u8)
}

/// Waits for the container to exit; on a signal to hako, stops it (a second signal kills).
async fn wait_or_stop(
    container: &Container,
    signals: &mut Signals,
    grace: Duration,
) -> Result<hako_runtime::ExitStatus, Failure> {
    let waited = tokio::select! {
        status = container.wait() => status,
        (name, _) = signals.recv() => {
            tracing::info!(signal = name, grace = %format_duration(grace), "stopping the container");
            tokio::select! {
                status = container.stop(grace) => status,
                (name, _) = signals.recv() => {
                    tracing::info!(signal = name, "second signal: killing the container");
                    match container.kill() {
                        Ok(()) => container.wait().await,
                        Err(e) => Err(e),
                    }
                }
            }
        }
    };
    waited
        .context("lost track of the container")
        .or_exit(Exit::RunSetup)
}

/// 127 when the command does not exist in the container, 126 when it cannot be executed,
/// 125 for anything else that stopped it from starting.
fn start_failure_exit(e: &RuntimeError) -> Exit {
    match e {
        RuntimeError::Exec { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            Exit::CommandNotFound
        }
        RuntimeError::Exec { .. } => Exit::CannotInvoke,
        _ => Exit::RunSetup,
    }
}

/// The signals that stop a foreground container.
struct Signals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        let make = |kind| signal(kind).context("cannot install a signal handler");
        Ok(Signals {
            int: make(SignalKind::interrupt())?,
            term: make(SignalKind::terminate())?,
            hup: make(SignalKind::hangup())?,
        })
    }

    /// The next signal's name and number.
    async fn recv(&mut self) -> (&'static str, u8) {
        tokio::select! {
            _ = self.int.recv() => ("SIGINT", 2),
            _ = self.term.recv() => ("SIGTERM", 15),
            _ = self.hup.recv() => ("SIGHUP", 1),
        }
    }

    /// A signal that has already arrived, without waiting for one.
    async fn pending(&mut self) -> Option<(&'static str, u8)> {
        // `timeout` polls the future once before it looks at the (zero) deadline.
        tokio::time::timeout(Duration::ZERO, self.recv()).await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn signals_are_caught_and_named() {
        let mut signals = Signals::new().unwrap();
        assert_eq!(signals.pending().await, None);
        let sent = std::process::Command::new("kill")
            .args(["-HUP", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let got = tokio::time::timeout(Duration::from_secs(5), signals.recv())
            .await
            .expect("SIGHUP arrives");
        assert_eq!(got, ("SIGHUP", 1));
    }

    #[test]
    fn start_failures_map_to_docker_codes() {
        let exec = |kind: std::io::ErrorKind| RuntimeError::Exec {
            command: "x".into(),
            source: kind.into(),
            log_tail: String::new(),
        };
        assert_eq!(
            start_failure_exit(&exec(std::io::ErrorKind::NotFound)),
            Exit::CommandNotFound
        );
        assert_eq!(
            start_failure_exit(&exec(std::io::ErrorKind::PermissionDenied)),
            Exit::CannotInvoke
        );
        assert_eq!(
            start_failure_exit(&RuntimeError::NotParked("x".into())),
            Exit::RunSetup
        );
    }
}
