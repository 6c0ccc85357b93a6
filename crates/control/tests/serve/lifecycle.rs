//! The instance lifecycle: deploys, health checks on every start, deletes that hold up nothing,
//! one name created again, starting instances shown.

use std::time::{Duration, Instant};

use hako_model::{EventKind, InstanceState};

use crate::{Serve, deploy_cgi, http, slow_cgi, static_site, wait_file};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deploy_reaches_new_instances_and_old_ones_drain() {
    let s = Serve::start().await;
    s.create(static_site("site")).await;
    s.deploy("site", &[("index.html", "release one\n")]).await;
    assert_eq!(
        http(s.bound.proxy, "site.example", "/index.html").await.1,
        "release one\n"
    );
    // A new release: the running instance (release 1) is drained and stopped; the next
    // request starts an instance with release 2.
    let dir = s.tmp.path().join("code-site-2");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "release two\n").unwrap();
    let c = s.client.clone();
    let rel = tokio::task::spawn_blocking(move || c.deploy_dir("site", &dir))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rel.number, 2);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stopped = s
            .events("site")
            .await
            .iter()
            .any(|e| e.kind == EventKind::Stop && e.reason.contains("replaced"));
        if stopped {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the old instance was never replaced"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        http(s.bound.proxy, "site.example", "/index.html").await.1,
        "release two\n"
    );
    s.stop().await;
}

/// Every start is health-checked, whatever asked for it: a request's cold start and the
/// minimum kept by the keep-alive loop alike. (Instances started for a minimum used to be
/// routed as soon as their port accepted.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_health_path_gates_every_start() {
    let s = Serve::start().await;
    // A health path that answers 404: never ready.
    let mut sick = static_site("sick");
    sick["health_path"] = "/missing".into();
    sick["start_timeout"] = "1s".into();
    s.create(sick).await;
    s.deploy("sick", &[("index.html", "sick\n")]).await;
    let (status, body) = http(s.bound.proxy, "sick.example", "/index.html").await;
    assert_eq!(status, 503, "{body}");
    let failed = s
        .wait_event("sick", EventKind::StartFailed, |e| {
            e.reason.contains("health check")
        })
        .await;
    assert!(failed.reason.contains("answered 404"), "{}", failed.reason);
    assert_eq!(s.instances("sick").await, 0);

    // The same app kept at a minimum of one: the keep-alive's start is checked too.
    let (c, patch) = (
        s.client.clone(),
        hako_api::AppPatch {
            min: Some(1),
            ..Default::default()
        },
    );
    tokio::task::spawn_blocking(move || c.update_app("sick", &patch))
        .await
        .unwrap()
        .unwrap();
    s.wait_event("sick", EventKind::StartFailed, |e| {
        e.reason.contains("below minimum") && e.reason.contains("health check")
    })
    .await;
    assert_eq!(
        s.instances("sick").await,
        0,
        "an instance that never passed its health check was routed"
    );
    let metrics = {
        let c = s.client.clone();
        tokio::task::spawn_blocking(move || c.metrics("sick"))
            .await
            .unwrap()
            .unwrap()
    };
    assert!(
        metrics["start_failures"]["unhealthy"].as_u64().unwrap() >= 2,
        "{metrics}"
    );

    // A health path that answers: the minimum's instance is routed once it does.
    let mut fine = static_site("fine");
    fine["health_path"] = "/index.html".into();
    s.create(fine).await;
    s.deploy("fine", &[("index.html", "fine\n")]).await;
    let (c, patch) = (
        s.client.clone(),
        hako_api::AppPatch {
            min: Some(1),
            ..Default::default()
        },
    );
    tokio::task::spawn_blocking(move || c.update_app("fine", &patch))
        .await
        .unwrap()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.instances("fine").await == 0 {
        assert!(
            Instant::now() < deadline,
            "the healthy minimum never started: {:#?}",
            s.events("fine").await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        http(s.bound.proxy, "fine.example", "/index.html").await,
        (200, "fine\n".into())
    );
    s.stop().await;
}

/// An app's delete drains its open requests in the background: other apps' changes, and a
/// new app, are applied meanwhile. (The store watch used to apply changes one at a time and
/// wait for the deleted app's requests, so a new app answered 404 for seconds.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_an_app_holds_up_no_other_app() {
    let s = Serve::start().await;
    s.create(static_site("old")).await;
    deploy_cgi(&s, "old", "code-old", &[("slow", &slow_cgi(6))]).await;
    let started = s.app_dir("old").await.join("data/started");
    let proxy = s.bound.proxy;
    let slow = tokio::spawn(async move { http(proxy, "old.example", "/cgi-bin/slow").await });
    wait_file(&started).await;
    s.delete("old").await;
    // The draining instance shows as such while its request runs.
    let list = s.instance_list("old").await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].state, InstanceState::Draining, "{list:?}");
    s.create(static_site("new")).await;
    s.deploy("new", &[("index.html", "new\n")]).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = http(s.bound.proxy, "new.example", "/index.html").await;
        if status == 200 {
            assert_eq!(body, "new\n");
            break;
        }
        assert_eq!(status, 404, "{body}");
        assert!(Instant::now() < deadline, "the new app was never routed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !slow.is_finished(),
        "the new app was served only after the deleted app's request ended"
    );
    assert_eq!(
        slow.await.unwrap(),
        (200, "done slowly\n".into()),
        "an open request of a deleted app finishes"
    );
    assert_eq!(http(s.bound.proxy, "old.example", "/").await.0, 404);
    s.stop().await;
}

/// Delete and create again under the same name, while the old app still drains a request:
/// the new app is served, and the old app's clean-up removes nothing of the new one. (It used
/// to remove the new app's release: 503 "release 1 of APP is missing on this node".)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_then_create_of_one_name_serves_the_new_app() {
    let s = Serve::start().await;
    for round in 0..3 {
        s.create(static_site("same")).await;
        let old_version = format!("code-same-{round}");
        deploy_cgi(&s, "same", &old_version, &[("slow", &slow_cgi(2))]).await;
        let old_dir = s.app_dir("same").await;
        let proxy = s.bound.proxy;
        let slow = tokio::spawn(async move { http(proxy, "same.example", "/cgi-bin/slow").await });
        wait_file(&old_dir.join("data/started")).await;
        s.delete("same").await;
        s.create(static_site("same")).await;
        let new_version = format!("code-same-{round}-new");
        deploy_cgi(&s, "same", &new_version, &[]).await;
        let new_dir = s.app_dir("same").await;
        assert_ne!(old_dir, new_dir, "two apps of one name share their files");
        // The old app's clean-up runs once its request is done.
        assert_eq!(slow.await.unwrap().0, 200);
        let deadline = Instant::now() + Duration::from_secs(20);
        while old_dir.exists() {
            assert!(Instant::now() < deadline, "the deleted app's files stay");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            http(s.bound.proxy, "same.example", "/index.html").await,
            (200, format!("{new_version}\n")),
            "round {round}"
        );
        assert!(new_dir.join("data").exists());
        s.delete("same").await;
    }
    s.stop().await;
}

/// An instance shows as starting while its app gets ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_starting_instance_shows_as_starting() {
    let s = Serve::start().await;
    let mut app = static_site("lazy");
    // Listens only once the test lets it (a file on its /data).
    app["cmd"] = "sh -c 'while [ ! -e /data/go ]; do sleep 0.05; done; exec busybox httpd -f -p $PORT -h /app'".into();
    s.create(app).await;
    s.deploy("lazy", &[("index.html", "lazy\n")]).await;
    let proxy = s.bound.proxy;
    let request = tokio::spawn(async move { http(proxy, "lazy.example", "/index.html").await });
    let deadline = Instant::now() + Duration::from_secs(20);
    let starting = loop {
        let list = s.instance_list("lazy").await;
        if let Some(i) = list.first() {
            break i.clone();
        }
        assert!(Instant::now() < deadline, "no instance was listed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(starting.state, InstanceState::Starting);
    std::fs::write(s.app_dir("lazy").await.join("data/go"), "").unwrap();
    assert_eq!(request.await.unwrap(), (200, "lazy\n".into()));
    let list = s.instance_list("lazy").await;
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].id.as_str(), list[0].state),
        (starting.id.as_str(), InstanceState::Ready)
    );
    s.stop().await;
}
