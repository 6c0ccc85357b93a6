//! Who is asking: what the token a request carries makes of its sender, and what that sender
//! may see. Every route that shows apps or their data asks [`Caller::can_see`] — the one
//! check to point at when a caller may see only some apps (a tenant's token sees its own).
//!
//! Tokens today: the admin token (`<data-dir>/admin.token`: everything) and the metrics token
//! (`<data-dir>/metrics.token`: reads `GET /metrics` and nothing else, for a Prometheus
//! server that should not be able to change anything).

use std::collections::BTreeSet;

use hako_model::App;

/// The sender of a request, from its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The admin token: every app, every route.
    Admin,
    /// The metrics token: `GET /metrics` only, every app's metrics and the node's.
    Metrics,
}

impl Caller {
    /// May this caller see `app` (its settings, instances, events, logs and metrics)? Routes
    /// that show one app answer 404 when not, as for an app that does not exist; lists leave
    /// it out.
    pub fn can_see(&self, app: &App) -> bool {
        match self {
            Caller::Admin | Caller::Metrics => {
                let _ = app;
                true
            }
        }
    }

    /// May this caller use the API under `/v1` and the dashboard (the metrics token may not)?
    pub fn may_use_api(&self) -> bool {
        matches!(self, Caller::Admin)
    }

    /// May this caller see the node's own figures (capacity, usage, store and runtime
    /// errors), not only apps'?
    pub fn sees_node(&self) -> bool {
        matches!(self, Caller::Admin | Caller::Metrics)
    }

    /// What of the daemon this caller may see, given every app there is.
    pub fn scope<'a>(&self, apps: impl IntoIterator<Item = &'a App>) -> Scope {
        Scope {
            apps: apps
                .into_iter()
                .filter(|a| self.can_see(a))
                .map(|a| a.spec.name.clone())
                .collect(),
            node: self.sees_node(),
        }
    }
}

/// What a caller may see of the daemon: some apps by name, and the node's own figures or not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// The apps (by name) whose figures may be shown.
    pub apps: BTreeSet<String>,
    /// Whether node-wide figures may be shown.
    pub node: bool,
}

impl Scope {
    /// Everything: every app named, and the node.
    pub fn everything(apps: impl IntoIterator<Item = String>) -> Scope {
        Scope {
            apps: apps.into_iter().collect(),
            node: true,
        }
    }

    /// Is this app's data in scope?
    pub fn has_app(&self, name: &str) -> bool {
        self.apps.contains(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str) -> App {
        let spec: hako_model::AppSpec = serde_json::from_value(serde_json::json!({
            "name": name, "hosts": [format!("{name}.example")], "image": "php", "cmd": "x"
        }))
        .unwrap();
        App {
            spec,
            uid: String::new(),
            release: None,
            generation: 0,
            created_unix: 0,
            updated_unix: 0,
            database_grant: None,
        }
    }

    #[test]
    fn admin_sees_all_and_the_metrics_token_only_reads_metrics() {
        let apps = [app("a"), app("b")];
        let s = Caller::Admin.scope(&apps);
        assert_eq!(s.apps.len(), 2);
        assert!(s.node && s.has_app("a") && !s.has_app("c"));
        assert!(Caller::Admin.may_use_api());
        assert!(!Caller::Metrics.may_use_api());
        assert!(Caller::Metrics.scope(&apps).has_app("b"));
    }
}
