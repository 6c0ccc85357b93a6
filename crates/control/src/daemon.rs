//! The wiring: which part of the daemon gets which shared piece. No part holds another's
//! owner: the router's launcher reaches the lifecycle over a channel, and the loops hold the
//! pieces they read.

use std::sync::Arc;

use hako_agent::{Agent, Exit};
use hako_proxy::Router;
use hako_store::{Store, StoreExt};
use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

use crate::acme::AcmeLoop;
use crate::apps::Apps;
use crate::backend::{Capacity, DaemonBackend, Files, Instances};
use crate::certs::CertTable;
use crate::checkpoint::Checkpointer;
use crate::config::ServeConfig;
use crate::event_log::EventLog;
use crate::keepalive::KeepAliveLoop;
use crate::launcher::ColdStarts;
use crate::lifecycle::Lifecycle;
use crate::metrics::Telemetry;
use crate::node::{LocalNode, Node};
use crate::ops::Ops;
use crate::predict::Predictors;
use crate::reconcile::{Lead, Reconciler};
use crate::traffic::{LocalTraffic, Traffic};

/// The daemon's parts, assembled.
pub(crate) struct Daemon {
    pub(crate) router: Router,
    /// The certificates the HTTPS listener serves, by SNI.
    pub(crate) site_certs: Arc<hako_tls::SiteCerts>,
    pub(crate) lifecycle: Arc<Lifecycle>,
    pub(crate) backend: Arc<DaemonBackend>,
    /// The loops: store watch, certificates, scheduler, cold starts, proxy events, exits,
    /// node record, keep-alive, autoscaler, checkpoints, minutes (and ACME when configured).
    pub(crate) tasks: Vec<JoinHandle<()>>,
    /// Counters, per-minute series, and the end of the API's streams at shutdown.
    pub(crate) ops: Arc<Ops>,
}

impl Daemon {
    /// Builds every part around `store` and `agent` and starts the loops. Instance records of
    /// a previous run are dropped first; then the apps are loaded and followed.
    pub(crate) async fn start(
        config: &ServeConfig,
        store: Arc<dyn Store>,
        agent: Arc<Agent>,
        exits: UnboundedReceiver<Exit>,
        telemetry: Arc<Telemetry>,
        proxy: std::net::SocketAddr,
    ) -> Result<Daemon, hako_store::StoreError> {
        let (launcher, cold_starts) = ColdStarts::new();
        let (proxy_events_tx, proxy_events) = tokio::sync::mpsc::unbounded_channel();
        let router = Router::new(Arc::new(launcher), Arc::new(proxy_events_tx));
        let apps = Arc::new(Apps::default());
        let events = Arc::new(EventLog::new(store.clone()));
        let wake = Arc::new(Notify::new());
        agent.fill_shared_pool();
        let node: Arc<dyn Node> = Arc::new(LocalNode(agent.clone()));
        let (checkpoints, checkpoint_queue) =
            Checkpointer::new(node.clone(), events.clone(), apps.clone());
        let predictors = Arc::new(Predictors::default());
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
            checkpoints.clone(),
        ));
        lifecycle.forget_previous().await;
        let lead = Arc::new(Lead::default());
        lead.set(Some(lifecycle.clone()));
        let site_certs = hako_tls::SiteCerts::new();
        let certs = Arc::new(CertTable::new(site_certs.clone()));
        let cert_watch = certs.clone().follow(store.clone()).await?;
        let watch = Reconciler {
            apps: apps.clone(),
            router: router.clone(),
            lead: lead.clone(),
            wake: wake.clone(),
            certs: certs.clone(),
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
            predictors: predictors.clone(),
        };
        let autoscale = crate::autoscale::AutoscaleLoop::new(
            apps.clone(),
            lifecycle.clone(),
            traffic,
            events.clone(),
            epoch,
            telemetry.clone(),
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
        let mut tasks = vec![
            watch,
            cert_watch,
            tokio::spawn(scheduler.run()),
            tokio::spawn(crate::launcher::serve_cold_starts(
                cold_starts,
                lifecycle.clone(),
                apps.clone(),
            )),
            tokio::spawn(crate::proxy_events::consume(
                proxy_events,
                lead,
                events.clone(),
                wake,
            )),
            tokio::spawn(follow_exits(exits, lifecycle.clone())),
            tokio::spawn(publish_node(
                store.clone(),
                agent.clone(),
                config.runtime.subnet.to_string(),
            )),
            tokio::spawn(keep_alive.run()),
            tokio::spawn(autoscale.run()),
            tokio::spawn(checkpoints.clone().run(checkpoint_queue)),
        ];
        let (ops, sampler) = Ops::start(telemetry, router.clone());
        tasks.push(sampler);
        if let Some(acme) = &config.acme {
            let acme = AcmeLoop {
                config: acme.clone(),
                store: store.clone(),
                apps: apps.clone(),
                certs,
                challenges: config.proxy.challenges.clone(),
                events,
            };
            tasks.push(tokio::spawn(acme.run()));
        }
        let backend = Arc::new(DaemonBackend {
            files: Arc::new(Files::Agent(agent)),
            apps,
            instances: Instances::Lifecycle(lifecycle.clone()),
            capacity: Capacity::Host,
            router: router.clone(),
            database: config.database_server(),
            schedule_stats,
            ops: ops.clone(),
            checkpoints: Some(checkpoints),
            predictors: Some(predictors),
        });
        Ok(Daemon {
            router,
            site_certs,
            lifecycle,
            backend,
            tasks,
            ops,
        })
    }
}

/// Keeps this host's node record (`hako node list`) up to date; on one host it has no lease.
async fn publish_node(store: Arc<dyn Store>, agent: Arc<Agent>, subnet: String) {
    let epoch = hako_model::now_unix_ms();
    loop {
        let record = hako_agent::member::node_record(
            &agent,
            agent.node(),
            "127.0.0.1",
            Some(subnet.clone()),
            epoch,
        );
        if let Err(e) = store
            .put_json(&hako_store::keys::node(agent.node()), &record)
            .await
        {
            tracing::debug!(error = %e, "cannot publish this host's node record");
        }
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    }
}

/// Instances whose container ended on its own (crash, exit).
async fn follow_exits(mut exits: UnboundedReceiver<Exit>, lifecycle: Arc<Lifecycle>) {
    while let Some(exit) = exits.recv().await {
        lifecycle.exited(exit.into()).await;
    }
}
