//! Which app serves each host, so that a create or update checks its hosts in O(1) in the
//! number of apps instead of decoding every app (10,000 apps made that check the larger part
//! of a create).
//!
//! The engine owns the index. It is built from the store on first use; then the engine's own
//! writes update it at once ([`HostIndex::set`], [`HostIndex::remove`], under the engine's
//! app-writes lock), and a watch of the apps' keys brings everyone else's writes (other
//! fronts of a cluster, deploys and rollouts), applied before each lookup as far as they have
//! arrived. Every entry carries the revision of the write it reflects, so a late event never
//! undoes a newer write. An entry is only a hint: a conflict is confirmed by reading that one
//! app ([`super::Engine::check_hosts`]), so an entry gone stale costs one read, never a
//! wrong refusal. When the watch fails (history compacted, store restarted) the index is
//! rebuilt on the next lookup. A deleted app's tombstone goes once the watch has delivered
//! its revision (no older event can come after it), so deleted names do not pile up.

use std::collections::{HashMap, VecDeque};

use futures_util::FutureExt;
use hako_store::keys::{self, Key};
use hako_store::{Store, StoreError, Watch, WatchEvent};
use serde::Deserialize;

/// The part of a stored app the index reads (the spec's fields are at the top level).
#[derive(Deserialize)]
struct Hosts {
    #[serde(default)]
    hosts: Vec<String>,
}

/// An app's hosts as of a revision; none once deleted (kept as a tombstone, so an older
/// event arriving late cannot bring them back).
#[derive(Debug)]
struct Entry {
    hosts: Vec<String>,
    revision: i64,
}

#[derive(Debug)]
struct State {
    by_host: HashMap<String, String>,
    by_app: HashMap<String, Entry>,
    watch: Watch,
    /// The store's revision up to which the watch has delivered every event.
    seen: i64,
    /// Entries left without hosts (deletes, mostly), oldest first: (revision, app).
    tombstones: VecDeque<(i64, String)>,
}

/// The host → app index.
#[derive(Debug, Default)]
pub(super) struct HostIndex {
    state: tokio::sync::Mutex<Option<State>>,
    /// Apps decoded so far (building, watch events): the work the index does, for tests.
    decoded: std::sync::atomic::AtomicU64,
}

impl HostIndex {
    /// The app that has `host`, as far as the index knows.
    pub(super) async fn owner(
        &self,
        store: &dyn Store,
        host: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut guard = self.state.lock().await;
        let state = self.current(store, &mut guard).await?;
        Ok(state.by_host.get(host).cloned())
    }

    /// Records that app `name` has `hosts` since `revision` (the engine's own write).
    pub(super) async fn set(&self, name: &str, hosts: &[String], revision: i64) {
        if let Some(state) = self.state.lock().await.as_mut() {
            state.apply(name, hosts.to_vec(), revision);
        }
    }

    /// Records that app `name` is gone since `revision` (the engine's own delete).
    pub(super) async fn remove(&self, name: &str, revision: i64) {
        if let Some(state) = self.state.lock().await.as_mut() {
            state.apply(name, Vec::new(), revision);
        }
    }

    /// Apps the index holds an entry for (tombstones included).
    #[cfg(test)]
    pub(super) async fn entries(&self) -> usize {
        self.state
            .lock()
            .await
            .as_ref()
            .map_or(0, |s| s.by_app.len())
    }

    /// Apps decoded so far.
    #[cfg(test)]
    pub(super) fn decoded(&self) -> u64 {
        self.decoded.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The index with every change that has arrived applied; built first if need be.
    async fn current<'a>(
        &self,
        store: &dyn Store,
        guard: &'a mut Option<State>,
    ) -> Result<&'a mut State, StoreError> {
        if let Some(state) = guard.as_mut() {
            match state.catch_up(&self.decoded) {
                Ok(()) => {}
                Err(e) => {
                    tracing::info!(error = %e, "the host index's watch ended; rebuilding it");
                    *guard = None;
                }
            }
        }
        if guard.is_none() {
            *guard = Some(self.build(store).await?);
        }
        Ok(guard.as_mut().expect("built above"))
    }

    /// Reads every app once and watches from there.
    async fn build(&self, store: &dyn Store) -> Result<State, StoreError> {
        // The watch starts after this revision; writes between it and the listing come twice
        // (in the listing and from the watch) and apply once, by their revisions.
        let revision = store.revision().await?;
        let watch = store.watch(keys::APPS, Some(revision + 1)).await?;
        let mut state = State {
            by_host: HashMap::new(),
            by_app: HashMap::new(),
            watch,
            seen: revision,
            tombstones: VecDeque::new(),
        };
        for kv in store.range(keys::APPS).await? {
            if let Some(Key::App { name }) = keys::parse(&kv.key) {
                let hosts = hako_store::decode::<Hosts>(&kv.key, &kv.value)?;
                self.count();
                state.apply(name, hosts.hosts, kv.mod_revision);
            }
        }
        Ok(state)
    }

    fn count(&self) {
        self.decoded
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl State {
    /// Applies the watch's batches that have arrived, without waiting for more.
    fn catch_up(&mut self, decoded: &std::sync::atomic::AtomicU64) -> Result<(), StoreError> {
        while let Some(next) = self.watch.recv().now_or_never() {
            let batch = match next {
                Some(Ok(batch)) => batch,
                Some(Err(e)) => return Err(e),
                None => return Err(StoreError::Closed),
            };
            for event in batch.events {
                match event {
                    WatchEvent::Put(kv) => {
                        if let Some(Key::App { name }) = keys::parse(&kv.key) {
                            let hosts = hako_store::decode::<Hosts>(&kv.key, &kv.value)?;
                            decoded.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            self.apply(name, hosts.hosts, kv.mod_revision);
                        }
                    }
                    WatchEvent::Delete { key, mod_revision } => {
                        if let Some(Key::App { name }) = keys::parse(&key) {
                            self.apply(name, Vec::new(), mod_revision);
                        }
                    }
                }
            }
            self.seen = self.seen.max(batch.revision);
        }
        self.prune();
        Ok(())
    }

    /// Drops the entries without hosts whose revision the watch has passed: no event older
    /// than them can arrive any more, so they guard nothing.
    fn prune(&mut self) {
        while let Some((revision, _)) = self.tombstones.front() {
            if *revision > self.seen {
                break;
            }
            let (revision, name) = self.tombstones.pop_front().expect("front exists");
            if self
                .by_app
                .get(&name)
                .is_some_and(|e| e.revision == revision && e.hosts.is_empty())
            {
                self.by_app.remove(&name);
            }
        }
    }

    /// Sets app `name`'s hosts as of `revision`, unless the index has a newer write of it.
    fn apply(&mut self, name: &str, hosts: Vec<String>, revision: i64) {
        if let Some(old) = self.by_app.get(name) {
            if old.revision >= revision {
                return;
            }
            for h in &old.hosts {
                if self.by_host.get(h).is_some_and(|a| a == name) {
                    self.by_host.remove(h);
                }
            }
        }
        for h in &hosts {
            self.by_host.insert(h.clone(), name.to_string());
        }
        if hosts.is_empty() {
            self.tombstones.push_back((revision, name.to_string()));
        }
        self.by_app
            .insert(name.to_string(), Entry { hosts, revision });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use hako_model::App;
    use hako_store::{EmbeddedStore, StoreExt};

    use super::*;

    fn app(name: &str, hosts: &[&str]) -> App {
        serde_json::from_value(serde_json::json!({
            "name": name, "hosts": hosts, "image": "static", "cmd": "x",
            "uid": "0123456789ab",
            "created_unix": 0,
            "updated_unix": 0,
        }))
        .unwrap()
    }

    async fn store_with(n: usize) -> Arc<dyn Store> {
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open_in_memory().await.unwrap());
        for i in 0..n {
            let name = format!("a{i}");
            let host = format!("{name}.example");
            store
                .put_json(&keys::app(&name), &app(&name, &[&host]))
                .await
                .unwrap();
        }
        store
    }

    #[tokio::test]
    async fn built_once_then_each_change_costs_one_decode() {
        let store = store_with(200).await;
        let index = HostIndex::default();
        assert_eq!(
            index.owner(&*store, "a7.example").await.unwrap().as_deref(),
            Some("a7")
        );
        assert_eq!(index.decoded(), 200, "built by reading every app once");
        for _ in 0..10 {
            assert_eq!(index.owner(&*store, "nobody.example").await.unwrap(), None);
        }
        assert_eq!(index.decoded(), 200, "lookups read no app");
        // Someone else's write (another front): one decode, whatever the number of apps.
        store
            .put_json(&keys::app("b"), &app("b", &["b.example"]))
            .await
            .unwrap();
        let owner = wait_for(&index, &*store, "b.example", Some("b")).await;
        assert_eq!(owner.as_deref(), Some("b"));
        assert_eq!(index.decoded(), 201);
    }

    #[tokio::test]
    async fn own_writes_apply_at_once_and_late_events_do_not_undo_them() {
        let store = store_with(3).await;
        let index = HostIndex::default();
        index.owner(&*store, "x").await.unwrap();
        // The engine's own update: a0 moves to a new host, recorded at its revision.
        let rev = store
            .put_json(&keys::app("a0"), &app("a0", &["new.example"]))
            .await
            .unwrap();
        index.set("a0", &["new.example".into()], rev).await;
        assert_eq!(index.owner(&*store, "a0.example").await.unwrap(), None);
        // An event older than what the index has is ignored.
        index.set("a0", &["old.example".into()], rev - 1).await;
        assert_eq!(
            index
                .owner(&*store, "new.example")
                .await
                .unwrap()
                .as_deref(),
            Some("a0")
        );
        assert_eq!(index.owner(&*store, "old.example").await.unwrap(), None);
        // A delete leaves a tombstone: the put it follows cannot bring the hosts back.
        let del = store
            .txn(hako_store::Txn::new().and_then(hako_store::TxnOp::delete(keys::app("a1"))))
            .await
            .unwrap();
        index.remove("a1", del.revision).await;
        index
            .set("a1", &["a1.example".into()], del.revision - 1)
            .await;
        assert_eq!(index.owner(&*store, "a1.example").await.unwrap(), None);
        // The watch's own copy of these writes changes nothing.
        assert_eq!(
            wait_for(&index, &*store, "new.example", Some("a0"))
                .await
                .as_deref(),
            Some("a0")
        );
    }

    #[tokio::test]
    async fn deleted_apps_leave_no_entry_once_the_watch_has_passed_them() {
        let store = store_with(20).await;
        let index = HostIndex::default();
        index.owner(&*store, "x").await.unwrap();
        assert_eq!(index.entries().await, 20);
        // Deleted by someone else (the watch brings it) and by the engine itself.
        for i in 0..10 {
            store.delete(&keys::app(&format!("a{i}"))).await.unwrap();
        }
        let del = store
            .txn(hako_store::Txn::new().and_then(hako_store::TxnOp::delete(keys::app("a10"))))
            .await
            .unwrap();
        index.remove("a10", del.revision).await;
        // One more write after them: once the index has it, the watch has passed the deletes.
        store
            .put_json(&keys::app("last"), &app("last", &["last.example"]))
            .await
            .unwrap();
        assert_eq!(
            wait_for(&index, &*store, "last.example", Some("last"))
                .await
                .as_deref(),
            Some("last")
        );
        assert_eq!(index.owner(&*store, "a3.example").await.unwrap(), None);
        assert_eq!(index.entries().await, 20 - 11 + 1, "tombstones were kept");
        // A name deleted and created again is indexed as new.
        store
            .put_json(&keys::app("a3"), &app("a3", &["again.example"]))
            .await
            .unwrap();
        assert_eq!(
            wait_for(&index, &*store, "again.example", Some("a3"))
                .await
                .as_deref(),
            Some("a3")
        );
    }

    /// Polls (bounded) until the index says `want` for `host`; returns the last answer.
    async fn wait_for(
        index: &HostIndex,
        store: &dyn Store,
        host: &str,
        want: Option<&str>,
    ) -> Option<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let got = index.owner(store, host).await.unwrap();
            if got.as_deref() == want || tokio::time::Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
