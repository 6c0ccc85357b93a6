//! Token auth. One place, [`crate::caller::Authenticator`], turns a presented token into a
//! [`Caller`]; the API's routes and `GET /metrics` take the token from
//! `Authorization: Bearer <token>`, the dashboard from its cookie. The middleware resolves the
//! caller before anything else of the request is read and puts it into the request's
//! extensions, where handlers read it (see [`super::extract`]).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Shared;
use crate::caller::Caller;
use crate::error::ApiError;

/// The `Authorization` header of a request, if it is text.
fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// Middleware of the API's routes (`/v1`): 401 without a valid token, 403 for a token that
/// may not use the API (the metrics token); else the [`Caller`] goes on with the request.
pub(super) async fn require_api_caller(
    State(shared): State<Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    match shared.auth.from_header(authorization(req.headers())).await {
        Ok(caller) if caller.may_use_api() => with_caller(caller, req, next).await,
        Ok(_) => refuse(req, ApiError::metrics_only()).await,
        Err(e) => refuse(req, e).await,
    }
}

/// Middleware of `GET /metrics`: any valid token — the admin's, the metrics token, or a
/// tenant's (which reads its own apps' figures only).
pub(super) async fn require_metrics_caller(
    State(shared): State<Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    match shared.auth.from_header(authorization(req.headers())).await {
        Ok(caller) => with_caller(caller, req, next).await,
        Err(e) => refuse(req, e).await,
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
