//! Events of API actions: recorded in order with reasons, trimmed to the newest 1000.

use hako_api::AppPatch;
use hako_model::EventKind;
use hako_store::{StoreExt, keys};

use crate::harness::{Server, spec};

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
