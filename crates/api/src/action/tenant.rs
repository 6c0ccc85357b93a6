//! What a request about tenants and their tokens asks for (the admin's `hako tenant …` and
//! `hako token …`), parsed and checked, and what the engine answers.

use hako_model::{
    Quota, QuotaPatch, Tenant, TokenRecord, Usage, validate_tenant_name, validate_token_name,
};

use crate::error::ApiError;

/// One thing asked about tenants. Names are checked before an action is built.
#[derive(Debug, Clone, PartialEq)]
pub enum TenantAction {
    /// Every tenant, with what its apps hold.
    List,
    /// A new tenant with a quota.
    Create {
        /// Its name.
        name: String,
        /// Its bounds.
        quota: Quota,
    },
    /// One tenant, with what its apps hold (a tenant's token may read its own).
    Show(String),
    /// Change a tenant's quota.
    Update {
        /// The tenant.
        name: String,
        /// The bounds to change.
        patch: QuotaPatch,
    },
    /// Delete a tenant that has no apps left, with all its tokens.
    Delete(String),
    /// A tenant's own events (quota and token changes, who made them), oldest first (a
    /// tenant's token may read its own).
    Events {
        /// The tenant.
        name: String,
        /// At most this many, the latest.
        limit: usize,
    },
    /// A tenant's tokens (their records: never the tokens).
    ListTokens(String),
    /// A new token for a tenant, shown once.
    CreateToken {
        /// The tenant.
        tenant: String,
        /// Its name (`token-N` if not given).
        name: Option<String>,
    },
    /// Revoke a tenant's token: it stops working at once.
    RevokeToken {
        /// The tenant.
        tenant: String,
        /// The token's name.
        name: String,
    },
}

/// A tenant as the API shows it: its record and what its apps hold now.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TenantInfo {
    /// The stored tenant.
    #[serde(flatten)]
    pub tenant: Tenant,
    /// What its apps hold together, in the quota's terms.
    pub usage: Usage,
}

/// A token just made: the only time the token itself is shown.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewToken {
    /// The token to hand to the site owner (`HAKO_TOKEN`).
    pub token: String,
    /// Its record as lists show it.
    #[serde(flatten)]
    pub record: TokenRecord,
}

/// Checks a tenant name taken from a path or query.
pub fn check_tenant(name: &str) -> Result<String, ApiError> {
    validate_tenant_name(name)?;
    Ok(name.to_string())
}

/// Checks a token name taken from a path.
pub fn check_token(name: &str) -> Result<String, ApiError> {
    validate_token_name(name)?;
    Ok(name.to_string())
}

/// Parses `POST /v1/tenants`: `{"name": "acme", "quota": {"max_apps": 3, …}}` (`quota`
/// optional: no bounds).
pub fn parse_create(body: &[u8]) -> Result<TenantAction, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Create {
        name: String,
        #[serde(default)]
        quota: Quota,
    }
    let c: Create = serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "a new tenant is {{\"name\": \"acme\", \"quota\": {{\"max_apps\": 3, \"max_memory\": \"2GiB\", \"max_instances\": 8, \"max_release_size\": \"100MiB\"}}}}: {e}"
        ))
    })?;
    Ok(TenantAction::Create {
        name: check_tenant(&c.name)?,
        quota: c.quota,
    })
}

/// Parses `PATCH /v1/tenants/NAME`: the quota fields to change (`null` removes a bound).
pub fn parse_quota_patch(body: &[u8]) -> Result<QuotaPatch, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "a quota change is an object of max_apps, max_memory, max_instances, max_release_size (null removes a bound): {e}"
        ))
    })
}

/// Parses `POST /v1/tenants/NAME/tokens`: `{"name": "ci"}` or `{}` (or an empty body).
pub fn parse_new_token(body: &[u8]) -> Result<Option<String>, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct New {
        #[serde(default)]
        name: Option<String>,
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let n: New = serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "a new token is {{\"name\": \"ci\"}} (or {{}} for a numbered name): {e}"
        ))
    })?;
    n.name.as_deref().map(check_token).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_parse_and_check_names() {
        let a =
            parse_create(br#"{"name": "acme", "quota": {"max_apps": 2, "max_memory": "1GiB"}}"#)
                .unwrap();
        let TenantAction::Create { name, quota } = a else {
            panic!("{a:?}")
        };
        assert_eq!(name, "acme");
        assert_eq!(quota.max_apps, Some(2));
        assert_eq!(quota.max_memory.unwrap().0, 1 << 30);
        assert!(
            parse_create(br#"{"name": "acme"}"#).is_ok(),
            "no quota: no bounds"
        );
        for bad in [
            &br#"{"name": "Acme"}"#[..],
            br#"{"name": "admin"}"#,
            br#"{"name": "acme", "quota": {"max_aps": 1}}"#,
            br#"{"name": "acme", "extra": 1}"#,
            b"[]",
        ] {
            let err = parse_create(bad).unwrap_err();
            assert!(matches!(err, ApiError::BadRequest(_)), "{err:?}");
        }
    }

    #[test]
    fn token_bodies() {
        assert_eq!(parse_new_token(b"").unwrap(), None);
        assert_eq!(parse_new_token(b"{}").unwrap(), None);
        assert_eq!(
            parse_new_token(br#"{"name": "ci"}"#).unwrap().as_deref(),
            Some("ci")
        );
        assert!(parse_new_token(br#"{"name": "C I"}"#).is_err());
        assert!(parse_new_token(br#"{"tenant": "x"}"#).is_err());
        assert!(check_token("ci-2").is_ok());
        assert!(check_tenant("admin").is_err());
    }
}
