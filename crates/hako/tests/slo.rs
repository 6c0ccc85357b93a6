//! `hako slo APP` against a real `hako serve`: the daemon measures an app's request gaps and
//! start times, and the model's answer (and the recommendation) follows from them.

mod common;

use std::time::Duration;

use common::{Serve, get};

/// Requests to `host`, one after the other; each must answer 200 with the site's page.
fn requests(d: &Serve, host: &str, n: usize) {
    for _ in 0..n {
        assert_eq!(get(d.proxy, host, "/"), (200, "measured\n".to_string()));
    }
}

#[test]
fn slo_app_answers_from_the_apps_own_measurements() {
    let env = common::Env::new();
    let site = env.host_image_and_site("measured\n");
    let d = common::serve(&env.data_dir());
    d.ok(&[
        "app",
        "create",
        "blog",
        "--host",
        "blog.example",
        "--image",
        "base",
        "--code",
        site.to_str().unwrap(),
        "--cmd",
        "busybox httpd -f -p $PORT -h /app",
        "--idle-timeout",
        "1s",
    ]);

    // Before any request, and with a few: no estimate, said plainly. (Right after the create
    // the daemon may not route the app yet, which the report says instead.)
    let text = d.ok(&["slo", "blog"]);
    assert!(text.contains("app blog: 0 request(s)"), "{text}");
    assert!(text.contains("no estimate: "), "{text}");
    requests(&d, "blog.example", 10);
    let text = d.ok(&["slo", "blog"]);
    assert!(
        text.contains("app blog: 10 request(s)") && text.contains("1 start(s) measured"),
        "{text}"
    );
    assert!(text.contains("no estimate: too little history"), "{text}");
    assert!(!text.contains("model, current policy"), "{text}");

    // 4 pauses of 1.5 s, longer than the 1 s idle timeout: each ends with a cold start.
    // Requests in between follow each other within milliseconds.
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(1500));
        requests(&d, "blog.example", 10);
    }
    requests(&d, "blog.example", 15); // 65 requests, 64 gaps, 4 of them long
    let out = d.ok(&["slo", "blog", "--json"]);
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    let h = &r["history"];
    assert_eq!(h["requests"], 65, "{out}");
    assert_eq!(
        (h["cold"].as_u64(), h["warm"].as_u64()),
        (Some(5), Some(60))
    );
    assert_eq!(h["starts"], 5, "{out}");
    assert_eq!(r["start_ms"].as_array().unwrap().len(), 5);
    let gaps: u64 = r["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(gaps, 64);
    let long: u64 = r["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["low_ms"].as_f64().unwrap() >= 1400.0)
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(long, 4, "the four pauses: {out}");
    assert_eq!(r["keep_alive"]["idle_timeout"], "1s");
    assert!(r["unavailable"].is_null(), "{out}");
    // The model: a request is cold when the gap before it exceeds the idle timeout (plus the
    // request time): 4 of 64 gaps.
    let cold = r["current"]["cold_probability"].as_f64().unwrap();
    assert!((cold - 4.0 / 64.0).abs() < 1e-9, "{out}");
    let mean_start: f64 = r["start_ms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_f64().unwrap())
        .sum::<f64>()
        / 5.0;
    let wait = r["current"]["mean_wait_ms"].as_f64().unwrap();
    assert!((wait - cold * mean_start).abs() < 1e-6, "{out}");

    // ≤ 1% cold requests: the idle timeout must cover the 1.5 s pauses.
    let text = d.ok(&["slo", "blog", "--target-cold", "0.01"]);
    eprintln!("{text}");
    assert!(
        text.contains("model, current policy: cold requests 6.2500%"),
        "{text}"
    );
    assert!(
        text.contains("observed: 7.69% of requests waited for a start (5 of 65)"),
        "{text}"
    );
    assert!(
        text.contains("cheapest for at most 1% cold requests: idle timeout 2s")
            && text.contains("apply with: hako app update blog --idle-timeout 2s"),
        "{text}"
    );
    let out = d.ok(&["slo", "blog", "--target-p99-wait", "1ms", "--json"]);
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["target_p99_wait_ms"], 1.0);
    assert!(
        r["recommendation"]["estimate"]["p99_wait_ms"]
            .as_f64()
            .unwrap()
            <= 1.0
    );

    let out = d.hako(&["slo", "nope"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("not found"), "{out:?}");
    let out = d.hako(&["slo", "blog", "--target-cold", "7"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("from 0 to 1"), "{out:?}");
    d.stop();
}
