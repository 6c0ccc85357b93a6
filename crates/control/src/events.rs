//! Recording events (every decision with its reason) and reacting to what the proxy and the
//! agent report.

use std::sync::Arc;

use hako_agent::Exit;
use hako_model::{Event, EventKind};
use hako_proxy::ProxyEvent;
use hako_store::{Store, StoreExt, keys};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::daemon::Daemon;

/// Events kept per app.
pub const EVENTS_KEPT: usize = 1000;

/// Appends events to the store (and the daemon's log).
pub(crate) struct EventLog {
    store: Arc<dyn Store>,
}

impl EventLog {
    pub(crate) fn new(store: Arc<dyn Store>) -> EventLog {
        EventLog { store }
    }

    pub(crate) async fn record(&self, event: Event) {
        tracing::info!(app = %event.app, kind = ?event.kind, instance = ?event.instance, reason = %event.reason, "event");
        let prefix = keys::events(&event.app);
        if let Err(e) = self.store.append_json(&prefix, &event).await {
            tracing::warn!(error = %e, "cannot record event");
            return;
        }
        let _ = self.store.trim(&prefix, EVENTS_KEPT).await;
    }
}

/// Starts and failures seen by the proxy's activator.
pub(crate) async fn consume_proxy_events(
    daemon: Arc<Daemon>,
    mut rx: UnboundedReceiver<ProxyEvent>,
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
                let reason = if late {
                    format!(
                        "ready after {:.1} ms, too late for the requests that asked for it",
                        took.as_secs_f64() * 1000.0
                    )
                } else {
                    format!(
                        "ready and routed {:.1} ms after the request that started it",
                        took.as_secs_f64() * 1000.0
                    )
                };
                daemon
                    .events
                    .record(Event::new(&app, EventKind::Ready, reason).instance(&instance_id))
                    .await;
                daemon.wake.notify_one();
            }
            ProxyEvent::StartFailed {
                app,
                reason,
                log_tail,
                instance_id,
            } => {
                let mut e = Event::new(&app, EventKind::StartFailed, reason).log_tail(log_tail);
                if let Some(id) = &instance_id {
                    e = e.instance(id);
                }
                daemon.events.record(e).await;
                if let Some(id) = instance_id {
                    let d = daemon.clone();
                    tokio::spawn(async move {
                        d.retire(
                            &app,
                            &id,
                            "it never passed its health check".into(),
                            std::time::Duration::ZERO,
                        )
                        .await;
                    });
                }
            }
            ProxyEvent::StartTimedOut { app, after } => {
                daemon
                    .events
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
                daemon
                    .events
                    .record(
                        Event::new(
                            &app,
                            EventKind::Unreachable,
                            format!("{addr} refused a request ({error}); removed from routing"),
                        )
                        .instance(&instance_id),
                    )
                    .await;
                let d = daemon.clone();
                tokio::spawn(async move {
                    d.retire(
                        &app,
                        &instance_id,
                        "unreachable".into(),
                        std::time::Duration::ZERO,
                    )
                    .await;
                });
            }
        }
    }
}

/// Instances whose container ended on its own (crash, exit).
pub(crate) async fn consume_exits(daemon: Arc<Daemon>, mut rx: UnboundedReceiver<Exit>) {
    while let Some(exit) = rx.recv().await {
        let _ = daemon.router.remove(&exit.app, &exit.instance);
        daemon
            .tracked
            .lock()
            .expect("tracked lock")
            .remove(&exit.instance);
        let _ = daemon
            .store
            .delete(&keys::instance(&exit.app, &exit.instance))
            .await;
        daemon
            .events
            .record(
                Event::new(
                    &exit.app,
                    EventKind::Exited,
                    format!("the app {} on its own", exit.status),
                )
                .instance(&exit.instance)
                .log_tail(exit.log_tail),
            )
            .await;
        daemon.wake.notify_one();
    }
}
