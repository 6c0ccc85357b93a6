//! How each [`Reply`] is answered: JSON with 200, 201 for something created, 204 for a
//! delete, `text/plain` for logs; a new token once, with `Cache-Control: no-store`.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use hako_model::App;

use crate::action::Reply;

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self {
            // Database passwords reach containers, never API clients.
            Reply::Apps(apps) => {
                Json(apps.iter().map(App::redacted).collect::<Vec<_>>()).into_response()
            }
            Reply::Created(app) => (StatusCode::CREATED, Json(app.redacted())).into_response(),
            Reply::App(app) => Json(app.redacted()).into_response(),
            Reply::Updated(app, resize) => {
                let mut v = serde_json::to_value(app.redacted()).unwrap_or_default();
                if let (Some(o), false) = (v.as_object_mut(), resize.is_empty()) {
                    o.insert(
                        "resize".into(),
                        serde_json::to_value(resize).unwrap_or_default(),
                    );
                }
                Json(v).into_response()
            }
            Reply::Deleted => StatusCode::NO_CONTENT.into_response(),
            Reply::Release(release) => (StatusCode::CREATED, Json(release)).into_response(),
            Reply::Releases(releases) => Json(releases).into_response(),
            Reply::Events(events) => Json(events).into_response(),
            Reply::Metrics(metrics) => Json(metrics).into_response(),
            Reply::Slo(report) => Json(report).into_response(),
            Reply::Logs(text) => {
                ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
            }
            Reply::Instances(instances) => Json(instances).into_response(),
            Reply::Whoami(who) => Json(who).into_response(),
            Reply::Tenants(tenants) => Json(tenants).into_response(),
            Reply::Tenant(tenant) => Json(tenant).into_response(),
            Reply::TenantCreated(tenant) => (StatusCode::CREATED, Json(tenant)).into_response(),
            Reply::Tokens(tokens) => Json(tokens).into_response(),
            // The only time a token is shown; never cache it.
            Reply::TokenCreated(token) => (
                StatusCode::CREATED,
                [(header::CACHE_CONTROL, "no-store")],
                Json(token),
            )
                .into_response(),
            Reply::Nodes(nodes) => Json(nodes).into_response(),
            Reply::Node(node) => Json(node).into_response(),
            Reply::Cert(info) => Json(info).into_response(),
        }
    }
}
