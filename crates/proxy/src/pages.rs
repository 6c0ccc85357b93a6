//! The short HTML pages the proxy answers with when no app does.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::body::ProxyBody;
use crate::error::ProxyError;

/// A complete error response: status, a short page saying what happened and
/// what to do, and `Retry-After` when coming back later may help.
pub fn error_response(error: &ProxyError, retry_after_secs: u32) -> Response<ProxyBody> {
    let status = error.status();
    let mut response = page(status, &error.to_string());
    if error.retry_later() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    }
    response
}

/// A page with `status` and a one-line `message` (HTML-escaped).
pub fn page(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
         <body><h1>{title}</h1>\n<p>{}</p>\n<hr><p>hako</p></body></html>\n",
        escape(message)
    );
    let mut response = Response::new(ProxyBody::full(Bytes::from(html)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn unknown_host_page_names_the_host_escaped() {
        let err = ProxyError::UnknownHost {
            host: "<x>.example".into(),
        };
        let resp = error_response(&err, 5);
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert!(resp.headers().get(header::RETRY_AFTER).is_none());
        let body = resp.body().as_full().expect("full body");
        let text = std::str::from_utf8(body).unwrap();
        assert!(text.contains("&lt;x&gt;.example"), "{text}");
        assert!(text.contains("404 Not Found"));
    }

    #[test]
    fn start_timeout_has_retry_after() {
        let err = ProxyError::StartTimedOut {
            app: "blog".into(),
            after: Duration::from_secs(2),
        };
        let resp = error_response(&err, 7);
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "7");
    }
}
