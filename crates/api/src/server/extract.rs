//! Extractors that never reject on their own: they hand the handler a `Result` whose error is
//! already an [`ApiError`], so a bad path, an oversized or unreadable body all answer with
//! the API's JSON error shape instead of axum's plain-text rejections.

use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use bytes::Bytes;

use super::Shared;
use crate::action::check_name;
use crate::error::ApiError;

/// The [`crate::Caller`] the auth middleware found for the request. A route without that
/// middleware has none: 401.
impl<St: Send + Sync> FromRequestParts<St> for crate::Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<crate::Caller>()
            .cloned()
            .ok_or(ApiError::Unauthorized)
    }
}

/// Largest JSON body (app specs, patches): 1 MiB.
pub const MAX_JSON_BODY: usize = 1 << 20;

/// The `{name}` path segment, checked to be a valid app name.
pub struct AppName(pub Result<String, ApiError>);

impl<St: Send + Sync> FromRequestParts<St> for AppName {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        let name = match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(name)) => check_name(&name),
            Err(e) => Err(ApiError::BadRequest(format!(
                "bad path: {}",
                e.body_text().to_lowercase()
            ))),
        };
        Ok(AppName(name))
    }
}

/// A JSON route's body (up to [`MAX_JSON_BODY`]).
pub struct Body(pub Result<Bytes, ApiError>);

impl<St: Send + Sync> FromRequest<St> for Body {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, state: &St) -> Result<Self, Self::Rejection> {
        Ok(Body(read(req, state, MAX_JSON_BODY).await))
    }
}

/// A release upload's body (up to the server's `max_upload`).
pub struct Upload(pub Result<Bytes, ApiError>);

impl FromRequest<Arc<Shared>> for Upload {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, state: &Arc<Shared>) -> Result<Self, Self::Rejection> {
        // Refuse a declared oversize at once, before reading (and before a client that sent
        // `Expect: 100-continue` starts sending), so the client sees the 413.
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > state.max_upload as u64) {
            return Ok(Upload(Err(ApiError::TooLarge {
                limit: state.max_upload,
            })));
        }
        Ok(Upload(read(req, state, state.max_upload).await))
    }
}

/// Reads a whole body; the limit itself is enforced by the route's `DefaultBodyLimit`,
/// `limit` only goes into the 413 message.
async fn read<St: Send + Sync>(req: Request, state: &St, limit: usize) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state)
        .await
        .map_err(|e| body_error(e, limit))
}

fn body_error(e: BytesRejection, limit: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge { limit }
    } else {
        ApiError::BadRequest(format!(
            "could not read the request body: {}",
            e.body_text().to_lowercase()
        ))
    }
}
