//! The seam between the lifecycle and the proxies: where requests go. On one host the
//! lifecycle changes its own proxy's router ([`LocalTraffic`]); in a cluster every front's
//! proxy follows the instance records instead, and a drain is done only when every front says
//! so (`crate::cluster::ClusterTraffic`). The keep-alive loop reads what the proxies see of each
//! instance through it too.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use hako_model::{InstanceInfo, InstanceState};
use hako_policy::wake::RequestClass;
use hako_proxy::Router;
use hako_store::{Store, StoreExt, keys};
use tokio::time::Instant;

/// What the proxies see of one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Activity {
    /// The latest start or end of a request (or upgraded connection) on it, anywhere.
    pub last_active: Instant,
    /// Requests open on it now, summed over the proxies.
    pub in_flight: u32,
    /// Upgraded connections open on it now, summed over the proxies.
    pub upgraded: u32,
    /// The latest start or end of a visitor's request on it (not a scheduled run's, not an
    /// ignored client's); `None`: no visitor yet.
    pub last_visitor: Option<Instant>,
    /// The latest start or end of quiet work on it (scheduled runs, ignored clients).
    pub last_quiet: Option<Instant>,
    /// Who sent the first request it got.
    pub first_request: Option<RequestClass>,
}

/// Where requests go.
#[async_trait]
pub(crate) trait Traffic: Send + Sync + 'static {
    /// The instance is ready: send it requests.
    async fn route(&self, info: &InstanceInfo, addr: SocketAddr);

    /// Send the instance no new requests; resolves once none is open on it any more, or after
    /// `timeout`.
    async fn drain(&self, info: &InstanceInfo, timeout: Duration);

    /// Forget the instance (it stopped).
    async fn unroute(&self, app: &str, id: &str);

    /// The app was deleted: its hosts answer 404 from now on. The future resolves once its
    /// instances `ids` have no open request (or after `timeout`).
    fn remove_app(&self, app: &str, ids: &[String], timeout: Duration) -> BoxFuture<'static, ()>;

    /// What the proxies see of the app's instances, by instance id.
    fn activity(&self, app: &str) -> HashMap<String, Activity>;

    /// Requests the proxies hold for the app while none of its instances is ready (the
    /// activator's queue); 0 where it is not known.
    fn waiting(&self, app: &str) -> usize {
        let _ = app;
        0
    }

    /// The app's idle periods (gaps of at least a second between request arrivals) since the
    /// last call, and its latest arrival: what the predictive keep-alive learns from.
    /// Default: none seen (a cluster's fronts do not report them yet).
    fn idle_periods(&self, app: &str) -> hako_proxy::metrics::IdleSince {
        let _ = app;
        hako_proxy::metrics::IdleSince::default()
    }
}

/// One host: the daemon's own proxy is the only one. Instance records are kept in the store
/// too, so that a daemon killed with -9 knows at its next start what it lost.
pub(crate) struct LocalTraffic {
    pub(crate) router: Router,
    pub(crate) store: Arc<dyn Store>,
}

impl LocalTraffic {
    async fn record(&self, info: &InstanceInfo, state: InstanceState) {
        let mut info = info.clone();
        info.state = state;
        if let Err(e) = self
            .store
            .put_json(&keys::instance(&info.app, &info.id), &info)
            .await
        {
            tracing::warn!(error = %e, "cannot record instance");
        }
    }
}

#[async_trait]
impl Traffic for LocalTraffic {
    async fn route(&self, info: &InstanceInfo, addr: SocketAddr) {
        if let Err(e) = self.router.add_ready(&info.app, &info.id, addr) {
            tracing::warn!(instance = %info.id, error = %e, "cannot route to instance");
        }
        self.record(info, InstanceState::Ready).await;
    }

    async fn drain(&self, info: &InstanceInfo, timeout: Duration) {
        self.record(info, InstanceState::Draining).await;
        if let Ok(d) = self.router.drain(&info.app, &info.id) {
            let _ = tokio::time::timeout(timeout, d.wait()).await;
        }
    }

    async fn unroute(&self, app: &str, id: &str) {
        let _ = self.router.remove(app, id);
        let _ = self.store.delete(&keys::instance(app, id)).await;
    }

    fn remove_app(&self, app: &str, ids: &[String], timeout: Duration) -> BoxFuture<'static, ()> {
        // Drain handles first: once the router forgets the app, its instances are unknown there.
        let drains: Vec<_> = ids
            .iter()
            .filter_map(|id| self.router.drain(app, id).ok())
            .collect();
        let _ = self.router.remove_app(app);
        Box::pin(async move {
            let all = futures::future::join_all(drains.iter().map(|d| d.wait()));
            let _ = tokio::time::timeout(timeout, all).await;
        })
    }

    fn idle_periods(&self, app: &str) -> hako_proxy::metrics::IdleSince {
        self.router.idle_periods(app).unwrap_or_default()
    }

    fn activity(&self, app: &str) -> HashMap<String, Activity> {
        self.router
            .instances(app)
            .unwrap_or_default()
            .into_iter()
            .map(|s| {
                let a = Activity {
                    last_active: s.last_activity,
                    in_flight: s.in_flight as u32,
                    upgraded: s.upgraded as u32,
                    last_visitor: s.last_visitor,
                    last_quiet: s.last_quiet,
                    first_request: s.first_request,
                };
                (s.instance_id, a)
            })
            .collect()
    }

    fn waiting(&self, app: &str) -> usize {
        self.router.status(app).map_or(0, |s| s.waiting)
    }
}
