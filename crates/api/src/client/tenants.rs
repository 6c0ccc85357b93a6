//! The client's tenant and token calls (the admin's `hako tenant …` and `hako token …`; a
//! tenant's token may read its own tenant).

use hako_model::{Quota, QuotaPatch, TokenRecord};

use super::{Client, ClientError, NewToken, TenantInfo};

impl Client {
    /// `GET /v1/tenants` (admin).
    pub fn tenants(&self) -> Result<Vec<TenantInfo>, ClientError> {
        self.json(self.get("/v1/tenants").call())
    }

    /// `POST /v1/tenants` (admin): a new tenant with a quota.
    pub fn create_tenant(&self, name: &str, quota: &Quota) -> Result<TenantInfo, ClientError> {
        self.json(
            self.post("/v1/tenants")
                .send_json(serde_json::json!({ "name": name, "quota": quota })),
        )
    }

    /// `GET /v1/tenants/{name}`: a tenant's quota and what its apps hold (the admin, or the
    /// tenant's own token).
    pub fn tenant(&self, name: &str) -> Result<TenantInfo, ClientError> {
        let path = tenant_path(name, "")?;
        self.json(self.get(&path).call())
    }

    /// `PATCH /v1/tenants/{name}` (admin): changes the quota's bounds set in `patch`.
    pub fn update_tenant(&self, name: &str, patch: &QuotaPatch) -> Result<TenantInfo, ClientError> {
        let path = tenant_path(name, "")?;
        self.json(
            self.with_token(self.agent.patch(self.url(&path)))
                .send_json(patch),
        )
    }

    /// `DELETE /v1/tenants/{name}` (admin): a tenant without apps, and all its tokens.
    pub fn delete_tenant(&self, name: &str) -> Result<(), ClientError> {
        let path = tenant_path(name, "")?;
        self.empty(self.with_token(self.agent.delete(self.url(&path))).call())
    }

    /// `GET /v1/tenants/{name}/events`: changes to the tenant and its tokens, who made them
    /// (the admin, or the tenant's own token).
    pub fn tenant_events(&self, name: &str) -> Result<Vec<hako_model::Event>, ClientError> {
        let path = tenant_path(name, "/events")?;
        self.json(self.get(&path).query("limit", "1000").call())
    }

    /// `GET /v1/tenants/{name}/tokens` (admin): the records, never the tokens.
    pub fn tokens(&self, tenant: &str) -> Result<Vec<TokenRecord>, ClientError> {
        let path = tenant_path(tenant, "/tokens")?;
        self.json(self.get(&path).call())
    }

    /// `POST /v1/tenants/{name}/tokens` (admin): a new token, shown this once.
    pub fn create_token(&self, tenant: &str, name: Option<&str>) -> Result<NewToken, ClientError> {
        let path = tenant_path(tenant, "/tokens")?;
        self.json(
            self.post(&path)
                .send_json(serde_json::json!({ "name": name })),
        )
    }

    /// `DELETE /v1/tenants/{tenant}/tokens/{name}` (admin): the token stops working at once.
    pub fn revoke_token(&self, tenant: &str, name: &str) -> Result<(), ClientError> {
        hako_model::validate_token_name(name).map_err(|e| ClientError::Invalid(e.to_string()))?;
        let path = tenant_path(tenant, &format!("/tokens/{name}"))?;
        self.empty(self.with_token(self.agent.delete(self.url(&path))).call())
    }
}

fn tenant_path(name: &str, rest: &str) -> Result<String, ClientError> {
    hako_model::validate_tenant_name(name).map_err(|e| ClientError::Invalid(e.to_string()))?;
    Ok(format!("/v1/tenants/{name}{rest}"))
}
