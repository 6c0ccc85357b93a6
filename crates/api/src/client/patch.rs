//! A partial app spec for `PATCH /v1/apps/{name}`: only the fields set are sent; for the
//! optional ones, `Some(None)` sends `null` and clears the field.

use std::collections::BTreeMap;

use hako_model::{AppNetwork, ByteSize, HumanDuration};

/// The fields of an app to change (any `AppSpec` field but `name`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct AppPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Replaces the whole environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<ByteSize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Option<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<HumanDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_lifetime: Option<Option<HumanDuration>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_timeout: Option<HumanDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_path: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<AppNetwork>,
    /// New stop signal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<hako_model::StopSignal>,
    /// Switch the app's database on (made if it has none) or off (kept, no longer given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<bool>,
    /// Parked containers kept ready for cold starts (0 for none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warm_pool: Option<u32>,
    /// The system-call filter (`unconfined` needs a reason).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<hako_model::SeccompProfile>,
    /// Why the app runs unconfined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seccomp_reason: Option<String>,
}

impl AppPatch {
    /// True if nothing would change.
    pub fn is_empty(&self) -> bool {
        *self == AppPatch::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_set_fields_are_sent() {
        let patch = AppPatch {
            memory: Some(ByteSize(1 << 30)),
            cpu: Some(None),
            ..AppPatch::default()
        };
        assert_eq!(
            serde_json::to_value(&patch).unwrap(),
            serde_json::json!({"memory": "1GiB", "cpu": null})
        );
        assert!(!patch.is_empty());
        assert!(AppPatch::default().is_empty());
        assert_eq!(
            serde_json::to_value(AppPatch::default()).unwrap(),
            serde_json::json!({})
        );
    }
}
