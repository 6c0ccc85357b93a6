//! The scheduler on tokio's paused clock: fire times exactly as cron says (UTC), each once,
//! requests through the requester, commands through the lifecycle, plans that follow the
//! apps' schedules.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use hako_model::{App, EventKind};
use tokio::time::Instant;

use super::{Requester, Scheduler};
use crate::testbed::{Call, bed, site};

/// 2026-01-01 00:00:00 UTC.
const T0: i64 = 1_767_225_600;

#[derive(Default)]
struct Recorder(Mutex<Vec<(String, String)>>);

#[async_trait]
impl Requester for Recorder {
    async fn request(&self, app: &App, method: &str, path: &str) -> Result<u16, String> {
        self.0
            .lock()
            .unwrap()
            .push((app.spec.name.clone(), format!("{method} {path}")));
        Ok(if path.contains("broken") { 500 } else { 200 })
    }
}

#[tokio::test(start_paused = true)]
async fn runs_fire_at_their_cron_times_once_each_and_follow_changes() {
    let b = bed(site(serde_json::json!({
        "schedules": ["*/15 * * * * GET /wp-cron.php", "0 * * * * php /app/cleanup.php"],
    })))
    .await;
    let recorder = Arc::new(Recorder::default());
    let mut s = Scheduler::new(
        b.apps.clone(),
        b.lifecycle.clone(),
        b.events.clone(),
        recorder.clone(),
        T0 + 60,
    );
    let start = Instant::now();
    let mut fired = Vec::new();
    // An hour and a bit, a tick a second (the loop sleeps at most that long).
    for _ in 0..3700 {
        let now = Instant::now();
        for run in s.due(now) {
            let at = T0 + 60 + (now - start).as_secs() as i64;
            fired.push((at - T0, run.entry.to_string()));
            assert!(s.runner().run_one(run).await);
        }
        assert!(s.sleep(now) <= Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    let http: Vec<i64> = fired
        .iter()
        .filter(|(_, e)| e.contains("GET"))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(http, [900, 1800, 2700, 3600]);
    let commands: Vec<i64> = fired
        .iter()
        .filter(|(_, e)| e.contains("cleanup"))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(commands, [3600]);
    assert_eq!(recorder.0.lock().unwrap().len(), 4);
    assert!(
        b.node
            .calls()
            .contains(&Call::Command("site: php /app/cleanup.php".into()))
    );
    let events = b.events().await;
    let runs: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::Scheduled)
        .collect();
    assert_eq!(runs.len(), 5, "{runs:?}");
    assert!(
        runs[0]
            .reason
            .starts_with("schedule '*/15 * * * * GET /wp-cron.php' ran: 200"),
        "{runs:?}"
    );
    assert!(
        runs.iter().any(|e| e
            .reason
            .contains("ran in a fresh instance: exited with code 0")),
        "{runs:?}"
    );
    assert_eq!(s.stats.lock().unwrap()["site"].ok, 5);

    // New schedules: planned from now on; a failing run is counted as failed.
    b.set(site(
        serde_json::json!({"schedules": ["*/5 * * * * GET /broken"]}),
    ));
    let mut late = Vec::new();
    for _ in 0..301 {
        for run in s.due(Instant::now()) {
            late.push(run.entry.to_string());
            assert!(!s.runner().run_one(run).await);
        }
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    assert_eq!(late, ["*/5 * * * * GET /broken"]);
    assert_eq!(s.stats.lock().unwrap()["site"].failed, 1);
    // Schedules removed: nothing more, and the loop sleeps its longest.
    b.set(site(serde_json::json!({})));
    assert!(s.due(Instant::now()).is_empty());
    assert_eq!(s.sleep(Instant::now()), Duration::from_secs(1));
}
