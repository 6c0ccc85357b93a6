//! The activator: a request for an app with no ready instance asks the launcher
//! for one and waits. Requests that arrive during a start wait for the same start;
//! the number waiting is bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};
use tokio::sync::watch;

use hako_model::StartFailure;

use crate::app::App;
use crate::error::ProxyError;
use crate::events::{EventHook, ProxyEvent};
use crate::launcher::Launcher;

/// How a start ended, as the waiting requests see it.
#[derive(Debug, Clone)]
enum Outcome {
    Ready,
    Failed(StartFailure, String),
    TimedOut(Duration),
}

/// The start of an app in progress (or the last one), shared by its waiters.
#[derive(Debug, Default)]
pub(crate) struct StartSlot(Option<watch::Receiver<Option<Outcome>>>);

impl StartSlot {
    /// A receiver for the start in progress, if one is.
    fn in_progress(&self) -> Option<watch::Receiver<Option<Outcome>>> {
        self.0.as_ref().filter(|rx| rx.borrow().is_none()).cloned()
    }

    /// True while a start runs.
    pub(crate) fn is_running(&self) -> bool {
        self.in_progress().is_some()
    }
}

/// A place in an app's wait queue, given back on drop.
struct WaitSlot<'a>(&'a AtomicUsize);

impl<'a> WaitSlot<'a> {
    fn acquire(count: &'a AtomicUsize, max: usize) -> Option<Self> {
        let slot = Self(count);
        // Taken even when over the bound; the drop below gives it back.
        (count.fetch_add(1, SeqCst) < max).then_some(slot)
    }
}

impl Drop for WaitSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

/// Wait until `app` has a ready instance, starting one if no start is running.
pub(crate) async fn wait_for_instance(
    app: &Arc<App>,
    launcher: &Arc<dyn Launcher>,
    events: &Arc<dyn EventHook>,
) -> Result<(), ProxyError> {
    let route = app.route();
    let Some(_slot) = WaitSlot::acquire(&app.waiting, route.max_waiting) else {
        app.metrics.record_rejected();
        return Err(ProxyError::QueueFull {
            app: app.name.clone(),
            max: route.max_waiting,
        });
    };
    let mut rx = {
        let mut slot = app.start.lock().unwrap_or_else(|e| e.into_inner());
        if app.has_ready() {
            return Ok(());
        }
        match slot.in_progress() {
            Some(rx) => rx,
            None => {
                let rx = spawn_start(
                    app.clone(),
                    launcher.clone(),
                    events.clone(),
                    route.start_timeout,
                );
                slot.0 = Some(rx.clone());
                rx
            }
        }
    };
    let outcome = match rx.wait_for(Option::is_some).await {
        Ok(outcome) => outcome.clone(),
        Err(_) => Some(Outcome::Failed(
            StartFailure::Node,
            "the start task ended without a result".into(),
        )),
    };
    match outcome {
        Some(Outcome::Ready) | None => Ok(()),
        Some(Outcome::Failed(kind, reason)) => Err(ProxyError::StartFailed {
            app: app.name.clone(),
            kind,
            reason,
        }),
        Some(Outcome::TimedOut(after)) => Err(ProxyError::StartTimedOut {
            app: app.name.clone(),
            after,
        }),
    }
}

/// Run one launch in the background and publish its outcome to the waiters.
fn spawn_start(
    app: Arc<App>,
    launcher: Arc<dyn Launcher>,
    events: Arc<dyn EventHook>,
    timeout: Duration,
) -> watch::Receiver<Option<Outcome>> {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let started = Instant::now();
        let name = app.name.clone();
        tracing::info!(app = %name, "starting an instance for waiting requests");
        let mut launch = tokio::spawn(async move { launcher.launch(&name).await });
        let (result, late) = match tokio::time::timeout(timeout, &mut launch).await {
            Ok(result) => (result, false),
            Err(_) => {
                tracing::warn!(app = %app.name, ?timeout, "start timed out");
                events.on_event(ProxyEvent::StartTimedOut {
                    app: app.name.clone(),
                    after: timeout,
                });
                tx.send_replace(Some(Outcome::TimedOut(timeout)));
                (launch.await, true)
            }
        };
        let outcome = match result {
            Ok(Ok(launched)) => {
                let took = started.elapsed();
                app.metrics.record_start(took);
                // A launcher that routed the instance itself already added it.
                let _ = app.add_ready(launched.instance_id.clone(), launched.addr);
                events.on_event(ProxyEvent::InstanceStarted {
                    app: app.name.clone(),
                    instance_id: launched.instance_id,
                    addr: launched.addr,
                    took,
                    late,
                });
                Outcome::Ready
            }
            Ok(Err(error)) => {
                tracing::warn!(app = %app.name, kind = %error.kind, reason = %error.reason, "start failed");
                app.metrics.record_start_failure(error.kind);
                events.on_event(ProxyEvent::StartFailed {
                    app: app.name.clone(),
                    kind: error.kind,
                    reason: error.reason.clone(),
                    log_tail: error.log_tail,
                });
                Outcome::Failed(error.kind, error.reason)
            }
            Err(join_error) => {
                let reason = format!("the launcher failed: {join_error}");
                app.metrics.record_start_failure(StartFailure::Node);
                events.on_event(ProxyEvent::StartFailed {
                    app: app.name.clone(),
                    kind: StartFailure::Node,
                    reason: reason.clone(),
                    log_tail: String::new(),
                });
                Outcome::Failed(StartFailure::Node, reason)
            }
        };
        if !late {
            tx.send_replace(Some(outcome));
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::AppRoute;
    use crate::launcher::{LaunchError, Launched};
    use async_trait::async_trait;
    use hako_model::StartFailure;
    use std::sync::atomic::AtomicUsize;

    /// Launches after a (paused-clock) delay; no IO, so the paused clock is exact.
    struct SlowLauncher {
        launches: AtomicUsize,
        delay: Duration,
        fail: bool,
    }

    #[async_trait]
    impl Launcher for SlowLauncher {
        async fn launch(&self, app: &str) -> Result<Launched, LaunchError> {
            let n = self.launches.fetch_add(1, SeqCst);
            tokio::time::sleep(self.delay).await;
            if self.fail {
                return Err(LaunchError {
                    kind: StartFailure::Crashed,
                    reason: format!("{app} exited with status 1"),
                    log_tail: "boom".into(),
                });
            }
            Ok(Launched {
                instance_id: format!("{app}-{n}"),
                addr: "127.0.0.1:9".parse().unwrap(),
            })
        }
    }

    fn setup(
        delay: Duration,
        fail: bool,
        max_waiting: usize,
    ) -> (
        Arc<App>,
        Arc<SlowLauncher>,
        Arc<dyn EventHook>,
        tokio::sync::mpsc::UnboundedReceiver<ProxyEvent>,
    ) {
        let mut route = AppRoute::new("blog", ["blog.example"]);
        route.start_timeout = Duration::from_secs(5);
        route.max_waiting = max_waiting;
        let app = Arc::new(App::new(route, tokio::time::Instant::now(), 4));
        let launcher = Arc::new(SlowLauncher {
            launches: AtomicUsize::new(0),
            delay,
            fail,
        });
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (app, launcher, Arc::new(tx), rx)
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_waiters_share_one_start() {
        let (app, launcher, events, mut rx) = setup(Duration::from_secs(1), false, 100);
        let dyn_launcher: Arc<dyn Launcher> = launcher.clone();
        let waits: Vec<_> = (0..20)
            .map(|_| {
                let (app, l, e) = (app.clone(), dyn_launcher.clone(), events.clone());
                tokio::spawn(async move { wait_for_instance(&app, &l, &e).await })
            })
            .collect();
        for w in waits {
            w.await.unwrap().unwrap();
        }
        assert_eq!(launcher.launches.load(SeqCst), 1);
        assert_eq!(app.metrics.history().starts, 1, "the one start is measured");
        assert_eq!(app.pick().unwrap().id, "blog-0");
        assert!(matches!(
            rx.try_recv(),
            Ok(ProxyEvent::InstanceStarted { late: false, .. })
        ));
        assert_eq!(app.waiting.load(SeqCst), 0);
    }

    /// Routes the instance itself before answering, as the daemon's launcher does.
    struct RoutingLauncher(Arc<App>);

    #[async_trait]
    impl Launcher for RoutingLauncher {
        async fn launch(&self, app: &str) -> Result<Launched, LaunchError> {
            let addr = "127.0.0.1:9".parse().unwrap();
            assert!(self.0.add_ready(format!("{app}-r"), addr));
            Ok(Launched {
                instance_id: format!("{app}-r"),
                addr,
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_launcher_that_routes_its_instance_is_not_routed_twice() {
        let (app, _, events, mut rx) = setup(Duration::ZERO, false, 100);
        let launcher: Arc<dyn Launcher> = Arc::new(RoutingLauncher(app.clone()));
        wait_for_instance(&app, &launcher, &events).await.unwrap();
        assert_eq!(app.snapshots().len(), 1);
        assert_eq!(app.pick().unwrap().id, "blog-r");
        assert!(matches!(
            rx.try_recv(),
            Ok(ProxyEvent::InstanceStarted { late: false, .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_fails_waiters_and_late_instance_is_still_routed() {
        let (app, launcher, events, mut rx) = setup(Duration::from_secs(8), false, 100);
        let dyn_launcher: Arc<dyn Launcher> = launcher;
        let before = tokio::time::Instant::now();
        let err = wait_for_instance(&app, &dyn_launcher, &events)
            .await
            .unwrap_err();
        assert!(matches!(err, ProxyError::StartTimedOut { .. }), "{err}");
        assert_eq!(before.elapsed(), Duration::from_secs(5));
        assert!(matches!(
            rx.recv().await,
            Some(ProxyEvent::StartTimedOut { .. })
        ));
        assert!(matches!(
            rx.recv().await,
            Some(ProxyEvent::InstanceStarted { late: true, .. })
        ));
        assert!(app.has_ready());
    }

    #[tokio::test(start_paused = true)]
    async fn failure_is_reported_with_log_tail() {
        let (app, launcher, events, mut rx) = setup(Duration::from_millis(10), true, 100);
        let dyn_launcher: Arc<dyn Launcher> = launcher;
        let err = wait_for_instance(&app, &dyn_launcher, &events)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("exited with status 1"), "{err}");
        match rx.recv().await {
            Some(ProxyEvent::StartFailed {
                reason,
                log_tail,
                kind,
                ..
            }) => {
                assert_eq!(kind, StartFailure::Crashed);
                assert_eq!(app.metrics.snapshot().start_failures["crashed"], 1);
                assert_eq!(
                    (reason.as_str(), log_tail.as_str()),
                    ("blog exited with status 1", "boom")
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn queue_bound_rejects_extra_waiters() {
        let (app, launcher, events, _rx) = setup(Duration::from_secs(1), false, 2);
        let dyn_launcher: Arc<dyn Launcher> = launcher;
        let waits: Vec<_> = (0..2)
            .map(|_| {
                let (app, l, e) = (app.clone(), dyn_launcher.clone(), events.clone());
                tokio::spawn(async move { wait_for_instance(&app, &l, &e).await })
            })
            .collect();
        while app.waiting.load(SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        let err = wait_for_instance(&app, &dyn_launcher, &events)
            .await
            .unwrap_err();
        assert!(matches!(err, ProxyError::QueueFull { max: 2, .. }), "{err}");
        assert_eq!(app.metrics.snapshot().rejected, 1);
        for w in waits {
            w.await.unwrap().unwrap();
        }
    }
}
