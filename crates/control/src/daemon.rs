//! The wiring: which part of the daemon gets which shared piece. No part holds another's
//! owner: the router's launcher reaches the lifecycle over a channel, and the loops hold the
//! pieces they read.

use std::sync::Arc;

use hako_agent::{Agent, Exit};
use hako_proxy::Router;
use hako_store::Store;
use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

use crate::apps::Apps;
use crate::backend::{Capacity, DaemonBackend, Files, Instances};
use crate::config::ServeConfig;
use crate::event_log::EventLog;
use crate::keepalive::KeepAliveLoop;
use crate::launcher::ColdStarts;
use crate::lifecycle::Lifecycle;
use crate::node::{LocalNode, Node};
use crate::reconcile::{Lead, Reconciler};
use crate::traffic::{LocalTraffic, Traffic};

/// The daemon's parts, assembled.
pub(crate) struct Daemon {
    pub(crate) router: Router,
    pub(crate) lifecycle: Arc<Lifecycle>,
    pub(crate) backend: Arc<DaemonBackend>,
    /// The loops: store watch, scheduler, cold starts, proxy events, exits, keep-alive,
    /// autoscaler.
    pub(crate) tasks: Vec<JoinHandle<()>>,
}

impl Daemon {
    /// Builds every part around `store` and `agent` and starts the loops. Instance records of
    /// a previous run are dropped first; then the apps are loaded and followed.
    pub(crate) async fn start(
        config: &ServeConfig,
        store: Arc<dyn Store>,
        agent: Arc<Agent>,
        exits: UnboundedReceiver<Exit>,
        proxy: std::net::SocketAddr,
    ) -> Result<Daemon, hako_store::StoreError> {
        let (launcher, cold_starts) = ColdStarts::new();
        let (proxy_events_tx, proxy_events) = tokio::sync::mpsc::unbounded_channel();
        let router = Router::new(Arc::new(launcher), Arc::new(proxy_events_tx));
        let apps = Arc::new(Apps::default());
        let events = Arc::new(EventLog::new(store.clone()));
        let wake = Arc::new(Notify::new());
        let node: Arc<dyn Node> = Arc::new(LocalNode(agent.clone()));
        let traffic: Arc<dyn Traffic> = Arc::new(LocalTraffic {
            router: router.clone(),
            store: store.clone(),
        });
        let lifecycle = Arc::new(Lifecycle::new(
            node.clone(),
            traffic.clone(),
            router.clone(),
            store.clone(),
            events.clone(),
            apps.clone(),
            config.stop_grace,
            wake.clone(),
        ));
        lifecycle.forget_previous().await;
        let lead = Arc::new(Lead::default());
        lead.set(Some(lifecycle.clone()));
        let watch = Reconciler {
            apps: apps.clone(),
            router: router.clone(),
            lead: lead.clone(),
            wake: wake.clone(),
        }
        .start(store.clone())
        .await?;
        let epoch = tokio::time::Instant::now();
        let keep_alive = KeepAliveLoop {
            apps: apps.clone(),
            lifecycle: lifecycle.clone(),
            traffic: traffic.clone(),
            wake: wake.clone(),
            epoch,
        };
        let autoscale = crate::autoscale::AutoscaleLoop::new(
            apps.clone(),
            lifecycle.clone(),
            traffic,
            events.clone(),
            epoch,
        );
        // Scheduled runs reach apps through the proxy, marked with a token only this daemon
        // knows (the proxy removes it before the app sees the request).
        let token = hako_api::token::generate().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "no random schedule token; scheduled runs count as visitors");
            String::new()
        });
        if !token.is_empty() {
            router.set_schedule_token(token.clone());
        }
        let scheduler = crate::scheduler::Scheduler::new(
            apps.clone(),
            lifecycle.clone(),
            events.clone(),
            Arc::new(crate::scheduler::ThroughProxy { proxy, token }),
            hako_model::now_unix() as i64,
        );
        let schedule_stats = scheduler.stats.clone();
        let tasks = vec![
            watch,
            tokio::spawn(scheduler.run()),
            tokio::spawn(crate::launcher::serve_cold_starts(
                cold_starts,
                lifecycle.clone(),
                apps.clone(),
            )),
            tokio::spawn(crate::proxy_events::consume(
                proxy_events,
                lead,
                events,
                wake,
            )),
            tokio::spawn(follow_exits(exits, lifecycle.clone())),
            tokio::spawn(keep_alive.run()),
            tokio::spawn(autoscale.run()),
        ];
        let backend = Arc::new(DaemonBackend {
            files: Arc::new(Files::Agent(agent)),
            apps,
            instances: Instances::Lifecycle(lifecycle.clone()),
            capacity: Capacity::Host,
            router: router.clone(),
            database: config.database_server(),
            schedule_stats,
        });
        Ok(Daemon {
            router,
            lifecycle,
            backend,
            tasks,
        })
    }
}

/// Instances whose container ended on its own (crash, exit).
async fn follow_exits(mut exits: UnboundedReceiver<Exit>, lifecycle: Arc<Lifecycle>) {
    while let Some(exit) = exits.recv().await {
        lifecycle.exited(exit.into()).await;
    }
}
