//! hako on many hosts: `hako serve --store etcd://…` is a *front* of a cluster (docs/cluster.md).
//! Every front serves the API and the proxy, routes by the instance records the nodes' agents
//! write, and publishes what its proxy sees; one of them, the leader, schedules through the
//! same lifecycle as a single host, with the cluster's nodes behind the `Node` seam and every
//! front's proxy behind the `Traffic` seam. A front also runs an agent of its own (unless told
//! not to), so one `hako serve` on etcd is a cluster of one node.

mod front;
mod images;
mod leader;
mod nodes;
mod scheduler;
mod traffic;
mod wants;

use std::sync::Arc;
use std::time::Duration;

use hako_agent::member::{Member, MemberConfig};
use hako_agent::{Agent, Releases};
use hako_model::{FrontRecord, NodeCapacity, NodeRecord, now_unix_ms};
use hako_proxy::Router;
use hako_store::{Store, StoreError, StoreExt, keys};
use tokio::sync::Notify;

use crate::apps::Apps;
use crate::backend::{Capacity, DaemonBackend, Files, Instances};
use crate::certs::CertTable;
use crate::config::ServeConfig;
use crate::error::ServeError;
use crate::event_log::EventLog;
use crate::listeners::{Bound, Listeners};
use crate::reconcile::{Lead, Reconciler};
use front::Front;
use leader::LeaderCtx;
use traffic::ActivityView;
use wants::WantLauncher;

/// The cluster's admin token (every front answers with the same one).
const ADMIN_TOKEN: &str = "/admin-token";

/// Runs this front (and its node) until `shutdown`; then the node stops its instances and
/// leaves, and the front gives up its lease (and the leadership, if it had it).
pub(crate) async fn serve(
    config: ServeConfig,
    store: Arc<dyn Store>,
    mut listeners: Listeners,
    bound: tokio::sync::oneshot::Sender<Bound>,
    shutdown: impl std::future::Future<Output = ()>,
    telemetry: Arc<crate::metrics::Telemetry>,
) -> Result<(), ServeError> {
    let name = config.node.clone().unwrap_or_else(|| {
        hako_agent::AgentConfig::new(&config.data_dir, config.runtime.clone()).node
    });
    let addrs = listeners.bound;
    let token = admin_token(&store, &config).await?;
    let front = Front::register(
        name.clone(),
        store.clone(),
        FrontRecord {
            name: name.clone(),
            proxy: addrs.proxy.to_string(),
            api: addrs.api.to_string(),
            since_unix_ms: now_unix_ms(),
        },
        config.lease_ttl,
    )
    .await?;
    let apps = Arc::new(Apps::default());
    let (proxy_events_tx, proxy_events) = tokio::sync::mpsc::unbounded_channel();
    let lead = Arc::new(Lead::default());
    let router = Router::new(
        Arc::new(WantLauncher {
            front: front.clone(),
            apps: apps.clone(),
            lead: lead.clone(),
        }),
        Arc::new(proxy_events_tx),
    );
    let events = Arc::new(EventLog::new(store.clone()));
    let activity = Arc::new(ActivityView::default());
    // Every front serves the stored certificates (uploads; ACME is not run on a cluster yet).
    let site_certs = hako_tls::SiteCerts::new();
    let certs = Arc::new(CertTable::new(site_certs.clone()));
    let cert_watch = certs.clone().follow(store.clone()).await?;
    if config.acme.is_some() {
        tracing::warn!(
            "[acme] is not run on an etcd cluster yet: upload certificates with 'hako app cert'"
        );
    }
    let watch = Reconciler {
        apps: apps.clone(),
        router: router.clone(),
        lead: lead.clone(),
        wake: Arc::new(Notify::new()),
        certs,
    }
    .start(store.clone())
    .await?;

    // This host's node, in-process.
    let (node_stop, node_task, node_agent, files) = if config.run_node {
        let (agent, exits) = Agent::new(crate::listeners::agent_config(&config))?;
        let mut member_cfg = MemberConfig::new(
            &name,
            config
                .advertise
                .clone()
                .unwrap_or_else(|| "127.0.0.1".into()),
        );
        member_cfg.subnet = Some(config.runtime.subnet.to_string());
        member_cfg.lease_ttl = config.lease_ttl;
        member_cfg.stop_grace = config.stop_grace;
        let member = Member::join(agent.clone(), store.clone(), member_cfg)
            .await
            .map_err(|e| ServeError::Cluster(e.to_string()))?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(member.run(exits, async {
            let _ = stop_rx.await;
        }));
        (
            Some(stop_tx),
            Some(task),
            Some(agent.clone()),
            Files::Agent(agent),
        )
    } else {
        let shared = config.shared_dir.as_ref().unwrap_or(&config.data_dir);
        let files = Files::Stores {
            images: hako_image::ImageStore::open(shared.join("images"))?,
            releases: Arc::new(Releases::open(shared.join("releases"), &config.storage)?),
        };
        (None, None, None, files)
    };

    let capacity = Arc::new(std::sync::Mutex::new(hako_agent::node_capacity()));
    let ctx = Arc::new(LeaderCtx {
        store: store.clone(),
        front: front.clone(),
        apps: apps.clone(),
        router: router.clone(),
        events: events.clone(),
        lead: lead.clone(),
        activity: activity.clone(),
        stop_grace: config.stop_grace,
    });
    let (ops, sampler) = crate::ops::Ops::start(telemetry, router.clone());
    let tasks = vec![
        watch,
        sampler,
        cert_watch,
        tokio::spawn(front.clone().keep_alive()),
        tokio::spawn(front.clone().follow_routes(router.clone())),
        tokio::spawn(front.clone().publish_activity(router.clone())),
        tokio::spawn(activity.clone().follow(store.clone())),
        tokio::spawn(largest_node(store.clone(), capacity.clone())),
        tokio::spawn(crate::proxy_events::consume(
            proxy_events,
            lead.clone(),
            events,
            Arc::new(Notify::new()),
        )),
        tokio::spawn(leader::campaign(ctx)),
        // This host's routes to every node's instances (for its proxy and its node).
        tokio::spawn(hako_agent::routes::follow(store.clone())),
    ];
    let backend = Arc::new(DaemonBackend {
        files: Arc::new(files),
        apps,
        instances: Instances::Store(store.clone()),
        capacity: Capacity::Largest(capacity),
        router: router.clone(),
        database: config.database_server(),
        // Schedules run on a single host only so far (docs/cluster.md).
        schedule_stats: Default::default(),
        ops: ops.clone(),
        checkpoints: None,
        predictors: None,
    });
    let api_task = crate::listeners::serve_api(
        listeners.api,
        store.clone(),
        backend,
        token,
        crate::listeners::metrics_token(&config)?,
    );
    tracing::info!(front = %name, proxy = %addrs.proxy, api = %addrs.api, "hako is serving as a front of the cluster");
    let _ = bound.send(addrs);

    let https = listeners.https.take().map(|l| (l, site_certs));
    crate::listeners::serve_proxy(listeners.proxy, https, router, &config, shutdown).await;

    tracing::info!("leaving the cluster");
    for t in &tasks {
        t.abort();
    }
    ops.close();
    api_task.stop().await;
    if let (Some(stop), Some(task)) = (node_stop, node_task) {
        let _ = stop.send(());
        if let Err(e) = task.await {
            tracing::warn!(error = %e, "the node's task failed");
        }
    }
    // The member stopped this node's instances; the agent removes its warm pools and what the
    // runtime made (cgroup scope, bridge, state), as `hako agent` does when it stops.
    if let Some(agent) = node_agent {
        agent.shutdown(config.stop_grace).await;
    }
    front.leave().await;
    Ok(())
}

/// The cluster's admin token: made by the first front, read by the others; also written to
/// this front's data dir for the CLI on this host.
async fn admin_token(store: &Arc<dyn Store>, config: &ServeConfig) -> Result<String, ServeError> {
    let local = hako_api::token::load_or_create(&config.data_dir)
        .map_err(crate::listeners::data_err(&config.data_dir))?;
    match store.create_json(ADMIN_TOKEN, &local).await {
        Ok(_) => Ok(local),
        Err(StoreError::AlreadyExists { .. }) => {
            let token: String = store.get_json(ADMIN_TOKEN).await?.unwrap_or(local);
            let file = config.data_dir.join("admin.token");
            std::fs::write(&file, &token).map_err(crate::listeners::data_err(&file))?;
            Ok(token)
        }
        Err(e) => Err(e.into()),
    }
}

/// Keeps `capacity` at the largest node's (what an app's limits are checked against).
async fn largest_node(store: Arc<dyn Store>, capacity: Arc<std::sync::Mutex<NodeCapacity>>) {
    loop {
        if let Ok(nodes) = store.range_json::<NodeRecord>(keys::NODES).await
            && let Some(first) = nodes.first()
        {
            let mut largest = first.1.capacity;
            for (_, n) in &nodes {
                largest.cpus = largest.cpus.max(n.capacity.cpus);
                largest.memory_bytes = largest.memory_bytes.max(n.capacity.memory_bytes);
                largest.max_pids = largest.max_pids.max(n.capacity.max_pids);
            }
            *capacity.lock().expect("capacity lock") = largest;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
