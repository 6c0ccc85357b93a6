//! `GET /metrics` of a real daemon: who may read it, what it counts after real requests,
//! starts and stops, and that Prometheus's own parser (`promtool check metrics`) accepts it.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Serve, http, static_site};

/// `GET /metrics` with `token`; (status, body).
pub(crate) async fn scrape(s: &Serve, token: Option<&str>) -> (u16, String) {
    get(s, "/metrics", token).await
}

async fn get(s: &Serve, path: &str, token: Option<&str>) -> (u16, String) {
    let url = format!("http://{}{path}", s.bound.api);
    let token = token.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build(),
        );
        let mut req = agent.get(&url);
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut r = req.call().unwrap();
        let status = r.status().as_u16();
        (status, r.body_mut().read_to_string().unwrap())
    })
    .await
    .unwrap()
}

/// The value of the one series named exactly `series` (name and labels).
pub(crate) fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

/// Runs `promtool check metrics` on `text`; its findings if it fails.
fn promtool_check(text: &str) -> Result<(), String> {
    let mut child = Command::new(hako_testkit::tools::promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_count_requests_starts_and_stops_and_promtool_accepts_them() {
    let s = Serve::start().await;
    let admin = s.client.token.clone();
    let metrics_token =
        hako_api::token::read(&s.tmp.path().join(hako_api::token::METRICS_TOKEN_FILE)).unwrap();
    assert_ne!(metrics_token, admin);

    // Who may read: both tokens; nobody else; the metrics token nothing but /metrics.
    assert_eq!(scrape(&s, None).await.0, 401);
    assert_eq!(
        scrape(&s, Some("wrong-token-wrong-token-wrong-token"))
            .await
            .0,
        401
    );
    assert_eq!(get(&s, "/v1/apps", Some(&metrics_token)).await.0, 403);
    let (status, empty) = scrape(&s, Some(&metrics_token)).await;
    assert_eq!(status, 200, "{empty}");
    promtool_check(&empty).unwrap_or_else(|e| panic!("promtool refused:\n{e}\n{empty}"));

    s.create(static_site("meter")).await;
    s.deploy("meter", &[("index.html", "hello\n")]).await;
    let (status, _) = http(s.bound.proxy, "meter.example", "/index.html").await;
    assert_eq!(status, 200);
    let (status, _) = http(s.bound.proxy, "meter.example", "/index.html").await;
    assert_eq!(status, 200);
    let (status, _) = http(s.bound.proxy, "meter.example", "/missing").await;
    assert_eq!(status, 404);

    let (status, text) = scrape(&s, Some(&admin)).await;
    assert_eq!(status, 200);
    promtool_check(&text).unwrap_or_else(|e| panic!("promtool refused:\n{e}\n{text}"));
    let v = |series: &str| value(&text, series).unwrap_or_else(|| panic!("no {series}:\n{text}"));
    assert_eq!(v(r#"hako_requests_total{app="meter",kind="cold"}"#), 1.0);
    assert_eq!(v(r#"hako_requests_total{app="meter",kind="warm"}"#), 2.0);
    assert_eq!(v(r#"hako_responses_total{app="meter",class="2xx"}"#), 2.0);
    assert_eq!(v(r#"hako_responses_total{app="meter",class="4xx"}"#), 1.0);
    assert_eq!(v(r#"hako_instances{app="meter",state="ready"}"#), 1.0);
    assert_eq!(
        v(r#"hako_instance_starts_total{app="meter",path="cold"}"#),
        1.0
    );
    assert_eq!(v(r#"hako_cold_start_wait_seconds_count{app="meter"}"#), 1.0);
    assert_eq!(v(r#"hako_instance_start_seconds_count{app="meter"}"#), 1.0);
    assert_eq!(
        v(r#"hako_cold_start_wait_seconds_bucket{app="meter",le="+Inf"}"#),
        1.0
    );
    assert!(v(r#"hako_app_memory_bytes{app="meter"}"#) > 0.0, "{text}");
    assert!(v("hako_node_cpus") >= 1.0);
    assert!(v("hako_node_instance_memory_bytes") > 0.0);
    assert_eq!(v(r#"hako_store_errors_total{op="put"}"#), 0.0);
    assert_eq!(
        v(r#"hako_autoscaler_decisions_total{app="meter",direction="up"}"#),
        0.0
    );
    // Per app, never per instance.
    assert!(!text.contains("instance=\""), "{text}");
    // The API client reads the same scrape.
    let client = s.client.clone();
    let via_client = tokio::task::spawn_blocking(move || client.prometheus())
        .await
        .unwrap()
        .unwrap();
    assert!(
        value(&via_client, r#"hako_app_memory_bytes{app="meter"}"#).is_some_and(|m| m > 0.0),
        "{via_client}"
    );

    assert_eq!(
        v(r#"hako_requests_by_class_total{app="meter",class="visitor"}"#),
        3.0
    );
    assert_eq!(
        v(r#"hako_requests_by_class_total{app="meter",class="ignored"}"#),
        0.0
    );
    assert_eq!(
        v(r#"hako_schedule_runs_total{app="meter",result="ok"}"#),
        0.0
    );
    // A rollout makes the instance outdated: used within its idle timeout, it is replaced
    // successor first — it stops for that reason once its successor is ready.
    let c = s.client.clone();
    tokio::task::spawn_blocking(move || c.rollout("meter").unwrap())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, text) = scrape(&s, Some(&metrics_token)).await;
        if value(
            &text,
            r#"hako_instance_stops_total{app="meter",reason="outdated"}"#,
        ) == Some(1.0)
        {
            assert_eq!(
                value(&text, r#"hako_instances{app="meter",state="ready"}"#),
                Some(1.0),
                "{text}"
            );
            assert_eq!(
                value(
                    &text,
                    r#"hako_instance_starts_total{app="meter",path="cold"}"#
                ),
                Some(2.0),
                "{text}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no outdated stop counted:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.stop().await;
}
