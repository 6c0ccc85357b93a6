//! A change to an app's settings, typed: what `hako app update` sends, what `PATCH
//! /v1/apps/NAME` takes and what the server applies — and, with [`AppPatch::create`], what
//! `hako app create` turns into a new spec. One list of settings for all of them.
//!
//! In JSON it is an object of the changed fields only (`{"memory": "1GiB"}`), with the
//! field names and value forms of [`AppSpec`]; `null` clears an optional setting (`cpu`,
//! `max_lifetime`, `health_path`, `user`, `hsts`) and is refused for the others; unknown fields (and
//! `name`) are refused.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use super::{AppError, AppNetwork, AppSpec, StopSignal};
use crate::image_ref::ImageRef;
use crate::seccomp::SeccompProfile;
use crate::units::{ByteSize, HumanDuration};

/// The settings to change; `None` leaves one as it is. For the optional settings,
/// `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppPatch {
    /// Replaces every host.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "set"
    )]
    pub hosts: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "set"
    )]
    pub image: Option<ImageRef>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "set"
    )]
    pub cmd: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "set"
    )]
    pub port: Option<u16>,
    /// Replaces the whole environment.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "set"
    )]
    pub env: Option<BTreeMap<String, String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "clear"
    )]
    pub user: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "set"
    )]
    pub workdir: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "set"
    )]
    pub memory: Option<ByteSize>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "clear"
    )]
    pub cpu: Option<Option<f64>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "set"
    )]
    pub pids: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "set"
    )]
    pub min: Option<u32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "set"
    )]
    pub max: Option<u32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "set"
    )]
    pub idle_timeout: Option<HumanDuration>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "clear"
    )]
    pub max_lifetime: Option<Option<HumanDuration>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "set"
    )]
    pub start_timeout: Option<HumanDuration>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "clear"
    )]
    pub health_path: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "set"
    )]
    pub network: Option<AppNetwork>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "set"
    )]
    pub stop_signal: Option<StopSignal>,
    /// Switch the app's database on (made if it has none) or off (kept, no longer given).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "set"
    )]
    pub database: Option<bool>,
    /// Parked containers kept ready for cold starts (0 for none).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "set"
    )]
    pub warm_pool: Option<u32>,
    /// The system-call filter (`unconfined` needs a reason).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "set"
    )]
    pub seccomp: Option<SeccompProfile>,
    /// Why the app runs unconfined (`null` clears it).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "clear"
    )]
    pub seccomp_reason: Option<Option<String>>,
    /// Whether instances may start from a checkpoint (`auto`, `always`, `never`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "set"
    )]
    pub restore: Option<crate::RestoreMode>,
    /// Requests in flight per instance the autoscaler aims for.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "set"
    )]
    pub target_concurrency: Option<f64>,
    /// Replaces every schedule (`[]` removes them all).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "set"
    )]
    pub schedules: Option<Vec<crate::ScheduleEntry>>,
    /// Replaces the ignored clients (`{}` removes them all).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "set"
    )]
    pub ignored_clients: Option<crate::IgnoredClients>,
    /// Redirect plain HTTP to HTTPS.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "set"
    )]
    pub https_redirect: Option<bool>,
    /// HSTS max-age (`null` stops sending the header).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "clear"
    )]
    pub hsts: Option<Option<HumanDuration>>,
    /// Certificates from the ACME server.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "set"
    )]
    pub acme: Option<bool>,
    /// Which keep-alive stops idle instances (`fixed`, `predictive`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "set"
    )]
    pub keep_alive: Option<crate::KeepAliveMode>,
}

/// A field that is present must hold a value (`null` is refused by the value's own type).
fn set<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A field that is present holds a value, or `null` to clear the setting.
fn clear<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

impl AppPatch {
    /// True if nothing would change.
    pub fn is_empty(&self) -> bool {
        *self == AppPatch::default()
    }

    /// `spec` with this patch's settings, normalised and validated as a whole.
    pub fn apply(&self, spec: &AppSpec) -> Result<AppSpec, AppError> {
        let mut s = spec.clone();
        let p = self.clone();
        macro_rules! take {
            ($($field:ident),*) => {
                $(if let Some(v) = p.$field {
                    s.$field = v;
                })*
            };
        }
        take!(
            hosts,
            image,
            cmd,
            port,
            env,
            user,
            workdir,
            memory,
            cpu,
            pids,
            min,
            max,
            idle_timeout,
            max_lifetime,
            start_timeout,
            health_path,
            network,
            stop_signal,
            database,
            warm_pool,
            seccomp,
            seccomp_reason,
            restore,
            target_concurrency,
            schedules,
            ignored_clients,
            https_redirect,
            hsts,
            acme,
            keep_alive
        );
        s.validate()?;
        Ok(s)
    }

    /// A new app `name` from these settings (hosts, image and command are needed; the rest
    /// take their defaults), validated.
    pub fn create(&self, name: &str) -> Result<AppSpec, AppError> {
        let image = self.image.clone().ok_or(AppError::NoImage)?;
        let cmd = self.cmd.clone().ok_or(AppError::NoCommand)?;
        self.apply(&AppSpec::new(name, Vec::new(), image, cmd))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn spec() -> AppSpec {
        let mut s = AppSpec::new(
            "blog",
            vec!["blog.example".into()],
            ImageRef::latest("php"),
            "php -S 0.0.0.0:$PORT -t /app",
        );
        s.validate().unwrap();
        s
    }

    fn patch(json: &str) -> Result<AppPatch, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn only_set_fields_are_sent() {
        let p = AppPatch {
            memory: Some(ByteSize(1 << 30)),
            cpu: Some(None),
            ..AppPatch::default()
        };
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            serde_json::json!({"memory": "1GiB", "cpu": null})
        );
        assert!(!p.is_empty());
        assert!(AppPatch::default().is_empty());
        assert_eq!(
            serde_json::to_value(AppPatch::default()).unwrap(),
            serde_json::json!({})
        );
        // What is sent reads back the same.
        let back: AppPatch = serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn applies_the_changed_fields_and_validates_the_result() {
        let base = spec();
        let p = patch(
            r#"{"memory": "1GiB", "cpu": 0.5, "hosts": ["A.example"], "image": "site:latest", "idle_timeout": "20m"}"#,
        )
        .unwrap();
        let patched = p.apply(&base).unwrap();
        assert_eq!(patched.memory, ByteSize(1 << 30));
        assert_eq!(patched.cpu, Some(0.5));
        assert_eq!(patched.hosts, ["a.example"], "normalised");
        assert_eq!(patched.image, ImageRef::latest("site"));
        assert_eq!(patched.idle_timeout.0, Duration::from_secs(1200));
        assert_eq!(patched.cmd, base.cmd, "untouched field kept");
        assert_eq!(patched.max_lifetime, base.max_lifetime);

        let cleared = patch(r#"{"cpu": null, "max_lifetime": null}"#)
            .unwrap()
            .apply(&patched)
            .unwrap();
        assert_eq!((cleared.cpu, cleared.max_lifetime), (None, None));

        let https = patch(r#"{"https_redirect": true, "hsts": "365d", "acme": true}"#)
            .unwrap()
            .apply(&base)
            .unwrap();
        assert!(https.https_redirect && https.acme);
        assert_eq!(
            https.hsts.map(|d| d.0),
            Some(Duration::from_secs(365 * 86400))
        );
        let no_hsts = patch(r#"{"hsts": null}"#).unwrap().apply(&https).unwrap();
        assert_eq!(no_hsts.hsts, None);
        assert!(patch(r#"{"https_redirect": null}"#).is_err());

        let err = patch(r#"{"max": 0}"#).unwrap().apply(&base).unwrap_err();
        assert!(matches!(err, AppError::MinMax { .. }), "{err}");
    }

    #[test]
    fn refuses_unknown_fields_names_and_nulls_of_required_settings() {
        let err = patch(r#"{"memroy": "1GiB"}"#).unwrap_err();
        assert!(err.to_string().contains("memroy"), "{err}");
        assert!(patch(r#"{"name": "other"}"#).is_err());
        for json in [
            r#"{"memory": null}"#,
            r#"{"hosts": null}"#,
            r#"{"idle_timeout": null}"#,
            r#"{"port": null}"#,
        ] {
            assert!(patch(json).is_err(), "{json} accepted");
        }
        let err = patch(r#"{"idle_timeout": "45"}"#).unwrap_err();
        assert!(err.to_string().contains("45s"), "{err}");
        let err = patch(r#"{"image": "php:0"}"#).unwrap_err();
        assert!(err.to_string().contains("NAME:VERSION"), "{err}");
    }

    #[test]
    fn creates_a_spec_with_defaults_from_settings() {
        let p = AppPatch {
            hosts: Some(vec!["Blog.Example".into()]),
            image: Some("php:latest".parse().unwrap()),
            cmd: Some("php -S 0.0.0.0:$PORT -t /app".into()),
            ..AppPatch::default()
        };
        assert_eq!(p.create("blog").unwrap(), spec());
        let no_image = AppPatch {
            image: None,
            ..p.clone()
        };
        assert_eq!(no_image.create("blog"), Err(AppError::NoImage));
        let no_cmd = AppPatch {
            cmd: None,
            ..p.clone()
        };
        assert_eq!(no_cmd.create("blog"), Err(AppError::NoCommand));
        let no_hosts = AppPatch {
            hosts: None,
            ..p.clone()
        };
        assert_eq!(no_hosts.create("blog"), Err(AppError::NoHosts));
        assert!(matches!(p.create("Bad_Name"), Err(AppError::Name(_))));
    }
}
