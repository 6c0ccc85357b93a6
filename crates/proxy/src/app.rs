//! One app's routing state: its settings, its instances (ready and draining),
//! the start in progress, and its metrics. Reads on the request path are
//! lock-free (`ArcSwap` of the ready list, atomics); changes take a per-app mutex.

use arc_swap::ArcSwap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

use crate::activator::StartSlot;
use crate::balance::least_outstanding;
use crate::instance::{Instance, InstanceSnapshot, InstanceState};
use crate::metrics::AppMetrics;

/// How the proxy routes to one app; given to [`crate::Router::set_app`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRoute {
    /// The app's name (unique).
    pub name: String,
    /// Host names that reach it (any case; a port is ignored).
    pub hosts: Vec<String>,
    /// How long requests wait for a start before getting 503.
    pub start_timeout: Duration,
    /// How many requests may wait for a start at once; more get 503 at once.
    pub max_waiting: usize,
    /// Clients (by User-Agent or path) answered like anyone but not counted as visitors:
    /// their requests do not keep the app awake.
    pub ignored: hako_model::IgnoredClients,
    /// Answer plain-HTTP requests with a 308 to the same URL over HTTPS (when the proxy has
    /// an HTTPS listener).
    pub https_redirect: bool,
    /// `Strict-Transport-Security` max-age sent on HTTPS responses, if any.
    pub hsts: Option<Duration>,
}

impl AppRoute {
    /// A route with default limits: 30 s start timeout, 1000 waiting requests.
    pub fn new(
        name: impl Into<String>,
        hosts: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            name: name.into(),
            hosts: hosts.into_iter().map(Into::into).collect(),
            start_timeout: Duration::from_secs(30),
            max_waiting: 1000,
            ignored: hako_model::IgnoredClients::default(),
            https_redirect: false,
            hsts: None,
        }
    }
}

/// An app's HTTPS settings as the request path uses them.
#[derive(Debug, Default)]
pub(crate) struct HttpsRoute {
    pub(crate) redirect: bool,
    /// The whole `Strict-Transport-Security` value, made once.
    pub(crate) hsts: Option<http::HeaderValue>,
}

impl HttpsRoute {
    fn of(route: &AppRoute) -> HttpsRoute {
        HttpsRoute {
            redirect: route.https_redirect,
            hsts: route.hsts.and_then(|d| {
                http::HeaderValue::from_str(&format!("max-age={}", d.as_secs())).ok()
            }),
        }
    }
}

/// State of one app inside the router.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) name: String,
    route: Mutex<AppRoute>,
    /// What HTTPS asks of each request, read lock-free on the request path.
    pub(crate) https: ArcSwap<HttpsRoute>,
    /// All instances, ready and draining; the source of truth for `ready`.
    instances: Mutex<Vec<Arc<Instance>>>,
    /// Ready instances only, read lock-free on every request.
    ready: ArcSwap<Vec<Arc<Instance>>>,
    next: AtomicUsize,
    pub(crate) waiting: AtomicUsize,
    pub(crate) start: Mutex<StartSlot>,
    pub(crate) metrics: AppMetrics,
    epoch: Instant,
    max_idle: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl App {
    pub(crate) fn new(route: AppRoute, epoch: Instant, max_idle: usize) -> Self {
        Self {
            name: route.name.clone(),
            https: ArcSwap::from_pointee(HttpsRoute::of(&route)),
            route: Mutex::new(route),
            instances: Mutex::new(Vec::new()),
            ready: ArcSwap::from_pointee(Vec::new()),
            next: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            start: Mutex::new(StartSlot::default()),
            metrics: AppMetrics::default(),
            epoch,
            max_idle,
        }
    }

    pub(crate) fn route(&self) -> AppRoute {
        lock(&self.route).clone()
    }

    pub(crate) fn set_route(&self, route: AppRoute) {
        self.https.store(Arc::new(HttpsRoute::of(&route)));
        *lock(&self.route) = route;
    }

    /// The app's ignored clients (a copy; empty for most apps).
    pub(crate) fn ignored(&self) -> hako_model::IgnoredClients {
        let route = lock(&self.route);
        if route.ignored.is_empty() {
            hako_model::IgnoredClients::default()
        } else {
            route.ignored.clone()
        }
    }

    /// The instance for the next request, if any is ready.
    pub(crate) fn pick(&self) -> Option<Arc<Instance>> {
        let ready = self.ready.load();
        let start = if ready.len() > 1 {
            self.next.fetch_add(1, Relaxed)
        } else {
            0
        };
        least_outstanding(&ready, start).cloned()
    }

    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.load().is_empty()
    }

    fn publish(&self, all: &[Arc<Instance>]) {
        let ready: Vec<_> = all
            .iter()
            .filter(|i| i.state() == InstanceState::Ready)
            .cloned()
            .collect();
        self.ready.store(Arc::new(ready));
    }

    /// Route to a new instance. False if one with this id is already known.
    pub(crate) fn add_ready(&self, instance_id: String, addr: SocketAddr) -> bool {
        let mut all = lock(&self.instances);
        if all.iter().any(|i| i.id == instance_id) {
            return false;
        }
        all.push(Arc::new(Instance::new(
            instance_id,
            addr,
            self.epoch,
            self.max_idle,
        )));
        self.publish(&all);
        true
    }

    /// Stop routing to an instance and forget it. Returns it if it was known.
    pub(crate) fn remove(&self, instance_id: &str) -> Option<Arc<Instance>> {
        let mut all = lock(&self.instances);
        let pos = all.iter().position(|i| i.id == instance_id)?;
        let instance = all.remove(pos);
        instance.start_draining();
        self.publish(&all);
        Some(instance)
    }

    /// Stop routing to an instance but keep it listed (as draining).
    pub(crate) fn drain(&self, instance_id: &str) -> Option<Arc<Instance>> {
        let all = lock(&self.instances);
        let instance = all.iter().find(|i| i.id == instance_id)?.clone();
        instance.start_draining();
        self.publish(&all);
        Some(instance)
    }

    pub(crate) fn snapshots(&self) -> Vec<InstanceSnapshot> {
        lock(&self.instances).iter().map(|i| i.snapshot()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> App {
        App::new(AppRoute::new("blog", ["blog.example"]), Instant::now(), 4)
    }

    #[test]
    fn add_drain_remove_update_the_ready_list() {
        let app = app();
        assert!(app.pick().is_none());
        assert!(app.add_ready("a".into(), "127.0.0.1:1".parse().unwrap()));
        assert!(
            !app.add_ready("a".into(), "127.0.0.1:2".parse().unwrap()),
            "duplicate id"
        );
        assert!(app.add_ready("b".into(), "127.0.0.1:3".parse().unwrap()));
        assert!(app.drain("a").is_some());
        for _ in 0..4 {
            assert_eq!(app.pick().unwrap().id, "b");
        }
        let states: Vec<_> = app.snapshots().iter().map(|s| s.state).collect();
        assert_eq!(states, [InstanceState::Draining, InstanceState::Ready]);
        assert!(app.remove("b").is_some());
        assert!(app.remove("b").is_none());
        assert!(!app.has_ready());
        assert_eq!(app.snapshots().len(), 1);
    }
}
