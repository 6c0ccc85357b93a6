//! The routing table, changed live by the daemon: host → app, each app's
//! instances, and the launcher and event hook the activator uses.
//!
//! Lookups (every request) read an `ArcSwap`ped map without locking; changes
//! (rare) copy it under a mutex, change only the entries of the apps they touch, and
//! publish the copy — once for a whole batch ([`Router::set_apps`]).

use arc_swap::ArcSwap;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::time::Instant;

use crate::app::{App, AppRoute};
use crate::events::EventHook;
use crate::headers::normalize_host;
use crate::instance::{Drain, InstanceSnapshot};
use crate::launcher::Launcher;
use crate::metrics::{AppMetricsSnapshot, ServiceHistory};

/// The header hako's scheduler sends with a scheduled run's request, carrying the daemon's
/// token ([`Router::set_schedule_token`]); the proxy removes it before the app sees it.
pub const SCHEDULE_HEADER: &str = "x-hako-schedule";

/// Errors changing or reading the routing table.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RouterError {
    /// No app by that name.
    #[error("no app named {app:?} is routed; create it with set_app first")]
    UnknownApp {
        /// The name asked for.
        app: String,
    },
    /// The app has no instance with that id.
    #[error("app {app:?} has no instance {instance:?}")]
    UnknownInstance {
        /// The app.
        app: String,
        /// The instance id asked for.
        instance: String,
    },
    /// `add_ready` with an id the app already has.
    #[error("app {app:?} already has an instance {instance:?}; use a new id")]
    DuplicateInstance {
        /// The app.
        app: String,
        /// The id.
        instance: String,
    },
    /// A host of the route belongs to another app.
    #[error("host {host:?} already belongs to app {owner:?}; remove it there first")]
    HostTaken {
        /// The host.
        host: String,
        /// The app that has it.
        owner: String,
    },
    /// A host of the route is not a valid host name.
    #[error("{host:?} is not a valid host name")]
    InvalidHost {
        /// The host.
        host: String,
    },
    /// An app route without a name.
    #[error("an app needs a non-empty name")]
    EmptyName,
}

/// An app's routing status, for the API and the daemon.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppStatus {
    /// The app.
    pub name: String,
    /// Its hosts, normalized.
    pub hosts: Vec<String>,
    /// True while a start runs for waiting requests.
    pub starting: bool,
    /// Requests waiting for a start.
    pub waiting: usize,
    /// Its instances, ready and draining.
    pub instances: Vec<InstanceSnapshot>,
}

/// The live routing table. Cheap to clone; all clones share it.
#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

struct Inner {
    hosts: ArcSwap<HashMap<String, Arc<App>>>,
    apps: Mutex<BTreeMap<String, Arc<App>>>,
    pub(crate) launcher: Arc<dyn Launcher>,
    pub(crate) events: Arc<dyn EventHook>,
    epoch: Instant,
    max_idle: usize,
    schedule_token: std::sync::OnceLock<String>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("apps", &self.apps().keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Router {
    /// An empty table. `launcher` starts instances for cold requests; `events`
    /// hears about starts, failures and unreachable instances. Keeps up to 64
    /// idle connections per instance (per serving thread with [`crate::PerCore`]).
    pub fn new(launcher: Arc<dyn Launcher>, events: Arc<dyn EventHook>) -> Self {
        Self::with_pool_size(launcher, events, 64)
    }

    /// Like [`Router::new`], keeping up to `max_idle_per_instance` idle keep-alive
    /// connections to each instance (per serving thread with [`crate::PerCore`]).
    pub fn with_pool_size(
        launcher: Arc<dyn Launcher>,
        events: Arc<dyn EventHook>,
        max_idle_per_instance: usize,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                hosts: ArcSwap::from_pointee(HashMap::new()),
                apps: Mutex::new(BTreeMap::new()),
                launcher,
                events,
                epoch: Instant::now(),
                max_idle: max_idle_per_instance,
                schedule_token: std::sync::OnceLock::new(),
            }),
        }
    }

    fn apps(&self) -> MutexGuard<'_, BTreeMap<String, Arc<App>>> {
        self.inner.apps.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn app(&self, name: &str) -> Result<Arc<App>, RouterError> {
        self.apps()
            .get(name)
            .cloned()
            .ok_or_else(|| RouterError::UnknownApp {
                app: name.to_owned(),
            })
    }

    /// Sets the secret that marks a request as a scheduled run (in [`SCHEDULE_HEADER`]);
    /// once, false if it was set already. Without one no request counts as scheduled.
    pub fn set_schedule_token(&self, token: impl Into<String>) -> bool {
        self.inner.schedule_token.set(token.into()).is_ok()
    }

    pub(crate) fn schedule_token(&self) -> Option<&str> {
        self.inner.schedule_token.get().map(String::as_str)
    }

    pub(crate) fn launcher(&self) -> &Arc<dyn Launcher> {
        &self.inner.launcher
    }

    pub(crate) fn events(&self) -> &Arc<dyn EventHook> {
        &self.inner.events
    }

    /// The app serving a normalized host (see [`crate::headers::normalize_host`]).
    pub(crate) fn lookup(&self, host: &str) -> Option<Arc<App>> {
        self.inner.hosts.load().get(host).cloned()
    }

    /// Add an app or change its hosts and limits. Its instances, start in
    /// progress and metrics are kept. Only this app's hosts change in the table.
    pub fn set_app(&self, route: AppRoute) -> Result<(), RouterError> {
        match self.set_apps([route]).pop() {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }

    /// [`Router::set_app`] for many apps at once, in order, publishing the host table once
    /// (what the daemon does with a batch of stored changes: 10,000 apps cost one rebuild,
    /// not 10,000). A route that cannot be set is left out and returned with its error, by
    /// app name; the others are set.
    pub fn set_apps(
        &self,
        routes: impl IntoIterator<Item = AppRoute>,
    ) -> Vec<(String, RouterError)> {
        let mut refused = Vec::new();
        let mut apps = self.apps();
        let mut hosts: Option<HashMap<String, Arc<App>>> = None;
        for route in routes {
            let name = route.name.clone();
            let table = hosts.get_or_insert_with(|| (**self.inner.hosts.load()).clone());
            if let Err(e) = self.set_one(&mut apps, table, route) {
                refused.push((name, e));
            }
        }
        if let Some(hosts) = hosts {
            self.inner.hosts.store(Arc::new(hosts));
        }
        refused
    }

    /// Sets one route in `apps` and in the working host table `hosts`.
    fn set_one(
        &self,
        apps: &mut BTreeMap<String, Arc<App>>,
        hosts: &mut HashMap<String, Arc<App>>,
        mut route: AppRoute,
    ) -> Result<(), RouterError> {
        if route.name.is_empty() {
            return Err(RouterError::EmptyName);
        }
        let mut normal_hosts: Vec<String> = Vec::with_capacity(route.hosts.len());
        for host in &route.hosts {
            let normal = normalize_host(host)
                .map_err(|_| RouterError::InvalidHost { host: host.clone() })?;
            if !normal_hosts.iter().any(|h| *h == *normal) {
                normal_hosts.push(normal.into_owned());
            }
        }
        route.hosts = normal_hosts;
        for host in &route.hosts {
            if let Some(owner) = hosts.get(host).filter(|a| a.name != route.name) {
                return Err(RouterError::HostTaken {
                    host: host.clone(),
                    owner: owner.name.clone(),
                });
            }
        }
        let app = match apps.get(&route.name) {
            Some(app) => {
                for old in app.route().hosts {
                    hosts.remove(&old);
                }
                app.set_route(route.clone());
                app.clone()
            }
            None => {
                let app = Arc::new(App::new(
                    route.clone(),
                    self.inner.epoch,
                    self.inner.max_idle,
                ));
                apps.insert(app.name.clone(), app.clone());
                app
            }
        };
        for host in route.hosts {
            hosts.insert(host, app.clone());
        }
        Ok(())
    }

    /// Stop routing to an app. Requests already in flight finish.
    pub fn remove_app(&self, name: &str) -> Result<(), RouterError> {
        let mut apps = self.apps();
        let app = apps.remove(name).ok_or_else(|| RouterError::UnknownApp {
            app: name.to_owned(),
        })?;
        let mut hosts = (**self.inner.hosts.load()).clone();
        for host in app.route().hosts {
            if hosts.get(&host).is_some_and(|a| Arc::ptr_eq(a, &app)) {
                hosts.remove(&host);
            }
        }
        self.inner.hosts.store(Arc::new(hosts));
        Ok(())
    }

    /// Route to an instance the daemon started itself (min instances, pre-warm).
    pub fn add_ready(
        &self,
        app: &str,
        instance_id: &str,
        addr: SocketAddr,
    ) -> Result<(), RouterError> {
        if self.app(app)?.add_ready(instance_id.to_owned(), addr) {
            Ok(())
        } else {
            Err(RouterError::DuplicateInstance {
                app: app.to_owned(),
                instance: instance_id.to_owned(),
            })
        }
    }

    /// Forget an instance (it died or was stopped). Requests in flight to it finish or fail.
    pub fn remove(&self, app: &str, instance_id: &str) -> Result<(), RouterError> {
        self.app(app)?
            .remove(instance_id)
            .map(drop)
            .ok_or_else(|| RouterError::UnknownInstance {
                app: app.to_owned(),
                instance: instance_id.to_owned(),
            })
    }

    /// Stop sending new requests to an instance. Await [`Drain::wait`] for its
    /// in-flight requests and upgraded connections to end, then stop it and
    /// call [`Router::remove`].
    pub fn drain(&self, app: &str, instance_id: &str) -> Result<Drain, RouterError> {
        self.app(app)?
            .drain(instance_id)
            .map(Drain)
            .ok_or_else(|| RouterError::UnknownInstance {
                app: app.to_owned(),
                instance: instance_id.to_owned(),
            })
    }

    /// Snapshots of an app's instances (what the keep-alive loop reads).
    pub fn instances(&self, app: &str) -> Result<Vec<InstanceSnapshot>, RouterError> {
        Ok(self.app(app)?.snapshots())
    }

    /// An app's routing status.
    pub fn status(&self, app: &str) -> Result<AppStatus, RouterError> {
        let app = self.app(app)?;
        let starting = app
            .start
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_running();
        Ok(AppStatus {
            name: app.name.clone(),
            hosts: app.route().hosts,
            starting,
            waiting: app.waiting.load(std::sync::atomic::Ordering::Relaxed),
            instances: app.snapshots(),
        })
    }

    /// An app's request metrics.
    pub fn metrics(&self, app: &str) -> Result<AppMetricsSnapshot, RouterError> {
        Ok(self.app(app)?.metrics.snapshot())
    }

    /// What the service-level model needs of an app's history: arrival gaps, start times.
    pub fn history(&self, app: &str) -> Result<ServiceHistory, RouterError> {
        Ok(self.app(app)?.metrics.history())
    }

    /// The app's idle periods since the last call, and its latest arrival (what the
    /// predictive keep-alive learns from).
    pub fn idle_periods(&self, app: &str) -> Result<crate::metrics::IdleSince, RouterError> {
        Ok(self.app(app)?.metrics.idle.take())
    }

    /// Records a request's arrival for the app's idle periods at `at` (the proxy does this
    /// for every request; tests of the keep-alive loop play arrivals with it).
    pub fn record_idle_arrival(
        &self,
        app: &str,
        at: tokio::time::Instant,
    ) -> Result<(), RouterError> {
        self.app(app)?.metrics.idle.record(at);
        Ok(())
    }

    /// Records the start time of an instance the daemon started itself (min instances,
    /// replacements); the activator records the starts it asks for.
    pub fn record_start(&self, app: &str, took: std::time::Duration) -> Result<(), RouterError> {
        self.app(app)?.metrics.record_start(took);
        Ok(())
    }

    /// Records a failed start of an instance the daemon started itself; the activator records
    /// the failures of the starts it asks for.
    pub fn record_start_failure(
        &self,
        app: &str,
        kind: hako_model::StartFailure,
    ) -> Result<(), RouterError> {
        self.app(app)?.metrics.record_start_failure(kind);
        Ok(())
    }

    /// Records how a ready instance of the app started (every start, whoever asked).
    pub fn record_start_path(
        &self,
        app: &str,
        path: hako_model::StartPath,
    ) -> Result<(), RouterError> {
        self.app(app)?.metrics.record_start_path(path);
        Ok(())
    }

    /// Records why an instance of the app stopped.
    pub fn record_stop(
        &self,
        app: &str,
        reason: hako_model::StopReason,
    ) -> Result<(), RouterError> {
        self.app(app)?.metrics.record_stop(reason);
        Ok(())
    }

    /// Snapshots of every app's instances, by app name.
    pub fn all_instances(&self) -> BTreeMap<String, Vec<InstanceSnapshot>> {
        self.apps()
            .iter()
            .map(|(name, app)| (name.clone(), app.snapshots()))
            .collect()
    }

    /// Request metrics of every app, by name.
    pub fn all_metrics(&self) -> BTreeMap<String, AppMetricsSnapshot> {
        self.apps()
            .iter()
            .map(|(name, app)| (name.clone(), app.metrics.snapshot()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::LogEvents;
    use crate::launcher::NoLauncher;

    fn router() -> Router {
        Router::new(Arc::new(NoLauncher), Arc::new(LogEvents))
    }

    #[test]
    fn hosts_are_normalized_and_exclusive() {
        let r = router();
        r.set_app(AppRoute::new(
            "blog",
            ["Blog.Example:8080", "www.blog.example"],
        ))
        .unwrap();
        assert_eq!(r.lookup("blog.example").unwrap().name, "blog");
        let err = r
            .set_app(AppRoute::new("shop", ["BLOG.example"]))
            .unwrap_err();
        assert!(
            matches!(err, RouterError::HostTaken { ref owner, .. } if owner == "blog"),
            "{err}"
        );
        assert!(matches!(
            r.set_app(AppRoute::new("x", ["bad host"])),
            Err(RouterError::InvalidHost { .. })
        ));
        assert_eq!(
            r.set_app(AppRoute::new("", ["a.example"])),
            Err(RouterError::EmptyName)
        );
    }

    #[test]
    fn updating_an_app_keeps_instances_and_moves_hosts() {
        let r = router();
        r.set_app(AppRoute::new("blog", ["old.example"])).unwrap();
        r.add_ready("blog", "i1", "127.0.0.1:1".parse().unwrap())
            .unwrap();
        r.set_app(AppRoute::new("blog", ["new.example"])).unwrap();
        assert!(r.lookup("old.example").is_none());
        assert_eq!(r.instances("blog").unwrap().len(), 1);
        assert_eq!(r.status("blog").unwrap().hosts, ["new.example"]);
        assert!(matches!(
            r.add_ready("blog", "i1", "127.0.0.1:2".parse().unwrap()),
            Err(RouterError::DuplicateInstance { .. })
        ));
        r.remove("blog", "i1").unwrap();
        assert!(matches!(
            r.remove("blog", "i1"),
            Err(RouterError::UnknownInstance { .. })
        ));
        r.remove_app("blog").unwrap();
        assert!(r.lookup("new.example").is_none());
        assert!(matches!(
            r.metrics("blog"),
            Err(RouterError::UnknownApp { .. })
        ));
    }

    #[test]
    fn a_batch_sets_apps_in_order_and_refuses_only_the_bad_ones() {
        let r = router();
        r.set_app(AppRoute::new("blog", ["blog.example"])).unwrap();
        let refused = r.set_apps([
            AppRoute::new("a", ["a.example"]),
            // Takes blog's host: refused, the rest of the batch still applies.
            AppRoute::new("b", ["b.example", "blog.example"]),
            AppRoute::new("", ["x.example"]),
            // blog lets its host go, then c takes it, in the same batch.
            AppRoute::new("blog", ["blog2.example"]),
            AppRoute::new("c", ["blog.example"]),
        ]);
        let names: Vec<&str> = refused.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["b", ""]);
        assert!(matches!(
            refused[0].1,
            RouterError::HostTaken { ref owner, .. } if owner == "blog"
        ));
        assert_eq!(r.lookup("a.example").unwrap().name, "a");
        assert!(r.lookup("b.example").is_none());
        assert_eq!(r.lookup("blog2.example").unwrap().name, "blog");
        assert_eq!(r.lookup("blog.example").unwrap().name, "c");
        assert!(r.set_apps(Vec::new()).is_empty());
    }

    #[test]
    fn ten_thousand_apps_in_one_batch_then_single_changes() {
        let r = router();
        let t = std::time::Instant::now();
        let refused = r.set_apps(
            (0..10_000).map(|i| AppRoute::new(format!("app{i}"), [format!("app{i}.example")])),
        );
        assert!(refused.is_empty());
        assert_eq!(r.all_metrics().len(), 10_000);
        assert_eq!(r.lookup("app9999.example").unwrap().name, "app9999");
        // One change touches its own entries only; the other apps stay routed.
        r.set_app(AppRoute::new("app5", ["five.example"])).unwrap();
        assert!(r.lookup("app5.example").is_none());
        assert_eq!(r.lookup("five.example").unwrap().name, "app5");
        r.remove_app("app6").unwrap();
        assert!(r.lookup("app6.example").is_none());
        assert_eq!(r.lookup("app7.example").unwrap().name, "app7");
        // Generous for a debug build on a busy machine; one by one took tens of seconds.
        assert!(t.elapsed() < std::time::Duration::from_secs(5), "{:?}", t.elapsed());
    }
}
