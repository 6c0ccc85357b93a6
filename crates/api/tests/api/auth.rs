//! Token auth: /v1/health is open, everything else needs the bearer token; the client finds the token.

use hako_api::ClientError;

use crate::harness::{Server, assert_error, status_json};

#[test]
fn health_needs_no_token_everything_else_does() {
    let server = Server::start();
    let raw = server.raw();
    let (status, body) = status_json(raw.get(format!("{}/v1/health", server.url())).call());
    assert_eq!((status, body), (200, serde_json::json!({"ok": true})));
    server.client().health().unwrap();

    let apps = format!("{}/v1/apps", server.url());
    assert_error(raw.get(&apps).call(), 401, "Authorization: Bearer");
    assert_error(
        raw.get(&apps)
            .header("Authorization", "Bearer wrong")
            .call(),
        401,
        "token",
    );
    let almost = server.token[..server.token.len() - 1].to_string() + "x";
    assert_error(
        raw.get(&apps)
            .header("Authorization", format!("Bearer {almost}"))
            .call(),
        401,
        "token",
    );
    assert_error(
        raw.get(&apps)
            .header("Authorization", server.token.as_str())
            .call(),
        401,
        "token",
    );
    // Auth comes before anything else: a bad request without a token is still a 401.
    assert_error(raw.post(&apps).send("{not json"), 401, "token");
    let err = hako_api::Client::new(server.url(), "nope")
        .list_apps()
        .unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert_eq!(server.client().list_apps().unwrap(), vec![]);
}

#[test]
fn client_configuration_reads_the_token_file() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    // A token made by the server side's function, then read back by a local CLI.
    let made = hako_api::token::load_or_create(dir.path()).unwrap();
    let local = hako_api::Client::configure(Some(&server.url()), None, dir.path()).unwrap();
    assert_eq!(local.token, made);
    assert_eq!(
        local.list_apps().unwrap_err().status(),
        Some(401),
        "a different token"
    );
    let with_env =
        hako_api::Client::configure(Some(&server.url()), Some(&server.token), dir.path()).unwrap();
    assert_eq!(with_env.list_apps().unwrap(), vec![]);

    let default = hako_api::Client::configure(Some("  "), Some("x"), dir.path()).unwrap();
    assert_eq!(default.base_url, hako_api::client::DEFAULT_API_URL);
    let empty = tempfile::tempdir().unwrap();
    let err = hako_api::Client::configure(None, None, empty.path()).unwrap_err();
    assert!(matches!(err, ClientError::Token(_)), "{err:?}");
    assert!(err.to_string().contains("HAKO_TOKEN"), "{err}");
}
