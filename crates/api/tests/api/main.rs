//! The API over a real socket: the blocking client and raw requests against a server with an
//! in-memory store and a fake backend.

mod harness;

use hako_api::{AppPatch, ClientError};
use hako_model::{ByteSize, EventKind, InstanceInfo, InstanceState};
use hako_store::{StoreExt, keys};
use harness::{Server, TEST_UPLOAD_LIMIT, assert_error, spec, status_json};

fn api_status(e: ClientError) -> (u16, String) {
    match e {
        ClientError::Api { status, message } => (status, message),
        other => panic!("not an API error: {other:?}"),
    }
}

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
fn create_list_show_update_delete_round_trip() {
    let server = Server::start();
    let client = server.client();
    let created = client.create_app(&spec("blog", "Blog.Example")).unwrap();
    assert_eq!(created.spec.hosts, ["blog.example"], "hosts normalised");
    assert_eq!((created.release, created.generation), (None, 0));
    assert!(created.created_unix > 0);
    assert_eq!(created.created_unix, created.updated_unix);
    client.create_app(&spec("shop", "shop.example")).unwrap();

    let names: Vec<String> = client
        .list_apps()
        .unwrap()
        .into_iter()
        .map(|a| a.spec.name)
        .collect();
    assert_eq!(names, ["blog", "shop"]);
    assert_eq!(client.app("blog").unwrap(), created);

    let patch = AppPatch {
        memory: Some(ByteSize(1 << 30)),
        cpu: Some(Some(0.5)),
        hosts: Some(vec!["blog.example".into(), "www.blog.example".into()]),
        ..AppPatch::default()
    };
    let updated = client.update_app("blog", &patch).unwrap();
    assert_eq!(updated.spec.memory, ByteSize(1 << 30));
    assert_eq!(updated.spec.cpu, Some(0.5));
    assert_eq!(updated.spec.hosts, ["blog.example", "www.blog.example"]);
    assert_eq!(updated.spec.cmd, created.spec.cmd, "untouched field kept");
    assert_eq!(client.app("blog").unwrap(), updated);
    let cleared = client
        .update_app(
            "blog",
            &AppPatch {
                cpu: Some(None),
                ..AppPatch::default()
            },
        )
        .unwrap();
    assert_eq!(cleared.spec.cpu, None);

    client.delete_app("blog").unwrap();
    assert_eq!(client.app("blog").unwrap_err().status(), Some(404));
    assert_eq!(client.delete_app("blog").unwrap_err().status(), Some(404));
    let names: Vec<String> = client
        .list_apps()
        .unwrap()
        .into_iter()
        .map(|a| a.spec.name)
        .collect();
    assert_eq!(names, ["shop"]);
    // The name and its hosts are free again.
    client.create_app(&spec("blog", "blog.example")).unwrap();
}

#[test]
fn validation_and_conflicts() {
    let server = Server::start();
    let client = server.client();
    client.create_app(&spec("blog", "blog.example")).unwrap();

    let (status, msg) = api_status(
        client
            .create_app(&spec("blog", "other.example"))
            .unwrap_err(),
    );
    assert_eq!(status, 409);
    assert!(msg.contains("already exists"), "{msg}");

    let (status, msg) = api_status(
        client
            .create_app(&spec("blog2", "BLOG.example"))
            .unwrap_err(),
    );
    assert_eq!(status, 409);
    assert!(
        msg.contains("\"blog.example\" already belongs to app \"blog\""),
        "{msg}"
    );

    let mut bad = spec("shop", "shop.example");
    bad.max = 0;
    let (status, msg) = api_status(client.create_app(&bad).unwrap_err());
    assert_eq!(status, 400);
    assert!(msg.contains("max instances"), "{msg}");

    let mut missing_image = spec("shop", "shop.example");
    missing_image.image = "ruby:3".into();
    let (status, msg) = api_status(client.create_app(&missing_image).unwrap_err());
    assert_eq!(status, 400);
    assert!(
        msg.contains("image \"ruby:3\" not found: build or import it first"),
        "{msg}"
    );

    // Updates get the same checks.
    client.create_app(&spec("shop", "shop.example")).unwrap();
    let steal = AppPatch {
        hosts: Some(vec!["blog.example".into()]),
        ..AppPatch::default()
    };
    assert_eq!(
        client.update_app("shop", &steal).unwrap_err().status(),
        Some(409)
    );
    let no_image = AppPatch {
        image: Some("ruby".into()),
        ..AppPatch::default()
    };
    assert_eq!(
        client.update_app("shop", &no_image).unwrap_err().status(),
        Some(400)
    );
    let invalid = AppPatch {
        port: Some(0),
        ..AppPatch::default()
    };
    let (status, msg) = api_status(client.update_app("shop", &invalid).unwrap_err());
    assert_eq!(status, 400);
    assert!(msg.contains("port 0"), "{msg}");
    assert_eq!(
        client.app("shop").unwrap().spec.hosts,
        ["shop.example"],
        "nothing stored"
    );

    let raw = server.raw();
    let shop = format!("{}/v1/apps/shop", server.url());
    assert_error(
        raw.patch(&shop)
            .header("Authorization", server.bearer())
            .send(r#"{"name": "other"}"#),
        400,
        "name cannot change",
    );
    assert_error(
        raw.patch(&shop)
            .header("Authorization", server.bearer())
            .send(r#"{"memroy": "1GiB"}"#),
        400,
        "memroy",
    );
}

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

#[test]
fn releases_number_up_and_point_the_app_at_the_latest() {
    let server = Server::start();
    let client = server.client();
    client.create_app(&spec("blog", "blog.example")).unwrap();

    let first = client.deploy_archive("blog", b"plain tar bytes").unwrap();
    assert_eq!((first.app.as_str(), first.number), ("blog", 1));
    assert_eq!(first.size_bytes, 15);
    assert!(first.created_unix > 0);
    assert_eq!(client.app("blog").unwrap().release, Some(1));

    let dir = tempfile::tempdir().unwrap();
    let second = client.deploy_dir("blog", dir.path()).unwrap();
    assert_eq!(second.number, 2);
    assert_eq!(client.app("blog").unwrap().release, Some(2));

    let gz = [0x1f, 0x8b, 8, 0, 1, 2, 3];
    let third = client.deploy_archive("blog", &gz).unwrap();
    assert_eq!(third.number, 3);
    let file = dir.path().join("code.tar.gz");
    std::fs::write(&file, gz).unwrap();
    let fourth = client.deploy_archive_file("blog", &file).unwrap();
    assert_eq!(fourth.number, 4);

    let numbers: Vec<u64> = client
        .releases("blog")
        .unwrap()
        .iter()
        .map(|r| r.number)
        .collect();
    assert_eq!(numbers, [1, 2, 3, 4]);
    let made = server.backend.made.lock().unwrap().clone();
    assert_eq!(made.len(), 4);
    assert!(matches!(&made[1].2, hako_api::ReleaseSource::Dir(d) if d == dir.path()));
    assert!(matches!(&made[2].2, hako_api::ReleaseSource::Archive(b) if b[..] == gz));
    assert!(matches!(&made[3].2, hako_api::ReleaseSource::Archive(b) if b[..] == gz));

    // Refusals: the backend's verdict on a hostile archive, a missing dir, an unknown app.
    let (status, msg) = api_status(client.deploy_archive("blog", b"HOSTILE tar").unwrap_err());
    assert_eq!(status, 400);
    assert!(msg.contains("refused"), "{msg}");
    let gone = dir.path().join("missing");
    assert_eq!(
        client.deploy_dir("blog", &gone).unwrap_err().status(),
        Some(400)
    );
    assert_eq!(
        client.deploy_archive("nope", b"x").unwrap_err().status(),
        Some(404)
    );
    assert_eq!(client.releases("nope").unwrap_err().status(), Some(404));
    assert_eq!(
        client.app("blog").unwrap().release,
        Some(4),
        "failed deploys change nothing"
    );

    // Deleting the app removes its release records; a new app starts again at 1.
    client.delete_app("blog").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let left = rt
        .block_on(server.store.range(&keys::releases("blog")))
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
    client.create_app(&spec("blog", "blog.example")).unwrap();
    assert_eq!(client.deploy_archive("blog", b"again").unwrap().number, 1);
}

#[test]
fn upload_limits_and_content_types() {
    let server = Server::start();
    let client = server.client();
    client.create_app(&spec("blog", "blog.example")).unwrap();
    let big = vec![b'x'; TEST_UPLOAD_LIMIT + 1];
    let (status, msg) = api_status(client.deploy_archive("blog", &big).unwrap_err());
    assert_eq!(status, 413);
    assert!(msg.contains(&TEST_UPLOAD_LIMIT.to_string()), "{msg}");
    // Exactly at the limit is fine.
    let at = vec![b'x'; TEST_UPLOAD_LIMIT];
    assert_eq!(client.deploy_archive("blog", &at).unwrap().number, 1);

    let raw = server.raw();
    let url = format!("{}/v1/apps/blog/releases", server.url());
    assert_error(
        raw.post(&url)
            .header("Authorization", server.bearer())
            .header("Content-Type", "text/plain")
            .send("hello"),
        400,
        "application/x-tar",
    );
    assert_error(
        raw.post(&url)
            .header("Authorization", server.bearer())
            .header("Content-Type", "application/json")
            .send(r#"{"dir": "relative/path"}"#),
        400,
        "absolute path",
    );
    assert_error(
        raw.post(&url)
            .header("Authorization", server.bearer())
            .header("Content-Type", "application/x-tar")
            .send_empty(),
        400,
        "empty",
    );
    // A spec body over the JSON limit is a 413 as well.
    let huge = format!(
        "{{\"name\": \"x\", \"cmd\": \"{}\"}}",
        "a".repeat(hako_api::server::MAX_JSON_BODY)
    );
    assert_error(
        raw.post(format!("{}/v1/apps", server.url()))
            .header("Authorization", server.bearer())
            .send(huge),
        413,
        "over the limit",
    );
    assert_eq!(client.app("blog").unwrap().release, Some(1));
}

#[test]
fn events_are_recorded_in_order() {
    let server = Server::start();
    let client = server.client();
    client.create_app(&spec("blog", "blog.example")).unwrap();
    let patch = AppPatch {
        max: Some(8),
        ..AppPatch::default()
    };
    client.update_app("blog", &patch).unwrap();
    // An update that changes nothing records nothing.
    client.update_app("blog", &patch).unwrap();
    client.deploy_archive("blog", b"code").unwrap();
    let rolled = client.rollout("blog").unwrap();
    assert_eq!(rolled.generation, 1);
    assert_eq!(client.rollout("blog").unwrap().generation, 2);
    client.delete_app("blog").unwrap();

    let events = client.events("blog", None).unwrap();
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::AppCreated,
            EventKind::AppUpdated,
            EventKind::Deployed,
            EventKind::Rollout,
            EventKind::Rollout,
            EventKind::AppDeleted
        ]
    );
    assert!(
        events
            .windows(2)
            .all(|w| w[0].time_unix_ms <= w[1].time_unix_ms)
    );
    assert!(events.iter().all(|e| e.app == "blog"));
    assert!(events[1].reason.contains("max"), "{}", events[1].reason);
    assert!(
        events[2].reason.contains("release 1"),
        "{}",
        events[2].reason
    );
    assert!(
        events[4].reason.contains("generation 2"),
        "{}",
        events[4].reason
    );

    let last_two = client.events("blog", Some(2)).unwrap();
    assert_eq!(last_two, events[4..]);
    assert_eq!(
        client.events("never", None).unwrap_err().status(),
        Some(404)
    );
    assert_eq!(client.rollout("blog").unwrap_err().status(), Some(404));
}

#[test]
fn events_are_trimmed_to_the_newest_thousand() {
    let server = Server::start();
    let client = server.client();
    client.create_app(&spec("blog", "blog.example")).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for i in 0..hako_api::action::MAX_EVENTS {
            let e = hako_model::Event::new("blog", EventKind::Start, format!("filler {i}"));
            server
                .store
                .append_json(&keys::events("blog"), &e)
                .await
                .unwrap();
        }
    });
    let generation = client.rollout("blog").unwrap().generation;
    let events = client.events("blog", Some(5000)).unwrap();
    assert_eq!(events.len(), hako_api::action::MAX_EVENTS);
    assert_eq!(events.last().unwrap().kind, EventKind::Rollout);
    assert!(
        events[0].reason.contains("filler 1"),
        "{}",
        events[0].reason
    );
    assert!(
        events
            .last()
            .unwrap()
            .reason
            .contains(&generation.to_string())
    );
}

#[test]
fn live_data_comes_from_the_backend() {
    let server = Server::start();
    let client = server.client();
    client.create_app(&spec("blog", "blog.example")).unwrap();
    client.create_app(&spec("shop", "shop.example")).unwrap();

    assert_eq!(client.metrics("blog").unwrap_err().status(), Some(404));
    let metrics = serde_json::json!({"cold": 3, "warm": 40});
    server
        .backend
        .metrics
        .lock()
        .unwrap()
        .insert("blog".into(), metrics.clone());
    assert_eq!(client.metrics("blog").unwrap(), metrics);
    assert_eq!(client.metrics("nope").unwrap_err().status(), Some(404));

    let instance = |id: &str, app: &str| InstanceInfo {
        id: id.into(),
        app: app.into(),
        node: "local".into(),
        addr: "10.88.0.7:8080".into(),
        state: InstanceState::Ready,
        started_unix_ms: 1,
        ready_ms: Some(3.5),
        release: None,
        image: "php:1".into(),
        generation: 0,
    };
    server
        .backend
        .instances
        .lock()
        .unwrap()
        .extend([instance("i-1", "blog"), instance("i-2", "shop")]);
    assert_eq!(client.instances(None).unwrap().len(), 2);
    let blog = client.instances(Some("blog")).unwrap();
    assert_eq!(blog, [instance("i-1", "blog")]);
    assert_eq!(
        client.instances(Some("nope")).unwrap_err().status(),
        Some(404)
    );

    assert_eq!(
        client.logs("blog", None).unwrap(),
        "first line of blog\nlast line of blog\n"
    );
    assert_eq!(
        client.logs("blog", Some(18)).unwrap(),
        "last line of blog\n"
    );
    assert_eq!(client.logs("nope", None).unwrap_err().status(), Some(404));
    let mut r = server
        .raw()
        .get(format!("{}/v1/apps/blog/logs", server.url()))
        .header("Authorization", server.bearer())
        .call()
        .unwrap();
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain"), "{ct}");
    assert!(r.body_mut().read_to_string().unwrap().contains("last line"));
}

#[test]
fn concurrent_creates_with_one_host_make_one_app() {
    let server = Server::start();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let client = server.client();
                s.spawn(move || client.create_app(&spec(&format!("site-{i}"), "same.example")))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{results:?}");
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| e.status() == Some(409))
    );
    assert_eq!(server.client().list_apps().unwrap().len(), 1);
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

#[test]
fn oversized_upload_is_refused_before_it_is_all_sent() {
    use std::io::{Read, Write};
    let server = Server::start();
    server
        .client()
        .create_app(&spec("blog", "blog.example"))
        .unwrap();
    let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let head = format!(
        "POST /v1/apps/blog/releases HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        server.bearer(),
        100 << 20
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&[0u8; 1024]).unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&response).contains("}") {
        let n = stream.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "connection closed: {}",
            String::from_utf8_lossy(&response)
        );
        response.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("over the limit"), "{text}");
    assert_eq!(server.client().app("blog").unwrap().release, None);
}

#[test]
fn client_reports_413_for_a_large_upload() {
    let server = Server::start();
    let client = server.client();
    client.create_app(&spec("blog", "blog.example")).unwrap();
    let big = vec![b'x'; 32 * TEST_UPLOAD_LIMIT];
    let err = client.deploy_archive("blog", &big).unwrap_err();
    assert_eq!(err.status(), Some(413), "{err:?}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.tar");
    std::fs::write(&file, &big).unwrap();
    let err = client.deploy_archive_file("blog", &file).unwrap_err();
    assert_eq!(err.status(), Some(413), "{err:?}");
    // The connection pool and the server are fine afterwards.
    assert_eq!(client.deploy_archive("blog", b"small").unwrap().number, 1);
}
