//! The lifecycle's table of instances: what it knows of each instance it started, from the
//! moment a start is asked for until the instance is gone. Only [`super::Lifecycle`] changes it.

use std::collections::{HashMap, HashSet};

use hako_model::{InstanceInfo, InstanceState};
use tokio::time::Instant;

/// One instance, from its container's creation on.
#[derive(Debug, Clone)]
pub(crate) struct Tracked {
    /// What the API shows (its `state` follows the lifecycle).
    pub info: InstanceInfo,
    /// The [`hako_model::App::storage_key`] of the app it was started for.
    pub key: String,
    /// [`hako_model::App::fingerprint`] of the app it was started from.
    pub fingerprint: u64,
    /// When its start was asked for.
    pub started: Instant,
    /// It was started for a request that found no ready instance (not for a minimum, a
    /// replacement or the autoscaler).
    pub for_request: bool,
    /// When it became ready (routed); `None` while starting.
    pub ready: Option<Instant>,
    /// When it stopped taking new requests, or — while `replacing` — when its successor was
    /// asked for.
    pub draining_since: Option<Instant>,
    /// Its successor is starting: it keeps serving until then, and nothing else retires it.
    pub replacing: bool,
    /// The limits a live resize could not give it in full (memory above its use), and why:
    /// not tried again until the app's limits change again.
    pub resize_refused: Option<(hako_model::InstanceLimits, String)>,
}

/// Every instance the lifecycle knows, and the starts asked for whose container does not
/// exist yet (counted per app storage key).
#[derive(Debug, Default)]
pub(crate) struct Table {
    instances: HashMap<String, Tracked>,
    launching: HashMap<String, u32>,
}

impl Table {
    pub(crate) fn get(&self, id: &str) -> Option<&Tracked> {
        self.instances.get(id)
    }

    pub(crate) fn remove(&mut self, id: &str) -> Option<Tracked> {
        self.instances.remove(id)
    }

    /// Instances of the app with storage key `key`, oldest start first.
    pub(crate) fn of(&self, key: &str) -> Vec<(String, Tracked)> {
        let mut v: Vec<_> = self
            .instances
            .iter()
            .filter(|(_, t)| t.key == key)
            .map(|(id, t)| (id.clone(), t.clone()))
            .collect();
        v.sort_by(|a, b| a.1.started.cmp(&b.1.started).then(a.0.cmp(&b.0)));
        v
    }

    /// Every instance (or those of one app name), for the API.
    pub(crate) fn infos(&self, app: Option<&str>) -> Vec<InstanceInfo> {
        let mut v: Vec<InstanceInfo> = self
            .instances
            .values()
            .filter(|t| app.is_none_or(|a| t.info.app == a))
            .map(|t| t.info.clone())
            .collect();
        v.sort_by(|a, b| {
            a.started_unix_ms
                .cmp(&b.started_unix_ms)
                .then(a.id.cmp(&b.id))
        });
        v
    }

    /// Storage keys of the apps with an instance or a launch: what the loops that act on
    /// instances look at (an app with neither has nothing for them to do).
    pub(crate) fn busy(&self) -> HashSet<String> {
        self.instances
            .values()
            .map(|t| t.key.clone())
            .chain(self.launching.keys().cloned())
            .collect()
    }

    /// Starts asked for the app whose containers do not exist yet.
    pub(crate) fn launching(&self, key: &str) -> u32 {
        self.launching.get(key).copied().unwrap_or(0)
    }

    /// Instances of the app that take or will take requests: starting, ready, or being
    /// replaced (not draining), plus starts asked for.
    pub(crate) fn live(&self, key: &str) -> u32 {
        let running = self
            .instances
            .values()
            .filter(|t| t.key == key && (t.draining_since.is_none() || t.replacing))
            .count() as u32;
        running + self.launching(key)
    }

    /// A ready, routed instance of the app that takes requests, if there is one.
    pub(crate) fn ready_one(&self, key: &str) -> Option<InstanceInfo> {
        self.instances
            .values()
            .find(|t| t.key == key && t.ready.is_some() && t.draining_since.is_none())
            .map(|t| t.info.clone())
    }

    /// Starts under way for the app: asked for, or created and not yet ready.
    pub(crate) fn starting(&self, key: &str) -> u32 {
        let created = self
            .instances
            .values()
            .filter(|t| t.key == key && t.ready.is_none())
            .count() as u32;
        created + self.launching(key)
    }

    pub(crate) fn begin_launch(&mut self, key: &str) {
        *self.launching.entry(key.to_string()).or_default() += 1;
    }

    /// A launch asked for ended before its container existed.
    pub(crate) fn end_launch(&mut self, key: &str) {
        if let Some(n) = self.launching.get_mut(key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.launching.remove(key);
            }
        }
    }

    /// The container of a launch exists: it is an instance now, starting.
    pub(crate) fn created(&mut self, tracked: Tracked) {
        self.end_launch(&tracked.key);
        self.instances.insert(tracked.info.id.clone(), tracked);
    }

    /// Marks an instance ready (routed) at `now`.
    pub(crate) fn ready(&mut self, id: &str, info: &InstanceInfo, now: Instant) -> bool {
        match self.instances.get_mut(id) {
            Some(t) => {
                t.info = info.clone();
                t.info.state = InstanceState::Ready;
                t.ready = Some(now);
                true
            }
            None => false,
        }
    }

    /// Marks an instance draining at `now`; false if it is unknown, already draining, or being
    /// replaced (its replacement retires it).
    pub(crate) fn begin_drain(&mut self, id: &str, now: Instant) -> bool {
        match self.instances.get_mut(id) {
            Some(t) if t.draining_since.is_none() && !t.replacing => {
                t.draining_since = Some(now);
                t.info.state = InstanceState::Draining;
                true
            }
            _ => false,
        }
    }

    /// Marks an instance as being replaced at `now`; false if it already drains or is being
    /// replaced.
    pub(crate) fn begin_replace(&mut self, id: &str, now: Instant) -> bool {
        match self.instances.get_mut(id) {
            Some(t) if t.draining_since.is_none() => {
                t.draining_since = Some(now);
                t.replacing = true;
                true
            }
            _ => false,
        }
    }

    /// Its successor failed to start: the instance serves on, as if nothing was asked.
    pub(crate) fn cancel_replace(&mut self, id: &str) {
        if let Some(t) = self.instances.get_mut(id).filter(|t| t.replacing) {
            t.replacing = false;
            t.draining_since = None;
        }
    }

    /// The successor is ready: the instance now drains like any other.
    pub(crate) fn replaced(&mut self, id: &str, now: Instant) -> bool {
        match self.instances.get_mut(id) {
            Some(t) if t.replacing => {
                t.replacing = false;
                t.draining_since = Some(now);
                t.info.state = InstanceState::Draining;
                true
            }
            _ => false,
        }
    }

    /// Records the limits an instance has now, and the target it refused (if it did).
    pub(crate) fn resized(
        &mut self,
        id: &str,
        limits: hako_model::InstanceLimits,
        refused: Option<(hako_model::InstanceLimits, String)>,
    ) {
        if let Some(t) = self.instances.get_mut(id) {
            t.info.limits = Some(limits);
            t.resize_refused = refused;
        }
    }

    /// The instance exists and takes requests (not draining).
    pub(crate) fn is_live(&self, id: &str) -> bool {
        self.instances
            .get(id)
            .is_some_and(|t| t.draining_since.is_none())
    }

    /// Every instance id.
    pub(crate) fn ids(&self) -> Vec<String> {
        self.instances.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracked(id: &str, key: &str) -> Tracked {
        Tracked {
            info: InstanceInfo {
                id: id.into(),
                app: "blog".into(),
                node: "n".into(),
                addr: "127.0.0.1:1".into(),
                state: InstanceState::Starting,
                started_unix_ms: 0,
                ready_ms: None,
                release: None,
                image: "base:1".into(),
                generation: 0,
                from_pool: false,
                start_path: hako_model::StartPath::Cold,
                restore_error: None,
                slot: None,
                limits: None,
            },
            key: key.into(),
            fingerprint: 1,
            started: Instant::now(),
            for_request: false,
            ready: None,
            draining_since: None,
            replacing: false,
            resize_refused: None,
        }
    }

    #[test]
    fn launches_count_until_their_container_exists() {
        let mut t = Table::default();
        t.begin_launch("blog_1");
        t.begin_launch("blog_1");
        assert_eq!(t.live("blog_1"), 2);
        t.created(tracked("a", "blog_1"));
        assert_eq!((t.launching("blog_1"), t.live("blog_1")), (1, 2));
        t.end_launch("blog_1");
        assert_eq!(t.live("blog_1"), 1);
        assert_eq!(
            t.live("blog_2"),
            0,
            "another app of the same name counts apart"
        );
    }

    #[test]
    fn states_move_forward_once() {
        let mut t = Table::default();
        t.created(tracked("a", "k"));
        let now = Instant::now();
        let info = t.get("a").unwrap().info.clone();
        assert!(t.ready("a", &info, now));
        assert_eq!(t.get("a").unwrap().info.state, InstanceState::Ready);
        assert!(t.begin_replace("a", now));
        assert!(!t.begin_drain("a", now), "its replacement retires it");
        assert!(!t.begin_replace("a", now));
        assert_eq!(t.live("k"), 1, "it serves until its successor is ready");
        t.cancel_replace("a");
        assert!(t.get("a").unwrap().draining_since.is_none());
        assert!(t.begin_replace("a", now));
        assert!(t.replaced("a", now));
        assert_eq!(t.get("a").unwrap().info.state, InstanceState::Draining);
        assert!(!t.begin_drain("a", now));
        assert_eq!(t.live("k"), 0);
        assert!(t.remove("a").is_some());
        assert!(!t.begin_drain("a", now));
    }
}
