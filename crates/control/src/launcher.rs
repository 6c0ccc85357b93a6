//! The proxy's launcher: a request found no ready instance, so the agent starts one.

use std::sync::{Arc, OnceLock, Weak};

use hako_model::{Event, EventKind};
use hako_proxy::{LaunchError, Launched, Launcher};

use crate::daemon::Daemon;

/// Starts instances for the proxy's activator (one start per app at a time; the proxy
/// coalesces concurrent requests onto it).
#[derive(Default)]
pub(crate) struct DaemonLauncher {
    daemon: OnceLock<Weak<Daemon>>,
}

impl DaemonLauncher {
    pub(crate) fn attach(&self, daemon: &Arc<Daemon>) {
        let _ = self.daemon.set(Arc::downgrade(daemon));
    }
}

#[async_trait::async_trait]
impl Launcher for DaemonLauncher {
    async fn launch(&self, app: &str) -> Result<Launched, LaunchError> {
        let fail = |reason: String| LaunchError {
            reason,
            log_tail: String::new(),
        };
        let daemon = self
            .daemon
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| fail("hako is shutting down".into()))?;
        let spec = daemon
            .app(app)
            .ok_or_else(|| fail(format!("app {app} no longer exists")))?;
        let running = daemon.agent.instances(Some(app)).len() as u32;
        if running >= spec.spec.max {
            return Err(fail(format!(
                "app {app} already runs its maximum of {} instances",
                spec.spec.max
            )));
        }
        let info = daemon.agent.launch(&spec).await.map_err(|e| LaunchError {
            reason: e.reason,
            log_tail: e.log_tail,
        })?;
        daemon
            .events
            .record(
                Event::new(
                    app,
                    EventKind::Start,
                    format!(
                        "cold start: a request found no ready instance; ready in {:.1} ms{}",
                        info.ready_ms.unwrap_or(0.0),
                        if info.from_pool {
                            " from the warm pool"
                        } else {
                            ""
                        }
                    ),
                )
                .instance(&info.id),
            )
            .await;
        daemon.register(&info, &spec, false).await;
        let addr = info
            .addr
            .parse()
            .map_err(|_| fail(format!("instance address {} is not valid", info.addr)))?;
        Ok(Launched {
            instance_id: info.id,
            addr,
        })
    }
}
