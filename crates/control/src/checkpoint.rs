//! Checkpoints of app versions in the daemon: when one is made, and whether a start restores
//! it.
//!
//! **When.** After the first successful start of an app version (code release, rollout
//! generation, settings that shape the container, image version), the app is queued; one
//! worker per daemon makes the checkpoints one at a time, each [`Checkpointer::delay`] after
//! the start that queued it, through [`Node::checkpoint`] (a private instance of the app,
//! never one that served visitors; see `hako_agent::Agent::checkpoint`). Nothing waits for it:
//! the request that started the app was answered by then. An app with `restore: always` is
//! also queued as soon as it is created or changed. One attempt per version: a failure is an
//! event, and the version starts cold from then on.
//!
//! **Whether a start restores** ([`decide`]): `never` never; `always` whenever the node has a
//! checkpoint of the version; `auto` only when the checkpoint's own measurements say a
//! restore is faster — until its first request is answered where both were measured (a
//! restored WordPress answers its first page warm), else until ready. `hako app show` says
//! which and why ([`Checkpointer::status`]).
//!
//! **Removal.** Checkpoints of other versions go when an app changes
//! ([`Node::forget_old_checkpoints`]), all of them with the app; the node's disk bound removes
//! the least recently used. Each removal is an event. Where CRIU is missing or broken, every
//! start is cold and the daemon says so once, in the first app's events that wanted one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hako_agent::{CheckpointError, CheckpointInfo, StartMode};
use hako_model::{App, AppNetwork, Event, EventKind, InstanceInfo, RestoreMode, StartPath};
use tokio::sync::mpsc;

use crate::apps::Apps;
use crate::event_log::EventLog;
use crate::node::Node;

/// How long after the start that queued it a checkpoint is made: the new instance answers
/// its first requests first (on two cores the checkpoint's private instance competes with it).
pub(crate) const CHECKPOINT_DELAY: Duration = Duration::from_secs(2);

/// What the daemon knows of one app version's checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Status {
    /// Queued or being made.
    Queued,
    /// On the node, with its measurements.
    Made(CheckpointInfo),
    /// Could not be made (or was removed): this version starts as it did without one.
    Failed(String),
}

#[derive(Debug, Clone)]
struct Entry {
    /// [`App::version_key`] of the version.
    version: String,
    made: Status,
}

/// Which start path an app's instances take, and why (for the launch and for `hako app show`).
pub(crate) fn decide(restore: RestoreMode, made: Option<&Status>) -> (StartMode, String) {
    let ms = |v: f64| format!("{v:.1} ms");
    match (restore, made) {
        (RestoreMode::Never, _) => (
            StartMode::NoRestore,
            "restore is never for this app: every start runs its command".into(),
        ),
        (_, None) => (
            StartMode::Auto,
            "no checkpoint of this version yet: one is made after its first successful start"
                .into(),
        ),
        (_, Some(Status::Queued)) => (
            StartMode::Auto,
            "a checkpoint of this version is being made".into(),
        ),
        (_, Some(Status::Failed(why))) => (
            StartMode::NoRestore,
            format!("no checkpoint of this version: {why}"),
        ),
        (RestoreMode::Always, Some(Status::Made(info))) => {
            let (cold, restore) = info.compared_ms();
            (
                StartMode::Auto,
                format!(
                    "restore is always: starts restore the checkpoint ({} restored against {} cold)",
                    ms(restore),
                    ms(cold)
                ),
            )
        }
        (RestoreMode::Auto, Some(Status::Made(info))) => {
            let (cold, restore) = info.compared_ms();
            let what = if info.cold_first_ms.is_some() && info.restore_first_ms.is_some() {
                "to its first answered request"
            } else {
                "to ready"
            };
            if info.restore_pays() {
                (
                    StartMode::Auto,
                    format!(
                        "restore is faster: {} restored against {} cold {what}",
                        ms(restore),
                        ms(cold)
                    ),
                )
            } else {
                (
                    StartMode::NoRestore,
                    format!(
                        "a cold start is faster: {} cold against {} restored {what}",
                        ms(cold),
                        ms(restore)
                    ),
                )
            }
        }
    }
}

/// The daemon's checkpoints: a table per app (by storage key) and the worker's queue.
pub(crate) struct Checkpointer {
    node: Arc<dyn Node>,
    events: Arc<EventLog>,
    apps: Arc<Apps>,
    table: Mutex<HashMap<String, Entry>>,
    queue: mpsc::UnboundedSender<App>,
    /// Set once CRIU's absence was recorded as an event.
    criu_reported: AtomicBool,
    /// See [`CHECKPOINT_DELAY`].
    pub(crate) delay: Duration,
}

impl Checkpointer {
    /// The checkpointer and the queue its worker ([`Checkpointer::run`]) reads.
    pub(crate) fn new(
        node: Arc<dyn Node>,
        events: Arc<EventLog>,
        apps: Arc<Apps>,
    ) -> (Arc<Checkpointer>, mpsc::UnboundedReceiver<App>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let c = Checkpointer {
            node,
            events,
            apps,
            table: Mutex::new(HashMap::new()),
            queue: tx,
            criu_reported: AtomicBool::new(false),
            delay: CHECKPOINT_DELAY,
        };
        (Arc::new(c), rx)
    }

    fn entry(&self, app: &App) -> Option<Status> {
        let version = app.version_key();
        self.table
            .lock()
            .expect("checkpoint table lock")
            .get(&app.storage_key())
            .filter(|e| e.version == version)
            .map(|e| e.made.clone())
    }

    /// The start paths a start of `app` may take now.
    pub(crate) fn mode_for(&self, app: &App) -> StartMode {
        decide(app.spec.restore, self.entry(app).as_ref()).0
    }

    /// For the API: the app's restore setting, whether its starts restore, why, the
    /// checkpoint's measurements and the node's checkpoint disk use.
    pub(crate) fn status(&self, app: &App) -> serde_json::Value {
        let made = self.entry(app);
        let (mode, reason) = decide(app.spec.restore, made.as_ref());
        let checkpoint = match &made {
            Some(Status::Made(info)) => serde_json::to_value(info).ok(),
            _ => None,
        };
        let (used, bound) = self.node.checkpoint_disk();
        serde_json::json!({
            "restore": app.spec.restore,
            "restores": checkpoint.is_some() && mode == StartMode::Auto,
            "reason": reason,
            "checkpoint": checkpoint,
            "node_checkpoint_bytes": used,
            "node_checkpoint_max_bytes": bound,
        })
    }

    /// An instance of `app` became ready: the first successful start of a version queues its
    /// checkpoint. A start that should have restored but did not (the image moved on under a
    /// `NAME:latest` app) queues one for the new image version.
    pub(crate) fn after_start(&self, app: &App, info: &InstanceInfo) {
        if app.spec.restore == RestoreMode::Never || app.spec.network != AppNetwork::Isolated {
            return;
        }
        let version = app.version_key();
        {
            let mut table = self.table.lock().expect("checkpoint table lock");
            match table.get(&app.storage_key()) {
                Some(e) if e.version == version => match &e.made {
                    Status::Made(made)
                        if info.start_path != StartPath::Restore && made.image != info.image => {}
                    _ => return,
                },
                _ => {}
            }
            table.insert(
                app.storage_key(),
                Entry {
                    version,
                    made: Status::Queued,
                },
            );
        }
        let _ = self.queue.send(app.clone());
    }

    /// `app` was created or changed (or loaded at start-up): the node drops the checkpoints of
    /// its other versions, the table learns the one the node has of this version, and an app
    /// with `restore: always` gets one made now.
    pub(crate) fn app_changed(self: &Arc<Self>, app: &App) {
        let removed = self.node.forget_old_checkpoints(app);
        if removed > 0 {
            let why = if app.spec.restore == RestoreMode::Never {
                "its restore setting is never"
            } else {
                "they belong to older versions of the app"
            };
            self.record(Event::new(
                &app.spec.name,
                EventKind::CheckpointRemoved,
                format!("removed {removed} checkpoint(s): {why}"),
            ));
        }
        let version = app.version_key();
        let key = app.storage_key();
        let queue = {
            let mut table = self.table.lock().expect("checkpoint table lock");
            if table.get(&key).is_some_and(|e| e.version != version) {
                table.remove(&key);
            }
            if app.spec.restore == RestoreMode::Never {
                table.remove(&key);
                false
            } else {
                match table.entry(key) {
                    std::collections::hash_map::Entry::Occupied(_) => false,
                    std::collections::hash_map::Entry::Vacant(v) => {
                        if let Some(info) = self.node.checkpoint_of(app) {
                            v.insert(Entry {
                                version,
                                made: Status::Made(info),
                            });
                            false
                        } else if app.spec.restore == RestoreMode::Always
                            && app.spec.network == AppNetwork::Isolated
                        {
                            v.insert(Entry {
                                version,
                                made: Status::Queued,
                            });
                            true
                        } else {
                            false
                        }
                    }
                }
            }
        };
        if queue {
            let _ = self.queue.send(app.clone());
        }
    }

    /// The app (this storage key) is gone; the node removes its checkpoints with its files.
    pub(crate) fn forget(&self, storage_key: &str) {
        self.table
            .lock()
            .expect("checkpoint table lock")
            .remove(storage_key);
    }

    fn record(self: &Arc<Self>, event: Event) {
        let events = self.events.clone();
        tokio::spawn(async move { events.record(event).await });
    }

    fn set(&self, app: &App, made: Status) {
        let mut table = self.table.lock().expect("checkpoint table lock");
        let version = app.version_key();
        // Only if the app is still at this version (a change meanwhile reset its entry).
        if let Some(e) = table
            .get_mut(&app.storage_key())
            .filter(|e| e.version == version)
        {
            e.made = made;
        }
    }

    /// The worker: makes the queued checkpoints one at a time. Runs until the queue closes.
    pub(crate) async fn run(self: Arc<Self>, mut queue: mpsc::UnboundedReceiver<App>) {
        while let Some(app) = queue.recv().await {
            tokio::time::sleep(self.delay).await;
            let current = self.apps.get(&app.spec.name);
            if current.as_ref().is_none_or(|c| {
                c.uid != app.uid
                    || c.version_key() != app.version_key()
                    || c.spec.restore == RestoreMode::Never
            }) {
                continue; // changed or gone meanwhile: its new version queues itself
            }
            self.make(&app).await;
            for info in self.node.evicted_checkpoints() {
                self.evicted(info);
            }
        }
    }

    async fn make(self: &Arc<Self>, app: &App) {
        let name = app.spec.name.clone();
        match self.node.checkpoint(app).await {
            Ok(info) => {
                self.set(app, Status::Made(info.clone()));
                let (_, why) = decide(app.spec.restore, Some(&Status::Made(info.clone())));
                self.record(Event::new(
                    &name,
                    EventKind::Checkpoint,
                    format!(
                        "checkpoint of {} made ({}, dumped in {:.1} ms): {why}",
                        version_words(&info),
                        hako_model::units::format_size(info.bytes),
                        info.dump_ms
                    ),
                ));
            }
            Err(CheckpointError::Criu(reason)) => {
                let why = format!("CRIU is not available on this node ({reason})");
                self.set(app, Status::Failed(why.clone()));
                if !self.criu_reported.swap(true, Ordering::SeqCst) {
                    self.record(Event::new(
                        &name,
                        EventKind::CheckpointFailed,
                        format!(
                            "{why}: no app on this node starts from a checkpoint; every start is cold (install it with `hako criu install`, then restart hako serve)"
                        ),
                    ));
                }
            }
            Err(CheckpointError::Unsupported(reason)) => {
                // This kind of node, or this app, has no checkpoints: said in `hako app show`.
                tracing::debug!(app = %name, %reason, "no checkpoint");
                self.set(app, Status::Failed(reason));
            }
            Err(e) => {
                let why = format!("making it failed: {e}");
                self.set(app, Status::Failed(why.clone()));
                self.record(Event::new(
                    &name,
                    EventKind::CheckpointFailed,
                    format!(
                        "cannot make a checkpoint of this version ({e}); its instances start without one"
                    ),
                ));
            }
        }
    }

    /// The node's disk bound removed a checkpoint: its version starts without one from now on.
    fn evicted(self: &Arc<Self>, info: CheckpointInfo) {
        let (_, bound) = self.node.checkpoint_disk();
        {
            let mut table = self.table.lock().expect("checkpoint table lock");
            for e in table.values_mut() {
                if matches!(&e.made, Status::Made(m) if m.key == info.key && m.app == info.app) {
                    e.made = Status::Failed(
                        "its checkpoint was removed by the node's disk bound".into(),
                    );
                }
            }
        }
        self.record(Event::new(
            &info.app,
            EventKind::CheckpointRemoved,
            format!(
                "checkpoint of {} removed ({}): the node's checkpoints passed their bound of {}; the least recently used go first",
                version_words(&info),
                hako_model::units::format_size(info.bytes),
                hako_model::units::format_size(bound)
            ),
        ));
    }
}

fn version_words(info: &CheckpointInfo) -> String {
    match info.release {
        Some(r) => format!("release {r} on {}", info.image),
        None => format!("the app on {}", info.image),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(cold_ready: f64, restore_ready: f64, first: Option<(f64, f64)>) -> CheckpointInfo {
        CheckpointInfo {
            app: "blog".into(),
            key: "k".into(),
            release: Some(1),
            image: "base:1".into(),
            created_unix: 1,
            bytes: 1 << 20,
            cold_ready_ms: cold_ready,
            dump_ms: 40.0,
            restore_ready_ms: restore_ready,
            cold_first_ms: first.map(|f| f.0),
            restore_first_ms: first.map(|f| f.1),
        }
    }

    #[test]
    fn auto_restores_only_when_the_checkpoint_measured_it_faster() {
        let slow_init = Status::Made(info(620.0, 62.0, None));
        let (mode, why) = decide(RestoreMode::Auto, Some(&slow_init));
        assert_eq!(mode, StartMode::Auto);
        assert!(
            why.contains("restore is faster: 62.0 ms restored against 620.0 ms cold"),
            "{why}"
        );
        // php -S: a restore costs more than its cold start.
        let php = Status::Made(info(13.0, 16.0, None));
        let (mode, why) = decide(RestoreMode::Auto, Some(&php));
        assert_eq!(mode, StartMode::NoRestore);
        assert!(why.contains("a cold start is faster"), "{why}");
        // WordPress: slower to ready, but its first page comes warm.
        let wp = Status::Made(info(200.0, 300.0, Some((450.0, 305.0))));
        let (mode, why) = decide(RestoreMode::Auto, Some(&wp));
        assert_eq!(mode, StartMode::Auto);
        assert!(why.contains("first answered request"), "{why}");
        // always restores even then; never never does.
        assert_eq!(decide(RestoreMode::Always, Some(&php)).0, StartMode::Auto);
        assert_eq!(
            decide(RestoreMode::Never, Some(&slow_init)).0,
            StartMode::NoRestore
        );
    }

    #[test]
    fn without_a_checkpoint_the_reason_says_what_happens_next() {
        assert!(
            decide(RestoreMode::Auto, None)
                .1
                .contains("first successful start")
        );
        assert!(
            decide(RestoreMode::Auto, Some(&Status::Queued))
                .1
                .contains("being made")
        );
        let failed = Status::Failed("CRIU is not available on this node (missing)".into());
        let (mode, why) = decide(RestoreMode::Always, Some(&failed));
        assert_eq!(mode, StartMode::NoRestore);
        assert!(why.contains("CRIU is not available"), "{why}");
    }
}
