//! The apps the daemon serves, as last read from the store: the one copy every loop reads.
//! Only the store watch ([`crate::reconcile`]) changes it.
//!
//! Loops that tick often copy only the apps they act on: those of the instances that run
//! ([`Apps::of_keys`], by storage key) and those the keep-alive watches without any instance
//! ([`Apps::kept`]: a minimum, or a predictor that may pre-warm). Both are found through
//! indexes kept here, so a tick costs what runs, not what is stored: with 10,000 apps, a copy
//! (or even a look) at every app per tick was most of the daemon's time while instances came
//! and went.

use std::collections::{BTreeSet, HashMap};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use hako_model::{App, KeepAliveMode};

/// The current app of each name.
#[derive(Debug, Default)]
pub(crate) struct Apps(RwLock<Inner>, Copies);

#[derive(Debug, Default)]
struct Inner {
    by_name: HashMap<String, App>,
    /// Storage key → name.
    by_key: HashMap<String, String>,
    /// Names of the apps the keep-alive looks at without instances.
    kept: BTreeSet<String>,
}

/// Apps copied out so far (the work a loop's tick does, for tests).
#[derive(Debug, Default)]
struct Copies(AtomicU64);

/// Whether the keep-alive looks at `app` even without instances: it keeps a minimum, or its
/// predictor may start one ahead of a request.
fn is_kept(app: &App) -> bool {
    app.spec.min > 0 || app.spec.keep_alive == KeepAliveMode::Predictive
}

impl Apps {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.0.read().expect("apps lock")
    }

    pub(crate) fn get(&self, name: &str) -> Option<App> {
        self.read().by_name.get(name).cloned()
    }

    /// True while `app` (this very app: same name and uid) is current.
    pub(crate) fn is_current(&self, app: &App) -> bool {
        self.read()
            .by_name
            .get(&app.spec.name)
            .is_some_and(|a| a.uid == app.uid)
    }

    pub(crate) fn all(&self) -> Vec<App> {
        let all: Vec<App> = self.read().by_name.values().cloned().collect();
        self.copied(all.len());
        all
    }

    /// Copies of the apps `keep` picks (every app is looked at; only those are copied): for
    /// loops that tick seldom.
    pub(crate) fn select(&self, keep: impl Fn(&App) -> bool) -> Vec<App> {
        let some: Vec<App> = self
            .read()
            .by_name
            .values()
            .filter(|a| keep(a))
            .cloned()
            .collect();
        self.copied(some.len());
        some
    }

    /// Copies of the current apps with these storage keys (keys of apps that are gone, or
    /// were replaced by another app of their name, are skipped), and with `kept` also of every
    /// app the keep-alive watches without instances; each app once.
    pub(crate) fn of_keys<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k String>,
        kept: bool,
    ) -> Vec<App> {
        let inner = self.read();
        let mut names: BTreeSet<&str> = keys
            .into_iter()
            .filter_map(|k| inner.by_key.get(k).map(String::as_str))
            .collect();
        if kept {
            names.extend(inner.kept.iter().map(String::as_str));
        }
        let some: Vec<App> = names
            .into_iter()
            .filter_map(|n| inner.by_name.get(n).cloned())
            .collect();
        self.copied(some.len());
        some
    }

    fn copied(&self, n: usize) {
        (self.1).0.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Apps copied out so far.
    #[cfg(test)]
    pub(crate) fn copies(&self) -> u64 {
        (self.1).0.load(Ordering::Relaxed)
    }

    /// Sets the current app of its name; returns the one it replaces.
    pub(crate) fn insert(&self, app: App) -> Option<App> {
        let mut inner = self.0.write().expect("apps lock");
        let name = app.spec.name.clone();
        let old = inner.by_name.remove(&name);
        if let Some(old) = &old {
            inner.by_key.remove(&old.storage_key());
        }
        inner.by_key.insert(app.storage_key(), name.clone());
        if is_kept(&app) {
            inner.kept.insert(name.clone());
        } else {
            inner.kept.remove(&name);
        }
        inner.by_name.insert(name, app);
        old
    }

    pub(crate) fn remove(&self, name: &str) -> Option<App> {
        let mut inner = self.0.write().expect("apps lock");
        let old = inner.by_name.remove(name)?;
        inner.by_key.remove(&old.storage_key());
        inner.kept.remove(name);
        Some(old)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str, uid: &str, min: u32) -> App {
        serde_json::from_value(serde_json::json!({
            "name": name, "hosts": [format!("{name}.test")], "image": "static", "cmd": "x",
            "min": min, "uid": uid, "created_unix": 0, "updated_unix": 0,
        }))
        .unwrap()
    }

    #[test]
    fn indexes_follow_inserts_replacements_and_removals() {
        let apps = Apps::default();
        let a = app("a", "0000000000aa", 0);
        apps.insert(a.clone());
        apps.insert(app("b", "0000000000bb", 1));
        let names = |v: Vec<App>| v.into_iter().map(|a| a.spec.name).collect::<Vec<_>>();
        assert_eq!(names(apps.of_keys([&a.storage_key()], false)), ["a"]);
        assert_eq!(names(apps.of_keys([&a.storage_key()], true)), ["a", "b"]);
        assert_eq!(names(apps.of_keys([], true)), ["b"]);
        // Another app of the name "a": the old key no longer finds it.
        let a2 = app("a", "0000000000cc", 0);
        apps.insert(a2.clone());
        assert!(apps.of_keys([&a.storage_key()], false).is_empty());
        assert_eq!(names(apps.of_keys([&a2.storage_key()], false)), ["a"]);
        // "b" loses its minimum: no longer kept.
        apps.insert(app("b", "0000000000bb", 0));
        assert!(apps.of_keys([], true).is_empty());
        apps.remove("a");
        assert!(apps.of_keys([&a2.storage_key()], true).is_empty());
        assert_eq!(apps.all().len(), 1);
    }
}
