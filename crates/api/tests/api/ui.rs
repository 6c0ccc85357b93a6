//! The dashboard's HTTP side, without a browser: who gets which page, the login's cookie and
//! its CSRF checks, escaping, the security headers, `GET /metrics`'s tokens, and what a
//! tenant's token sees of both.

use crate::harness::{Server, spec};
use hako_model::{Event, EventKind};
use hako_store::{StoreExt, keys};

/// An agent that neither follows redirects nor turns statuses into errors.
fn browser() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build(),
    )
}

fn header(r: &ureq::http::Response<ureq::Body>, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// Logs in with `token` from a page of `origin`; the response.
fn login(s: &Server, token: &str, origin: Option<&str>) -> ureq::http::Response<ureq::Body> {
    let mut req = browser()
        .post(format!("{}/ui/login", s.url()))
        .header("Content-Type", "application/x-www-form-urlencoded");
    if let Some(o) = origin {
        req = req.header("Origin", o);
    }
    req.send(format!("token={token}")).unwrap()
}

/// The cookie a successful login sets (name=value only).
fn session_cookie(s: &Server) -> String {
    let r = login(s, &s.token, Some(&s.url()));
    assert_eq!(r.status().as_u16(), 303);
    header(&r, "set-cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

fn page(s: &Server, path: &str, cookie: Option<&str>) -> (u16, String, String) {
    let mut req = browser().get(format!("{}{path}", s.url()));
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    let mut r = req.call().unwrap();
    let location = header(&r, "location");
    let status = r.status().as_u16();
    (status, location, r.body_mut().read_to_string().unwrap())
}

#[test]
fn pages_need_a_login_and_the_login_sets_a_strict_http_only_cookie() {
    let s = Server::start();
    let (status, location, _) = page(&s, "/ui/", None);
    assert_eq!((status, location.as_str()), (303, "/ui/login"));
    let (status, _, form) = page(&s, "/ui/login", None);
    assert_eq!(status, 200);
    assert!(form.contains("name=\"token\""), "{form}");

    let r = login(&s, &s.token, Some(&s.url()));
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(header(&r, "location"), "/ui/");
    let cookie = header(&r, "set-cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    // From an https page, the cookie is Secure.
    let host = s.url().trim_start_matches("http://").to_string();
    let r = login(&s, &s.token, Some(&format!("https://{host}")));
    assert!(header(&r, "set-cookie").contains("; Secure"));

    let c = session_cookie(&s);
    let (status, _, body) = page(&s, "/ui/", Some(&c));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("No apps yet"), "{body}");
    // A cookie with another token is no session.
    let (status, _, _) = page(
        &s,
        "/ui/",
        Some("hako_token=0123456789abcdef0123456789abcdef"),
    );
    assert_eq!(status, 303);
}

#[test]
fn forms_from_other_sites_and_wrong_tokens_are_refused() {
    let s = Server::start();
    for origin in [None, Some("http://evil.example"), Some("null")] {
        let r = login(&s, &s.token, origin);
        assert_eq!(r.status().as_u16(), 403, "{origin:?}");
        assert!(header(&r, "set-cookie").is_empty());
    }
    let r = login(&s, "wrong", Some(&s.url()));
    assert_eq!(r.status().as_u16(), 401);
    assert!(header(&r, "set-cookie").is_empty());
    let logout = browser()
        .post(format!("{}/ui/logout", s.url()))
        .header("Origin", "http://evil.example")
        .send_empty()
        .unwrap();
    assert_eq!(logout.status().as_u16(), 403);
}

#[test]
fn app_pages_escape_what_apps_and_events_carry_and_unknown_apps_are_404() {
    let s = Server::start();
    s.client()
        .create_app(&spec("blog", "blog.example"))
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let e = Event::new("blog", EventKind::Start, "<script>alert(1)</script>");
        s.store
            .append_json(&keys::events("blog"), &e)
            .await
            .unwrap();
    });
    let c = session_cookie(&s);
    let mut r = browser()
        .get(format!("{}/ui/apps/blog", s.url()))
        .header("Cookie", &c)
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let csp = header(&r, "content-security-policy");
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    assert_eq!(header(&r, "x-frame-options"), "DENY");
    let body = r.body_mut().read_to_string().unwrap();
    assert!(
        body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{body}"
    );
    assert!(!body.contains("<script>"), "{body}");
    assert!(body.contains("blog.example"));
    let (status, _, _) = page(&s, "/ui/apps/nope", Some(&c));
    assert_eq!(status, 404);
    let (status, _, _) = page(&s, "/ui/apps/Not%20A%20Name", Some(&c));
    assert_eq!(status, 400);
}

#[test]
fn metrics_take_the_admin_or_the_metrics_token_and_the_metrics_token_nothing_else() {
    let s = Server::start_with_metrics_token("m".repeat(64));
    let get = |path: &str, token: Option<&str>| {
        let mut req = browser().get(format!("{}{path}", s.url()));
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let r = req.call().unwrap();
        (r.status().as_u16(), header(&r, "content-type"))
    };
    let metrics = "m".repeat(64);
    assert_eq!(get("/metrics", None).0, 401);
    let (status, ct) = get("/metrics", Some(&metrics));
    assert_eq!(
        (status, ct.as_str()),
        (200, "text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(get("/metrics", Some(&s.token)).0, 200);
    assert_eq!(get("/v1/apps", Some(&metrics)).0, 403);
    assert_eq!(get("/v1/apps", Some(&s.token)).0, 200);
    // Nor can it log into the dashboard.
    let r = login(&s, &metrics, Some(&s.url()));
    assert_eq!(r.status().as_u16(), 403);
}

/// The `name=value` of the cookie a login with `token` sets.
fn cookie_of(s: &Server, token: &str) -> String {
    let r = login(s, token, Some(&s.url()));
    assert_eq!(r.status().as_u16(), 303, "login with {token}");
    header(&r, "set-cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn a_tenant_sees_its_own_apps_on_the_dashboard_and_in_metrics_and_not_the_node() {
    let s = Server::start();
    let acme = s.tenant("acme", hako_model::Quota::default());
    let other = s.tenant("other", hako_model::Quota::default());
    acme.create_app(&spec("shop", "shop.example")).unwrap();
    other.create_app(&spec("blog", "blog.example")).unwrap();
    s.client()
        .create_app(&spec("admins", "admins.example"))
        .unwrap();
    for app in ["shop", "blog", "admins"] {
        s.backend.checkpoints.lock().unwrap().insert(
            app.into(),
            serde_json::json!({"restores": false, "reason": "none yet", "node_checkpoint_bytes": 99, "node_checkpoint_max_bytes": 100}),
        );
    }

    // The dashboard: a tenant's login shows its apps, nobody else's, and not the node.
    let mine = cookie_of(&s, &acme.token);
    let (status, _, overview) = page(&s, "/ui/", Some(&mine));
    assert_eq!(status, 200);
    assert!(overview.contains("data-app=\"shop\""), "{overview}");
    for hidden in ["blog", "admins", "This node"] {
        assert!(
            !overview.contains(hidden),
            "a tenant sees {hidden}: {overview}"
        );
    }
    let admin = cookie_of(&s, &s.token);
    let (_, _, all) = page(&s, "/ui/", Some(&admin));
    for shown in ["shop", "blog", "admins", "This node"] {
        assert!(all.contains(shown), "the admin misses {shown}: {all}");
    }
    assert_eq!(page(&s, "/ui/apps/shop", Some(&mine)).0, 200);
    let (status, _, theirs) = page(&s, "/ui/apps/blog", Some(&mine));
    let (ghost_status, _, ghost) = page(&s, "/ui/apps/ghost", Some(&mine));
    assert_eq!((status, ghost_status), (404, 404));
    assert_eq!(theirs.replace("blog", "X"), ghost.replace("ghost", "X"));

    // /metrics: the tenant's apps' series only, none of the node's.
    let scrape = |token: &str| {
        let mut r = browser()
            .get(format!("{}/metrics", s.url()))
            .header("Authorization", format!("Bearer {token}"))
            .call()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.body_mut().read_to_string().unwrap()
    };
    let text = scrape(&acme.token);
    assert!(text.contains("app=\"shop\""), "{text}");
    for hidden in ["blog", "admins", "hako_node_"] {
        assert!(!text.contains(hidden), "a tenant scrapes {hidden}: {text}");
    }
    let text = scrape(&s.token);
    for shown in [
        "app=\"shop\"",
        "app=\"blog\"",
        "app=\"admins\"",
        "hako_node_cpus",
    ] {
        assert!(text.contains(shown), "the admin misses {shown}: {text}");
    }

    // A checkpoint's status: the node's disk use is the admin's to see.
    let status = acme.checkpoint("shop").unwrap();
    assert_eq!(status["reason"], "none yet");
    assert!(
        status
            .as_object()
            .unwrap()
            .keys()
            .all(|k| !k.starts_with("node_")),
        "{status}"
    );
    assert_eq!(
        s.client().checkpoint("shop").unwrap()["node_checkpoint_bytes"],
        99
    );

    // A revoked token ends its dashboard session at its next page.
    s.client().revoke_token("acme", "owner").unwrap();
    let (status, location, _) = page(&s, "/ui/", Some(&mine));
    assert_eq!((status, location.as_str()), (303, "/ui/login"));
    let r = login(&s, &acme.token, Some(&s.url()));
    assert_eq!(r.status().as_u16(), 401);
}
