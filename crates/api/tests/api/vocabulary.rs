//! One vocabulary on the wire: sizes, durations and image references mean in the API's JSON
//! what they mean on the command line and in config files (`hako_model::units`,
//! `hako_model::ImageRef`).

use hako_api::AppPatch;
use hako_model::{ByteSize, ImageRef};

use crate::harness::{Server, assert_error, status_json};

fn post(server: &Server, body: serde_json::Value) -> (u16, serde_json::Value) {
    status_json(
        server
            .raw()
            .post(format!("{}/v1/apps", server.url()))
            .header("Authorization", server.bearer())
            .header("Content-Type", "application/json")
            .send(body.to_string()),
    )
}

fn app(name: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut v = serde_json::json!({
        "name": name,
        "hosts": [format!("{name}.example")],
        "image": "php",
        "cmd": "php -S 0.0.0.0:$PORT -t /app",
    });
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

#[test]
fn an_image_named_latest_is_accepted_and_stored_as_its_name() {
    let server = Server::start();
    server.backend.images.lock().unwrap().insert("site".into());
    let (status, body) = post(
        &server,
        app("blog", serde_json::json!({"image": "site:latest"})),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["image"], "site");
    let client = server.client();
    assert_eq!(
        client.app("blog").unwrap().spec.image,
        ImageRef::latest("site")
    );
    // And through the client's patch, the same form.
    client
        .create_app(&crate::harness::spec("shop", "shop.example"))
        .unwrap();
    let patch = AppPatch {
        image: Some("site:latest".parse().unwrap()),
        ..AppPatch::default()
    };
    let shop = client.update_app("shop", &patch).unwrap();
    assert_eq!(shop.spec.image, ImageRef::latest("site"));

    let (status, body) = post(&server, app("bad", serde_json::json!({"image": "site:0"})));
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("NAME:VERSION"),
        "{body}"
    );
}

#[test]
fn sizes_and_durations_have_one_meaning() {
    let server = Server::start();
    let (status, body) = post(
        &server,
        app(
            "blog",
            serde_json::json!({"memory": "100MB", "idle_timeout": "90s"}),
        ),
    );
    assert_eq!(status, 201, "{body}");
    let stored = server.client().app("blog").unwrap();
    assert_eq!(stored.spec.memory, ByteSize(100_000_000), "MB is 10^6");
    assert_eq!(body["memory"], "100MB", "written back exactly");
    let (status, body) = post(
        &server,
        app("shop", serde_json::json!({"memory": "100MiB"})),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        server.client().app("shop").unwrap().spec.memory,
        ByteSize(100 << 20),
        "MiB is 2^20"
    );

    // A bare duration is refused in a create and in an update, with the fix in the message.
    let (status, body) = post(
        &server,
        app("wiki", serde_json::json!({"idle_timeout": "45"})),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("add one, like 45s"),
        "{body}"
    );
    assert_error(
        server
            .raw()
            .patch(format!("{}/v1/apps/blog", server.url()))
            .header("Authorization", server.bearer())
            .send(r#"{"idle_timeout": 45}"#),
        400,
        "add one, like 45s",
    );
    assert_error(
        server
            .raw()
            .patch(format!("{}/v1/apps/blog", server.url()))
            .header("Authorization", server.bearer())
            .send(r#"{"memory": null}"#),
        400,
        "bad app update",
    );
    assert_eq!(
        server.client().app("blog").unwrap(),
        stored,
        "nothing changed"
    );
}
