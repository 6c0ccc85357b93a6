//! The API's one error type: every failure a request can meet, each with the HTTP status
//! it answers with and a message (lowercase, saying what to do) sent as `{"error": "…"}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hako_store::StoreError;

use crate::backend::{BackendError, BackendErrorKind};

/// Why a request failed; the variant decides the status, the message goes to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or refers to something invalid (400).
    #[error("{0}")]
    BadRequest(String),
    /// No or a wrong token (401).
    #[error(
        "missing or wrong API token: send 'Authorization: Bearer <token>' with the token from <data-dir>/admin.token (or set HAKO_TOKEN)"
    )]
    Unauthorized,
    /// The app (or route) does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The method is not served on this path (405).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The request clashes with stored state (409).
    #[error("{0}")]
    Conflict(String),
    /// The request body is larger than the server accepts (413).
    #[error("request body is over the limit of {limit} bytes: send a smaller archive")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// What was sent is over a bound of the node (413), e.g. a release too large unpacked.
    #[error("{0}")]
    OverLimit(String),
    /// The node's storage is full (507).
    #[error("{0}")]
    OutOfSpace(String),
    /// Our fault: the store or the node failed (500).
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge { .. } | ApiError::OverLimit(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::OutOfSpace(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// 404 for an app that does not exist.
    pub fn no_app(name: &str) -> ApiError {
        ApiError::NotFound(format!(
            "app {name:?} not found: list apps with 'hako app list'"
        ))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::Internal(e.to_string())
    }
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> ApiError {
        match e.kind {
            BackendErrorKind::User => ApiError::BadRequest(e.message),
            BackendErrorKind::TooLarge => ApiError::OverLimit(e.message),
            BackendErrorKind::OutOfSpace => ApiError::OutOfSpace(e.message),
            BackendErrorKind::Internal => ApiError::Internal(e.message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, "api request failed");
        }
        (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_sources() {
        assert_eq!(ApiError::no_app("x").status(), StatusCode::NOT_FOUND);
        assert_eq!(
            ApiError::from(BackendError::user("bad tar")),
            ApiError::BadRequest("bad tar".into())
        );
        assert_eq!(
            ApiError::from(BackendError::internal("disk")).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let e = ApiError::from(StoreError::Closed);
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(e.to_string().contains("restart"), "{e}");
        assert_eq!(
            ApiError::TooLarge { limit: 10 }.status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            ApiError::from(BackendError::too_large("release over 1 GiB")).status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            ApiError::from(BackendError::out_of_space("disk full")).status(),
            StatusCode::INSUFFICIENT_STORAGE
        );
    }
}
