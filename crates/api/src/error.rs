//! The API's one error type: every failure a request can meet, each with the HTTP status
//! it answers with and a message (lowercase, saying what to do) sent as `{"error": "…"}`.
//!
//! Tenants: 401 is a missing, wrong or revoked token; 403 a valid token that may not do this
//! (what only the admin may); 404 also answers for another tenant's app, word for word as for
//! one that does not exist; 422 a change past the tenant's quota.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hako_store::StoreError;

use crate::backend::BackendError;

/// Why a request failed; the variant decides the status, the message goes to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or refers to something invalid (400).
    #[error("{0}")]
    BadRequest(String),
    /// No or a wrong token (401).
    #[error(
        "missing, wrong or revoked API token: send 'Authorization: Bearer <token>' with the admin token from <data-dir>/admin.token or a tenant's token (set HAKO_TOKEN)"
    )]
    Unauthorized,
    /// The token is valid but may not do this (403): only the admin token may, or it is the
    /// metrics token anywhere but `GET /metrics`.
    #[error("{0}")]
    Forbidden(String),
    /// The app (or route) does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The method is not served on this path (405).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The request clashes with stored state (409).
    #[error("{0}")]
    Conflict(String),
    /// The change would take a tenant's apps past its quota (422).
    #[error("{0}")]
    Quota(String),
    /// The request body is larger than the server accepts (413).
    #[error("request body is over the limit of {limit} bytes: send a smaller archive")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// What the request would make is larger than the node takes (413).
    #[error("{0}")]
    ContentTooLarge(String),
    /// The node's storage is full (507).
    #[error("{0}")]
    OutOfSpace(String),
    /// Our fault: the store or the node failed (500).
    #[error("{0}")]
    Internal(String),
    /// A service the node needs is down or absent for now (503).
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Quota(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge { .. } | ApiError::ContentTooLarge(_) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::OutOfSpace(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// 403 for the metrics token anywhere but `GET /metrics`.
    pub fn metrics_only() -> ApiError {
        ApiError::Forbidden(
            "this is the metrics token: it only reads GET /metrics; use the admin token from <data-dir>/admin.token or a tenant's token for the API and the dashboard".into(),
        )
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
        match e {
            StoreError::Unavailable(_) => ApiError::Unavailable(e.to_string()),
            StoreError::Full { .. } => ApiError::OutOfSpace(e.to_string()),
            e => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> ApiError {
        match e {
            BackendError::BadInput(m) => ApiError::BadRequest(m),
            BackendError::NotFound(m) => ApiError::NotFound(m),
            BackendError::Conflict(m) => ApiError::Conflict(m),
            BackendError::TooLarge(m) => ApiError::ContentTooLarge(m),
            BackendError::OutOfSpace(m) => ApiError::OutOfSpace(m),
            BackendError::Unavailable(m) => ApiError::Unavailable(m),
            BackendError::Internal(m) => ApiError::Internal(m),
        }
    }
}

impl From<hako_model::AppError> for ApiError {
    fn from(e: hako_model::AppError) -> ApiError {
        ApiError::BadRequest(e.to_string())
    }
}

impl From<hako_model::QuotaError> for ApiError {
    fn from(e: hako_model::QuotaError) -> ApiError {
        ApiError::Quota(e.to_string())
    }
}

impl From<hako_model::TenantNameError> for ApiError {
    fn from(e: hako_model::TenantNameError) -> ApiError {
        ApiError::BadRequest(e.to_string())
    }
}

impl From<hako_model::LimitError> for ApiError {
    fn from(e: hako_model::LimitError) -> ApiError {
        ApiError::BadRequest(e.to_string())
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
            ApiError::Forbidden("x".into()).status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            ApiError::Quota("x".into()).status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
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

    #[test]
    fn a_full_store_answers_507_with_what_to_do() {
        let e = ApiError::from(StoreError::Full {
            location: "/var/lib/hako/hako.db".into(),
        });
        assert_eq!(e.status(), StatusCode::INSUFFICIENT_STORAGE);
        assert_eq!(e.status().as_u16(), 507);
        let msg = e.to_string();
        assert!(
            msg.contains("/var/lib/hako/hako.db")
                && msg.contains("nothing was written")
                && msg.contains("free space"),
            "{msg}"
        );
        // The body says the same: `{"error": "…"}`.
        let response = e.clone().into_response();
        assert_eq!(response.status().as_u16(), 507);
        // An etcd without quorum stays 503, any other store failure 500.
        assert_eq!(
            ApiError::from(StoreError::Unavailable("no leader".into()))
                .status()
                .as_u16(),
            503
        );
        assert_eq!(
            ApiError::from(StoreError::Backend("sqlite: I/O error".into()))
                .status()
                .as_u16(),
            500
        );
    }

    #[test]
    fn each_backend_failure_has_its_own_status() {
        let cases = [
            (BackendError::BadInput("x".into()), 400),
            (BackendError::NotFound("x".into()), 404),
            (BackendError::Conflict("x".into()), 409),
            (BackendError::TooLarge("x".into()), 413),
            (BackendError::Internal("x".into()), 500),
            (BackendError::Unavailable("x".into()), 503),
        ];
        for (e, status) in cases {
            let api = ApiError::from(e.clone());
            assert_eq!(api.status().as_u16(), status, "{e:?}");
            assert_eq!(api.to_string(), "x", "the message is passed on");
        }
        assert_eq!(BackendError::user("a"), BackendError::BadInput("a".into()));
        assert_eq!(
            BackendError::internal("b"),
            BackendError::Internal("b".into())
        );
    }
}
