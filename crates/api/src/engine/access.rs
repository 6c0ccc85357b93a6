//! What a caller may do to apps beyond seeing them: whose app a create makes, the owning
//! tenant's quota, the settings only the admin may give, and when an app name may pass from
//! one owner to another.

use hako_model::{
    App, AppNetwork, AppSpec, DatabaseGrant, Event, KeptDatabase, SeccompProfile, Tenant, Usage,
};
use hako_store::{StoreExt, keys};

use super::Engine;
use crate::caller::Caller;
use crate::error::ApiError;

impl Engine {
    /// The tenant a new app of `caller` belongs to: a tenant's token makes apps of its own
    /// tenant only; the admin makes apps of any existing tenant, or of its own (`None`).
    pub(super) async fn owner_for_create(
        &self,
        caller: &Caller,
        asked: Option<String>,
    ) -> Result<Option<String>, ApiError> {
        match (caller.tenant(), asked) {
            (Some(own), None) => Ok(Some(own.to_string())),
            (Some(own), Some(t)) if t == own => Ok(Some(t)),
            (Some(_), Some(_)) => Err(ApiError::Forbidden(
                "a tenant's token makes apps of its own tenant only: leave out the tenant".into(),
            )),
            (None, None) => Ok(None),
            (None, Some(t)) => {
                self.tenant_record(&t).await?;
                Ok(Some(t))
            }
        }
    }

    /// A stored tenant; 404 if there is none.
    pub(super) async fn tenant_record(&self, name: &str) -> Result<Tenant, ApiError> {
        self.store
            .get_json::<Tenant>(&keys::tenant(name))
            .await?
            .ok_or_else(|| no_tenant(name))
    }

    /// Checks that `owner`'s apps stay within its quota when app `name` becomes `new`
    /// (created or changed). The admin's own apps have no quota.
    pub(super) async fn check_quota(
        &self,
        owner: Option<&str>,
        name: &str,
        new: &AppSpec,
    ) -> Result<(), ApiError> {
        let Some(owner) = owner else {
            return Ok(());
        };
        let tenant = self.tenant_record(owner).await?;
        let apps: Vec<App> = self
            .list_apps()
            .await?
            .into_iter()
            .filter(|a| a.tenant.as_deref() == Some(owner))
            .collect();
        let before = Usage::of(apps.iter().map(|a| &a.spec));
        let after = Usage::of(
            apps.iter()
                .map(|a| &a.spec)
                .filter(|s| s.name != name)
                .chain(std::iter::once(new)),
        );
        Ok(tenant.quota.check(owner, &before, &after)?)
    }

    /// The most bytes a release of an app of `owner` may hold, if its tenant bounds them.
    pub(super) async fn release_bound(&self, owner: Option<&str>) -> Result<Option<u64>, ApiError> {
        match owner {
            None => Ok(None),
            Some(t) => Ok(self
                .tenant_record(t)
                .await?
                .quota
                .max_release_size
                .map(|s| s.0)),
        }
    }

    /// Settings that weaken an app's isolation from the host are the admin's to give: the
    /// host's network (the host's own services and every instance's address are reachable
    /// from it) and running without the system-call filter. A tenant's change that keeps
    /// what the admin gave (`current`) passes.
    pub(super) fn check_isolation(
        caller: &Caller,
        spec: &AppSpec,
        current: Option<&AppSpec>,
    ) -> Result<(), ApiError> {
        if spec.network == AppNetwork::Host && current.is_none_or(|c| c.network != AppNetwork::Host)
        {
            caller.require_admin("the host's network (--net host)")?;
        }
        if spec.seccomp == SeccompProfile::Unconfined
            && current.is_none_or(|c| c.seccomp != SeccompProfile::Unconfined)
        {
            caller
                .require_admin("running without the system-call filter (--seccomp unconfined)")?;
        }
        Ok(())
    }

    /// An app name passes to a new owner only once the instances of the app that had it are
    /// gone (a deleted app's instances drain for up to 30 s): until then their events and
    /// instance records carry the name, and would show in the new owner's views. The owner of
    /// the last app of that name is the one its last API event names.
    pub(super) async fn check_name_handover(
        &self,
        name: &str,
        owner: Option<&str>,
    ) -> Result<(), ApiError> {
        if self.backend.instances(Some(name)).await.is_empty() {
            return Ok(());
        }
        let events = self.store.range_json::<Event>(&keys::events(name)).await?;
        let previous = events
            .iter()
            .rev()
            .map(|(_, e)| e)
            .find(|e| e.actor.is_some());
        match previous {
            Some(e) if e.tenant.as_deref() == owner => Ok(()),
            _ => Err(ApiError::Conflict(format!(
                "app name {name:?} is still in use: the instances of an earlier app of that name are stopping; retry in a minute or pick another name"
            ))),
        }
    }

    /// 409 if another app already serves one of `spec`'s hosts. The other app is named only
    /// to a caller who sees it: for a tenant, another tenant's app stays anonymous. The host
    /// index ([`super::hosts`]) names the candidate; reading that one app confirms it, so the
    /// check costs the same with ten apps or ten thousand.
    pub(super) async fn check_hosts(
        &self,
        caller: &Caller,
        spec: &AppSpec,
    ) -> Result<(), ApiError> {
        for host in &spec.hosts {
            let Some(owner) = self.hosts.owner(&*self.store, host).await? else {
                continue;
            };
            if owner == spec.name {
                continue;
            }
            let Some(other) = self.store.get_json::<App>(&keys::app(&owner)).await? else {
                continue; // deleted meanwhile: the index hears of it from its watch
            };
            if !other.spec.hosts.contains(host) {
                continue;
            }
            return Err(ApiError::Conflict(if caller.can_see(&other) {
                format!(
                    "host {host:?} already belongs to app {:?}: remove it there first or pick another host",
                    other.spec.name
                )
            } else {
                format!("host {host:?} is already in use by another app: pick another host")
            }));
        }
        Ok(())
    }
}

impl Engine {
    /// Makes app `name`'s database for `owner`, or takes over the one a deleted app of that
    /// name kept — only if that app was `owner`'s too. A kept database without a record (kept
    /// before tenants existed) is the admin's. Returns the grant and whether it existed. The
    /// record goes once the app is stored ([`Engine::forget_kept_database`]).
    pub(super) async fn provision_database_of(
        &self,
        name: &str,
        owner: Option<&str>,
    ) -> Result<(DatabaseGrant, bool), ApiError> {
        let key = keys::kept_database(name);
        let kept = self.store.get_json::<KeptDatabase>(&key).await?;
        let ours = match &kept {
            Some(k) => k.tenant.as_deref() == owner,
            None => owner.is_none() || !self.backend.database_exists(name).await?,
        };
        if !ours {
            return Err(ApiError::Conflict(format!(
                "a database for app name {name:?} is kept on the server from an earlier app of another owner: pick another app name"
            )));
        }
        Ok(self.backend.provision_database(name).await?)
    }

    /// Once an app holding `name`'s database is stored, no record says the database is kept.
    pub(super) async fn forget_kept_database(&self, name: &str) {
        if let Err(e) = self.store.delete(&keys::kept_database(name)).await {
            tracing::warn!(app = name, error = %e, "cannot remove the kept database's record");
        }
    }
}

/// 404 for a tenant that does not exist.
pub(super) fn no_tenant(name: &str) -> ApiError {
    ApiError::NotFound(format!(
        "tenant {name:?} not found: list tenants with 'hako tenant list'"
    ))
}
