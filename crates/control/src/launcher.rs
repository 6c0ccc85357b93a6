//! The proxy's launcher: a request found no ready instance, so the lifecycle starts one.
//!
//! The router needs its launcher when it is made, and the lifecycle needs the router; so the
//! launcher holds no reference to the lifecycle at all: it sends each start over a channel to
//! a task that owns one ([`serve_cold_starts`]). When that task ends, launches fail with "hako
//! is shutting down".

use std::sync::Arc;

use hako_model::StartFailure;
use hako_proxy::{LaunchError, Launched, Launcher};
use tokio::sync::{mpsc, oneshot};

use crate::apps::Apps;
use crate::lifecycle::{Cause, Lifecycle};

/// One cold start asked for by the proxy.
pub(crate) struct ColdStart {
    app: String,
    reply: oneshot::Sender<Result<Launched, LaunchError>>,
}

/// The [`Launcher`] the router is made with.
pub(crate) struct ColdStarts(mpsc::UnboundedSender<ColdStart>);

impl ColdStarts {
    /// The launcher and the receiving end for [`serve_cold_starts`].
    pub(crate) fn new() -> (ColdStarts, mpsc::UnboundedReceiver<ColdStart>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (ColdStarts(tx), rx)
    }
}

fn gone(app: &str) -> LaunchError {
    LaunchError {
        kind: StartFailure::Gone,
        reason: format!("hako is shutting down; {app} cannot start now"),
        log_tail: String::new(),
    }
}

#[async_trait::async_trait]
impl Launcher for ColdStarts {
    async fn launch(&self, app: &str) -> Result<Launched, LaunchError> {
        let (reply, answer) = oneshot::channel();
        self.0
            .send(ColdStart {
                app: app.to_string(),
                reply,
            })
            .map_err(|_| gone(app))?;
        answer.await.map_err(|_| gone(app))?
    }
}

/// Starts an instance for each cold start asked for, each in its own task.
pub(crate) async fn serve_cold_starts(
    mut starts: mpsc::UnboundedReceiver<ColdStart>,
    lifecycle: Arc<Lifecycle>,
    apps: Arc<Apps>,
) {
    while let Some(start) = starts.recv().await {
        let (lifecycle, apps) = (lifecycle.clone(), apps.clone());
        tokio::spawn(async move {
            let result = match apps.get(&start.app) {
                None => Err(LaunchError {
                    kind: StartFailure::Gone,
                    reason: format!("app {} no longer exists", start.app),
                    log_tail: String::new(),
                }),
                Some(app) => lifecycle
                    .start(&app, Cause::Request)
                    .await
                    .and_then(|info| {
                        let addr = info.addr.parse().map_err(|_| {
                            hako_agent::LaunchError::new(
                                StartFailure::Node,
                                format!("instance address {} is not valid", info.addr),
                            )
                        })?;
                        Ok(Launched {
                            instance_id: info.id,
                            addr,
                        })
                    })
                    .map_err(|e| LaunchError {
                        kind: e.kind,
                        reason: e.reason,
                        log_tail: e.log_tail,
                    }),
            };
            let _ = start.reply.send(result);
        });
    }
}
