//! A command run in a fresh instance of an app: a scheduled job (`0 3 * * * php
//! /app/bin/cleanup.php`). The container is made exactly as one of the app's instances
//! (image, code release at `/app`, `/data`, environment, user, limits, network) but runs the
//! given command line instead of the app's, is never routed, and is removed when the command
//! ends or its time is up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hako_model::App;
use hako_runtime::ExitStatus;

use super::{Agent, LaunchError};

/// How a command run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRun {
    /// The container's id (its log is `<id>.log` among the app's logs).
    pub id: String,
    /// Its exit status; after a timeout, how the stop ended it.
    pub status: ExitStatus,
    /// From the start of the container to its end.
    pub took: Duration,
    /// The command outlived its time and was stopped.
    pub timed_out: bool,
    /// The end of its output.
    pub log_tail: String,
}

impl Agent {
    /// Runs `command` (split like the app's `--cmd`, with its environment) in a fresh
    /// container of `app`; returns when it has ended, or was stopped after `timeout`.
    pub async fn run_command(
        self: &Arc<Self>,
        app: &App,
        command: &str,
        timeout: Duration,
    ) -> Result<CommandRun, LaunchError> {
        let started = Instant::now();
        let (agent, app2, command) = (self.clone(), app.clone(), command.to_string());
        let (id, container, log) = tokio::task::spawn_blocking(move || {
            let mut plan = agent.plan(&app2)?;
            let env = plan.spec.env.clone();
            let argv = hako_model::command::split(&command, &|k| env.get(k).cloned())
                .map_err(|e| LaunchError::spec(format!("schedule command: {e}")))?;
            let Some((program, args)) = argv.split_first() else {
                return Err(LaunchError::spec("the schedule's command is empty"));
            };
            plan.spec.command = program.clone();
            plan.spec.args = args.to_vec();
            let container = agent.runtime.run(&plan.spec).map_err(|e| LaunchError {
                kind: hako_model::StartFailure::Node,
                reason: format!("cannot start the command's container: {e}"),
                log_tail: crate::logs::tail(&plan.log, 4096),
            })?;
            Ok::<_, LaunchError>((plan.id, container, plan.log))
        })
        .await
        .map_err(|e| LaunchError::node(format!("start task failed: {e}")))??;
        let (status, timed_out) = match tokio::time::timeout(timeout, container.wait()).await {
            Ok(Ok(status)) => (status, false),
            Ok(Err(e)) => {
                let _ = tokio::task::spawn_blocking(move || container.remove()).await;
                return Err(LaunchError::node(format!(
                    "cannot wait for the command: {e}"
                )));
            }
            Err(_) => {
                let signal = app.spec.stop_signal.number();
                let status = container
                    .stop_with(signal, Duration::from_secs(2))
                    .await
                    .map_err(|e| LaunchError::node(format!("cannot stop the command: {e}")))?;
                (status, true)
            }
        };
        container.logs_flushed().await;
        let log_tail = crate::logs::tail(&log, 4096);
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || container.remove()).await {
            tracing::warn!(error = %e, "cannot remove a command's container");
        }
        Ok(CommandRun {
            id,
            status,
            took: started.elapsed(),
            timed_out,
            log_tail,
        })
    }
}
