//! The dashboard at `/ui/`: server-rendered HTML (no script, no build step, nothing fetched
//! from elsewhere) on the API listener, under the same tokens as the API.
//!
//! - **Login** ([`login`]): a form takes a token; the token itself goes into a cookie
//!   (`HttpOnly`, `SameSite=Strict`, `Path=/ui`, `Secure` when the page was reached over https)
//!   and every page checks it again through the API's one token check, so a token that stops
//!   being valid logs its sessions out at once and the server keeps no session state. The
//!   metrics token cannot log in.
//! - **CSRF**: the pages only read; the two forms that change something (log in, log out)
//!   are refused unless the browser's `Origin` (or `Referer`) names this very host, and the
//!   cookie is `SameSite=Strict`. Nothing that changes an app is reachable with the cookie:
//!   the API under `/v1` takes only the `Authorization` header.
//! - **Pages** ([`pages`]): the apps a caller may see ([`crate::Caller::can_see`]) with their
//!   state, instances, cold ratio and charts of the last hour ([`chart`]), events and logs.
//!   A page of an app the caller may not see is a 404, as for an app that does not exist.
//! - Every answer carries a strict `Content-Security-Policy` (no script at all, styles from
//!   `/ui/style.css` only), `X-Frame-Options: DENY` and `Cache-Control: no-store`.

mod chart;
mod format;
mod login;
mod pages;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::caller::Caller;
use crate::server::Shared;

/// The cookie that holds a logged-in browser's token.
pub const COOKIE: &str = "hako_token";

const STYLE: &str = include_str!("ui/style.css");

/// The dashboard's routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(pages::overview))
        .route("/ui/apps/{name}", get(pages::app))
        .route("/ui/login", get(login::form).post(login::submit))
        .route("/ui/logout", post(login::logout))
        .route("/ui/style.css", get(style))
        .layer(axum::middleware::map_response(secure_headers))
}

/// A page as an HTML response.
fn html(status: axum::http::StatusCode, page: maud::Markup) -> Response {
    (status, axum::response::Html(page.into_string())).into_response()
}

/// The caller whose token the request's cookie holds, if it is valid and may use the
/// dashboard.
fn session(shared: &Shared, headers: &HeaderMap) -> Option<Caller> {
    let token = cookie(headers, COOKIE)?;
    shared.caller_of(token).filter(Caller::may_use_api)
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Where a request without a valid session goes.
fn to_login() -> Response {
    Redirect::to("/ui/login").into_response()
}

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

async fn secure_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in set {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; hako_token=abc"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&h, COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "hako"), None);
        assert_eq!(cookie(&HeaderMap::new(), COOKIE), None);
    }
}
