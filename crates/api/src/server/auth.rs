//! Token auth on every route but `/v1/health`: the middleware resolves the bearer token into
//! a [`Caller`] ([`crate::caller::Authenticator`]) before anything else is read, and hands it
//! to the handler through the request's extensions (the [`Caller`] extractor).

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Shared;
use crate::caller::Caller;
use crate::error::ApiError;

/// Middleware: 401 unless the request carries the admin token or a live tenant token.
pub(super) async fn require_token(
    State(shared): State<Arc<Shared>>,
    mut req: Request,
    next: Next,
) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match shared.auth.from_header(given).await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => {
            // Read (and drop) a small body so a keep-alive client still sending it can read
            // the answer and reuse the connection.
            let _ = axum::body::to_bytes(req.into_body(), super::MAX_JSON_BODY).await;
            e.into_response()
        }
    }
}

/// The caller the middleware found. Only routes behind it extract one; anywhere else it is a
/// 401 rather than a panic.
impl<St: Send + Sync> FromRequestParts<St> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or(ApiError::Unauthorized)
    }
}
