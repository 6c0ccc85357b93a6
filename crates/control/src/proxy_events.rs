//! What the proxy reports: a request's start became ready (late or not), waiting requests
//! timed out, an instance could not be reached. Starts and their failures are the
//! lifecycle's to record; this records what only the proxy saw and asks the lifecycle to act.

use std::sync::Arc;

use hako_model::{Event, EventKind};
use hako_proxy::ProxyEvent;
use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::event_log::EventLog;
use crate::reconcile::Lead;

/// Runs until the proxy's event channel closes.
pub(crate) async fn consume(
    mut rx: UnboundedReceiver<ProxyEvent>,
    lead: Arc<Lead>,
    events: Arc<EventLog>,
    wake: Arc<Notify>,
) {
    while let Some(ev) = rx.recv().await {
        match ev {
            ProxyEvent::InstanceStarted {
                app,
                instance_id,
                took,
                late,
                ..
            } => {
                let ms = took.as_secs_f64() * 1000.0;
                let reason = if late {
                    format!("ready after {ms:.1} ms, too late for the requests that asked for it")
                } else {
                    format!("ready and routed {ms:.1} ms after the request that started it")
                };
                events
                    .record(Event::new(&app, EventKind::Ready, reason).instance(&instance_id))
                    .await;
                wake.notify_one();
            }
            ProxyEvent::StartFailed { app, kind, .. } => {
                // The lifecycle recorded the failure with its reason and log tail.
                tracing::debug!(%app, %kind, "a request's start failed");
            }
            ProxyEvent::StartTimedOut { app, after } => {
                events
                    .record(Event::new(
                        &app,
                        EventKind::StartFailed,
                        format!(
                            "no instance was ready within the start timeout ({})",
                            hako_model::HumanDuration(after)
                        ),
                    ))
                    .await;
            }
            ProxyEvent::InstanceUnreachable {
                app,
                instance_id,
                addr,
                error,
            } => {
                events
                    .record(
                        Event::new(
                            &app,
                            EventKind::Unreachable,
                            format!("{addr} refused a request ({error}); removed from routing"),
                        )
                        .instance(&instance_id),
                    )
                    .await;
                // The leader (on one host, always this daemon) retires it; another front's
                // proxy has taken it out of its own routing already.
                if let Some(lifecycle) = lead.get() {
                    lifecycle.unreachable(&instance_id);
                }
            }
        }
    }
}
