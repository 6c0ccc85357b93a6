//! The apps the daemon serves, as last read from the store: the one copy every loop reads.
//! Only the store watch ([`crate::reconcile`]) changes it.
//!
//! Loops that tick often copy only the apps they act on ([`Apps::select`]): with 10,000 apps
//! a copy of every app per tick was most of the daemon's time while instances came and went.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use hako_model::App;

/// The current app of each name.
#[derive(Debug, Default)]
pub(crate) struct Apps(RwLock<HashMap<String, App>>, Copies);

/// Apps copied out so far (the work a loop's tick does, for tests).
#[derive(Debug, Default)]
struct Copies(AtomicU64);

impl Apps {
    pub(crate) fn get(&self, name: &str) -> Option<App> {
        self.0.read().expect("apps lock").get(name).cloned()
    }

    /// True while `app` (this very app: same name and uid) is current.
    pub(crate) fn is_current(&self, app: &App) -> bool {
        self.0
            .read()
            .expect("apps lock")
            .get(&app.spec.name)
            .is_some_and(|a| a.uid == app.uid)
    }

    pub(crate) fn all(&self) -> Vec<App> {
        let all: Vec<App> = self
            .0
            .read()
            .expect("apps lock")
            .values()
            .cloned()
            .collect();
        self.copied(all.len());
        all
    }

    /// Copies of the apps `keep` picks (looked at in place: only those are copied).
    pub(crate) fn select(&self, keep: impl Fn(&App) -> bool) -> Vec<App> {
        let some: Vec<App> = self
            .0
            .read()
            .expect("apps lock")
            .values()
            .filter(|a| keep(a))
            .cloned()
            .collect();
        self.copied(some.len());
        some
    }

    fn copied(&self, n: usize) {
        (self.1).0.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Apps copied out by [`Apps::all`] and [`Apps::select`] so far.
    #[cfg(test)]
    pub(crate) fn copies(&self) -> u64 {
        (self.1).0.load(Ordering::Relaxed)
    }

    /// Sets the current app of its name; returns the one it replaces.
    pub(crate) fn insert(&self, app: App) -> Option<App> {
        self.0
            .write()
            .expect("apps lock")
            .insert(app.spec.name.clone(), app)
    }

    pub(crate) fn remove(&self, name: &str) -> Option<App> {
        self.0.write().expect("apps lock").remove(name)
    }
}
