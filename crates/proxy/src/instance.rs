//! One instance of an app as the proxy sees it: address, routing state, and the
//! live counts (in-flight requests, upgraded connections, last activity) that the
//! daemon's keep-alive loop reads to decide stops.

use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{
    AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst,
};

use hako_policy::wake::RequestClass;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::pool::Pool;

/// Whether an instance gets new requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceState {
    /// Routed to.
    Ready,
    /// No new requests; in-flight ones finish.
    Draining,
}

/// The proxy's view of one running instance.
#[derive(Debug)]
pub(crate) struct Instance {
    pub(crate) id: String,
    pub(crate) addr: SocketAddr,
    draining: AtomicBool,
    in_flight: AtomicUsize,
    upgraded: AtomicUsize,
    /// Microseconds since `epoch` of the last request start or end.
    last_activity_us: AtomicU64,
    /// The same for visitors' requests only, and for quiet ones (scheduled runs, ignored
    /// clients); [`NEVER`] until there was one.
    last_visitor_us: AtomicU64,
    last_quiet_us: AtomicU64,
    /// The class of the first request it got (0: none yet), see [`class_code`].
    first_class: AtomicU8,
    epoch: Instant,
    idle: Notify,
    pub(crate) pool: Pool,
}

impl Instance {
    pub(crate) fn new(id: String, addr: SocketAddr, epoch: Instant, max_idle: usize) -> Self {
        let instance = Self {
            id,
            addr,
            draining: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            upgraded: AtomicUsize::new(0),
            last_activity_us: AtomicU64::new(0),
            last_visitor_us: AtomicU64::new(NEVER),
            last_quiet_us: AtomicU64::new(NEVER),
            first_class: AtomicU8::new(0),
            epoch,
            idle: Notify::new(),
            pool: Pool::new(max_idle),
        };
        instance.touch();
        instance
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Relaxed)
    }

    fn touch(&self) -> u64 {
        let us = u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(NEVER - 1);
        self.last_activity_us.store(us, Relaxed);
        us
    }

    /// Activity of a request of `class` (its start or its end).
    fn touch_as(&self, class: RequestClass) {
        let us = self.touch();
        let slot = if class.keeps_awake() {
            &self.last_visitor_us
        } else {
            &self.last_quiet_us
        };
        slot.store(us, Relaxed);
    }

    fn at(&self, us: u64) -> Option<Instant> {
        (us != NEVER).then(|| self.epoch + Duration::from_micros(us))
    }

    pub(crate) fn state(&self) -> InstanceState {
        if self.draining.load(SeqCst) {
            InstanceState::Draining
        } else {
            InstanceState::Ready
        }
    }

    /// Stop routing here and close idle upstream connections.
    pub(crate) fn start_draining(&self) {
        self.draining.store(true, SeqCst);
        self.pool.clear();
    }

    fn is_idle(&self) -> bool {
        self.in_flight.load(SeqCst) == 0 && self.upgraded.load(SeqCst) == 0
    }

    fn release(&self, counter: &AtomicUsize) {
        self.touch();
        if counter.fetch_sub(1, SeqCst) == 1 && self.is_idle() {
            self.idle.notify_waiters();
        }
    }

    /// Resolves once no request is in flight and no upgraded connection is open.
    pub(crate) async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_idle() {
                return;
            }
            notified.await;
        }
    }

    pub(crate) fn snapshot(&self) -> InstanceSnapshot {
        let last = Duration::from_micros(self.last_activity_us.load(Relaxed));
        let last_activity = self.epoch + last;
        InstanceSnapshot {
            instance_id: self.id.clone(),
            addr: self.addr,
            state: self.state(),
            in_flight: self.in_flight.load(Relaxed),
            upgraded: self.upgraded.load(Relaxed),
            idle_for: last_activity.elapsed(),
            last_activity,
            last_visitor: self.at(self.last_visitor_us.load(Relaxed)),
            last_quiet: self.at(self.last_quiet_us.load(Relaxed)),
            first_request: class_of(self.first_class.load(Relaxed)),
        }
    }
}

/// "No such request yet" in the per-class activity slots.
const NEVER: u64 = u64::MAX;

/// A request class as a byte (0 is "none").
fn class_code(class: RequestClass) -> u8 {
    match class {
        RequestClass::Visitor => 1,
        RequestClass::Scheduled => 2,
        RequestClass::Ignored => 3,
    }
}

fn class_of(code: u8) -> Option<RequestClass> {
    match code {
        1 => Some(RequestClass::Visitor),
        2 => Some(RequestClass::Scheduled),
        3 => Some(RequestClass::Ignored),
        _ => None,
    }
}

/// Counts one request (of a class: visitor, scheduled, ignored) as in flight on an instance
/// until dropped.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Instance>, RequestClass);

impl InFlight {
    pub(crate) fn new(instance: Arc<Instance>, class: RequestClass) -> Self {
        instance.in_flight.fetch_add(1, SeqCst);
        let _ = instance
            .first_class
            .compare_exchange(0, class_code(class), Relaxed, Relaxed);
        instance.touch_as(class);
        Self(instance, class)
    }

    pub(crate) fn instance(&self) -> &Arc<Instance> {
        &self.0
    }

    pub(crate) fn class(&self) -> RequestClass {
        self.1
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch_as(self.1);
        self.0.release(&self.0.in_flight);
    }
}

/// Counts one open upgraded (e.g. WebSocket) connection on an instance until dropped.
#[derive(Debug)]
pub(crate) struct Upgraded(Arc<Instance>);

impl Upgraded {
    pub(crate) fn new(instance: Arc<Instance>, class: RequestClass) -> Self {
        instance.upgraded.fetch_add(1, SeqCst);
        instance.touch_as(class);
        Self(instance)
    }
}

impl Drop for Upgraded {
    fn drop(&mut self) {
        self.0.release(&self.0.upgraded);
    }
}

/// What the daemon's keep-alive loop needs to know about one instance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceSnapshot {
    /// Id the launcher (or `add_ready`) gave it.
    pub instance_id: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Ready or draining.
    pub state: InstanceState,
    /// Requests sent to it whose response has not been fully delivered.
    pub in_flight: usize,
    /// Open upgraded connections (WebSocket and the like).
    pub upgraded: usize,
    /// Time since a request last started or finished (`idle_ms` in JSON).
    #[serde(rename = "idle_ms", serialize_with = "as_millis")]
    pub idle_for: Duration,
    /// When a request last started or finished (on tokio's clock, so a paused clock in tests
    /// governs it like the daemon's timers).
    #[serde(skip)]
    pub last_activity: Instant,
    /// When a visitor's request last started or finished (not a scheduled run's, not an
    /// ignored client's); `None`: no visitor yet.
    #[serde(skip)]
    pub last_visitor: Option<Instant>,
    /// When a scheduled run's or an ignored client's request last started or finished.
    #[serde(skip)]
    pub last_quiet: Option<Instant>,
    /// Who sent the first request it got, if any.
    pub first_request: Option<RequestClass>,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Handle returned by [`crate::Router::drain`]: the instance no longer gets
/// requests; await [`Drain::wait`] before stopping it.
#[derive(Debug)]
pub struct Drain(pub(crate) Arc<Instance>);

impl Drain {
    /// Resolves once the instance has no request in flight and no upgraded connection.
    pub async fn wait(&self) {
        self.0.wait_idle().await;
    }

    /// Current counts of the draining instance.
    pub fn snapshot(&self) -> InstanceSnapshot {
        self.0.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance() -> Arc<Instance> {
        Arc::new(Instance::new(
            "i1".into(),
            "127.0.0.1:1".parse().unwrap(),
            Instant::now(),
            4,
        ))
    }

    #[tokio::test(start_paused = true)]
    async fn drain_waits_for_requests_and_upgrades() {
        let inst = instance();
        let request = InFlight::new(inst.clone(), RequestClass::Visitor);
        let upgrade = Upgraded::new(inst.clone(), RequestClass::Visitor);
        inst.start_draining();
        assert_eq!(inst.state(), InstanceState::Draining);
        let drain = Drain(inst.clone());
        let mut wait = tokio_test_spawn(async move { drain.wait().await });
        assert!(!wait.is_finished_after_yield().await);
        drop(request);
        assert!(
            !wait.is_finished_after_yield().await,
            "upgraded connection still open"
        );
        assert_eq!(inst.snapshot().upgraded, 1);
        drop(upgrade);
        assert!(wait.is_finished_after_yield().await);
    }

    #[tokio::test]
    async fn snapshot_tracks_activity() {
        let epoch = Instant::now() - Duration::from_secs(60);
        let inst = Arc::new(Instance::new(
            "i1".into(),
            "127.0.0.1:1".parse().unwrap(),
            epoch,
            4,
        ));
        // Pretend the last activity was at the epoch, a minute ago.
        inst.last_activity_us.store(0, Relaxed);
        assert!(inst.snapshot().idle_for >= Duration::from_secs(60));
        let guard = InFlight::new(inst.clone(), RequestClass::Visitor);
        let snap = inst.snapshot();
        assert_eq!(snap.in_flight, 1);
        assert!(
            snap.idle_for < Duration::from_secs(30),
            "a request start is activity"
        );
        inst.last_activity_us.store(0, Relaxed);
        drop(guard);
        let snap = inst.snapshot();
        assert_eq!(snap.in_flight, 0);
        assert!(
            snap.idle_for < Duration::from_secs(30),
            "a request end is activity"
        );
        let json = serde_json::to_value(&snap).unwrap();
        assert!(json["idle_ms"].as_u64().unwrap() < 30_000, "{json}");
    }

    struct Spawned(tokio::task::JoinHandle<()>);

    fn tokio_test_spawn(f: impl std::future::Future<Output = ()> + Send + 'static) -> Spawned {
        Spawned(tokio::spawn(f))
    }

    impl Spawned {
        async fn is_finished_after_yield(&mut self) -> bool {
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            self.0.is_finished()
        }
    }
}
