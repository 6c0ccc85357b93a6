//! Apps through the client: create/list/show/update/delete, validation, name and host conflicts.

use hako_api::AppPatch;
use hako_model::ByteSize;

use crate::harness::{Server, api_status, assert_error, spec};

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
    missing_image.image = "ruby:3".parse().unwrap();
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
        image: Some("ruby".parse().unwrap()),
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
