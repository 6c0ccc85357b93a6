//! The HTTP side, every route in one table ([`routes()`], which also builds the router) with who
//! may call it: the API under `/v1`, each route parsing its request into an [`Action`] for the
//! [`Engine`], run as the request's [`Caller`]; `GET /metrics` for Prometheus; the dashboard
//! under `/ui/` ([`crate::ui`]). Token auth ([`crate::caller::Authenticator`]) on everything
//! but `/v1/health` and the dashboard's login; every API error answered as JSON
//! `{"error": "…"}`, including axum's own rejections and unknown routes.

mod auth;
mod extract;
mod follow;
mod reply;
pub mod routes;
mod tenants;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hako_store::Store;

pub use self::extract::MAX_JSON_BODY;
use self::extract::{AppName, Body, Upload};
pub use self::routes::{Access, RouteInfo, routes};
use crate::action::{
    self, Action, DEFAULT_EVENTS, DEFAULT_LOG_BYTES, MAX_EVENTS, MAX_LOG_BYTES, check_name,
};
use crate::backend::{Backend, ReleaseSource};
use crate::caller::{Authenticator, Caller};
use crate::engine::Engine;
use crate::error::ApiError;
pub use follow::KEEP_ALIVE as FOLLOW_KEEP_ALIVE;

/// Default largest accepted release upload: 1 GiB.
pub const DEFAULT_MAX_UPLOAD: usize = 1 << 30;

/// What the API server needs.
pub struct ApiState {
    /// Desired state: apps, releases, events, tenants and tokens.
    pub store: Arc<dyn Store>,
    /// The daemon's side: images, release files, instances, metrics, logs.
    pub backend: Arc<dyn Backend>,
    /// The admin token (see [`crate::token::load_or_create`]); tenants' tokens are in the store.
    pub token: String,
    /// The metrics token, which reads `GET /metrics` only (see
    /// [`crate::token::load_or_create_metrics`]); `None`: only the admin token reads it.
    pub metrics_token: Option<String>,
    /// Largest release upload in bytes (413 beyond); [`DEFAULT_MAX_UPLOAD`] by default.
    pub max_upload: usize,
}

impl ApiState {
    /// State with the default upload limit.
    pub fn new(store: Arc<dyn Store>, backend: Arc<dyn Backend>, token: String) -> ApiState {
        ApiState {
            store,
            backend,
            token,
            metrics_token: None,
            max_upload: DEFAULT_MAX_UPLOAD,
        }
    }
}

/// Shared by every handler.
pub(crate) struct Shared {
    pub(crate) engine: Arc<Engine>,
    pub(crate) auth: Authenticator,
    max_upload: usize,
}

type S = State<Arc<Shared>>;

/// The API's routes; serve it with `axum::serve(listener, router(state))`.
pub fn router(state: ApiState) -> Router {
    let engine = Arc::new(Engine::new(state.store, state.backend));
    router_with(engine, state.token, state.metrics_token, state.max_upload)
}

/// The API's routes over an engine the daemon also uses directly (for example to create demo
/// apps at start), so both share its write serialisation.
pub fn router_with(
    engine: Arc<Engine>,
    token: String,
    metrics_token: Option<String>,
    max_upload: usize,
) -> Router {
    let shared = Arc::new(Shared {
        auth: engine.authenticator(token, metrics_token),
        engine,
        max_upload,
    });
    // Who may call a route decides which middleware it is behind; the dashboard's pages
    // (under /ui) also get its security headers.
    let mut open = Router::new();
    let mut api = Router::new();
    let mut scrape = Router::new();
    let mut ui_open = Router::new();
    let mut ui_session = Router::new();
    for (info, handler) in routes::table(shared.max_upload) {
        let group = match (info.access, info.path.starts_with("/ui")) {
            (Access::Session, _) => &mut ui_session,
            (_, true) => &mut ui_open,
            (Access::Open, false) => &mut open,
            (Access::Token | Access::Admin, false) => &mut api,
            (Access::Scrape, false) => &mut scrape,
        };
        *group = std::mem::take(group).route(info.path, handler);
    }
    let api = api
        .layer(DefaultBodyLimit::max(extract::MAX_JSON_BODY))
        .route_layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            auth::require_api_caller,
        ));
    let scrape = scrape.route_layer(axum::middleware::from_fn_with_state(
        shared.clone(),
        auth::require_metrics_caller,
    ));
    let ui = ui_open
        .merge(ui_session.route_layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            crate::ui::require_session,
        )))
        .layer(axum::middleware::map_response(crate::ui::secure_headers));
    open.merge(api)
        .merge(scrape)
        .merge(ui)
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .with_state(shared)
}

async fn run(shared: &Shared, caller: &Caller, action: Result<Action, ApiError>) -> Response {
    match action {
        Ok(action) => match shared.engine.execute_as(caller, action).await {
            Ok(reply) => reply.into_response(),
            Err(e) => e.into_response(),
        },
        Err(e) => e.into_response(),
    }
}

async fn list_nodes(State(s): S, caller: Caller) -> Response {
    run(&s, &caller, Ok(Action::ListNodes)).await
}

/// `POST /v1/nodes/NAME/cordon|uncordon|drain`.
async fn set_node_state(
    State(s): S,
    caller: Caller,
    Path((name, verb)): Path<(String, String)>,
) -> Response {
    let action = match verb.as_str() {
        "cordon" => Ok(hako_model::NodeState::Cordoned),
        "uncordon" => Ok(hako_model::NodeState::Active),
        "drain" => Ok(hako_model::NodeState::Draining),
        other => Err(ApiError::NotFound(format!(
            "no node operation {other:?}: use cordon, uncordon or drain"
        ))),
    }
    .and_then(|state| {
        hako_store::keys::validate_name(&name)
            .map_err(|_| ApiError::BadRequest(format!("node name {name:?} is not valid")))?;
        Ok(Action::SetNodeState { name, state })
    });
    run(&s, &caller, action).await
}

async fn health() -> Response {
    axum::Json(serde_json::json!({ "ok": true })).into_response()
}

// The fallbacks read (and drop) a small body so that the connection stays usable for a
// keep-alive client that is still sending it.
async fn no_route(uri: Uri, _body: Body) -> ApiError {
    ApiError::NotFound(format!(
        "no API route {}: see the routes under /v1 in hako's docs",
        uri.path()
    ))
}

async fn wrong_method(method: Method, uri: Uri, _body: Body) -> ApiError {
    ApiError::MethodNotAllowed(format!(
        "{method} is not served on {}: check the method",
        uri.path()
    ))
}

async fn whoami(State(s): S, caller: Caller) -> Response {
    run(&s, &caller, Ok(Action::Whoami)).await
}

async fn list_apps(State(s): S, caller: Caller) -> Response {
    run(&s, &caller, Ok(Action::ListApps)).await
}

/// `POST /v1/apps[?tenant=T]`: the admin names the tenant to own the app.
async fn create_app(State(s): S, caller: Caller, q: Params, body: Body) -> Response {
    let action = params(q).and_then(|q| {
        let tenant = q
            .get("tenant")
            .map(|t| action::tenant::check_tenant(t))
            .transpose()?;
        let spec = action::parse_spec(&body.0?)?;
        Ok(Action::CreateApp {
            spec: Box::new(spec),
            tenant,
        })
    });
    run(&s, &caller, action).await
}

async fn show_app(State(s): S, caller: Caller, name: AppName) -> Response {
    run(&s, &caller, name.0.map(Action::ShowApp)).await
}

async fn update_app(State(s): S, caller: Caller, name: AppName, body: Body) -> Response {
    let action = name.0.and_then(|name| {
        let patch = Box::new(action::parse_patch(&body.0?)?);
        Ok(Action::UpdateApp { name, patch })
    });
    run(&s, &caller, action).await
}

async fn delete_app(State(s): S, caller: Caller, name: AppName, q: Params) -> Response {
    let action = name.0.and_then(|name| {
        let q = params(q)?;
        let database = action::DatabaseOnDelete::parse(q.get("database").map(String::as_str))?;
        Ok(Action::DeleteApp { name, database })
    });
    run(&s, &caller, action).await
}

async fn list_releases(State(s): S, caller: Caller, name: AppName) -> Response {
    run(&s, &caller, name.0.map(Action::ListReleases)).await
}

async fn deploy(
    State(s): S,
    caller: Caller,
    name: AppName,
    headers: HeaderMap,
    body: Upload,
) -> Response {
    let action = name.0.and_then(|name| {
        let source = release_source(&headers, body.0?)?;
        Ok(Action::Deploy { name, source })
    });
    run(&s, &caller, action).await
}

/// A deploy's body: a tar/tar.gz archive, or JSON `{"dir": "/abs/path"}`.
fn release_source(headers: &HeaderMap, body: Bytes) -> Result<ReleaseSource, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    match content_type.as_str() {
        "application/json" => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct DirBody {
                dir: std::path::PathBuf,
            }
            let DirBody { dir } = serde_json::from_slice(&body).map_err(|e| {
                ApiError::BadRequest(format!(
                    "a JSON deploy body must be {{\"dir\": \"/abs/path\"}}: {e}"
                ))
            })?;
            if !dir.is_absolute() {
                return Err(ApiError::BadRequest(format!(
                    "code directory {} must be an absolute path",
                    dir.display()
                )));
            }
            Ok(ReleaseSource::Dir(dir))
        }
        "application/x-tar" | "application/gzip" | "application/x-gzip"
        | "application/octet-stream" => {
            if body.is_empty() {
                return Err(ApiError::BadRequest(
                    "the uploaded archive is empty: send a tar or tar.gz of the app's code".into(),
                ));
            }
            Ok(ReleaseSource::Archive(body))
        }
        _ => Err(ApiError::BadRequest(
            "send the code as a tar or tar.gz body with Content-Type application/x-tar or application/gzip, or as JSON {\"dir\": \"/abs/path\"} with Content-Type application/json".into(),
        )),
    }
}

async fn rollout(State(s): S, caller: Caller, name: AppName) -> Response {
    run(&s, &caller, name.0.map(Action::Rollout)).await
}

type Params = Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>;

fn params(q: Params) -> Result<HashMap<String, String>, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::BadRequest(format!("bad query string: {}", e.body_text())))
}

async fn events(State(s): S, caller: Caller, name: AppName, q: Params) -> Response {
    let action = name.0.and_then(|name| {
        let q = params(q)?;
        let limit = action::parse_count(
            "limit",
            q.get("limit").map(String::as_str),
            DEFAULT_EVENTS,
            MAX_EVENTS,
        )?;
        Ok(Action::Events { name, limit })
    });
    run(&s, &caller, action).await
}

async fn metrics(State(s): S, caller: Caller, name: AppName) -> Response {
    run(&s, &caller, name.0.map(Action::Metrics)).await
}

async fn checkpoint(State(s): S, caller: Caller, name: AppName) -> Response {
    run(&s, &caller, name.0.map(Action::Checkpoint)).await
}

async fn slo(State(s): S, caller: Caller, name: AppName, q: Params) -> Response {
    let action = name.0.and_then(|name| {
        let q = params(q)?;
        let target = action::parse_target(
            q.get("target_cold").map(String::as_str),
            q.get("target_p99_wait").map(String::as_str),
        )?;
        Ok(Action::Slo { name, target })
    });
    run(&s, &caller, action).await
}

/// `GET /metrics`: the Prometheus text exposition of what the caller may see.
async fn prometheus(State(s): S, caller: Caller) -> Response {
    match s.engine.prometheus(&caller).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn logs(State(s): S, caller: Caller, name: AppName, q: Params) -> Response {
    let action = name.0.and_then(|name| {
        let q = params(q)?;
        if parse_flag("follow", q.get("follow").map(String::as_str))? {
            let tail = action::parse_count(
                "bytes",
                q.get("bytes").map(String::as_str),
                FOLLOW_TAIL_BYTES,
                MAX_LOG_BYTES,
            )?;
            return Ok(Err((name, tail)));
        }
        let max_bytes = action::parse_count(
            "bytes",
            q.get("bytes").map(String::as_str),
            DEFAULT_LOG_BYTES,
            MAX_LOG_BYTES,
        )?;
        Ok(Ok(Action::Logs { name, max_bytes }))
    });
    match action {
        Ok(Ok(action)) => run(&s, &caller, Ok(action)).await,
        Ok(Err((name, tail))) => match s.engine.follow_logs(&caller, &name, tail).await {
            Ok(follow) => follow::response(follow),
            Err(e) => e.into_response(),
        },
        Err(e) => e.into_response(),
    }
}

/// What a followed log shows of the past before it follows: the last 4 KiB.
const FOLLOW_TAIL_BYTES: usize = 4 << 10;

/// A yes/no query parameter: `true`/`1`/`yes` or `false`/`0`/`no`; absent is no.
fn parse_flag(what: &str, raw: Option<&str>) -> Result<bool, ApiError> {
    match raw {
        None | Some("false" | "0" | "no") => Ok(false),
        Some("" | "true" | "1" | "yes") => Ok(true),
        Some(other) => Err(ApiError::BadRequest(format!(
            "{what} {other:?} is not valid: say {what}=true or {what}=false"
        ))),
    }
}

async fn show_cert(State(s): S, caller: Caller, name: AppName) -> Response {
    run(&s, &caller, name.0.map(Action::ShowCert)).await
}

async fn set_cert(State(s): S, caller: Caller, name: AppName, body: Body) -> Response {
    let action = name.0.and_then(|name| {
        let upload = Box::new(action::parse_cert_upload(&body.0?)?);
        Ok(Action::SetCert { name, upload })
    });
    run(&s, &caller, action).await
}

async fn remove_cert(State(s): S, caller: Caller, name: AppName) -> Response {
    run(&s, &caller, name.0.map(Action::RemoveCert)).await
}

async fn instances(State(s): S, caller: Caller, q: Params) -> Response {
    let action = params(q).and_then(|q| {
        let app = q.get("app").map(|a| check_name(a)).transpose()?;
        Ok(Action::Instances { app })
    });
    run(&s, &caller, action).await
}
