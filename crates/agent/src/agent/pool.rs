//! The warm pool: per app, up to [`AppSpec::warm_pool`](hako_model::AppSpec::warm_pool)
//! containers made exactly as a start would make them and parked just before exec, so that a
//! cold start only has to release one ([`Container::start`](hako_runtime::Container::start),
//! well under a millisecond) and wait for the app to listen.
//!
//! The owner of the apps declares each app's current version with [`Agent::fill_pool`]
//! (at start-up and whenever the app changes); [`Agent::launch`] takes a parked container made
//! from that very version — same [`App::fingerprint`], same image version, still alive — or
//! falls back to making one, and after a successful start refills the pool a moment later
//! (not while the new instance answers its first requests). Filling happens on one background task per app (the blocking
//! work in `spawn_blocking`), never on a request's path, and never beyond the app's
//! `warm_pool`. Parked containers that no longer match (the app changed, its image has a newer
//! version, the container died) are removed; so is the whole pool when the app is forgotten
//! or the agent shuts down. Removing a parked container removes everything it had (cgroup,
//! veth, state dir, mounts with its namespace) and its empty log.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hako_model::App;

use super::{Agent, ImageStamp, Prepared};

/// Every app's pool on this node.
#[derive(Debug, Default)]
pub(super) struct Pools {
    apps: Mutex<HashMap<String, AppPool>>,
    /// Tells a pool apart from a later one of an app of the same name.
    serial: AtomicU64,
    /// Set (under the `apps` lock) when the agent shuts down: no pool is made or filled
    /// after that.
    closed: AtomicBool,
}

/// One app's pool.
#[derive(Debug)]
struct AppPool {
    serial: u64,
    /// The app as last declared: what the pool is filled from, and how many it keeps.
    app: App,
    /// Its fingerprint.
    fingerprint: u64,
    /// Oldest first.
    parked: Vec<Prepared>,
    /// The task filling the pool, while one runs.
    filler: Option<tokio::task::JoinHandle<()>>,
}

impl AppPool {
    fn want(&self) -> usize {
        self.app.spec.warm_pool as usize
    }
}

impl Pools {
    /// Log files of the app's parked containers (kept out of pruning and of `logs`).
    pub(super) fn logs(&self, app: &str) -> Vec<PathBuf> {
        self.apps
            .lock()
            .expect("pools lock")
            .get(app)
            .map(|p| p.parked.iter().map(|c| c.log.clone()).collect())
            .unwrap_or_default()
    }

    fn has_parked(&self, app: &str) -> bool {
        self.apps
            .lock()
            .expect("pools lock")
            .get(app)
            .is_some_and(|p| !p.parked.is_empty())
    }

    /// Closes the pools for good (the agent shuts down); returns the apps that have one.
    pub(super) fn close(&self) -> Vec<String> {
        let apps = self.apps.lock().expect("pools lock");
        self.closed.store(true, Ordering::SeqCst);
        apps.keys().cloned().collect()
    }
}

impl Agent {
    /// Declares the current version of `app` for its warm pool: parked containers made from
    /// an older version (or an older image version), or beyond `warm_pool`, are removed, and
    /// the pool is filled up to `warm_pool` in the background. Returns at once; call it from
    /// within a tokio runtime.
    pub fn fill_pool(self: &Arc<Self>, app: &App) {
        let name = app.storage_key();
        if app.spec.warm_pool == 0
            && !self
                .pools
                .apps
                .lock()
                .expect("pools lock")
                .contains_key(&name)
        {
            return; // no pool, none wanted
        }
        let image = self.resolve_image(app).ok().map(|i| ImageStamp::of(&i));
        let fingerprint = app.fingerprint();
        let mut stale = Vec::new();
        {
            let mut pools = self.pools.apps.lock().expect("pools lock");
            if self.pools.closed.load(Ordering::SeqCst)
                || app.spec.warm_pool == 0 && !pools.contains_key(&name)
            {
                return;
            }
            let pool = pools.entry(name.clone()).or_insert_with(|| AppPool {
                serial: self.pools.serial.fetch_add(1, Ordering::Relaxed),
                app: app.clone(),
                fingerprint,
                parked: Vec::new(),
                filler: None,
            });
            pool.app = app.clone();
            pool.fingerprint = fingerprint;
            let (keep, old): (Vec<Prepared>, Vec<Prepared>) =
                pool.parked.drain(..).partition(|p| {
                    p.fingerprint == fingerprint && image.as_ref() == Some(&p.image) && alive(p)
                });
            pool.parked = keep;
            stale.extend(old);
            let excess = pool.parked.len().saturating_sub(pool.want());
            stale.extend(pool.parked.drain(..excess));
            if pool.parked.len() < pool.want() && pool.filler.is_none() {
                let serial = pool.serial;
                pool.filler = Some(tokio::spawn(self.clone().fill(name.clone(), serial)));
            }
        }
        if !stale.is_empty() {
            tracing::debug!(app = %name, n = stale.len(), "removing outdated parked containers");
            let agent = self.clone();
            tokio::spawn(async move { agent.discard(stale).await });
        }
    }

    /// After a start: refills the app's pool, if it has one, once
    /// [`AgentConfig::pool_refill_delay`](super::AgentConfig::pool_refill_delay) has passed.
    pub(super) fn refill_pool_soon(self: &Arc<Self>, app: &str) {
        if !self
            .pools
            .apps
            .lock()
            .expect("pools lock")
            .contains_key(app)
        {
            return;
        }
        let (agent, app) = (Arc::downgrade(self), app.to_string());
        let delay = self.config.pool_refill_delay;
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(agent) = agent.upgrade() {
                agent.refill_pool(&app);
            }
        });
    }

    /// Fills the app's pool back up to its size, if it has one.
    fn refill_pool(self: &Arc<Self>, app: &str) {
        let declared = self
            .pools
            .apps
            .lock()
            .expect("pools lock")
            .get(app)
            .map(|p| p.app.clone());
        if let Some(app) = declared {
            self.fill_pool(&app);
        }
    }

    /// Instance ids of the parked containers of the app with this
    /// [`App::storage_key`], oldest first.
    pub fn pooled(&self, app: &str) -> Vec<String> {
        self.pools
            .apps
            .lock()
            .expect("pools lock")
            .get(app)
            .map(|p| p.parked.iter().map(|c| c.id.clone()).collect())
            .unwrap_or_default()
    }

    /// A parked container made from exactly this version of `app` and of its image,
    /// released (its command runs now). `None` if the pool has none.
    pub(super) async fn take_pooled(self: &Arc<Self>, app: &App) -> Option<Prepared> {
        let name = &app.storage_key();
        let fingerprint = app.fingerprint();
        loop {
            if !self.pools.has_parked(name) {
                return None;
            }
            let image = self.resolve_image(app).ok().map(|i| ImageStamp::of(&i));
            let (found, stale) = {
                let mut pools = self.pools.apps.lock().expect("pools lock");
                let pool = pools.get_mut(name)?;
                let mut found = None;
                let mut stale = Vec::new();
                for p in std::mem::take(&mut pool.parked) {
                    let usable = p.fingerprint == fingerprint
                        && image.as_ref() == Some(&p.image)
                        && alive(&p);
                    // This start's copy of the app may be older or newer than the declared
                    // version: a container of the declared version stays for its starts.
                    let declared =
                        p.fingerprint != fingerprint && p.fingerprint == pool.fingerprint;
                    if usable && found.is_none() {
                        found = Some(p);
                    } else if usable || declared {
                        pool.parked.push(p);
                    } else {
                        stale.push(p);
                    }
                }
                (found, stale)
            };
            if !stale.is_empty() {
                let agent = self.clone();
                tokio::spawn(async move { agent.discard(stale).await });
            }
            let p = found?;
            // Limits are not part of the fingerprint (they change live): a container parked
            // before a resize gets the app's limits now, before its command runs (a few
            // cgroup writes, skipped when they are the ones it was made with).
            let limits = crate::limits::container_limits(&app.spec);
            let started = tokio::task::spawn_blocking(move || {
                let r = if p.limits == limits {
                    Ok(())
                } else {
                    p.container.update_limits(&limits)
                };
                let r = r.and_then(|()| p.container.start());
                (p, r)
            })
            .await;
            match started {
                Ok((p, Ok(()))) => {
                    touch(&p.log);
                    return Some(p);
                }
                Ok((p, Err(e))) => {
                    self.count_error(crate::RuntimeOp::Pool);
                    tracing::warn!(app = %name, instance = %p.id, error = %e,
                        "a parked container did not start; trying another");
                    self.discard(vec![p]).await;
                }
                Err(e) => {
                    tracing::warn!(app = %name, error = %e, "the release task failed");
                    return None;
                }
            }
        }
    }

    /// Fills the pool of `app` (of pool `serial`) one container at a time until it holds as
    /// many as the app's latest declared version wants, or until the pool is gone.
    async fn fill(self: Arc<Self>, app: String, serial: u64) {
        loop {
            let declared = {
                let mut pools = self.pools.apps.lock().expect("pools lock");
                let Some(pool) = pools.get_mut(&app).filter(|p| p.serial == serial) else {
                    return;
                };
                if pool.parked.len() >= pool.want() {
                    pool.filler = None;
                    return;
                }
                pool.app.clone()
            };
            let agent = self.clone();
            let made = tokio::task::spawn_blocking(move || agent.prepare(&declared)).await;
            let p = match made {
                Ok(Ok(p)) => p,
                Ok(Err(e)) => {
                    // Retried at the next declaration or start, not in a loop.
                    self.count_error(crate::RuntimeOp::Pool);
                    tracing::warn!(app = %app, error = %e.reason, "cannot fill the warm pool");
                    self.stop_filling(&app, serial);
                    return;
                }
                Err(e) => {
                    tracing::warn!(app = %app, error = %e, "the warm pool's task failed");
                    self.stop_filling(&app, serial);
                    return;
                }
            };
            let unwanted = {
                let mut pools = self.pools.apps.lock().expect("pools lock");
                match pools.get_mut(&app).filter(|pool| pool.serial == serial) {
                    Some(pool)
                        if p.fingerprint == pool.fingerprint && pool.parked.len() < pool.want() =>
                    {
                        tracing::debug!(app = %app, instance = %p.id, "parked a container for the warm pool");
                        pool.parked.push(p);
                        None
                    }
                    // The app changed or shrank its pool while this one was made (the next
                    // round makes one of the new version), or the pool is gone.
                    _ => Some(p),
                }
            };
            if let Some(p) = unwanted {
                self.discard(vec![p]).await;
            }
        }
    }

    fn stop_filling(&self, app: &str, serial: u64) {
        if let Some(pool) = self
            .pools
            .apps
            .lock()
            .expect("pools lock")
            .get_mut(app)
            .filter(|p| p.serial == serial)
        {
            pool.filler = None;
        }
    }

    /// Removes the app's pool: waits for its filling task (which then removes what it was
    /// making) and removes every parked container.
    pub(super) async fn remove_pool(&self, app: &str) {
        let Some(pool) = self.pools.apps.lock().expect("pools lock").remove(app) else {
            return;
        };
        if let Some(filler) = pool.filler {
            let _ = filler.await;
        }
        self.discard(pool.parked).await;
    }

    /// Removes parked containers with everything they had, their (empty) logs included.
    async fn discard(&self, parked: Vec<Prepared>) {
        for p in parked {
            let p = match tokio::task::spawn_blocking(move || {
                let r = p.container.cleanup();
                (p, r)
            })
            .await
            {
                Ok((p, Ok(()))) => p,
                Ok((p, Err(e))) => {
                    self.count_error(crate::RuntimeOp::Cleanup);
                    tracing::warn!(instance = %p.id, error = %e, "cannot remove a parked container");
                    p
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the removal task of a parked container failed");
                    continue;
                }
            };
            // Its log copy ends with its last process; only then is the file gone for good.
            p.container.logs_flushed().await;
            let _ = std::fs::remove_file(&p.log);
            let _ = std::fs::remove_file(hako_runtime::log::rotated(&p.log));
        }
    }
}

/// The parked container's init still waits for its release.
fn alive(p: &Prepared) -> bool {
    p.container.is_parked() && matches!(p.container.try_wait(), Ok(None))
}

/// A log made when the container was parked sorts by when it started instead.
fn touch(log: &std::path::Path) {
    if let Ok(f) = std::fs::File::options().append(true).open(log) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
}
