//! The keep-alive loop: applies the pure keep-alive policy (`hako_policy`) to every app's
//! instances, using the proxy's live counters (open requests, upgraded connections, last
//! activity). It sleeps exactly until the policy's next check, or until something changes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hako_model::{App, Event, EventKind};
use hako_policy::{Action, InstanceView, KeepAlive, Time};

use crate::daemon::Daemon;

/// Longest a draining instance may keep its open requests before it is stopped anyway.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(600);

/// The policy of one app, from its spec.
pub(crate) fn policy_of(app: &App) -> KeepAlive {
    KeepAlive {
        idle_timeout: Some(app.spec.idle_timeout.0),
        max_lifetime: app.spec.max_lifetime.map(|d| d.0),
        min_instances: app.spec.min,
        connection_aware: true,
        drain_timeout: Some(DRAIN_TIMEOUT),
    }
}

fn to_time(epoch: Instant, t: Instant) -> Time {
    Time(t.saturating_duration_since(epoch).as_nanos() as u64)
}

/// Runs until the daemon stops.
pub(crate) async fn run(daemon: Arc<Daemon>) {
    // Instances being started for min_instances / replacements, per app.
    let starting: Arc<std::sync::Mutex<HashMap<String, u32>>> = Arc::default();
    loop {
        let now_i = Instant::now();
        let now = to_time(daemon.epoch, now_i);
        let mut next: Option<Time> = None;
        let apps: Vec<App> = daemon
            .apps
            .read()
            .expect("apps lock")
            .values()
            .cloned()
            .collect();
        for app in apps {
            let name = app.spec.name.clone();
            let policy = policy_of(&app);
            let snaps = daemon.router.instances(&name).unwrap_or_default();
            let mut ids = Vec::new();
            let mut views = Vec::new();
            {
                let tracked = daemon.tracked.lock().expect("tracked lock");
                for s in &snaps {
                    let t = tracked.get(&s.instance_id);
                    let ready = t.map(|t| t.ready).unwrap_or(s.last_activity);
                    views.push(InstanceView {
                        started_at: to_time(daemon.epoch, t.map(|t| t.started).unwrap_or(ready)),
                        ready_at: Some(to_time(daemon.epoch, ready)),
                        last_active: to_time(daemon.epoch, s.last_activity),
                        in_flight: s.in_flight as u32,
                        upgraded: s.upgraded as u32,
                        draining_since: t
                            .and_then(|t| t.draining_since)
                            .map(|d| to_time(daemon.epoch, d)),
                    });
                    ids.push(s.instance_id.clone());
                }
            }
            // Instances made from an older version of the app (code, image, settings) are
            // replaced: started anew first when the app keeps a minimum, else just drained
            // (the next request starts one from the current version).
            let current = app.fingerprint();
            let outdated: Vec<String> = {
                let tracked = daemon.tracked.lock().expect("tracked lock");
                ids.iter()
                    .filter(|id| {
                        tracked
                            .get(*id)
                            .is_some_and(|t| t.fingerprint != current && t.draining_since.is_none())
                    })
                    .cloned()
                    .collect()
            };
            for id in outdated {
                if !mark_draining(&daemon, &id) {
                    continue;
                }
                let reason =
                    "replaced: the app changed (new release, image or settings)".to_string();
                if app.spec.min > 0 {
                    spawn_start(&daemon, &starting, &app, reason, Some(id));
                } else {
                    let (d2, app_name) = (daemon.clone(), name.clone());
                    tokio::spawn(
                        async move { d2.retire(&app_name, &id, reason, DRAIN_TIMEOUT).await },
                    );
                }
            }
            let n_starting = *starting
                .lock()
                .expect("starting lock")
                .get(&name)
                .unwrap_or(&0);
            for _ in 0..n_starting {
                views.push(InstanceView::starting(now));
            }
            for d in policy.decide(now, &views) {
                let reason = d.reason.to_string();
                match d.action {
                    Action::Stop { instance } | Action::Drain { instance } => {
                        let Some(id) = ids.get(instance).cloned() else {
                            continue;
                        };
                        if !mark_draining(&daemon, &id) {
                            continue; // already retiring
                        }
                        let (d2, app_name) = (daemon.clone(), name.clone());
                        tokio::spawn(async move {
                            d2.retire(&app_name, &id, reason, DRAIN_TIMEOUT).await
                        });
                    }
                    Action::Start => {
                        spawn_start(&daemon, &starting, &app, reason, None);
                    }
                    Action::Replace { instance } => {
                        let Some(id) = ids.get(instance).cloned() else {
                            continue;
                        };
                        if !mark_draining(&daemon, &id) {
                            continue;
                        }
                        spawn_start(&daemon, &starting, &app, reason, Some(id));
                    }
                }
            }
            if let Some(t) = policy.next_check(now, &views) {
                next = Some(next.map_or(t, |n: Time| n.min(t)));
            }
        }
        let sleep = next
            .map(|t| t.saturating_since(to_time(daemon.epoch, Instant::now())))
            .unwrap_or(Duration::from_secs(1))
            .clamp(Duration::from_millis(5), Duration::from_secs(1));
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = daemon.wake.notified() => {}
        }
    }
}

/// A start's reason, saying so when its container came from the warm pool.
fn from_pool(reason: &str, pooled: bool) -> String {
    if pooled {
        format!("{reason} (from the warm pool)")
    } else {
        reason.to_string()
    }
}

/// Marks an instance as retiring; false if it already was.
fn mark_draining(daemon: &Daemon, id: &str) -> bool {
    let mut tracked = daemon.tracked.lock().expect("tracked lock");
    match tracked.get_mut(id) {
        Some(t) if t.draining_since.is_none() => {
            t.draining_since = Some(Instant::now());
            true
        }
        Some(_) => false,
        None => true,
    }
}

/// Starts an instance outside a request (min instances, replacing a recycled one), routes to
/// it, then retires `replaces` if given.
fn spawn_start(
    daemon: &Arc<Daemon>,
    starting: &Arc<std::sync::Mutex<HashMap<String, u32>>>,
    app: &App,
    reason: String,
    replaces: Option<String>,
) {
    let name = app.spec.name.clone();
    *starting
        .lock()
        .expect("starting lock")
        .entry(name.clone())
        .or_default() += 1;
    let (daemon, starting, app) = (daemon.clone(), starting.clone(), app.clone());
    tokio::spawn(async move {
        let result = daemon.agent.launch(&app).await;
        // The instance stops counting as starting only once it is routed (registered): in
        // between, the loop would see the app below its minimum and start another.
        let started = || {
            if let Some(n) = starting.lock().expect("starting lock").get_mut(&name) {
                *n = n.saturating_sub(1);
            }
        };
        match result {
            Ok(info) => {
                if let Some(ms) = info.ready_ms {
                    // Measured like the proxy's starts, for the service-level model.
                    let took = Duration::try_from_secs_f64(ms / 1e3).unwrap_or_default();
                    let _ = daemon.router.record_start(&name, took);
                }
                daemon
                    .events
                    .record(
                        Event::new(&name, EventKind::Start, from_pool(&reason, info.from_pool))
                            .instance(&info.id),
                    )
                    .await;
                daemon.register(&info, &app, true).await;
                started();
                if let Some(old) = replaces {
                    daemon
                        .retire(
                            &name,
                            &old,
                            format!("replaced by {}: {reason}", info.id),
                            DRAIN_TIMEOUT,
                        )
                        .await;
                }
            }
            Err(e) => {
                started();
                daemon
                    .events
                    .record(
                        Event::new(
                            &name,
                            EventKind::StartFailed,
                            format!("{reason}: {}", e.reason),
                        )
                        .log_tail(e.log_tail),
                    )
                    .await;
                if let Some(old) = replaces
                    && let Some(t) = daemon.tracked.lock().expect("tracked lock").get_mut(&old)
                {
                    // Keep serving with the old one; try again at the next check.
                    t.draining_since = None;
                }
                // Do not retry in a tight loop.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        daemon.wake.notify_one();
    });
}
