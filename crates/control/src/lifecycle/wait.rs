//! A request that finds no ready instance while its app already runs its maximum — every
//! allowed instance is on its way (a replacement's successor, a minimum, a scale-up) — waits
//! for one of them instead of getting a "no capacity" 503: the moment between an instance
//! leaving and its successor being ready is not an outage.

use std::sync::Arc;

use hako_agent::LaunchError;
use hako_model::{App, InstanceInfo, StartFailure};

use super::Lifecycle;

impl Lifecycle {
    /// Waits (at most the app's start timeout) until an instance of `app` is ready and
    /// returns it; fails at once when none is starting any more.
    pub(super) async fn wait_for_starting(
        self: &Arc<Self>,
        app: &App,
    ) -> Result<InstanceInfo, LaunchError> {
        let key = app.storage_key();
        let mut ended = self.starts_ended.subscribe();
        let deadline = tokio::time::Instant::now() + app.spec.start_timeout.0;
        loop {
            {
                let table = self.table();
                if let Some(info) = table.ready_one(&key) {
                    return Ok(info);
                }
                if !table.starting(&key) {
                    return Err(LaunchError::new(
                        StartFailure::Capacity,
                        format!(
                            "app {} already runs its maximum of {} instances",
                            app.spec.name, app.spec.max
                        ),
                    ));
                }
            }
            match tokio::time::timeout_at(deadline, ended.changed()).await {
                Ok(Ok(())) => {}
                _ => {
                    return Err(LaunchError::new(
                        StartFailure::NotListening,
                        format!(
                            "no instance of {} was ready within the start timeout ({})",
                            app.spec.name, app.spec.start_timeout
                        ),
                    ));
                }
            }
        }
    }
}
