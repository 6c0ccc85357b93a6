//! Tenants: site owners' accounts. A **tenant** owns apps ([`crate::App::tenant`]); its
//! **tokens** see and change only those apps; its [`Quota`] bounds what its apps may hold
//! (how many apps, how many instances, how much memory, how large a release). The admin
//! token (`<data-dir>/admin.token`) belongs to no tenant and sees every app.
//!
//! What is stored: a [`Tenant`] per account and a [`TokenRecord`] per token, the token
//! itself never — only its hash, which is the record's key (see `hako_api::token`).

use serde::{Deserialize, Deserializer};

use crate::app::AppSpec;
use crate::units::{ByteSize, format_size};

/// The word events and logs use for the admin token's actions.
pub const ADMIN_ACTOR: &str = "admin";

/// A site owner's account.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tenant {
    /// `[a-z0-9][a-z0-9-]*`, at most 63 characters, not `admin`.
    pub name: String,
    /// What its apps may hold together.
    #[serde(default)]
    pub quota: Quota,
    pub created_unix: u64,
    pub updated_unix: u64,
}

/// Bounds on what a tenant's apps hold together; `None` is no bound. Checked when an app is
/// created, updated (scaled) or deployed, whoever asks (the admin raises a quota with
/// `hako tenant update`, not by acting past it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Most apps.
    #[serde(default)]
    pub max_apps: Option<u32>,
    /// Most memory of all its apps at their most instances: the sum over its apps of
    /// `memory × (max + warm_pool)`.
    #[serde(default)]
    pub max_memory: Option<ByteSize>,
    /// Most instances of all its apps at once: the sum over its apps of `max + warm_pool`
    /// (a parked warm-pool container holds a cgroup, a process and a veth as an instance does).
    #[serde(default)]
    pub max_instances: Option<u32>,
    /// Largest code release (unpacked bytes of file data), below the node's own bound.
    #[serde(default)]
    pub max_release_size: Option<ByteSize>,
}

/// A change to a [`Quota`]: only the fields present change; `null` removes a bound. Unknown
/// fields are refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaPatch {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "clear"
    )]
    pub max_apps: Option<Option<u32>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "clear"
    )]
    pub max_memory: Option<Option<ByteSize>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "clear"
    )]
    pub max_instances: Option<Option<u32>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "clear"
    )]
    pub max_release_size: Option<Option<ByteSize>>,
}

/// A field that is present holds a value, or `null` to remove the bound.
fn clear<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

impl QuotaPatch {
    /// `quota` with this patch's bounds.
    pub fn apply(&self, quota: &Quota) -> Quota {
        Quota {
            max_apps: self.max_apps.unwrap_or(quota.max_apps),
            max_memory: self.max_memory.unwrap_or(quota.max_memory),
            max_instances: self.max_instances.unwrap_or(quota.max_instances),
            max_release_size: self.max_release_size.unwrap_or(quota.max_release_size),
        }
    }

    /// True if nothing would change.
    pub fn is_empty(&self) -> bool {
        *self == QuotaPatch::default()
    }
}

/// What a tenant's apps hold together, in the quota's terms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    pub apps: u32,
    /// Sum of `max + warm_pool`.
    pub instances: u64,
    /// Sum of `memory × (max + warm_pool)`, in bytes.
    pub memory_bytes: u64,
}

impl Usage {
    /// The usage of a set of apps.
    pub fn of<'a>(specs: impl IntoIterator<Item = &'a AppSpec>) -> Usage {
        specs.into_iter().fold(Usage::default(), |u, s| {
            let slots = u64::from(s.max) + u64::from(s.warm_pool);
            Usage {
                apps: u.apps.saturating_add(1),
                instances: u.instances.saturating_add(slots),
                memory_bytes: u
                    .memory_bytes
                    .saturating_add(s.memory.0.saturating_mul(slots)),
            }
        })
    }
}

/// A change that would take a tenant's apps past its quota.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    #[error(
        "quota of tenant {tenant:?}: at most {max} apps, it has {has}: delete an app first, or ask the admin to raise --max-apps"
    )]
    Apps { tenant: String, max: u32, has: u32 },
    #[error(
        "quota of tenant {tenant:?}: its apps may hold at most {max} instances together (max + warm pool of each app), this change needs {needs}: lower --max or --warm-pool, or ask the admin to raise --max-instances"
    )]
    Instances {
        tenant: String,
        max: u32,
        needs: u64,
    },
    #[error(
        "quota of tenant {tenant:?}: its apps may hold at most {} of memory together (memory × (max + warm pool) of each app), this change needs {}: lower --memory, --max or --warm-pool, or ask the admin to raise --max-memory",
        format_size(*.max), format_size(*.needs)
    )]
    Memory {
        tenant: String,
        max: u64,
        needs: u64,
    },
    #[error(
        "quota of tenant {tenant:?}: a release may hold at most {max} of files: make the code smaller, or ask the admin to raise --max-release-size"
    )]
    ReleaseSize { tenant: String, max: ByteSize },
}

impl Quota {
    /// Checks a change of a tenant's apps from `before` to `after`. A bound is only enforced
    /// against growth: after the admin lowers a quota below what the apps hold, changes that
    /// do not add to the exceeded measure (or that reduce it) still go through.
    pub fn check(&self, tenant: &str, before: &Usage, after: &Usage) -> Result<(), QuotaError> {
        let tenant = tenant.to_string();
        if let Some(max) = self.max_apps
            && after.apps > max
            && after.apps > before.apps
        {
            return Err(QuotaError::Apps {
                tenant,
                max,
                has: before.apps,
            });
        }
        if let Some(max) = self.max_instances
            && after.instances > u64::from(max)
            && after.instances > before.instances
        {
            return Err(QuotaError::Instances {
                tenant,
                max,
                needs: after.instances,
            });
        }
        if let Some(ByteSize(max)) = self.max_memory
            && after.memory_bytes > max
            && after.memory_bytes > before.memory_bytes
        {
            return Err(QuotaError::Memory {
                tenant,
                max,
                needs: after.memory_bytes,
            });
        }
        Ok(())
    }
}

/// A tenant's token as stored: never the token, only what lists and checks need. The store
/// keeps it under the token's hash, so a presented token is found with one read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenRecord {
    /// Its name, unique within its tenant (`[a-z0-9][a-z0-9-]*`): what events say did a
    /// change, and what `hako token revoke` takes.
    pub name: String,
    pub tenant: String,
    pub created_unix: u64,
    /// The token's first characters, to tell tokens apart in lists (`hkt_1a2b…`).
    pub hint: String,
}

impl TokenRecord {
    /// Who acts with this token, as events record it: `TENANT/TOKEN`.
    pub fn actor(&self) -> String {
        format!("{}/{}", self.tenant, self.name)
    }
}

/// Why a tenant or token name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantNameError {
    #[error(
        "{what} name {name:?} is not valid: use 1-63 lowercase letters, digits and '-', starting with a letter or digit"
    )]
    Invalid { what: &'static str, name: String },
    #[error("tenant name \"admin\" is reserved for the admin token: pick another name")]
    Reserved,
}

/// Checks a tenant name: an app-style name, not `admin`.
pub fn validate_tenant_name(name: &str) -> Result<(), TenantNameError> {
    if !crate::valid_name(name) {
        return Err(TenantNameError::Invalid {
            what: "tenant",
            name: name.chars().take(100).collect(),
        });
    }
    if name == ADMIN_ACTOR {
        return Err(TenantNameError::Reserved);
    }
    Ok(())
}

/// Checks a token name: an app-style name.
pub fn validate_token_name(name: &str) -> Result<(), TenantNameError> {
    if crate::valid_name(name) {
        Ok(())
    } else {
        Err(TenantNameError::Invalid {
            what: "token",
            name: name.chars().take(100).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ImageRef;

    fn app(name: &str, memory_mib: u64, max: u32, pool: u32) -> AppSpec {
        let mut s = AppSpec::new(
            name,
            vec![format!("{name}.example")],
            ImageRef::latest("php"),
            "x",
        );
        s.memory = ByteSize(memory_mib << 20);
        s.max = max;
        s.warm_pool = pool;
        s
    }

    #[test]
    fn usage_counts_max_and_warm_pool() {
        let apps = [app("a", 256, 4, 0), app("b", 128, 2, 2)];
        let u = Usage::of(&apps);
        assert_eq!(u.apps, 2);
        assert_eq!(u.instances, 4 + 2 + 2);
        assert_eq!(u.memory_bytes, (256 * 4 + 128 * 4) << 20);
        assert_eq!(Usage::of(&[]), Usage::default());
    }

    #[test]
    fn quotas_refuse_growth_past_a_bound_only() {
        let q = Quota {
            max_apps: Some(2),
            max_memory: Some(ByteSize(1 << 30)),
            max_instances: Some(6),
            max_release_size: None,
        };
        let one = Usage::of(&[app("a", 256, 2, 0)]);
        let two = Usage::of(&[app("a", 256, 2, 0), app("b", 256, 2, 0)]);
        q.check("acme", &one, &two).unwrap();
        let three = Usage::of(&[app("a", 256, 2, 0), app("b", 256, 1, 0), app("c", 64, 1, 0)]);
        let err = q.check("acme", &two, &three).unwrap_err();
        assert!(
            matches!(err, QuotaError::Apps { max: 2, has: 2, .. }),
            "{err}"
        );
        assert!(
            err.to_string().starts_with("quota of tenant \"acme\""),
            "{err}"
        );

        let wide = Usage::of(&[app("a", 64, 4, 3)]);
        let err = q.check("acme", &one, &wide).unwrap_err();
        assert!(
            matches!(err, QuotaError::Instances { needs: 7, .. }),
            "{err}"
        );
        let big = Usage::of(&[app("a", 512, 3, 0)]);
        let err = q.check("acme", &one, &big).unwrap_err();
        assert!(err.to_string().contains("1.5GiB"), "{err}");
        assert!(err.to_string().contains("--max-memory"), "{err}");

        // Over a bound the admin lowered: shrinking, or changes that keep the exceeded
        // measure, still pass; growing does not.
        let low = Quota {
            max_apps: Some(1),
            max_memory: Some(ByteSize(64 << 20)),
            ..Quota::default()
        };
        low.check("acme", &two, &one).unwrap();
        low.check("acme", &two, &two).unwrap();
        assert!(low.check("acme", &one, &two).is_err());
        // No bounds: anything goes.
        Quota::default()
            .check("acme", &Usage::default(), &three)
            .unwrap();
    }

    #[test]
    fn quota_patches_set_and_remove_bounds() {
        let q = Quota {
            max_apps: Some(3),
            max_memory: Some(ByteSize(1 << 30)),
            ..Quota::default()
        };
        let p: QuotaPatch =
            serde_json::from_str(r#"{"max_apps": null, "max_instances": 8}"#).unwrap();
        let after = p.apply(&q);
        assert_eq!(after.max_apps, None, "null removes the bound");
        assert_eq!(after.max_instances, Some(8));
        assert_eq!(after.max_memory, q.max_memory, "absent: unchanged");
        assert!(QuotaPatch::default().is_empty());
        assert!(serde_json::from_str::<QuotaPatch>(r#"{"max_aps": 1}"#).is_err());
        let back: QuotaPatch = serde_json::from_value(serde_json::to_value(p).unwrap()).unwrap();
        assert_eq!(back, p);
        let q: Quota = serde_json::from_str(r#"{"max_memory": "2GiB"}"#).unwrap();
        assert_eq!(q.max_memory, Some(ByteSize(2 << 30)));
    }

    #[test]
    fn names() {
        validate_tenant_name("acme-2").unwrap();
        assert_eq!(
            validate_tenant_name("admin"),
            Err(TenantNameError::Reserved)
        );
        for bad in ["", "Acme", "-a", "a/b", "a b"] {
            assert!(validate_tenant_name(bad).is_err(), "{bad:?}");
            assert!(validate_token_name(bad).is_err(), "{bad:?}");
        }
        validate_token_name("ci").unwrap();
        let t = TokenRecord {
            name: "ci".into(),
            tenant: "acme".into(),
            created_unix: 1,
            hint: "hkt_1234".into(),
        };
        assert_eq!(t.actor(), "acme/ci");
    }
}
