//! Issue 14 against real containers: live resizes visible in the cgroup, cycling that fails
//! no request (a lifetime recycle, a deploy, a scale-in under load), scheduled wake-ups and
//! ignored clients that let a site sleep again, and one site's flood not starving another.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hako_model::{ByteSize, EventKind};

use crate::{Serve, deploy_cgi, http, static_site};

/// The container cgroups of a runtime, as (memory limit, CPU quota in µs or -1) each: v1
/// (memory and cpu hierarchies) or v2 (the unified one).
fn cgroups(prefix: &str) -> Vec<(u64, i64)> {
    let root = std::path::Path::new("/sys/fs/cgroup");
    let read = |p: std::path::PathBuf| std::fs::read_to_string(&p).map(|s| s.trim().to_string());
    let mut out = Vec::new();
    if root.join("cgroup.controllers").exists() {
        for e in std::fs::read_dir(root.join(prefix)).unwrap().flatten() {
            if !e.path().is_dir() {
                continue;
            }
            let memory = read(e.path().join("memory.max")).unwrap().parse().unwrap();
            let cpu = read(e.path().join("cpu.max")).unwrap();
            let quota = cpu.split(' ').next().unwrap().parse().unwrap_or(-1);
            out.push((memory, quota));
        }
    } else {
        for e in std::fs::read_dir(root.join("memory").join(prefix))
            .unwrap()
            .flatten()
        {
            if !e.path().is_dir() {
                continue;
            }
            let name = e.file_name();
            let memory = read(e.path().join("memory.limit_in_bytes"))
                .unwrap()
                .parse()
                .unwrap();
            let quota = read(
                root.join("cpu")
                    .join(prefix)
                    .join(&name)
                    .join("cpu.cfs_quota_us"),
            )
            .unwrap()
            .parse()
            .unwrap();
            out.push((memory, quota));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_live_resize_changes_the_cgroup_of_the_running_instance_without_a_restart() {
    let s = Serve::start().await;
    let mut app = static_site("big");
    // 24 MiB in tmpfs before it serves: charged to its cgroup, and no swap to reclaim it to.
    app["cmd"] =
        "sh -c 'head -c 25165824 /dev/zero > /dev/shm/fill && exec busybox httpd -f -p $PORT -h /app'"
            .into();
    app["memory"] = "256MiB".into();
    s.create(app).await;
    s.deploy("big", &[("index.html", "big\n")]).await;
    assert_eq!(
        http(s.bound.proxy, "big.example", "/index.html").await.0,
        200
    );
    let before = s.instance_list("big").await;
    assert_eq!(before.len(), 1);
    assert_eq!(cgroups(&s.prefix), [(256 << 20, -1)]);

    // Up, live: the cgroup's files change, the instance is the same one.
    let out = s
        .update("big", serde_json::json!({"memory": "512MiB", "cpu": 1.5}))
        .await;
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].applied, "{out:?}");
    assert_eq!(out[0].instance, before[0].id);
    assert_eq!(cgroups(&s.prefix), [(512 << 20, 150_000)]);
    let after = s.instance_list("big").await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].id, before[0].id, "the instance was replaced");
    assert_eq!(after[0].limits.unwrap().memory, ByteSize(512 << 20));
    assert_eq!(
        http(s.bound.proxy, "big.example", "/index.html").await.0,
        200
    );

    // Below what it uses: refused for this instance (no OOM kill), said so; new ones get it.
    let out = s
        .update("big", serde_json::json!({"memory": "16MiB"}))
        .await;
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(!out[0].applied, "{out:?}");
    let why = out[0].reason.clone().unwrap();
    assert!(why.contains("keeps its memory limit of 512MiB"), "{why}");
    assert!(why.contains("new instances get 16MiB"), "{why}");
    assert_eq!(cgroups(&s.prefix), [(512 << 20, 150_000)]);
    assert_eq!(
        http(s.bound.proxy, "big.example", "/index.html").await.0,
        200
    );
    let events = s.events("big").await;
    assert_eq!(
        events.iter().filter(|e| e.kind == EventKind::Start).count(),
        1,
        "{events:?}"
    );
    let resizes: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::Resize)
        .collect();
    assert_eq!(resizes.len(), 2, "{resizes:?}");
    assert!(
        resizes[0]
            .reason
            .contains("memory 256MiB → 512MiB, cpu none → 1.5"),
        "{resizes:?}"
    );
    s.stop().await;
}

/// Clients that send one request after another through the proxy (a new connection each),
/// until stopped: bounded load (never more than `clients` requests in flight).
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<Vec<(u16, String)>>>,
}

impl Load {
    fn start(proxy: std::net::SocketAddr, host: &str, path: &str, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..clients)
            .map(|_| {
                let (stop, host, path) = (stop.clone(), host.to_string(), path.to_string());
                std::thread::spawn(move || {
                    let mut seen = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        seen.push(hako_testkit::http::get(proxy, &host, &path));
                    }
                    seen
                })
            })
            .collect();
        Load { stop, threads }
    }

    fn finish(self) -> Vec<(u16, String)> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect()
    }
}

/// Polls `check` every 50 ms for up to `secs` seconds.
async fn wait_for<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_request_fails_through_a_recycle_a_deploy_and_a_scale_in_under_load() {
    let s = Serve::start().await;
    let mut app = static_site("busy");
    app["min"] = 1.into();
    app["max"] = 3.into();
    app["idle_timeout"] = "1m".into();
    app["max_lifetime"] = "2s".into();
    s.create(app).await;
    s.deploy("busy", &[("index.html", "one\n")]).await;
    // The minimum's instance (started before the deploy, with no code) is replaced by one
    // of release 1 first.
    wait_for(20, "the minimum never started", || async {
        let list = s.instance_list("busy").await;
        list.len() == 1
            && list[0].release == Some(1)
            && list[0].state == hako_model::InstanceState::Ready
    })
    .await;
    let load = Load::start(s.bound.proxy, "busy.example", "/index.html", 4);
    let replaced = |why: &'static str| {
        let s = &s;
        move || async move {
            s.events("busy")
                .await
                .iter()
                .filter(|e| {
                    e.kind == EventKind::Stop
                        && e.reason.contains("replaced by")
                        && e.reason.contains(why)
                })
                .count()
        }
    };
    // Lifetime recycles, successor first: at least two under load.
    let recycled = replaced("max lifetime");
    wait_for(30, "no lifetime recycle", || async {
        recycled().await >= 2
    })
    .await;
    s.update("busy", serde_json::json!({"max_lifetime": "1h"}))
        .await;
    // A deploy: the new release's instance is ready before the old one stops taking requests.
    // (The first deploy's replacement of the empty minimum is counted already.)
    let outdated = replaced("the app changed");
    let before = outdated().await;
    s.deploy("busy", &[("index.html", "two\n")]).await;
    wait_for(30, "the deploy never replaced the instance", || async {
        outdated().await > before
    })
    .await;
    // A scale-in: three instances, then a maximum of one; two drain under load.
    s.update("busy", serde_json::json!({"min": 3})).await;
    wait_for(30, "never three instances", || async {
        let list = s.instance_list("busy").await;
        list.len() == 3
            && list
                .iter()
                .all(|i| i.state == hako_model::InstanceState::Ready && i.release == Some(2))
    })
    .await;
    s.update("busy", serde_json::json!({"min": 1, "max": 1}))
        .await;
    let scaled = |s: &'static str| {
        move |e: &hako_model::Event| {
            e.kind == EventKind::Scale
                && e.reason.starts_with(s)
                && e.reason.contains("above the maximum")
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !s.events("busy").await.iter().any(scaled("scale 3→")) {
        if Instant::now() > deadline {
            let events: Vec<String> = s
                .events("busy")
                .await
                .iter()
                .map(|e| format!("{:?} {:?} {}", e.kind, e.instance, e.reason))
                .collect();
            panic!(
                "no scale 3→1:\n{}\n{:?}",
                events.join("\n"),
                s.instance_list("busy").await
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for(30, "the scale-in never finished", || async {
        s.instance_list("busy").await.len() == 1
    })
    .await;
    // A moment more of load on what is left, then the count.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = load.finish();
    let failed: Vec<_> = seen.iter().filter(|(status, _)| *status != 200).collect();
    assert!(seen.len() > 100, "only {} requests", seen.len());
    if !failed.is_empty() {
        let events: Vec<String> = s
            .events("busy")
            .await
            .iter()
            .map(|e| format!("{:?} {:?} {}", e.kind, e.instance, e.reason))
            .collect();
        panic!(
            "{} of {} failed, first: {:?}\nevents:\n{}",
            failed.len(),
            seen.len(),
            failed[0],
            events.join("\n")
        );
    }
    assert!(seen.iter().any(|(_, body)| body == "one\n"));
    assert_eq!(seen.last().map(|(_, b)| b.as_str()), Some("two\n"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_schedule_wakes_a_sleeping_site_and_ignored_clients_do_not_keep_it_awake() {
    let s = Serve::start().await;
    let mut app = static_site("cron");
    app["idle_timeout"] = "10m".into();
    app["ignored_clients"] = serde_json::json!({"user_agents": ["UptimeRobot"]});
    // Every minute (the soonest cron fires): at most a minute's wait.
    app["schedules"] = serde_json::json!(["* * * * * GET /cgi-bin/tick"]);
    s.create(app).await;
    deploy_cgi(
        &s,
        "cron",
        "code-cron",
        &[(
            "tick",
            "#!/bin/sh\necho tick >> /data/ticks\necho 'Content-Type: text/plain'\necho\necho ticked\n",
        )],
    )
    .await;
    let data = s.app_dir("cron").await.join("data");

    // An uptime check wakes the site (it is answered) but lets it sleep 5 s later, not 10 min.
    let (status, _) = tokio::task::spawn_blocking({
        let proxy = s.bound.proxy;
        move || {
            hako_testkit::http::raw(
                proxy,
                "GET /index.html HTTP/1.0\r\nHost: cron.example\r\nUser-Agent: Mozilla/5.0+(compatible; UptimeRobot/2.0)\r\n\r\n",
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(status, 200);
    s.wait_event("cron", EventKind::Stop, |e| e.reason.contains("idle for"))
        .await;

    // The schedule's run wakes it: the script ran, the run is an event and counted apart
    // from visitors, and the instance stops again seconds after the run.
    let stops_before = s
        .events("cron")
        .await
        .iter()
        .filter(|e| e.kind == EventKind::Stop)
        .count();
    wait_for(75, "the scheduled run never came", || async {
        data.join("ticks").exists()
    })
    .await;
    let run = s
        .wait_event("cron", EventKind::Scheduled, |e| {
            e.reason.contains("ran: 200")
        })
        .await;
    assert!(run.reason.contains("GET /cgi-bin/tick"), "{}", run.reason);
    wait_for(20, "the scheduled run kept the site awake", || async {
        s.events("cron")
            .await
            .iter()
            .filter(|e| e.kind == EventKind::Stop)
            .count()
            > stops_before
    })
    .await;
    let m = s.metrics("cron").await;
    assert!(m["scheduled"].as_u64().unwrap() >= 1, "{m}");
    assert_eq!(m["ignored"].as_u64().unwrap(), 1, "{m}");
    assert!(m["scheduled_runs"]["ok"].as_u64().unwrap() >= 1, "{m}");
    assert_eq!(
        m["warm"].as_u64().unwrap() + m["cold"].as_u64().unwrap(),
        m["scheduled"].as_u64().unwrap() + 1,
        "{m}"
    );
    // The same counts on /metrics, by class and by run result.
    let (status, text) = crate::metrics::scrape(&s, Some(&s.client.token)).await;
    assert_eq!(status, 200, "{text}");
    let series = |name: &str| {
        crate::metrics::value(&text, name).unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    assert_eq!(
        series(r#"hako_requests_by_class_total{app="cron",class="ignored"}"#),
        1.0
    );
    assert!(series(r#"hako_requests_by_class_total{app="cron",class="scheduled"}"#) >= 1.0);
    assert_eq!(
        series(r#"hako_requests_by_class_total{app="cron",class="visitor"}"#),
        0.0
    );
    assert!(series(r#"hako_schedule_runs_total{app="cron",result="ok"}"#) >= 1.0);
    s.update("cron", serde_json::json!({"schedules": []})).await;
    s.stop().await;
}

/// The fairness check, with a generous bound (the measured figures are `cargo xtask bench
/// cycling`'s, with wrk outside the daemon's process): one site flooded by 8 clients in this
/// process, another's p99 stays within 10x its quiet p99 + 100 ms — served, not starved —
/// on a shared 2-core machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flooded_site_does_not_starve_another() {
    let s = Serve::start().await;
    for name in ["flood", "quiet"] {
        s.create(static_site(name)).await;
        s.deploy(name, &[("index.html", "hi\n")]).await;
        assert_eq!(
            http(s.bound.proxy, &format!("{name}.example"), "/index.html")
                .await
                .0,
            200
        );
    }
    let probe = |n: usize| {
        let proxy = s.bound.proxy;
        tokio::task::spawn_blocking(move || {
            let mut t: Vec<f64> = (0..n)
                .map(|_| {
                    let start = Instant::now();
                    assert_eq!(
                        hako_testkit::http::get(proxy, "quiet.example", "/index.html").0,
                        200
                    );
                    start.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            t.sort_by(f64::total_cmp);
            t[(t.len() * 99 / 100).min(t.len() - 1)]
        })
    };
    let quiet = probe(300).await.unwrap();
    let flood = Load::start(s.bound.proxy, "flood.example", "/index.html", 8);
    let during = probe(300).await.unwrap();
    let flooded = flood.finish();
    assert!(flooded.len() > 300, "the flood sent only {}", flooded.len());
    assert!(
        during <= quiet * 10.0 + 100.0,
        "quiet site p99 {during:.2} ms under the flood, {quiet:.2} ms without"
    );
    s.stop().await;
}
