//! The apps the daemon serves, as last read from the store: the one copy every loop reads.
//! Only the store watch ([`crate::reconcile`]) changes it.

use std::collections::HashMap;
use std::sync::RwLock;

use hako_model::App;

/// The current app of each name.
#[derive(Debug, Default)]
pub(crate) struct Apps(RwLock<HashMap<String, App>>);

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
        self.0
            .read()
            .expect("apps lock")
            .values()
            .cloned()
            .collect()
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
