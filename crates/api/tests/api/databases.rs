//! Apps with a database through the API: made at create (or when switched on), never shown,
//! and deleted only with an explicit keep or drop.

use hako_api::{AppPatch, DatabaseOnDelete};

use crate::harness::{Server, api_status, spec};

#[test]
fn a_database_is_made_hidden_and_deleted_only_when_told() {
    let server = Server::start();
    let client = server.client();
    let mut s = spec("blog", "blog.example");
    s.database = true;
    let created = client.create_app(&s).unwrap();
    let grant = created.database_grant.clone().expect("a database was made");
    assert_eq!(grant.database, "hako_blog");
    assert_eq!(
        grant.password,
        hako_model::database::REDACTED,
        "never shown"
    );
    let real = server.backend.databases.lock().unwrap()["hako_blog"].clone();
    assert!(real.password.starts_with("secret-"));
    for shown in [
        serde_json::to_string(&client.app("blog").unwrap()).unwrap(),
        serde_json::to_string(&client.list_apps().unwrap()).unwrap(),
    ] {
        assert!(!shown.contains(&real.password), "{shown}");
    }

    // Deleting must say what becomes of the database.
    let (status, msg) = api_status(client.delete_app("blog").unwrap_err());
    assert_eq!(status, 409);
    assert!(
        msg.contains("database=drop") && msg.contains("database=keep"),
        "{msg}"
    );
    assert!(client.app("blog").is_ok(), "nothing was deleted");
    let r = server
        .raw()
        .delete(format!("{}/v1/apps/blog?database=maybe", server.url()))
        .header("Authorization", server.bearer())
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);

    // Kept: the server keeps it, and a new app of that name takes it over.
    client
        .delete_app_with("blog", DatabaseOnDelete::Keep)
        .unwrap();
    assert!(
        server
            .backend
            .databases
            .lock()
            .unwrap()
            .contains_key("hako_blog")
    );
    client.create_app(&s).unwrap();
    let events = client.events("blog", None).unwrap();
    assert!(
        events.iter().any(|e| e.reason.contains("taken over")),
        "{events:?}"
    );

    // Dropped: gone from the server.
    client
        .delete_app_with("blog", DatabaseOnDelete::Drop)
        .unwrap();
    assert!(server.backend.databases.lock().unwrap().is_empty());
    assert_eq!(client.app("blog").unwrap_err().status(), Some(404));
}

#[test]
fn switching_a_database_on_later_makes_it_and_a_server_failure_loses_nothing() {
    let server = Server::start();
    let client = server.client();
    client.create_app(&spec("shop", "shop.example")).unwrap();
    assert!(client.app("shop").unwrap().database_grant.is_none());
    // Apps without a database delete as before.
    client.create_app(&spec("plain", "plain.example")).unwrap();
    client.delete_app("plain").unwrap();

    server
        .backend
        .database_down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let on = AppPatch {
        database: Some(true),
        ..AppPatch::default()
    };
    let (status, msg) = api_status(client.update_app("shop", &on).unwrap_err());
    assert_eq!(status, 500, "{msg}");
    assert!(
        !client.app("shop").unwrap().spec.database,
        "the update did not land"
    );
    let mut s = spec("blog", "blog.example");
    s.database = true;
    assert!(client.create_app(&s).is_err());
    assert_eq!(
        client.app("blog").unwrap_err().status(),
        Some(404),
        "no half-made app"
    );

    server
        .backend
        .database_down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let updated = client.update_app("shop", &on).unwrap();
    assert!(updated.spec.database);
    assert_eq!(updated.database_grant.unwrap().database, "hako_shop");
    // Switched off again: the database stays with the app until it is deleted.
    let off = AppPatch {
        database: Some(false),
        ..AppPatch::default()
    };
    let updated = client.update_app("shop", &off).unwrap();
    assert!(!updated.spec.database);
    assert!(updated.database_grant.is_some());
    assert_eq!(api_status(client.delete_app("shop").unwrap_err()).0, 409);
    // The server is down: the drop fails and the app is still there.
    server
        .backend
        .database_down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(
        client
            .delete_app_with("shop", DatabaseOnDelete::Drop)
            .is_err()
    );
    assert!(client.app("shop").is_ok());
}
