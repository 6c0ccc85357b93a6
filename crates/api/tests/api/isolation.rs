//! A tenant cannot read, change, deploy to, or learn the existence of another tenant's app:
//! every route the API listener serves — the API, `/metrics` and the dashboard; the list comes
//! from the router's own table, `hako_api::routes` — is tried with a foreign tenant's token
//! (as a bearer, or as the dashboard's cookie under `/ui`), without a token, and with the
//! metrics token. A route without a case here fails the test.

use hako_api::{Access, RouteInfo};
use hako_model::{App, Event, InstanceInfo, InstanceState, Quota, StartPath};
use hako_store::{StoreExt, keys};

use crate::harness::{Credential, Server, spec};

const VICTIM_APP: &str = "victim-app";
const VICTIM_HOST: &str = "victim.example";
const VICTIM_TENANT: &str = "alpha";
const VICTIM_TOKEN: &str = "deployer";
const GHOST_APP: &str = "ghost-app";
const GHOST_TENANT: &str = "ghost";
const GHOST_TOKEN: &str = "ghost-token";
const METRICS_TOKEN: &str = "mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm";

/// What a foreign tenant's request must get.
enum Expect {
    /// Exactly what the same request about a name that never existed gets.
    AsMissing,
    /// 403, the same as for a name that never existed.
    Forbidden,
    /// 200, and nothing of the victim's in the body.
    Listed,
    /// This status (as anyone gets it), and nothing of the victim's in the body.
    Answered(u16),
    /// A status, with words in the message, and nothing of the victim's but what was sent.
    Refused(u16, &'static str),
}

struct Case {
    query: &'static str,
    body: Option<(&'static str, Vec<u8>)>,
    expect: Expect,
}

fn case(expect: Expect) -> Case {
    Case {
        query: "",
        body: None,
        expect,
    }
}

fn json(v: serde_json::Value) -> Option<(&'static str, Vec<u8>)> {
    Some(("application/json", v.to_string().into_bytes()))
}

fn new_app(name: &str, host: &str) -> Option<(&'static str, Vec<u8>)> {
    json(serde_json::to_value(spec(name, host)).unwrap())
}

/// The cases of one route; a route this test does not know is a failure.
fn cases(route: &RouteInfo) -> Vec<Case> {
    use Expect::*;
    match (route.method.as_str(), route.path) {
        ("GET", "/v1/health") => vec![case(Listed)],
        ("GET", "/v1/whoami") => vec![case(Listed)],
        ("GET", "/v1/apps") => vec![case(Listed)],
        ("POST", "/v1/apps") => vec![
            Case {
                body: new_app("new-one", VICTIM_HOST),
                ..case(Refused(409, "already in use by another app"))
            },
            Case {
                body: new_app(VICTIM_APP, "fresh.example"),
                ..case(Refused(409, "is taken"))
            },
            Case {
                query: "?tenant=alpha",
                body: new_app("sneaky", "sneaky.example"),
                ..case(Refused(403, "its own tenant only"))
            },
        ],
        ("GET", "/v1/apps/{name}") => vec![case(AsMissing)],
        ("PATCH", "/v1/apps/{name}") => vec![Case {
            body: json(serde_json::json!({"max": 1, "hosts": ["stolen.example"]})),
            ..case(AsMissing)
        }],
        ("DELETE", "/v1/apps/{name}") => vec![
            case(AsMissing),
            Case {
                query: "?database=drop",
                ..case(AsMissing)
            },
        ],
        ("GET", "/v1/apps/{name}/releases") => vec![case(AsMissing)],
        ("POST", "/v1/apps/{name}/releases") => vec![
            Case {
                body: Some(("application/x-tar", b"attacker code".to_vec())),
                ..case(AsMissing)
            },
            Case {
                body: json(serde_json::json!({"dir": "/etc"})),
                ..case(AsMissing)
            },
        ],
        ("POST", "/v1/apps/{name}/rollout") => vec![case(AsMissing)],
        ("GET", "/v1/apps/{name}/events") => vec![case(AsMissing)],
        ("GET", "/v1/apps/{name}/metrics") => vec![case(AsMissing)],
        ("GET", "/v1/apps/{name}/slo") => vec![
            case(AsMissing),
            Case {
                query: "?target_cold=0.01",
                ..case(AsMissing)
            },
        ],
        ("GET", "/v1/apps/{name}/logs") => vec![
            case(AsMissing),
            Case {
                query: "?follow=true",
                ..case(AsMissing)
            },
        ],
        ("GET", "/v1/apps/{name}/checkpoint") => vec![case(AsMissing)],
        ("GET", "/v1/apps/{name}/cert") => vec![case(AsMissing)],
        ("PUT", "/v1/apps/{name}/cert") => vec![Case {
            body: json(serde_json::json!({"cert": "not a certificate", "key": "nor a key"})),
            ..case(AsMissing)
        }],
        ("DELETE", "/v1/apps/{name}/cert") => vec![case(AsMissing)],
        ("GET", "/metrics") => vec![case(Listed)],
        // The dashboard, with the foreign tenant's token in the login cookie.
        ("GET", "/ui/") => vec![case(Listed)],
        ("GET", "/ui/apps/{name}") => vec![case(AsMissing)],
        // Logged in already: on to the overview.
        ("GET", "/ui" | "/ui/login") => vec![case(Answered(303))],
        // Not sent from the dashboard's own page (no Origin): refused before anything.
        ("POST", "/ui/login") => vec![Case {
            body: Some((
                "application/x-www-form-urlencoded",
                b"token=whatever".to_vec(),
            )),
            ..case(Answered(403))
        }],
        ("POST", "/ui/logout") => vec![case(Answered(403))],
        ("GET", "/ui/style.css") => vec![case(Listed)],
        ("GET", "/v1/instances") => vec![
            case(Listed),
            Case {
                query: "?app=victim-app",
                ..case(AsMissing)
            },
        ],
        ("GET", "/v1/nodes") => vec![case(Forbidden)],
        ("POST", "/v1/nodes/{name}/{state}") => vec![case(Forbidden)],
        ("GET", "/v1/tenants/{tenant}") => vec![case(AsMissing)],
        ("GET", "/v1/tenants/{tenant}/events") => vec![case(AsMissing)],
        (_, p) if p.starts_with("/v1/tenants") => {
            assert_eq!(route.access, Access::Admin, "{p}");
            vec![Case {
                body: match route.method.as_str() {
                    "POST" if p == "/v1/tenants" => {
                        json(serde_json::json!({"name": "made-by-beta"}))
                    }
                    "POST" => json(serde_json::json!({"name": "stolen"})),
                    "PATCH" => json(serde_json::json!({"max_apps": 100})),
                    _ => None,
                },
                ..case(Forbidden)
            }]
        }
        (m, p) => panic!(
            "route {m} {p} has no case in the isolation test: add one saying what another tenant's token must get"
        ),
    }
}

/// The route's path about the victim, or about names that never existed.
fn path(route: &RouteInfo, ghost: bool, query: &str) -> String {
    let (app, tenant, token) = if ghost {
        (GHOST_APP, GHOST_TENANT, GHOST_TOKEN)
    } else {
        (VICTIM_APP, VICTIM_TENANT, VICTIM_TOKEN)
    };
    let query = if ghost {
        query.replace(VICTIM_APP, GHOST_APP)
    } else {
        query.to_string()
    };
    format!(
        "{}{query}",
        route
            .path
            .replace("{name}", app)
            .replace("{tenant}", tenant)
            .replace("{token}", token)
            .replace("{state}", "drain")
    )
}

/// A body with the names it was asked about replaced, so answers about the victim and about
/// a ghost compare equal when they say the same.
fn normalised(body: &str, ghost: bool) -> String {
    let pairs = if ghost {
        [
            (GHOST_APP, "NAME"),
            (GHOST_TENANT, "TENANT"),
            (GHOST_TOKEN, "TOKEN"),
        ]
    } else {
        [
            (VICTIM_APP, "NAME"),
            (VICTIM_TENANT, "TENANT"),
            (VICTIM_TOKEN, "TOKEN"),
        ]
    };
    pairs
        .iter()
        .fold(body.to_string(), |b, (from, to)| b.replace(from, to))
}

/// How a route takes its token: the dashboard's pages from the login cookie, everything
/// else as a bearer.
fn credential<'a>(route: &RouteInfo, token: &'a str) -> Credential<'a> {
    if route.path.starts_with("/ui") {
        Credential::Cookie(token)
    } else {
        Credential::Bearer(token)
    }
}

#[test]
fn another_tenants_app_is_invisible_and_untouchable_through_every_route() {
    let server = Server::start_with_metrics_token(METRICS_TOKEN.into());
    let alpha = server.tenant(VICTIM_TENANT, Quota::default());
    let beta = server.tenant("beta", Quota::default());
    server
        .client()
        .create_token(VICTIM_TENANT, Some(VICTIM_TOKEN))
        .unwrap();
    let victim = alpha.create_app(&spec(VICTIM_APP, VICTIM_HOST)).unwrap();
    alpha.deploy_archive(VICTIM_APP, b"victim code").unwrap();
    let (cert, key) = crate::certs::issue(&[VICTIM_HOST], -60, 86400);
    let victim_cert = alpha.set_cert(VICTIM_APP, &cert, &key).unwrap();
    beta.create_app(&spec("mine", "mine.example")).unwrap();
    let victim = App {
        release: Some(1),
        ..victim
    };
    // The node knows the victim: metrics, an instance, a checkpoint, a service-level history.
    server
        .backend
        .metrics
        .lock()
        .unwrap()
        .insert(VICTIM_APP.into(), serde_json::json!({"requests": 7}));
    server.backend.checkpoints.lock().unwrap().insert(
        VICTIM_APP.into(),
        serde_json::json!({"restores": true, "reason": "victim checkpoint", "node_checkpoint_bytes": 1}),
    );
    server.backend.instances.lock().unwrap().push(InstanceInfo {
        id: format!("{VICTIM_APP}-1"),
        app: VICTIM_APP.into(),
        node: "local".into(),
        addr: "10.77.0.9:8080".into(),
        state: InstanceState::Ready,
        started_unix_ms: 1,
        ready_ms: Some(3.0),
        listen_ms: None,
        release: Some(1),
        image: "php:1".into(),
        generation: 0,
        from_pool: false,
        start_path: StartPath::Cold,
        restore_error: None,
        slot: None,
        limits: None,
    });
    let stored_before = server.client().app(VICTIM_APP).unwrap();
    let events_before = server.client().events(VICTIM_APP, None).unwrap().len();
    let releases_before = server.backend.made.lock().unwrap().len();
    // What must never show in another tenant's answer (beyond the names it sent itself).
    let secrets = [
        victim.uid.clone(),
        VICTIM_HOST.to_string(),
        "victim code".into(),
        "victim checkpoint".into(),
        victim_cert.issuer.clone(),
    ];

    let routes = hako_api::routes();
    assert!(routes.len() >= 30, "{routes:?}");
    for route in &routes {
        let cases = cases(route);
        assert!(!cases.is_empty());
        for c in cases {
            let what = format!("{} {}{}", route.method, route.path, c.query);
            let send = |ghost: bool, token: Option<&str>| {
                server.send_as(
                    route.method.as_str(),
                    &path(route, ghost, c.query),
                    token.map(|t| credential(route, t)),
                    c.body.clone(),
                )
            };
            // Without a token: refused (the dashboard's pages: to the login form).
            let (status, _) = send(false, None);
            match route.access {
                Access::Open => {}
                Access::Session => assert_eq!(status, 303, "{what} without a login"),
                Access::Token | Access::Admin | Access::Scrape => {
                    assert_eq!(status, 401, "{what} without a token")
                }
            }
            // The metrics token reads /metrics only: 403 on the API, no dashboard session.
            let (status, _) = send(false, Some(METRICS_TOKEN));
            match route.access {
                Access::Open | Access::Scrape => {}
                Access::Session => assert_eq!(status, 303, "{what} with the metrics token"),
                Access::Token | Access::Admin => {
                    assert_eq!(status, 403, "{what} with the metrics token")
                }
            }
            let (status, body) = send(false, Some(&beta.token));
            match c.expect {
                Expect::AsMissing | Expect::Forbidden => {
                    let (ghost_status, ghost_body) = send(true, Some(&beta.token));
                    let want = if matches!(c.expect, Expect::Forbidden) {
                        403
                    } else {
                        404
                    };
                    assert_eq!(status, want, "{what}: {body}");
                    assert_eq!(
                        (status, normalised(&body, false)),
                        (ghost_status, normalised(&ghost_body, true)),
                        "{what}: the answer about another tenant's app differs from one about nothing"
                    );
                }
                Expect::Listed | Expect::Answered(_) => {
                    let want = match c.expect {
                        Expect::Answered(s) => s,
                        _ => 200,
                    };
                    assert_eq!(status, want, "{what}: {body}");
                    for word in [VICTIM_APP, VICTIM_TENANT] {
                        assert!(!body.contains(word), "{what} shows {word}: {body}");
                    }
                }
                Expect::Refused(want, words) => {
                    assert_eq!(status, want, "{what}: {body}");
                    assert!(body.contains(words), "{what}: {body}");
                    assert!(
                        !body.contains(VICTIM_TENANT),
                        "{what} names the owner: {body}"
                    );
                }
            }
            for secret in &secrets {
                let sent = c
                    .body
                    .as_ref()
                    .is_some_and(|(_, b)| String::from_utf8_lossy(b).contains(secret.as_str()));
                assert!(
                    sent || !body.contains(secret.as_str()),
                    "{what} shows {secret}: {body}"
                );
            }
        }
    }

    // Nothing of the victim's changed, and nothing was done in its name.
    let admin = server.client();
    assert_eq!(admin.app(VICTIM_APP).unwrap(), stored_before);
    assert_eq!(admin.cert(VICTIM_APP).unwrap(), Some(victim_cert));
    assert_eq!(server.backend.made.lock().unwrap().len(), releases_before);
    let events = admin.events(VICTIM_APP, None).unwrap();
    assert_eq!(events.len(), events_before, "{events:?}");
    assert!(
        events
            .iter()
            .all(|e| e.actor.as_deref() == Some("alpha/owner"))
    );
    let names: Vec<String> = admin
        .list_apps()
        .unwrap()
        .into_iter()
        .map(|a| a.spec.name)
        .collect();
    assert_eq!(names, ["mine", VICTIM_APP], "nothing made, nothing deleted");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tenants: Vec<String> = rt
        .block_on(server.store.range_json::<hako_model::Tenant>(keys::TENANTS))
        .unwrap()
        .into_iter()
        .map(|(_, t)| t.name)
        .collect();
    assert_eq!(tenants, [VICTIM_TENANT, "beta"]);
    // The owner still does everything with it.
    assert_eq!(alpha.app(VICTIM_APP).unwrap(), stored_before);
    assert_eq!(alpha.metrics(VICTIM_APP).unwrap()["requests"], 7);
    assert_eq!(alpha.instances(None).unwrap().len(), 1);
    assert!(beta.instances(None).unwrap().is_empty());
    let _: Vec<Event> = alpha.events(VICTIM_APP, None).unwrap();
}
