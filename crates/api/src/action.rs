//! What a request asks for, parsed and checked: the server turns each HTTP request into one
//! [`Action`] and hands it to the [`crate::Engine`], which answers with a [`Reply`]. The
//! daemon can run actions directly too (for example to create demo apps at start). Actions
//! about tenants and tokens are in [`tenant`].

pub mod tenant;

use hako_model::{
    App, AppError, AppPatch, AppSpec, Event, InstanceInfo, Release, ResizeOutcome, valid_name,
};

use hako_policy::slo::Target;

use crate::backend::ReleaseSource;
use crate::error::ApiError;
use crate::slo::SloReport;

/// Default number of events returned.
pub const DEFAULT_EVENTS: usize = 100;
/// Most events kept per app (older ones are trimmed) and returned at once.
pub const MAX_EVENTS: usize = 1000;
/// Default number of log bytes returned.
pub const DEFAULT_LOG_BYTES: usize = 64 << 10;
/// Most log bytes returned at once.
pub const MAX_LOG_BYTES: usize = 16 << 20;

/// One thing a client asked for. Names are valid (checked by [`check_name`]) and specs are
/// validated before an action is built.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Who the caller is.
    Whoami,
    /// Every app the caller sees.
    ListApps,
    /// Create an app from a validated spec.
    CreateApp {
        /// The app's settings.
        spec: Box<AppSpec>,
        /// The tenant to own it: the caller's own (a tenant token may name only its own
        /// tenant), or any existing tenant for the admin; `None` from the admin makes an
        /// app of the admin's.
        tenant: Option<String>,
    },
    /// One app.
    ShowApp(String),
    /// Change some settings of an app (the result is validated as a whole, and against what
    /// the node can give).
    UpdateApp {
        /// The app.
        name: String,
        /// The settings to change.
        patch: Box<AppPatch>,
    },
    /// Delete an app and its releases' records; with its database, say what becomes of it.
    DeleteApp {
        /// The app.
        name: String,
        /// Keep or drop the app's database; `None` is refused if the app has one.
        database: Option<DatabaseOnDelete>,
    },
    /// Make a new code release and point the app at it.
    Deploy {
        /// The app.
        name: String,
        /// Where the code comes from.
        source: ReleaseSource,
    },
    /// An app's releases, oldest first.
    ListReleases(String),
    /// Replace the app's running instances (bump its generation).
    Rollout(String),
    /// An app's latest events, oldest first.
    Events {
        /// The app.
        name: String,
        /// At most this many.
        limit: usize,
    },
    /// An app's request metrics.
    Metrics(String),
    /// Whether an app's starts restore a checkpoint and why, its checkpoint, and the node's
    /// checkpoint disk use.
    Checkpoint(String),
    /// An app's service level from its measurements, and the cheapest keep-alive for a target.
    Slo {
        /// The app.
        name: String,
        /// Recommend for this target, if given.
        target: Option<Target>,
    },
    /// The tail of an app's logs.
    Logs {
        /// The app.
        name: String,
        /// At most this many bytes.
        max_bytes: usize,
    },
    /// Running instances, of one app or all (that the caller sees).
    Instances {
        /// Only this app's.
        app: Option<String>,
    },
    /// Tenants and their tokens.
    Tenants(tenant::TenantAction),
    /// The nodes of the cluster (one on a single host).
    ListNodes,
    /// Cordon, drain or make a node active again (clusters only).
    SetNodeState {
        /// The node.
        name: String,
        /// What it becomes.
        state: hako_model::NodeState,
    },
    /// Serve an uploaded certificate for the app's hosts (checked: the key matches, it covers
    /// every host, it is valid now).
    SetCert {
        /// The app.
        name: String,
        /// The certificate and its key.
        upload: Box<CertUpload>,
    },
    /// What the app's certificate is (never its key).
    ShowCert(String),
    /// Stop serving the app's certificate.
    RemoveCert(String),
}

/// The body of `PUT /v1/apps/NAME/cert`: PEM text of the chain (site certificate first) and
/// of its private key.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertUpload {
    /// The PEM certificate chain.
    pub cert: String,
    /// The PEM private key.
    pub key: String,
}

impl std::fmt::Debug for CertUpload {
    // The key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertUpload").finish_non_exhaustive()
    }
}

/// What becomes of an app's database when the app is deleted (`?database=keep|drop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseOnDelete {
    /// The database and its account stay on the server (a new app of the same name with
    /// `database` takes them over).
    Keep,
    /// The database and its account are dropped, with all their data.
    Drop,
}

impl DatabaseOnDelete {
    /// The query value: `keep` or `drop`.
    pub fn as_str(self) -> &'static str {
        match self {
            DatabaseOnDelete::Keep => "keep",
            DatabaseOnDelete::Drop => "drop",
        }
    }

    /// Parses the `database` query parameter of a delete.
    pub fn parse(raw: Option<&str>) -> Result<Option<DatabaseOnDelete>, ApiError> {
        match raw {
            None => Ok(None),
            Some("keep") => Ok(Some(DatabaseOnDelete::Keep)),
            Some("drop") => Ok(Some(DatabaseOnDelete::Drop)),
            Some(other) => Err(ApiError::BadRequest(format!(
                "database {other:?} is not valid: say database=keep or database=drop"
            ))),
        }
    }
}

/// What the engine answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A list of apps.
    Apps(Vec<App>),
    /// One app, just created (201).
    Created(App),
    /// One app.
    App(App),
    /// One app just updated, and what a live resize did to its running instances (none when
    /// its limits did not change): the app's JSON with a `resize` list when there is one.
    Updated(App, Vec<ResizeOutcome>),
    /// Done, nothing to say (204).
    Deleted,
    /// A release, just created (201).
    Release(Release),
    /// A list of releases.
    Releases(Vec<Release>),
    /// A list of events.
    Events(Vec<Event>),
    /// Metrics, as the daemon reports them.
    Metrics(serde_json::Value),
    /// An app's service level.
    Slo(Box<SloReport>),
    /// Log text.
    Logs(String),
    /// A list of instances.
    Instances(Vec<InstanceInfo>),
    /// A list of nodes.
    Nodes(Vec<hako_model::NodeInfo>),
    /// One node.
    Node(Box<hako_model::NodeInfo>),
    /// What a certificate is (never its key).
    Cert(hako_tls::CertInfo),
    /// Who the caller is.
    Whoami(Whoami),
    /// A list of tenants.
    Tenants(Vec<tenant::TenantInfo>),
    /// One tenant.
    Tenant(tenant::TenantInfo),
    /// One tenant, just created (201).
    TenantCreated(tenant::TenantInfo),
    /// A list of token records.
    Tokens(Vec<hako_model::TokenRecord>),
    /// A token, just made (201): shown this once.
    TokenCreated(tenant::NewToken),
}

/// Who sent a request, as `GET /v1/whoami` answers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Whoami {
    /// `admin` or `TENANT/TOKEN`, as events record it.
    pub actor: String,
    /// True for the admin token.
    pub admin: bool,
    /// The tenant, for a tenant's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The token's name, for a tenant's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Checks an app name taken from a path or query.
pub fn check_name(name: &str) -> Result<String, ApiError> {
    if valid_name(name) {
        Ok(name.to_string())
    } else {
        Err(ApiError::BadRequest(format!(
            "app name {:?} is not valid: use 1-63 lowercase letters, digits and '-', starting with a letter or digit",
            name.chars().take(100).collect::<String>()
        )))
    }
}

/// Parses a create request's body into a validated spec.
pub fn parse_spec(body: &[u8]) -> Result<AppSpec, ApiError> {
    let mut spec: AppSpec = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("request body is not a valid app spec: {e}")))?;
    spec.validate()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    check_schedules(&spec)?;
    Ok(spec)
}

/// Checks every schedule's cron expression (the model checked their shape): one that cannot
/// be read or never fires is refused with what is wrong.
pub fn check_schedules(spec: &AppSpec) -> Result<(), ApiError> {
    for entry in &spec.schedules {
        hako_policy::schedule::validate(entry)
            .map_err(|e| ApiError::BadRequest(format!("schedule {:?}: {e}", entry.to_string())))?;
    }
    Ok(())
}

/// Parses an update request's body: a JSON object of the settings to change (see
/// [`AppPatch`]); `name` and unknown fields are refused.
pub fn parse_patch(body: &[u8]) -> Result<AppPatch, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("request body is not valid JSON: {e}")))?;
    let serde_json::Value::Object(fields) = &value else {
        return Err(ApiError::BadRequest(
            "request body must be a JSON object of the app fields to change".into(),
        ));
    };
    if fields.contains_key("name") {
        return Err(AppError::Rename.into());
    }
    serde_json::from_value(value).map_err(|e| ApiError::BadRequest(format!("bad app update: {e}")))
}

/// Parses a certificate upload's body: `{"cert": PEM, "key": PEM}`.
pub fn parse_cert_upload(body: &[u8]) -> Result<CertUpload, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "a certificate upload must be JSON {{\"cert\": \"<PEM chain>\", \"key\": \"<PEM private key>\"}}: {e}"
        ))
    })
}

/// Parses a service-level target from a query: `target_cold` (a fraction, e.g. `0.01`) or
/// `target_p99_wait` (a duration, e.g. `50ms`), at most one of them.
pub fn parse_target(
    target_cold: Option<&str>,
    target_p99_wait: Option<&str>,
) -> Result<Option<Target>, ApiError> {
    match (target_cold, target_p99_wait) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(ApiError::BadRequest(
            "give one target: target_cold or target_p99_wait, not both".into(),
        )),
        (Some(p), None) => match p.trim().parse::<f64>() {
            Ok(p) if (0.0..=1.0).contains(&p) => Ok(Some(Target::ColdProbability(p))),
            _ => Err(ApiError::BadRequest(format!(
                "target_cold {p:?} is not valid: give the fraction of requests that may wait for a start, from 0 to 1 (e.g. 0.01)"
            ))),
        },
        (None, Some(w)) => hako_model::units::parse_duration(w)
            .map(|d| Some(Target::P99Wait(d)))
            .map_err(|e| ApiError::BadRequest(format!("target_p99_wait: {e}"))),
    }
}

/// Parses a bounded count from a query (`limit`, `bytes`).
pub fn parse_count(
    what: &str,
    raw: Option<&str>,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match raw {
        None => Ok(default),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n.min(max)),
            _ => Err(ApiError::BadRequest(format!(
                "{what} {s:?} is not valid: give a whole number from 1 to {max}"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_json() -> serde_json::Value {
        serde_json::json!({"name": "blog", "hosts": ["Blog.Example"], "image": "php", "cmd": "php -S 0.0.0.0:$PORT"})
    }

    #[test]
    fn names() {
        assert_eq!(check_name("blog-2").unwrap(), "blog-2");
        for bad in ["", "Blog", "-x", "a/b", "..", &"a".repeat(64)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn specs_are_validated() {
        let spec = parse_spec(spec_json().to_string().as_bytes()).unwrap();
        assert_eq!(spec.hosts, ["blog.example"]);
        let err = parse_spec(b"{not json").unwrap_err();
        assert!(matches!(err, ApiError::BadRequest(_)), "{err:?}");
        let mut v = spec_json();
        v["port"] = 0.into();
        let err = parse_spec(v.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("port 0"), "{err}");
    }

    #[test]
    fn patches() {
        let spec = parse_spec(spec_json().to_string().as_bytes()).unwrap();
        let patch =
            parse_patch(br#"{"memory": "1GiB", "cpu": 0.5, "hosts": ["A.example"]}"#).unwrap();
        let patched = patch.apply(&spec).unwrap();
        assert_eq!(patched.memory.0, 1 << 30);
        assert_eq!(patched.cpu, Some(0.5));
        assert_eq!(patched.hosts, ["a.example"]);
        assert_eq!(patched.cmd, spec.cmd);
        let cleared = parse_patch(br#"{"cpu": null}"#)
            .unwrap()
            .apply(&patched)
            .unwrap();
        assert_eq!(cleared.cpu, None);

        let err = parse_patch(br#"{"name": "x"}"#).unwrap_err();
        assert!(err.to_string().contains("name cannot change"), "{err}");
        assert!(parse_patch(b"[1]").is_err());
        let typo = parse_patch(br#"{"memroy": "1GiB"}"#).unwrap_err();
        assert!(
            typo.to_string().contains("memroy"),
            "unknown field accepted"
        );
        let bad = parse_patch(br#"{"max": 0}"#).unwrap();
        assert!(bad.apply(&spec).is_err(), "invalid result accepted");
        // One meaning of units: 100MB is 10^8 bytes here as everywhere.
        let mb = parse_patch(br#"{"memory": "100MB"}"#).unwrap();
        assert_eq!(mb.apply(&spec).unwrap().memory.0, 100_000_000);
    }

    #[test]
    fn targets() {
        assert_eq!(parse_target(None, None).unwrap(), None);
        assert_eq!(
            parse_target(Some("0.01"), None).unwrap(),
            Some(Target::ColdProbability(0.01))
        );
        assert_eq!(
            parse_target(None, Some("50ms")).unwrap(),
            Some(Target::P99Wait(std::time::Duration::from_millis(50)))
        );
        for (c, w) in [
            (Some("1.5"), None),
            (Some("-0.1"), None),
            (Some("one"), None),
            (Some("NaN"), None),
            (None, Some("fast")),
            (None, Some("45")),
            (Some("0.01"), Some("50ms")),
        ] {
            assert!(
                matches!(parse_target(c, w), Err(ApiError::BadRequest(_))),
                "{c:?} {w:?}"
            );
        }
    }

    #[test]
    fn counts() {
        assert_eq!(parse_count("limit", None, 100, 1000).unwrap(), 100);
        assert_eq!(parse_count("limit", Some("5"), 100, 1000).unwrap(), 5);
        assert_eq!(parse_count("limit", Some("5000"), 100, 1000).unwrap(), 1000);
        assert!(parse_count("limit", Some("0"), 100, 1000).is_err());
        assert!(parse_count("limit", Some("-1"), 100, 1000).is_err());
    }

    #[test]
    fn database_choice_parses_keep_and_drop_only() {
        assert_eq!(DatabaseOnDelete::parse(None).unwrap(), None);
        assert_eq!(
            DatabaseOnDelete::parse(Some("drop")).unwrap(),
            Some(DatabaseOnDelete::Drop)
        );
        assert_eq!(
            DatabaseOnDelete::parse(Some("keep")).unwrap(),
            Some(DatabaseOnDelete::Keep)
        );
        assert!(DatabaseOnDelete::parse(Some("yes")).is_err());
    }
}
