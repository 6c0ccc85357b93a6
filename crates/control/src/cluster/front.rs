//! A front: a `hako serve` whose proxy takes requests in a cluster. It registers itself on a
//! lease, routes by the instance records every agent writes (`ready` → routed, `draining` →
//! drained, gone → removed), acknowledges each drain once its proxy has nothing open on the
//! instance, and publishes what its proxy sees of each instance about once a second.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use hako_model::{
    DrainAck, FrontActivity, FrontRecord, InstanceActivity, InstanceInfo, InstanceState,
    now_unix_ms,
};
use hako_proxy::Router;
use hako_store::keys::{self, Key};
use hako_store::{Store, StoreError, StoreExt, WatchEvent};
use tokio::sync::watch;

use crate::lifecycle::DRAIN_TIMEOUT;

/// This front in the cluster.
pub(crate) struct Front {
    pub(crate) name: String,
    store: Arc<dyn Store>,
    record: FrontRecord,
    ttl: Duration,
    lease: AtomicI64,
    /// Bumped each time the front registers anew (its lease was lost): the leader it ran
    /// steps down.
    pub(crate) generation: watch::Sender<u64>,
    /// One moment on both clocks: proxy activity (tokio's clock) is published as Unix time.
    epoch: (tokio::time::Instant, u64),
}

impl Front {
    /// Registers the front (its record on a new lease).
    pub(crate) async fn register(
        name: String,
        store: Arc<dyn Store>,
        record: FrontRecord,
        ttl: Duration,
    ) -> Result<Arc<Front>, StoreError> {
        let front = Arc::new(Front {
            name,
            store,
            record,
            ttl,
            lease: AtomicI64::new(0),
            generation: watch::Sender::new(0),
            epoch: (tokio::time::Instant::now(), now_unix_ms()),
        });
        front.join().await?;
        Ok(front)
    }

    /// The lease of everything this front writes.
    pub(crate) fn lease(&self) -> i64 {
        self.lease.load(Ordering::SeqCst)
    }

    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    async fn join(&self) -> Result<(), StoreError> {
        let lease = self.store.grant_lease(self.ttl).await?;
        self.lease.store(lease, Ordering::SeqCst);
        self.store
            .put_json_with_lease(&keys::front(&self.name), &self.record, lease)
            .await?;
        self.generation.send_modify(|g| *g += 1);
        Ok(())
    }

    /// Keeps the lease alive; a lost lease means a new registration (and a new generation).
    pub(crate) async fn keep_alive(self: Arc<Self>) {
        loop {
            tokio::time::sleep(self.ttl / 3).await;
            match self.store.keep_alive(self.lease()).await {
                Ok(()) => {}
                Err(StoreError::LeaseNotFound(_)) => {
                    tracing::warn!(front = %self.name, "this front's lease expired: registering again");
                    while let Err(e) = self.join().await {
                        tracing::warn!(error = %e, "cannot register the front again; retrying");
                        tokio::time::sleep(self.ttl / 3).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot renew the front's lease; retrying"),
            }
        }
    }

    /// Leaves: the record and everything on the lease go.
    pub(crate) async fn leave(&self) {
        let _ = self.store.revoke(self.lease()).await;
    }

    /// Routes by the instance records until the task is dropped. While the store is out of
    /// reach the last routes stay: ready instances keep answering.
    pub(crate) async fn follow_routes(self: Arc<Self>, router: Router) {
        loop {
            if let Err(e) = self.follow_routes_once(&router).await {
                tracing::warn!(error = %e, "lost the watch of the instances; the last routes stay; following again");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn follow_routes_once(self: &Arc<Self>, router: &Router) -> Result<(), StoreError> {
        let listing = self.store.list(keys::INSTANCES).await?;
        let mut listed = std::collections::HashSet::new();
        for kv in &listing.kvs {
            if let Ok(info) = serde_json::from_slice::<InstanceInfo>(&kv.value) {
                listed.insert((info.app.clone(), info.id.clone()));
                self.on_record(router, info);
            }
        }
        // Instances routed here whose records went while the watch was down.
        for (app, snaps) in router.all_instances() {
            for s in snaps {
                if !listed.contains(&(app.clone(), s.instance_id.clone())) {
                    let _ = router.remove(&app, &s.instance_id);
                }
            }
        }
        let mut watch = self
            .store
            .watch(keys::INSTANCES, Some(listing.revision + 1))
            .await?;
        while let Some(batch) = watch.recv().await {
            for ev in batch?.events {
                match ev {
                    WatchEvent::Put(kv) => {
                        if let Ok(info) = serde_json::from_slice::<InstanceInfo>(&kv.value) {
                            self.on_record(router, info);
                        }
                    }
                    WatchEvent::Delete { key, .. } => {
                        if let Some(Key::Instance { app, id }) = keys::parse(&key) {
                            let _ = router.remove(app, id);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn on_record(self: &Arc<Self>, router: &Router, info: InstanceInfo) {
        match info.state {
            InstanceState::Starting => {}
            InstanceState::Ready => {
                if let Ok(addr) = info.addr.parse() {
                    // Already routed: nothing to do.
                    let _ = router.add_ready(&info.app, &info.id, addr);
                }
            }
            InstanceState::Draining => {
                let drain = router.drain(&info.app, &info.id).ok();
                let this = self.clone();
                tokio::spawn(async move {
                    let timed_out = match drain {
                        Some(d) => tokio::time::timeout(DRAIN_TIMEOUT, d.wait()).await.is_err(),
                        None => false, // never routed here
                    };
                    let ack = DrainAck {
                        at_unix_ms: now_unix_ms(),
                        timed_out,
                    };
                    let key = keys::drained(&info.id, &this.name);
                    if let Err(e) = this
                        .store
                        .put_json_with_lease(&key, &ack, this.lease())
                        .await
                    {
                        tracing::warn!(instance = %info.id, error = %e, "cannot acknowledge a drain");
                    }
                });
            }
        }
    }

    /// Publishes what this front's proxy sees of each instance about once a second, when it
    /// changed.
    pub(crate) async fn publish_activity(self: Arc<Self>, router: Router) {
        let mut last: Option<BTreeMap<String, InstanceActivity>> = None;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let (epoch_i, epoch_ms) = self.epoch;
            let now_ms = now_unix_ms();
            let mut instances = BTreeMap::new();
            for (app, snaps) in router.all_instances() {
                for s in snaps {
                    let since = s
                        .last_activity
                        .saturating_duration_since(epoch_i)
                        .as_millis() as u64;
                    instances.insert(
                        s.instance_id.clone(),
                        InstanceActivity {
                            app: app.clone(),
                            last_active_unix_ms: epoch_ms + since,
                            in_flight: s.in_flight as u32,
                            upgraded: s.upgraded as u32,
                        },
                    );
                }
            }
            if last.as_ref() == Some(&instances) {
                continue;
            }
            let report = FrontActivity {
                front: self.name.clone(),
                at_unix_ms: now_ms,
                instances: instances.clone(),
            };
            match self
                .store
                .put_json_with_lease(&keys::activity(&self.name), &report, self.lease())
                .await
            {
                Ok(_) => last = Some(instances),
                Err(e) => tracing::debug!(error = %e, "cannot publish this front's activity"),
            }
        }
    }
}
