//! The auth model, in one place: who sends a request ([`Caller`]), how a token becomes one
//! ([`Authenticator`]), and what a caller may see ([`Caller::can_see`], [`Scope`]).
//!
//! - The **admin** token (`<data-dir>/admin.token`) sees and changes everything: every app
//!   (a tenant's or its own), tenants and their tokens, the cluster's nodes, host directories
//!   as code, the node's own figures.
//! - A **tenant**'s token sees and changes only the apps whose [`App::tenant`] is its tenant:
//!   their settings, releases, certificates, checkpoints, logs, metrics, events, instances
//!   and service level — through the API, `GET /metrics` and the dashboard alike. Another
//!   tenant's app is answered exactly as an app that does not exist (404), and left out of
//!   lists. Tenant tokens cannot manage tenants, tokens or nodes, deploy a directory of the
//!   server, give an app settings that weaken its isolation from the host, or see the node's
//!   own figures (403 where they ask, see [`Caller::require_admin`]).
//! - The **metrics** token (`<data-dir>/metrics.token`) reads `GET /metrics` and nothing else
//!   (every app's figures and the node's), for a Prometheus server that should not be able to
//!   change anything; anywhere else it is a 403.
//!
//! Anything that serves requests (the API's routes, the dashboard, the metrics endpoint)
//! resolves the caller once with [`Authenticator::caller`] — the token is checked again on
//! every request, so a revoked token stops working at once — and asks it what it may see.

use std::collections::BTreeSet;
use std::sync::Arc;

use hako_model::{ADMIN_ACTOR, App, TokenRecord};
use hako_store::{Store, StoreExt, keys};

use crate::error::ApiError;

/// Who sent a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The admin token: every app, every route.
    Admin,
    /// A tenant's token: its tenant's apps.
    Tenant(TokenRecord),
    /// The metrics token: `GET /metrics` only, every app's metrics and the node's.
    Metrics,
}

/// The actor of the metrics token (it never changes anything, so no event names it).
pub const METRICS_ACTOR: &str = "metrics";

impl Caller {
    /// The tenant whose token this is; `None` for the admin and metrics tokens.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            Caller::Tenant(t) => Some(&t.tenant),
            Caller::Admin | Caller::Metrics => None,
        }
    }

    /// True for the admin token.
    pub fn is_admin(&self) -> bool {
        matches!(self, Caller::Admin)
    }

    /// Who acts, as events record it: `admin` or `TENANT/TOKEN`.
    pub fn actor(&self) -> String {
        match self {
            Caller::Admin => ADMIN_ACTOR.to_string(),
            Caller::Tenant(t) => t.actor(),
            Caller::Metrics => METRICS_ACTOR.to_string(),
        }
    }

    /// May this caller see `app` (its settings, instances, events, logs, metrics)? The admin
    /// and metrics tokens see every app; a tenant only its own. Routes that show one app
    /// answer 404 when not, as for an app that does not exist; lists leave it out.
    pub fn can_see(&self, app: &App) -> bool {
        self.can_see_tenant(app.tenant.as_deref())
    }

    /// May this caller see what belongs to `owner` (a tenant's name; `None`: the admin's)?
    pub fn can_see_tenant(&self, owner: Option<&str>) -> bool {
        match self {
            Caller::Admin | Caller::Metrics => true,
            Caller::Tenant(t) => owner == Some(t.tenant.as_str()),
        }
    }

    /// May this caller use the API under `/v1` and the dashboard? The metrics token may not.
    pub fn may_use_api(&self) -> bool {
        matches!(self, Caller::Admin | Caller::Tenant(_))
    }

    /// May this caller see the node's own figures (capacity, usage, every instance's memory,
    /// store and runtime errors, checkpoint disk use), not only its apps'? Not a tenant: those
    /// figures are every tenant's together.
    pub fn sees_node(&self) -> bool {
        matches!(self, Caller::Admin | Caller::Metrics)
    }

    /// `Ok` for the admin; a 403 saying that `what` needs the admin token otherwise.
    pub fn require_admin(&self, what: &str) -> Result<(), ApiError> {
        match self {
            Caller::Admin => Ok(()),
            Caller::Tenant(t) => Err(ApiError::Forbidden(format!(
                "{what} needs the admin token; this is tenant {:?}'s token {:?}",
                t.tenant, t.name
            ))),
            Caller::Metrics => Err(ApiError::metrics_only()),
        }
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

/// Turns a token into a [`Caller`]: the admin or metrics token (compared in constant time),
/// or a tenant token found by its hash in the store. A revoked token (its record deleted) is
/// refused at once: nothing is cached.
#[derive(Clone)]
pub struct Authenticator {
    admin_token: String,
    metrics_token: Option<String>,
    store: Arc<dyn Store>,
}

impl Authenticator {
    /// Authenticates against `admin_token`, `metrics_token` (if the daemon has one) and the
    /// tenant tokens in `store`.
    pub fn new(
        admin_token: String,
        metrics_token: Option<String>,
        store: Arc<dyn Store>,
    ) -> Authenticator {
        Authenticator {
            admin_token,
            metrics_token,
            store,
        }
    }

    /// The caller of a request carrying `Authorization: <value>`; 401 for a missing, malformed
    /// or unknown token.
    pub async fn from_header(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        let token = authorization
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(ApiError::Unauthorized)?;
        self.caller(token).await
    }

    /// The caller holding `token`; 401 if it is neither the admin's, the metrics token nor a
    /// live tenant token.
    pub async fn caller(&self, token: &str) -> Result<Caller, ApiError> {
        if crate::token::same(token, &self.admin_token) {
            return Ok(Caller::Admin);
        }
        if let Some(m) = &self.metrics_token
            && crate::token::same(token, m)
        {
            return Ok(Caller::Metrics);
        }
        if !token.starts_with(crate::token::TENANT_TOKEN_PREFIX) {
            return Err(ApiError::Unauthorized);
        }
        let key = keys::token(&crate::token::hash(token));
        match self.store.get_json::<TokenRecord>(&key).await? {
            Some(record) => Ok(Caller::Tenant(record)),
            None => Err(ApiError::Unauthorized),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(t: &str) -> Caller {
        Caller::Tenant(TokenRecord {
            name: "ci".into(),
            tenant: t.into(),
            created_unix: 0,
            hint: String::new(),
        })
    }

    fn app(name: &str, owner: Option<&str>) -> App {
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
            tenant: owner.map(str::to_string),
        }
    }

    #[test]
    fn who_sees_what() {
        let acme = tenant("acme");
        assert!(acme.can_see_tenant(Some("acme")));
        assert!(!acme.can_see_tenant(Some("other")));
        assert!(
            !acme.can_see_tenant(None),
            "the admin's apps are the admin's"
        );
        assert!(Caller::Admin.can_see_tenant(Some("acme")));
        assert!(Caller::Admin.can_see_tenant(None));
        assert_eq!(acme.actor(), "acme/ci");
        assert_eq!(Caller::Admin.actor(), "admin");
        assert_eq!(acme.tenant(), Some("acme"));
        Caller::Admin.require_admin("x").unwrap();
        let err = acme.require_admin("managing tenants").unwrap_err();
        assert_eq!(err.status(), axum::http::StatusCode::FORBIDDEN);
        assert!(err.to_string().contains("needs the admin token"), "{err}");
        let err = Caller::Metrics
            .require_admin("managing tenants")
            .unwrap_err();
        assert!(err.to_string().contains("metrics token"), "{err}");
    }

    #[test]
    fn scopes_admin_everything_metrics_reads_everything_a_tenant_its_own() {
        let apps = [
            app("a", None),
            app("b", Some("acme")),
            app("c", Some("other")),
        ];
        let s = Caller::Admin.scope(&apps);
        assert_eq!(s.apps.len(), 3);
        assert!(s.node && s.has_app("a") && !s.has_app("d"));
        assert!(Caller::Admin.may_use_api());
        assert!(!Caller::Metrics.may_use_api());
        assert_eq!(Caller::Metrics.scope(&apps), s);
        let acme = tenant("acme");
        assert!(acme.may_use_api());
        let mine = acme.scope(&apps);
        assert_eq!(mine.apps.iter().collect::<Vec<_>>(), ["b"]);
        assert!(!mine.node, "a tenant does not see the node's figures");
    }

    #[tokio::test]
    async fn tokens_resolve_to_callers() {
        let store: Arc<dyn Store> =
            Arc::new(hako_store::EmbeddedStore::open_in_memory().await.unwrap());
        let admin = "a".repeat(64);
        let metrics = "b".repeat(64);
        let auth = Authenticator::new(admin.clone(), Some(metrics.clone()), store.clone());
        let token = crate::token::new_tenant_token().unwrap();
        let record = TokenRecord {
            name: "ci".into(),
            tenant: "acme".into(),
            created_unix: 1,
            hint: crate::token::hint(&token),
        };
        store
            .put_json(&keys::token(&crate::token::hash(&token)), &record)
            .await
            .unwrap();
        assert_eq!(auth.caller(&admin).await.unwrap(), Caller::Admin);
        assert_eq!(auth.caller(&metrics).await.unwrap(), Caller::Metrics);
        assert_eq!(
            auth.from_header(Some(&format!("Bearer {token}")))
                .await
                .unwrap(),
            Caller::Tenant(record)
        );
        for bad in [
            None,
            Some("Bearer "),
            Some("Bearer hkt_x"),
            Some(token.as_str()),
        ] {
            assert_eq!(
                auth.from_header(bad).await.unwrap_err(),
                ApiError::Unauthorized,
                "{bad:?}"
            );
        }
        // Without a metrics token, that token is nobody's.
        let no_metrics = Authenticator::new(admin.clone(), None, store.clone());
        assert_eq!(
            no_metrics.caller(&metrics).await.unwrap_err(),
            ApiError::Unauthorized
        );
        // Revoked: the record is gone, the token with it.
        store
            .delete(&keys::token(&crate::token::hash(&token)))
            .await
            .unwrap();
        assert_eq!(
            auth.caller(&token).await.unwrap_err(),
            ApiError::Unauthorized
        );
    }
}
