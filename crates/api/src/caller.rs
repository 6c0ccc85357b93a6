//! The auth model: who sends a request ([`Caller`]) and how a bearer token becomes one
//! ([`Authenticator`]).
//!
//! - The **admin** token (`<data-dir>/admin.token`) sees and changes everything: every app
//!   (a tenant's or its own), tenants and their tokens, host directories as code.
//! - A **tenant**'s token sees and changes only the apps whose [`App::tenant`] is its tenant:
//!   their settings, releases, logs, metrics, events, instances and service level. Another
//!   tenant's app is answered exactly as an app that does not exist (404), in lists too.
//!   Tenant tokens cannot manage tenants or tokens, deploy a directory of the server, or give
//!   an app settings that weaken its isolation from the host (403, see
//!   [`Caller::require_admin`]).
//!
//! Anything that serves requests (the API's routes, a dashboard, a metrics endpoint) resolves
//! the caller once with [`Authenticator::caller`] and asks it what it may see
//! ([`Caller::sees`]).

use std::sync::Arc;

use hako_model::{ADMIN_ACTOR, App, TokenRecord};
use hako_store::{Store, StoreExt, keys};

use crate::error::ApiError;

/// Who sent a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The admin token.
    Admin,
    /// A tenant's token.
    Tenant(TokenRecord),
}

impl Caller {
    /// The tenant whose token this is; `None` for the admin.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            Caller::Admin => None,
            Caller::Tenant(t) => Some(&t.tenant),
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
        }
    }

    /// May this caller see (and change) `app`? The admin sees every app; a tenant only its own.
    pub fn sees(&self, app: &App) -> bool {
        self.sees_tenant(app.tenant.as_deref())
    }

    /// May this caller see what belongs to `owner` (a tenant's name; `None`: the admin's)?
    pub fn sees_tenant(&self, owner: Option<&str>) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Tenant(t) => owner == Some(t.tenant.as_str()),
        }
    }

    /// `Ok` for the admin; a 403 saying that `what` needs the admin token otherwise.
    pub fn require_admin(&self, what: &str) -> Result<(), ApiError> {
        match self {
            Caller::Admin => Ok(()),
            Caller::Tenant(t) => Err(ApiError::Forbidden(format!(
                "{what} needs the admin token; this is tenant {:?}'s token {:?}",
                t.tenant, t.name
            ))),
        }
    }
}

/// Turns a bearer token into a [`Caller`]: the admin token (compared in constant time), or a
/// tenant token found by its hash in the store. A revoked token (its record deleted) is
/// refused at once: nothing is cached.
#[derive(Clone)]
pub struct Authenticator {
    admin_token: String,
    store: Arc<dyn Store>,
}

impl Authenticator {
    /// Authenticates against `admin_token` and the tenant tokens in `store`.
    pub fn new(admin_token: String, store: Arc<dyn Store>) -> Authenticator {
        Authenticator { admin_token, store }
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

    /// The caller holding `token`; 401 if it is neither the admin's nor a live tenant token.
    pub async fn caller(&self, token: &str) -> Result<Caller, ApiError> {
        if crate::token::same(token, &self.admin_token) {
            return Ok(Caller::Admin);
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

    #[test]
    fn who_sees_what() {
        let acme = tenant("acme");
        assert!(acme.sees_tenant(Some("acme")));
        assert!(!acme.sees_tenant(Some("other")));
        assert!(!acme.sees_tenant(None), "the admin's apps are the admin's");
        assert!(Caller::Admin.sees_tenant(Some("acme")));
        assert!(Caller::Admin.sees_tenant(None));
        assert_eq!(acme.actor(), "acme/ci");
        assert_eq!(Caller::Admin.actor(), "admin");
        assert_eq!(acme.tenant(), Some("acme"));
        Caller::Admin.require_admin("x").unwrap();
        let err = acme.require_admin("managing tenants").unwrap_err();
        assert_eq!(err.status(), axum::http::StatusCode::FORBIDDEN);
        assert!(err.to_string().contains("needs the admin token"), "{err}");
    }

    #[tokio::test]
    async fn tokens_resolve_to_callers() {
        let store: Arc<dyn Store> =
            Arc::new(hako_store::EmbeddedStore::open_in_memory().await.unwrap());
        let admin = "a".repeat(64);
        let auth = Authenticator::new(admin.clone(), store.clone());
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
