//! A scheduled command run in a fresh instance of an app (never routed): started and ended
//! through the node like every instance, recorded as a `scheduled` event with how it ended.

use std::time::Duration;

use hako_agent::{CommandRun, LaunchError};
use hako_model::{App, Event, EventKind};

use super::Lifecycle;

impl Lifecycle {
    /// Runs `command` of schedule `what` in a fresh container of `app` until it ends or
    /// `timeout` passes; records the run.
    pub(crate) async fn run_job(
        &self,
        app: &App,
        what: &str,
        command: &str,
        timeout: Duration,
    ) -> Result<CommandRun, LaunchError> {
        let result = self.node.run_command(app, command, timeout).await;
        let (reason, tail, id) = match &result {
            Ok(run) => (
                format!(
                    "schedule '{what}' ran in a fresh instance: {} after {:.1} s{}",
                    run.status,
                    run.took.as_secs_f64(),
                    if run.timed_out {
                        format!(
                            " (stopped: it ran past {})",
                            hako_model::HumanDuration(timeout)
                        )
                    } else {
                        String::new()
                    }
                ),
                run.log_tail.clone(),
                Some(run.id.clone()),
            ),
            Err(e) => (
                format!("schedule '{what}' could not run ({}): {}", e.kind, e.reason),
                e.log_tail.clone(),
                None,
            ),
        };
        let mut event = Event::new(&app.spec.name, EventKind::Scheduled, reason).log_tail(tail);
        if let Some(id) = &id {
            event = event.instance(id);
        }
        self.events.record(event).await;
        result
    }
}
