//! Keep-alive against real containers: idle stops, open requests, minimums.

use std::time::{Duration, Instant};

use hako_model::EventKind;

use crate::{Serve, http, static_site};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_instances_stop_and_the_next_request_starts_a_new_one() {
    let s = Serve::start().await;
    let mut app = static_site("idle");
    app["idle_timeout"] = "1s".into();
    s.create(app).await;
    s.deploy("idle", &[("index.html", "hi\n")]).await;
    assert_eq!(
        http(s.bound.proxy, "idle.example", "/index.html").await.0,
        200
    );
    assert_eq!(s.instances("idle").await, 1);
    let deadline = Instant::now() + Duration::from_secs(20);
    let stop = loop {
        if let Some(e) = s
            .events("idle")
            .await
            .into_iter()
            .find(|e| e.kind == EventKind::Stop)
        {
            break e;
        }
        assert!(
            Instant::now() < deadline,
            "the idle instance was never stopped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(s.instances("idle").await, 0);
    assert!(stop.reason.contains("idle"), "{}", stop.reason);
    assert_eq!(
        http(s.bound.proxy, "idle.example", "/index.html").await.0,
        200
    );
    let starts = s
        .events("idle")
        .await
        .iter()
        .filter(|e| e.kind == EventKind::Start)
        .count();
    assert_eq!(starts, 2);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_long_request_is_not_cut_by_the_idle_stop() {
    let s = Serve::start().await;
    // A CGI script that answers after 3 s, with a 1 s idle timeout.
    let mut app = static_site("slow");
    app["idle_timeout"] = "1s".into();
    s.create(app).await;
    let dir = s.tmp.path().join("code-slow");
    std::fs::create_dir_all(dir.join("cgi-bin")).unwrap();
    std::fs::write(
        dir.join("cgi-bin/slow"),
        "#!/bin/sh\nsleep 3\necho 'Content-Type: text/plain'\necho\necho done slowly\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.join("cgi-bin/slow"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let c = s.client.clone();
    tokio::task::spawn_blocking(move || c.deploy_dir("slow", &dir))
        .await
        .unwrap()
        .unwrap();
    let (status, body) = http(s.bound.proxy, "slow.example", "/cgi-bin/slow").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "done slowly\n");
    let stops_before = s
        .events("slow")
        .await
        .iter()
        .filter(|e| e.kind == EventKind::Stop)
        .count();
    assert_eq!(stops_before, 0, "stopped while a request was open");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn min_instances_are_kept_and_deleting_an_app_stops_everything() {
    let s = Serve::start().await;
    let mut app = static_site("warm");
    app["min"] = 1.into();
    app["idle_timeout"] = "200ms".into();
    s.create(app).await;
    s.deploy("warm", &[("index.html", "always on\n")]).await;
    // Started without any request (and replaced by one with the release once it is
    // deployed), kept although idle.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let c = s.client.clone();
        let list = tokio::task::spawn_blocking(move || c.instances(Some("warm")))
            .await
            .unwrap()
            .unwrap();
        if list.len() == 1 && list[0].release == Some(1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the minimum instance was never started: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        http(s.bound.proxy, "warm.example", "/index.html").await,
        (200, "always on\n".into())
    );
    let metrics = {
        let c = s.client.clone();
        tokio::task::spawn_blocking(move || c.metrics("warm"))
            .await
            .unwrap()
            .unwrap()
    };
    assert_eq!(metrics["cold"], 0, "{metrics}");
    assert_eq!(metrics["warm"], 1, "{metrics}");
    let c = s.client.clone();
    tokio::task::spawn_blocking(move || c.delete_app("warm"))
        .await
        .unwrap()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let c = s.client.clone();
        let all = tokio::task::spawn_blocking(move || c.instances(None))
            .await
            .unwrap()
            .unwrap();
        if !all.iter().any(|i| i.app == "warm") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the deleted app's instance still runs"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        http(s.bound.proxy, "warm.example", "/index.html").await.0,
        404
    );
    s.stop().await;
}

/// Raising `min` starts exactly one instance per app, also while the keep-alive loop is busy
/// with other apps: a start finishing must count as live before it stops counting as
/// starting, or the loop sees the app below its minimum and starts a second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn raising_min_starts_one_instance_per_app() {
    let s = Serve::start().await;
    let names: Vec<String> = (0..8).map(|i| format!("m{i}")).collect();
    for n in &names {
        s.create(static_site(n)).await;
        s.deploy(n, &[("index.html", "min\n")]).await;
    }
    for n in &names {
        let (c, n) = (s.client.clone(), n.clone());
        let patch = hako_api::AppPatch {
            min: Some(1),
            ..Default::default()
        };
        tokio::task::spawn_blocking(move || c.update_app(&n, &patch))
            .await
            .unwrap()
            .unwrap();
    }
    // Each app answers warm (its instance is routed) without any request having started one.
    let deadline = Instant::now() + Duration::from_secs(30);
    for n in &names {
        while s.instances(n).await == 0 {
            assert!(Instant::now() < deadline, "{n} never got its instance");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            http(s.bound.proxy, &format!("{n}.example"), "/index.html").await,
            (200, "min\n".into())
        );
    }
    // A second start would show within moments (the loop runs on every change): watch for
    // one second that none comes, then count the starts each app recorded.
    let watch = Instant::now() + Duration::from_secs(1);
    while Instant::now() < watch {
        for n in &names {
            assert_eq!(s.instances(n).await, 1, "{n} has a second instance");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for n in &names {
        let starts = s
            .events(n)
            .await
            .iter()
            .filter(|e| e.kind == EventKind::Start)
            .count();
        assert_eq!(starts, 1, "{n} was started {starts} times");
        assert_eq!(s.instances(n).await, 1, "{n}");
    }
    s.stop().await;
}
