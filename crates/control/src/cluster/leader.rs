//! The leader: exactly one front at a time schedules. Fronts campaign by creating `/leader` on
//! their lease when it is absent; the winner takes over what the cluster runs (adopting every
//! instance from the store), runs the lifecycle, the keep-alive loop, cold starts and node
//! drains, and steps down when its key goes (its lease expired or it left). The others wait
//! for the key to go and campaign again.

use std::sync::Arc;
use std::time::Duration;

use hako_model::{InstanceState, LeaderRecord, NodeState, now_unix_ms};
use hako_proxy::Router;
use hako_store::{Compare, Store, StoreExt, Txn, TxnOp, WatchEvent, keys};
use tokio::sync::Notify;

use super::front::Front;
use super::nodes::ClusterNodes;
use super::traffic::{ActivityView, ClusterTraffic};
use crate::apps::Apps;
use crate::event_log::EventLog;
use crate::keepalive::KeepAliveLoop;
use crate::lifecycle::Lifecycle;
use crate::reconcile::Lead;

/// What a leader works with.
pub(crate) struct LeaderCtx {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) front: Arc<Front>,
    pub(crate) apps: Arc<Apps>,
    pub(crate) router: Router,
    pub(crate) events: Arc<EventLog>,
    pub(crate) lead: Arc<Lead>,
    pub(crate) activity: Arc<ActivityView>,
    pub(crate) stop_grace: Duration,
}

/// Campaigns for leadership, leads while it holds it, and campaigns again; until dropped.
pub(crate) async fn campaign(ctx: Arc<LeaderCtx>) {
    loop {
        let record = LeaderRecord {
            front: ctx.front.name.clone(),
            since_unix_ms: now_unix_ms(),
        };
        let txn = Txn::new()
            .when(Compare::absent(keys::LEADER))
            .and_then(TxnOp::Put {
                key: keys::LEADER.into(),
                value: serde_json::to_vec(&record).expect("a leader record serializes"),
                lease: Some(ctx.front.lease()),
            });
        match ctx.store.txn(txn).await {
            Ok(r) if r.succeeded => lead(&ctx).await,
            Ok(_) => wait_for_vacancy(&ctx.store).await,
            Err(e) => {
                tracing::warn!(error = %e, "cannot campaign for leadership; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Returns once there is no leader (its key went).
async fn wait_for_vacancy(store: &Arc<dyn Store>) {
    let Ok(from) = store.revision().await else {
        tokio::time::sleep(Duration::from_secs(1)).await;
        return;
    };
    let Ok(mut watch) = store.watch(keys::LEADER, Some(from + 1)).await else {
        tokio::time::sleep(Duration::from_secs(1)).await;
        return;
    };
    if store.get(keys::LEADER).await.ok().flatten().is_none() {
        return;
    }
    while let Some(Ok(b)) = watch.recv().await {
        if b.events
            .iter()
            .any(|e| matches!(e, WatchEvent::Delete { key, .. } if key == keys::LEADER))
        {
            return;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// Leads until leadership is lost.
async fn lead(ctx: &Arc<LeaderCtx>) {
    tracing::info!(front = %ctx.front.name, "this front leads the cluster");
    let generation = *ctx.front.generation.borrow();
    let (nodes, mut ended) = ClusterNodes::new(ctx.store.clone());
    let adopted = loop {
        match nodes.take_over().await {
            Ok(a) => break a,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read what the cluster runs; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let wake = Arc::new(Notify::new());
    let traffic = Arc::new(ClusterTraffic {
        store: ctx.store.clone(),
        nodes: nodes.clone(),
        activity: ctx.activity.clone(),
    });
    // Checkpoints are made through the nodes' seam (remote nodes do not make them yet: their
    // versions start without one).
    let (checkpoints, checkpoint_queue) =
        crate::checkpoint::Checkpointer::new(nodes.clone(), ctx.events.clone(), ctx.apps.clone());
    let lifecycle = Arc::new(Lifecycle::new(
        nodes.clone(),
        traffic.clone(),
        ctx.router.clone(),
        ctx.store.clone(),
        ctx.events.clone(),
        ctx.apps.clone(),
        ctx.stop_grace,
        wake.clone(),
        checkpoints.clone(),
    ));
    lifecycle.adopt(adopted);
    ctx.lead.set(Some(lifecycle.clone()));
    for app in ctx.apps.all() {
        lifecycle.prepare(&app);
    }
    let keep_alive = KeepAliveLoop {
        apps: ctx.apps.clone(),
        lifecycle: lifecycle.clone(),
        traffic,
        wake: wake.clone(),
        epoch: tokio::time::Instant::now(),
        predictors: Arc::new(crate::predict::Predictors::default()),
    };
    let tasks = [
        tokio::spawn(nodes.clone().follow()),
        tokio::spawn({
            let lifecycle = lifecycle.clone();
            async move {
                while let Some(e) = ended.recv().await {
                    lifecycle.exited(e).await;
                }
            }
        }),
        tokio::spawn(keep_alive.run()),
        tokio::spawn(checkpoints.run(checkpoint_queue)),
        tokio::spawn(super::wants::serve_wants(
            ctx.store.clone(),
            lifecycle.clone(),
            ctx.apps.clone(),
        )),
        tokio::spawn(drain_nodes(
            nodes.clone(),
            lifecycle.clone(),
            ctx.apps.clone(),
        )),
    ];
    wake.notify_one();
    lost(ctx, generation).await;
    tracing::warn!(front = %ctx.front.name, "this front no longer leads the cluster");
    ctx.lead.set(None);
    for t in tasks {
        t.abort();
    }
}

/// Returns once this front's leadership is over: its key went or names another front, or the
/// front registered anew (its lease, which held the key, expired).
async fn lost(ctx: &Arc<LeaderCtx>, generation: u64) {
    let mut generations = ctx.front.generation.subscribe();
    loop {
        let watch = match ctx.store.revision().await {
            Ok(r) => ctx.store.watch(keys::LEADER, Some(r + 1)).await.ok(),
            Err(_) => None,
        };
        let mine = match ctx.store.get_json::<LeaderRecord>(keys::LEADER).await {
            Ok(Some(r)) => r.front == ctx.front.name,
            Ok(None) => false,
            Err(_) => true, // the store is out of reach: keep leading what we can
        };
        if !mine || *generations.borrow() != generation {
            return;
        }
        let Some(mut watch) = watch else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        tokio::select! {
            b = watch.recv() => {
                if let Some(Ok(b)) = b
                    && b.events.iter().any(|e| matches!(e, WatchEvent::Delete { .. }))
                {
                    return;
                }
            }
            _ = generations.changed() => return,
        }
    }
}

/// Hands the instances of draining nodes to other nodes, successor first.
async fn drain_nodes(nodes: Arc<ClusterNodes>, lifecycle: Arc<Lifecycle>, apps: Arc<Apps>) {
    loop {
        let (_, states) = nodes.snapshot();
        for (node, state) in states {
            if state != NodeState::Draining {
                continue;
            }
            for info in lifecycle.instances(None) {
                if info.node != node || info.state != InstanceState::Ready {
                    continue;
                }
                if let Some(app) = apps.get(&info.app) {
                    lifecycle.replace_in_background(
                        &app,
                        &info.id,
                        hako_model::StopReason::NodeDrain,
                        format!("node {node} is drained for maintenance"),
                    );
                }
            }
        }
        tokio::select! {
            _ = nodes.changed.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
