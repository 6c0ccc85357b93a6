//! Malformed requests: every error is JSON with a fitting status and the server is unharmed.

use crate::harness::{Server, assert_error};

#[test]
fn malformed_requests_get_json_errors() {
    let server = Server::start();
    let raw = server.raw();
    let url = server.url();
    let auth = server.bearer();
    assert_error(
        raw.post(format!("{url}/v1/apps"))
            .header("Authorization", &auth)
            .header("Content-Type", "application/json")
            .send("{\"name\": \"blog\", "),
        400,
        "not a valid app spec",
    );
    assert_error(
        raw.post(format!("{url}/v1/apps"))
            .header("Authorization", &auth)
            .send(r#"{"name": "blog"}"#),
        400,
        "missing field",
    );
    assert_error(
        raw.get(format!("{url}/v1/apps/Bad_Name"))
            .header("Authorization", &auth)
            .call(),
        400,
        "app name \"Bad_Name\" is not valid",
    );
    assert_error(
        raw.get(format!("{url}/v1/apps/nope"))
            .header("Authorization", &auth)
            .call(),
        404,
        "app \"nope\" not found",
    );
    assert_error(
        raw.get(format!("{url}/v1/nothing-here"))
            .header("Authorization", &auth)
            .call(),
        404,
        "no API route",
    );
    assert_error(
        raw.put(format!("{url}/v1/apps"))
            .header("Authorization", &auth)
            .send("{}"),
        405,
        "PUT is not served",
    );
    assert_error(
        raw.get(format!("{url}/v1/apps/nope/events?limit=zero"))
            .header("Authorization", &auth)
            .call(),
        400,
        "limit \"zero\" is not valid",
    );
    assert_error(
        raw.get(format!("{url}/v1/instances?app=..%2F"))
            .header("Authorization", &auth)
            .call(),
        400,
        "is not valid",
    );
    // The server is unharmed and nothing was stored.
    assert_eq!(server.client().list_apps().unwrap(), vec![]);
}
