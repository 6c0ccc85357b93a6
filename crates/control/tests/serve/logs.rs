//! Following an app's logs (`GET /v1/apps/NAME/logs?follow=true`, what `hako app logs
//! --follow` reads) from a real app that prints lines: its lines arrive as it writes them,
//! across a restart (a new instance's lines follow under its name), the stream ends when the
//! client goes away (the daemon's follower count drops back) and when the daemon stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hako_api::LogPiece;

use crate::{Serve, http, static_site};

/// An app that serves /app and prints a numbered line with its instance id 5 times a second.
fn talking_app(name: &str) -> serde_json::Value {
    let mut spec = static_site(name);
    spec["cmd"] = serde_json::json!(
        "busybox sh -c 'busybox httpd -p $PORT -h /app; i=0; while :; do echo tick $HAKO_INSTANCE $i; i=$((i+1)); busybox sleep 0.2; done'"
    );
    spec
}

/// Follows `app`'s logs on a thread; every piece goes to the returned channel. The thread
/// stops reading when `stop` is set (at the next piece) and returns what the client said.
fn follow(
    s: &Serve,
    app: &str,
    stop: Arc<AtomicBool>,
) -> (
    std::sync::mpsc::Receiver<LogPiece>,
    std::thread::JoinHandle<Result<(), hako_api::ClientError>>,
) {
    let (tx, rx) = std::sync::mpsc::channel();
    let (c, app) = (s.client.clone(), app.to_string());
    let thread = std::thread::spawn(move || {
        c.follow_logs(&app, Some(1), |piece| {
            let _ = tx.send(piece);
            !stop.load(Ordering::SeqCst)
        })
    });
    (rx, thread)
}

/// Waits for a piece that `wanted` accepts (pieces before it are dropped).
fn wait_piece(
    rx: &std::sync::mpsc::Receiver<LogPiece>,
    what: &str,
    wanted: impl Fn(&LogPiece) -> bool,
) -> LogPiece {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(p) if wanted(&p) => return p,
            Ok(_) => {}
            Err(e) => panic!("no {what} in the followed log: {e}"),
        }
    }
}

async fn followers(s: &Serve) -> f64 {
    let url = format!("http://{}/metrics", s.bound.api);
    let token = s.client.token.clone();
    let text = tokio::task::spawn_blocking(move || {
        ureq::get(&url)
            .header("Authorization", format!("Bearer {token}"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
    })
    .await
    .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("hako_log_followers "))
        .unwrap_or_else(|| panic!("no hako_log_followers:\n{text}"))
        .parse()
        .unwrap()
}

async fn instance_ids(s: &Serve, app: &str) -> Vec<String> {
    s.instance_list(app)
        .await
        .into_iter()
        .map(|i| i.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn followed_logs_arrive_as_written_across_restarts_until_the_client_leaves() {
    let s = Serve::start().await;
    s.create(talking_app("talk")).await;
    s.deploy("talk", &[("index.html", "hi\n")]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (rx, thread) = follow(&s, "talk", stop.clone());

    assert_eq!(
        http(s.bound.proxy, "talk.example", "/index.html").await.0,
        200
    );
    let first = instance_ids(&s, "talk").await;
    assert_eq!(first.len(), 1);
    let a = first[0].clone();
    let rx = tokio::task::spawn_blocking(move || {
        let header = wait_piece(&rx, "first instance", |p| {
            matches!(p, LogPiece::Instance(_))
        });
        assert_eq!(header, LogPiece::Instance(a.clone()));
        // Its lines keep coming while it runs: two in a row, in order.
        let line = |p: &LogPiece| match p {
            LogPiece::Text(t) => t.contains(&format!("tick {a} ")),
            _ => false,
        };
        wait_piece(&rx, "a line of the first instance", line);
        wait_piece(&rx, "another line of the first instance", line);
        rx
    })
    .await
    .unwrap();

    // A rollout stops the first instance; the next request starts a second one.
    let c = s.client.clone();
    tokio::task::spawn_blocking(move || c.rollout("talk").unwrap())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while instance_ids(&s, "talk").await.contains(&first[0]) {
        assert!(
            Instant::now() < deadline,
            "the outdated instance never stopped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        http(s.bound.proxy, "talk.example", "/index.html").await.0,
        200
    );
    let b = instance_ids(&s, "talk").await[0].clone();
    assert_ne!(b, first[0]);
    let rx = tokio::task::spawn_blocking(move || {
        wait_piece(&rx, "the second instance", |p| {
            *p == LogPiece::Instance(b.clone())
        });
        wait_piece(&rx, "a line of the second instance", |p| match p {
            LogPiece::Text(t) => t.contains(&format!("tick {b} ")),
            _ => false,
        });
        rx
    })
    .await
    .unwrap();
    assert_eq!(followers(&s).await, 1.0);

    // The client goes away: the daemon stops following.
    stop.store(true, Ordering::SeqCst);
    tokio::task::spawn_blocking(move || thread.join().unwrap().unwrap())
        .await
        .unwrap();
    drop(rx);
    let deadline = Instant::now() + Duration::from_secs(10);
    while followers(&s).await != 0.0 {
        assert!(
            Instant::now() < deadline,
            "the daemon kept following after the client left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A follower still open when the daemon stops does not hold it up: its stream ends.
    let (_rx, thread) = follow(&s, "talk", Arc::new(AtomicBool::new(false)));
    let deadline = Instant::now() + Duration::from_secs(10);
    while followers(&s).await != 1.0 {
        assert!(
            Instant::now() < deadline,
            "the second follower never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.stop().await;
    let ended = tokio::task::spawn_blocking(move || thread.join().unwrap())
        .await
        .unwrap();
    assert!(
        ended.is_ok(),
        "the stream should end cleanly at shutdown: {ended:?}"
    );
}
