//! What can go wrong with one proxied request, where it came from, and whether
//! the request may have reached an app (retrying is safe only if it did not).

use http::StatusCode;
use std::time::Duration;

/// Where an error came from (Pingora's split).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// The client sent something we refuse.
    Client,
    /// The app or its instance failed us.
    Upstream,
    /// The proxy itself (queues, starts).
    Internal,
}

/// Why a request got an answer from the proxy rather than from an app.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Host is missing or malformed.
    #[error(transparent)]
    BadHost(#[from] crate::headers::HostError),
    /// No app serves this host.
    #[error("no site is configured for host {host:?}; check the address or add the host to an app")]
    UnknownHost {
        /// The host the client asked for.
        host: String,
    },
    /// The request body is over the limit.
    #[error("request body is larger than {limit} bytes; send a smaller body")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The client's body could not be read (bad chunked encoding, cut short).
    #[error(
        "the request body could not be read ({0}); send a body that matches its Content-Length or valid chunked encoding"
    )]
    BadBody(String),
    /// Too many requests already wait for this app to start.
    #[error("too many requests are waiting for site {app} to start ({max}); retry in a moment")]
    QueueFull {
        /// The app.
        app: String,
        /// Its wait-queue bound.
        max: usize,
    },
    /// The launcher could not start an instance.
    #[error("site {app} failed to start ({kind}): {reason}; retry in a moment")]
    StartFailed {
        /// The app.
        app: String,
        /// Whose move it is.
        kind: hako_model::StartFailure,
        /// The launcher's reason.
        reason: String,
    },
    /// The launcher did not start an instance within the start timeout.
    #[error("site {app} did not start within {after:?}; retry in a moment")]
    StartTimedOut {
        /// The app.
        app: String,
        /// The start timeout.
        after: Duration,
    },
    /// Every attempt failed before the request reached an app.
    #[error(
        "site {app} has no reachable instance ({attempts} attempts, last: {last}); retry in a moment"
    )]
    Unreachable {
        /// The app.
        app: String,
        /// Instances tried.
        attempts: usize,
        /// The last connect or send error.
        last: String,
    },
    /// The instance failed after the request was (maybe partly) sent.
    #[error("site's instance failed while answering: {0}")]
    Upstream(#[source] hyper::Error),
    /// The instance answered 101 to a request that did not ask to upgrade.
    #[error("site's instance switched protocols without being asked")]
    UnexpectedUpgrade,
    /// The instance did not send a response head in time.
    #[error("site's instance did not answer within {0:?}")]
    UpstreamTimeout(Duration),
}

impl ProxyError {
    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadHost(_) | Self::BadBody(_) => StatusCode::BAD_REQUEST,
            Self::UnknownHost { .. } => StatusCode::NOT_FOUND,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::QueueFull { .. }
            | Self::StartFailed { .. }
            | Self::StartTimedOut { .. }
            | Self::Unreachable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Upstream(_) | Self::UnexpectedUpgrade => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// Where the error came from.
    pub fn source_side(&self) -> ErrorSource {
        match self {
            Self::BadHost(_)
            | Self::UnknownHost { .. }
            | Self::BodyTooLarge { .. }
            | Self::BadBody(_) => ErrorSource::Client,
            Self::QueueFull { .. } | Self::StartFailed { .. } | Self::StartTimedOut { .. } => {
                ErrorSource::Internal
            }
            Self::Unreachable { .. }
            | Self::Upstream(_)
            | Self::UnexpectedUpgrade
            | Self::UpstreamTimeout(_) => ErrorSource::Upstream,
        }
    }

    /// True when the request may have reached an app, so it must not be retried.
    pub fn reached_app(&self) -> bool {
        matches!(
            self,
            Self::Upstream(_)
                | Self::UnexpectedUpgrade
                | Self::UpstreamTimeout(_)
                | Self::BodyTooLarge { .. }
                | Self::BadBody(_)
        )
    }

    /// True when the client should be told to come back later (`Retry-After`).
    pub fn retry_later(&self) -> bool {
        self.status() == StatusCode::SERVICE_UNAVAILABLE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_sides() {
        let full = ProxyError::QueueFull {
            app: "a".into(),
            max: 3,
        };
        assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(full.retry_later() && !full.reached_app());
        assert_eq!(full.source_side(), ErrorSource::Internal);
        let timeout = ProxyError::UpstreamTimeout(Duration::from_secs(1));
        assert_eq!(timeout.status(), StatusCode::GATEWAY_TIMEOUT);
        assert!(timeout.reached_app() && !timeout.retry_later());
        let host = ProxyError::from(crate::headers::HostError::Missing);
        assert_eq!(host.status(), StatusCode::BAD_REQUEST);
        assert_eq!(host.source_side(), ErrorSource::Client);
        assert!(host.to_string().contains("Host"));
    }
}
