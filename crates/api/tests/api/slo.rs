//! `GET /v1/apps/NAME/slo`: the daemon's measurements through the service-level model.

use std::time::Duration;

use hako_api::slo::{GapBin, History};
use hako_policy::KeepAlive;
use hako_policy::slo::Target;

use crate::harness::{Server, api_status, assert_error, spec};

/// 60 requests: 54 gaps of 100 ms and 5 of 10 s; starts of 30 and 50 ms; 5 min idle timeout.
fn history() -> History {
    History {
        keep_alive: KeepAlive::idle(Duration::from_secs(300)),
        requests: 60,
        span_s: 54.0 * 0.1 + 5.0 * 10.0,
        gaps: vec![
            GapBin {
                low_ms: 98.0,
                high_ms: 102.0,
                count: 54,
            },
            GapBin {
                low_ms: 9900.0,
                high_ms: 10100.0,
                count: 5,
            },
        ],
        starts: 2,
        start_ms: vec![30.0, 50.0],
        cold: 1,
        warm: 59,
        service_ms: 2.0,
        keep_alive_mode: Default::default(),
        predictor: None,
    }
}

#[test]
fn the_service_level_comes_from_the_measurements() {
    let server = Server::start();
    let client = server.client();
    client.create_app(&spec("blog", "blog.example")).unwrap();

    // Known app, nothing measured by the node: a report that says so.
    let r = client.slo("blog", None).unwrap();
    assert!(r.current.is_none());
    assert!(r.unavailable.unwrap().contains("does not route"));

    server
        .backend
        .histories
        .lock()
        .unwrap()
        .insert("blog".into(), history());
    let r = client.slo("blog", None).unwrap();
    assert_eq!(r.unavailable, None);
    let e = r.current.unwrap();
    assert_eq!(e.cold_probability, 0.0, "every gap fits in 5 min: {e:?}");
    assert_eq!(r.history.requests, 60);
    assert_eq!(r.history.observed_cold_fraction, Some(1.0 / 60.0));

    // The cheapest setting for ≤ 1% cold requests covers the 10 s gaps: 10 s idle timeout.
    let r = client
        .slo("blog", Some(Target::ColdProbability(0.01)))
        .unwrap();
    let rec = r.recommendation.unwrap();
    assert_eq!(rec.keep_alive.idle_timeout, Some(Duration::from_secs(10)));
    assert_eq!(r.target_cold, Some(0.01));
    // A p99 wait of 100 ms is met by any timeout (starts take ≤ 50 ms): the shortest, 1 s.
    let r = client
        .slo("blog", Some(Target::P99Wait(Duration::from_millis(100))))
        .unwrap();
    assert_eq!(r.target_p99_wait_ms, Some(100.0));
    let rec = r.recommendation.unwrap();
    assert_eq!(rec.keep_alive.idle_timeout, Some(Duration::from_secs(1)));
    assert!(rec.estimate.p99_wait_ms <= 100.0);

    let mut few = history();
    few.requests = 7;
    server
        .backend
        .histories
        .lock()
        .unwrap()
        .insert("blog".into(), few);
    let r = client
        .slo("blog", Some(Target::ColdProbability(0.01)))
        .unwrap();
    assert!(r.unavailable.unwrap().contains("too little history"));
    assert!(r.current.is_none() && r.recommendation.is_none());

    let (status, message) = api_status(client.slo("nope", None).unwrap_err());
    assert_eq!(status, 404, "{message}");
}

#[test]
fn bad_targets_are_refused() {
    let server = Server::start();
    server
        .client()
        .create_app(&spec("blog", "blog.example"))
        .unwrap();
    let get = |query: &str| {
        server
            .raw()
            .get(format!("{}/v1/apps/blog/slo?{query}", server.url()))
            .header("Authorization", server.bearer())
            .call()
    };
    assert_error(get("target_cold=2"), 400, "from 0 to 1");
    assert_error(get("target_p99_wait=soon"), 400, "target_p99_wait");
    // A bare number is no duration here either (it was taken as seconds).
    assert_error(get("target_p99_wait=45"), 400, "add one, like 45s");
    assert_error(
        get("target_cold=0.01&target_p99_wait=50ms"),
        400,
        "not both",
    );
}
