//! Token auth. One function, [`caller_of`], turns a presented token into a [`Caller`] (compared
//! in constant time); the API's routes take the token from `Authorization: Bearer <token>`,
//! the dashboard from its cookie. The middleware puts the [`Caller`] into the request's
//! extensions, where handlers read it (see [`super::extract`]).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Shared;
use crate::caller::Caller;
use crate::error::ApiError;

/// Who sends `token`, if anyone.
pub(super) fn caller_of(shared: &Shared, token: &str) -> Option<Caller> {
    if crate::token::same(token, &shared.token) {
        return Some(Caller::Admin);
    }
    match &shared.metrics_token {
        Some(m) if crate::token::same(token, m) => Some(Caller::Metrics),
        _ => None,
    }
}

/// The bearer token of a request, if it has one.
pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Middleware of the API's routes (`/v1`): 401 without a known token, 403 for a token that may
/// not use the API (the metrics token); else the [`Caller`] goes on with the request.
pub(super) async fn require_api_caller(
    State(shared): State<Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    match bearer(req.headers()).and_then(|t| caller_of(&shared, t)) {
        Some(caller) if caller.may_use_api() => with_caller(caller, req, next).await,
        Some(_) => refuse(req, ApiError::metrics_only()).await,
        None => refuse(req, ApiError::Unauthorized).await,
    }
}

/// Middleware of `GET /metrics`: the admin token or the metrics token.
pub(super) async fn require_metrics_caller(
    State(shared): State<Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    match bearer(req.headers()).and_then(|t| caller_of(&shared, t)) {
        Some(caller) => with_caller(caller, req, next).await,
        None => refuse(req, ApiError::Unauthorized).await,
    }
}

async fn with_caller(caller: Caller, mut req: Request, next: Next) -> Response {
    req.extensions_mut().insert(caller);
    next.run(req).await
}

async fn refuse(req: Request, error: ApiError) -> Response {
    // Read (and drop) a small body so a keep-alive client still sending it can read the
    // answer and reuse the connection.
    let _ = axum::body::to_bytes(req.into_body(), super::MAX_JSON_BODY).await;
    error.into_response()
}
