//! Token auth: every route but `/v1/health` needs `Authorization: Bearer <token>`, compared
//! in constant time.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Shared;
use crate::error::ApiError;

/// Middleware: 401 unless the request carries the admin token.
pub(super) async fn require_token(
    State(shared): State<Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(token) if crate::token::same(token, &shared.token) => next.run(req).await,
        _ => {
            // Read (and drop) a small body so a keep-alive client still sending it can read
            // the 401 and reuse the connection.
            let _ = axum::body::to_bytes(req.into_body(), super::MAX_JSON_BODY).await;
            ApiError::Unauthorized.into_response()
        }
    }
}
