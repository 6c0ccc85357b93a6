//! The lifecycle's table of instances: what it knows of each instance it started, from the
//! moment a start is asked for until the instance is gone. Only [`super::Lifecycle`] changes it.
//!
//! The instances are indexed by app, so the per-app questions the loops ask every tick
//! (instances of an app, live, starting, a ready one) read that app's records only: a tick over
//! all apps is linear in apps and instances, not their product. [`Table::reads`] counts the
//! records those questions read, for the tests that hold the loops to that.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

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
    /// The ids of each app's instances, by storage key (no empty sets).
    by_key: HashMap<String, BTreeSet<String>>,
    launching: HashMap<String, u32>,
    /// Instance records read by the per-app questions, since the table was made.
    reads: AtomicU64,
}

impl Table {
    pub(crate) fn get(&self, id: &str) -> Option<&Tracked> {
        self.instances.get(id)
    }

    pub(crate) fn remove(&mut self, id: &str) -> Option<Tracked> {
        let t = self.instances.remove(id)?;
        if let Some(ids) = self.by_key.get_mut(&t.key) {
            ids.remove(id);
            if ids.is_empty() {
                self.by_key.remove(&t.key);
            }
        }
        Some(t)
    }

    /// How many instance records the per-app questions have read so far.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// The records of the app with storage key `key` (by id), counted in [`Table::reads`].
    fn of_key<'a>(&'a self, key: &str) -> impl Iterator<Item = (&'a String, &'a Tracked)> + 'a {
        let ids = self.by_key.get(key);
        self.reads
            .fetch_add(ids.map_or(0, |s| s.len() as u64), Ordering::Relaxed);
        ids.into_iter()
            .flatten()
            .filter_map(|id| self.instances.get_key_value(id))
    }

    /// Instances of the app with storage key `key`, oldest start first.
    pub(crate) fn of(&self, key: &str) -> Vec<(String, Tracked)> {
        let mut v: Vec<_> = self
            .of_key(key)
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
            .of_key(key)
            .filter(|(_, t)| t.draining_since.is_none() || t.replacing)
            .count() as u32;
        running + self.launching(key)
    }

    /// A ready, routed instance of the app that takes requests, if there is one.
    pub(crate) fn ready_one(&self, key: &str) -> Option<InstanceInfo> {
        self.of_key(key)
            .find(|(_, t)| t.ready.is_some() && t.draining_since.is_none())
            .map(|(_, t)| t.info.clone())
    }

    /// Starts under way for the app: asked for, or created and not yet ready.
    pub(crate) fn starting(&self, key: &str) -> u32 {
        let created = self.of_key(key).filter(|(_, t)| t.ready.is_none()).count() as u32;
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
        let id = tracked.info.id.clone();
        // An id is never reused, but keep the index true if one were.
        self.remove(&id);
        self.by_key
            .entry(tracked.key.clone())
            .or_default()
            .insert(id.clone());
        self.instances.insert(id, tracked);
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
                listen_ms: None,
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
    fn per_app_questions_read_only_that_apps_records() {
        let mut t = Table::default();
        for app in 0..100 {
            for i in 0..3 {
                t.created(tracked(&format!("i{app}-{i}"), &format!("app{app}")));
            }
        }
        let before = t.reads();
        assert_eq!(t.of("app7").len(), 3);
        assert_eq!(t.live("app7"), 3);
        assert_eq!(t.starting("app7"), 3);
        assert!(t.ready_one("app7").is_none());
        assert_eq!(t.of("nope").len(), 0);
        assert_eq!(t.reads() - before, 12, "four questions, three records each");
        assert!(t.remove("i7-0").is_some());
        assert_eq!(
            t.of("app7")
                .iter()
                .map(|(id, _)| id.as_str())
                .collect::<Vec<_>>(),
            ["i7-1", "i7-2"]
        );
        t.remove("i7-1");
        t.remove("i7-2");
        assert!(t.of("app7").is_empty());
        assert!(!t.by_key.contains_key("app7"), "no empty sets stay");
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
