//! Tenants and their tokens: the admin's to manage (a tenant's token may read its own
//! tenant: its quota and what its apps hold). A token is shown once, when made, and stored as
//! its hash only; revoking deletes that record, so the token stops working at the next
//! request.

use hako_model::{App, Event, EventKind, QuotaPatch, Tenant, TokenRecord, Usage, now_unix};
use hako_store::{Compare, StoreError, StoreExt, Txn, TxnOp, keys};

use super::Engine;
use super::access::no_tenant;
use crate::action::tenant::{NewToken, TenantAction, TenantInfo};
use crate::action::{MAX_EVENTS, Reply};
use crate::caller::Caller;
use crate::error::ApiError;

const MANAGING: &str = "managing tenants and tokens";

impl Engine {
    pub(super) async fn tenants(
        &self,
        caller: &Caller,
        action: TenantAction,
    ) -> Result<Reply, ApiError> {
        match &action {
            // A tenant reads its own tenant; any other name is answered as a missing one.
            TenantAction::Show(name) | TenantAction::Events { name, .. }
                if !caller.can_see_tenant(Some(name)) =>
            {
                return Err(no_tenant(name));
            }
            TenantAction::Show(name) => {
                let tenant = self.tenant_record(name).await?;
                return Ok(Reply::Tenant(self.info(tenant).await?));
            }
            TenantAction::Events { name, limit } => {
                return Ok(Reply::Events(
                    self.tenant_events(caller, name, *limit).await?,
                ));
            }
            _ => caller.require_admin(MANAGING)?,
        }
        match action {
            TenantAction::Show(_) | TenantAction::Events { .. } => {
                unreachable!("answered above")
            }
            TenantAction::List => {
                let mut out = Vec::new();
                for (_, t) in self.store.range_json::<Tenant>(keys::TENANTS).await? {
                    out.push(self.info(t).await?);
                }
                Ok(Reply::Tenants(out))
            }
            TenantAction::Create { name, quota } => {
                let _guard = self.app_writes.lock().await;
                let now = now_unix();
                let tenant = Tenant {
                    name: name.clone(),
                    quota,
                    created_unix: now,
                    updated_unix: now,
                };
                match self.store.create_json(&keys::tenant(&name), &tenant).await {
                    Ok(_) => {}
                    Err(StoreError::AlreadyExists { .. }) => {
                        return Err(ApiError::Conflict(format!(
                            "tenant {name:?} already exists: pick another name, or change its quota with 'hako tenant update'"
                        )));
                    }
                    Err(e) => return Err(e.into()),
                }
                let reason = format!("created through the API: {}", quota_words(&tenant));
                self.record_tenant(caller, &name, EventKind::TenantCreated, reason)
                    .await;
                Ok(Reply::TenantCreated(self.info(tenant).await?))
            }
            TenantAction::Update { name, patch } => {
                let _guard = self.app_writes.lock().await;
                let before = self.tenant_record(&name).await?;
                let updated = self.update_quota(&name, &patch).await?;
                if updated.quota != before.quota {
                    let reason =
                        format!("quota changed through the API: {}", quota_words(&updated));
                    self.record_tenant(caller, &name, EventKind::TenantUpdated, reason)
                        .await;
                }
                Ok(Reply::Tenant(self.info(updated).await?))
            }
            TenantAction::Delete(name) => {
                let _guard = self.app_writes.lock().await;
                let revoked = self.delete_tenant(&name).await?;
                let reason = format!("deleted through the API; its tokens revoked: {revoked}");
                self.record_tenant(caller, &name, EventKind::TenantDeleted, reason)
                    .await;
                Ok(Reply::Deleted)
            }
            TenantAction::ListTokens(tenant) => {
                self.tenant_record(&tenant).await?;
                Ok(Reply::Tokens(self.tokens_of(&tenant).await?))
            }
            TenantAction::CreateToken { tenant, name } => {
                let _guard = self.app_writes.lock().await;
                let made = self.create_token(&tenant, name).await?;
                let reason = format!(
                    "token {} made through the API (starts {})",
                    made.record.name, made.record.hint
                );
                self.record_tenant(caller, &tenant, EventKind::TokenCreated, reason)
                    .await;
                Ok(Reply::TokenCreated(made))
            }
            TenantAction::RevokeToken { tenant, name } => {
                let _guard = self.app_writes.lock().await;
                self.tenant_record(&tenant).await?;
                let key = self
                    .token_key(&tenant, &name)
                    .await?
                    .ok_or_else(|| no_token(&tenant, &name))?;
                self.store.delete(&key).await?;
                let reason = format!("token {name} revoked through the API");
                self.record_tenant(caller, &tenant, EventKind::TokenRevoked, reason)
                    .await;
                Ok(Reply::Deleted)
            }
        }
    }

    /// A tenant with what its apps hold now.
    async fn info(&self, tenant: Tenant) -> Result<TenantInfo, ApiError> {
        let apps: Vec<App> = self
            .list_apps()
            .await?
            .into_iter()
            .filter(|a| a.tenant.as_deref() == Some(tenant.name.as_str()))
            .collect();
        Ok(TenantInfo {
            usage: Usage::of(apps.iter().map(|a| &a.spec)),
            tenant,
        })
    }

    async fn update_quota(&self, name: &str, patch: &QuotaPatch) -> Result<Tenant, ApiError> {
        let updated = self
            .store
            .update_json(&keys::tenant(name), |t: &mut Tenant| {
                let quota = patch.apply(&t.quota);
                if quota != t.quota {
                    t.quota = quota;
                    t.updated_unix = now_unix();
                }
            })
            .await
            .map_err(|e| match e {
                StoreError::NotFound { .. } => no_tenant(name),
                e => e.into(),
            })?;
        Ok(updated.value)
    }

    /// Deletes a tenant and its tokens in one step; refused while it owns apps (their data
    /// would have no owner but the admin). Returns the names of the tokens revoked.
    async fn delete_tenant(&self, name: &str) -> Result<String, ApiError> {
        self.tenant_record(name).await?;
        let apps: Vec<String> = self
            .list_apps()
            .await?
            .into_iter()
            .filter(|a| a.tenant.as_deref() == Some(name))
            .map(|a| a.spec.name)
            .collect();
        if !apps.is_empty() {
            return Err(ApiError::Conflict(format!(
                "tenant {name:?} still has {} app(s) ({}): delete them first ('hako app delete')",
                apps.len(),
                apps.join(", ")
            )));
        }
        let key = keys::tenant(name);
        let mut txn = Txn::new()
            .when(Compare::present(&key))
            .and_then(TxnOp::delete(&key));
        let mut revoked = Vec::new();
        for (token_key, t) in self.token_records(name).await? {
            txn = txn.and_then(TxnOp::delete(token_key));
            revoked.push(t.name);
        }
        if !self.store.txn(txn).await?.succeeded {
            return Err(no_tenant(name));
        }
        Ok(if revoked.is_empty() {
            "none".into()
        } else {
            revoked.join(", ")
        })
    }

    /// Records a change to a tenant or its tokens, with who made it, in the tenant's own
    /// events (trimmed to [`MAX_EVENTS`]). A failure is logged: the change is done.
    async fn record_tenant(&self, caller: &Caller, tenant: &str, kind: EventKind, reason: String) {
        let prefix = keys::tenant_events(tenant);
        let event = Event::new("", kind, reason)
            .actor(caller.actor())
            .tenant(Some(tenant));
        tracing::info!(tenant, kind = ?event.kind, actor = ?event.actor, reason = %event.reason, "api action");
        if let Err(e) = self.store.append_json(&prefix, &event).await {
            tracing::warn!(tenant, error = %e, "could not record event");
            return;
        }
        if let Err(e) = self.store.trim(&prefix, MAX_EVENTS).await {
            tracing::warn!(tenant, error = %e, "could not trim events");
        }
    }

    /// A tenant's own latest `limit` events, oldest first. The admin reads them also of a
    /// deleted tenant (until trimmed); the tenant reads those of its account since it was
    /// made, not an earlier account's of the same name.
    async fn tenant_events(
        &self,
        caller: &Caller,
        name: &str,
        limit: usize,
    ) -> Result<Vec<Event>, ApiError> {
        let mut events: Vec<Event> = self
            .store
            .range_json::<Event>(&keys::tenant_events(name))
            .await?
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        if !caller.is_admin() || events.is_empty() {
            self.tenant_record(name).await?;
        }
        if !caller.is_admin() {
            let created = events
                .iter()
                .rposition(|e| e.kind == EventKind::TenantCreated)
                .unwrap_or(0);
            events.drain(..created);
        }
        let skip = events.len().saturating_sub(limit);
        Ok(events.split_off(skip))
    }

    async fn create_token(&self, tenant: &str, name: Option<String>) -> Result<NewToken, ApiError> {
        self.tenant_record(tenant).await?;
        let existing = self.tokens_of(tenant).await?;
        let name = match name {
            Some(n) if existing.iter().any(|t| t.name == n) => {
                return Err(ApiError::Conflict(format!(
                    "tenant {tenant:?} already has a token named {n:?}: pick another name, or revoke it first ('hako token revoke')"
                )));
            }
            Some(n) => n,
            None => (1..)
                .map(|i| format!("token-{i}"))
                .find(|n| existing.iter().all(|t| &t.name != n))
                .expect("a free name"),
        };
        let token = crate::token::new_tenant_token()
            .map_err(|e| ApiError::Internal(format!("no randomness for a token: {e}")))?;
        let record = TokenRecord {
            name,
            tenant: tenant.to_string(),
            created_unix: now_unix(),
            hint: crate::token::hint(&token),
        };
        self.store
            .create_json(&keys::token(&crate::token::hash(&token)), &record)
            .await?;
        Ok(NewToken { token, record })
    }

    /// A tenant's token records with their keys, sorted by name.
    async fn token_records(&self, tenant: &str) -> Result<Vec<(String, TokenRecord)>, ApiError> {
        let mut out: Vec<(String, TokenRecord)> = self
            .store
            .range_json::<TokenRecord>(keys::TOKENS)
            .await?
            .into_iter()
            .filter(|(_, t)| t.tenant == tenant)
            .collect();
        out.sort_by(|a, b| a.1.name.cmp(&b.1.name));
        Ok(out)
    }

    async fn tokens_of(&self, tenant: &str) -> Result<Vec<TokenRecord>, ApiError> {
        Ok(self
            .token_records(tenant)
            .await?
            .into_iter()
            .map(|(_, t)| t)
            .collect())
    }

    async fn token_key(&self, tenant: &str, name: &str) -> Result<Option<String>, ApiError> {
        Ok(self
            .token_records(tenant)
            .await?
            .into_iter()
            .find(|(_, t)| t.name == name)
            .map(|(k, _)| k))
    }
}

/// A tenant's quota in words, for its events.
fn quota_words(t: &Tenant) -> String {
    let q = &t.quota;
    let b = |v: Option<String>| v.unwrap_or_else(|| "none".into());
    format!(
        "max apps {}, max memory {}, max instances {}, max release size {}",
        b(q.max_apps.map(|v| v.to_string())),
        b(q.max_memory.map(|v| v.to_string())),
        b(q.max_instances.map(|v| v.to_string())),
        b(q.max_release_size.map(|v| v.to_string()))
    )
}

fn no_token(tenant: &str, name: &str) -> ApiError {
    ApiError::NotFound(format!(
        "tenant {tenant:?} has no token named {name:?}: list them with 'hako token list --tenant {tenant}'"
    ))
}
