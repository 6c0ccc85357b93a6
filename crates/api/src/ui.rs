//! The dashboard at `/ui/`: server-rendered HTML (no script, no build step, nothing fetched
//! from elsewhere) on the API listener, under the same tokens as the API.
//!
//! - **Login** (`login`): a form takes a token — the admin's or a tenant's; the token itself
//!   goes into a cookie (`HttpOnly`, `SameSite=Strict`, `Path=/ui`, `Secure` when the page was
//!   reached over https) and every page checks it again through the API's one token check
//!   ([`crate::caller::Authenticator`], in `require_session`), so a token that stops being
//!   valid (a revoked tenant token) logs its sessions out at once and the server keeps no
//!   session state. The metrics token cannot log in.
//! - **CSRF**: the pages only read; the two forms that change something (log in, log out)
//!   are refused unless the browser's `Origin` (or `Referer`) names this very host, and the
//!   cookie is `SameSite=Strict`. Nothing that changes an app is reachable with the cookie:
//!   the API under `/v1` takes only the `Authorization` header.
//! - **Pages** (`pages`): the apps a caller may see ([`crate::Caller::can_see`]: a tenant's
//!   token sees its own apps only) with their state, instances, cold ratio and charts of the
//!   last hour (`chart`), events and logs; the node's own figures for the admin only. A page
//!   of an app the caller may not see is a 404, as for an app that does not exist.
//! - The routes are in the API's one table ([`crate::server::routes()`]) with their access.
//! - Every answer carries a strict `Content-Security-Policy` (no script at all, styles from
//!   `/ui/style.css` only), `X-Frame-Options: DENY` and `Cache-Control: no-store`.

mod chart;
mod format;
mod login;
mod pages;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use crate::caller::Caller;
use crate::server::Shared;

pub(crate) use login::{form as login_form, logout, submit as login};
pub(crate) use pages::{app as app_page, overview};

/// The cookie that holds a logged-in browser's token.
pub const COOKIE: &str = "hako_token";

const STYLE: &str = include_str!("ui/style.css");

/// `GET /ui`: the overview is at `/ui/`.
pub(crate) async fn to_overview() -> Redirect {
    Redirect::to("/ui/")
}

/// Middleware of the pages ([`crate::server::Access::Session`]): the caller whose token the
/// cookie holds goes on with the request (the pages read it as a [`Caller`]); without a
/// valid one, the login form.
pub(crate) async fn require_session(
    State(shared): State<Arc<Shared>>,
    mut req: Request,
    next: Next,
) -> Response {
    match session(&shared, req.headers()).await {
        Some(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        None => to_login(),
    }
}

/// A page as an HTML response.
fn html(status: axum::http::StatusCode, page: maud::Markup) -> Response {
    (status, axum::response::Html(page.into_string())).into_response()
}

/// The caller whose token the request's cookie holds, if it is valid and may use the
/// dashboard.
async fn session(shared: &Shared, headers: &HeaderMap) -> Option<Caller> {
    let token = cookie(headers, COOKIE)?;
    shared
        .auth
        .caller(token)
        .await
        .ok()
        .filter(Caller::may_use_api)
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

pub(crate) async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

/// The headers every dashboard answer carries (see the module's docs).
pub(crate) async fn secure_headers(mut response: Response) -> Response {
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
