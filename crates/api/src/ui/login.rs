//! Logging in and out of the dashboard: a form that takes a token, and the cookie that keeps
//! it. Both forms are refused (403) unless the browser says they were sent from a page of
//! this very host (`Origin`, or `Referer` where a browser sends no `Origin`).

use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};

use super::{COOKIE, session};
use crate::error::ApiError;
use crate::server::Shared;

/// How long a login lasts in the browser (the token itself may be revoked sooner).
const COOKIE_MAX_AGE_S: u64 = 12 * 3600;

/// The login form's fields.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct LoginForm {
    token: String,
}

/// `GET /ui/login`: the form (or the overview, when already logged in).
pub(crate) async fn form(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if session(&shared, &headers).await.is_some() {
        return Redirect::to("/ui/").into_response();
    }
    page(StatusCode::OK, None, &headers)
}

/// `POST /ui/login`: checks the token and keeps it in the cookie.
pub(crate) async fn submit(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let Some(https) = same_origin(&headers) else {
        return cross_site();
    };
    let Ok(Form(form)) = form else {
        return page(
            StatusCode::BAD_REQUEST,
            Some("send the form with a token"),
            &headers,
        );
    };
    match shared.auth.caller(form.token.trim()).await {
        Ok(caller) if caller.may_use_api() => {}
        Ok(_) => {
            return page(
                StatusCode::FORBIDDEN,
                Some(
                    "this is the metrics token: it only reads /metrics; log in with the admin token or a tenant's token",
                ),
                &headers,
            );
        }
        Err(ApiError::Unauthorized) => {
            return page(
                StatusCode::UNAUTHORIZED,
                Some(
                    "that token is not valid (or was revoked): use the admin token from <data-dir>/admin.token or a tenant's token from 'hako token create'",
                ),
                &headers,
            );
        }
        // The store did not answer: say so rather than call a good token bad.
        Err(e) => return page(e.status(), Some(&e.to_string()), &headers),
    }
    let secure = if https { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={COOKIE_MAX_AGE_S}{secure}",
        form.token.trim()
    );
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie),
            (header::LOCATION, "/ui/".into()),
        ],
    )
        .into_response()
}

/// `POST /ui/logout`: forgets the cookie.
pub(crate) async fn logout(headers: HeaderMap) -> Response {
    if same_origin(&headers).is_none() {
        return cross_site();
    }
    let cookie = format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0");
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie),
            (header::LOCATION, "/ui/login".into()),
        ],
    )
        .into_response()
}

fn cross_site() -> Response {
    (
        StatusCode::FORBIDDEN,
        "this form must be sent from hako's own dashboard page (the browser's Origin names another site)",
    )
        .into_response()
}

/// Whether the request was sent from a page of this host: `Some(https)` (the scheme the page
/// was on) when `Origin` — or, without it, `Referer` — names the same host and port as
/// `Host`; `None` otherwise, also when the browser sent neither.
pub(super) fn same_origin(headers: &HeaderMap) -> Option<bool> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let origin = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))?
        .to_str()
        .ok()?;
    let (https, rest) = if let Some(r) = origin.strip_prefix("https://") {
        (true, r)
    } else {
        (false, origin.strip_prefix("http://")?)
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    authority.eq_ignore_ascii_case(host).then_some(https)
}

fn page(status: StatusCode, error: Option<&str>, headers: &HeaderMap) -> Response {
    // Over plain http to another machine the token would cross the network in clear.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let local = ["127.", "localhost", "[::1]"]
        .iter()
        .any(|p| host.starts_with(p));
    super::html(status, login_markup(error, local))
}

fn login_markup(error: Option<&str>, local: bool) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "hako — log in" }
                link rel="stylesheet" href="/ui/style.css";
            }
            body.login {
                main {
                    h1 { "hako" }
                    form method="post" action="/ui/login" {
                        label for="token" { "API token" }
                        input #token type="password" name="token" autocomplete="current-password" required autofocus;
                        button type="submit" { "Log in" }
                    }
                    @if let Some(e) = error {
                        p.error role="alert" { (e) }
                    }
                    p.hint {
                        "The admin token is in " code { "<data-dir>/admin.token" }
                        " (" code { "/var/lib/hako/admin.token" } " by default); a site owner logs in with "
                        "the token the admin made for them (" code { "hako token create" } ")."
                    }
                    @if !local {
                        p.hint { "Reach this page over https (a TLS front) when it is not on this machine: the token is sent with every page." }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_this_host_may_send_the_forms() {
        let ok = headers(&[
            (header::HOST, "127.0.0.1:7070"),
            (header::ORIGIN, "http://127.0.0.1:7070"),
        ]);
        assert_eq!(same_origin(&ok), Some(false));
        let tls = headers(&[
            (header::HOST, "hako.example"),
            (header::ORIGIN, "https://hako.example"),
        ]);
        assert_eq!(
            same_origin(&tls),
            Some(true),
            "https pages get a Secure cookie"
        );
        let referer = headers(&[
            (header::HOST, "hako.example"),
            (header::REFERER, "https://hako.example/ui/login?x=1"),
        ]);
        assert_eq!(same_origin(&referer), Some(true));
        for bad in [
            headers(&[
                (header::HOST, "hako.example"),
                (header::ORIGIN, "https://evil.example"),
            ]),
            headers(&[(header::HOST, "hako.example"), (header::ORIGIN, "null")]),
            headers(&[
                (header::HOST, "hako.example:1"),
                (header::ORIGIN, "http://hako.example"),
            ]),
            headers(&[
                (header::HOST, "hako.example"),
                (header::ORIGIN, "http://hako.example.evil"),
            ]),
            headers(&[(header::HOST, "hako.example")]),
        ] {
            assert_eq!(same_origin(&bad), None, "{bad:?}");
        }
    }
}
