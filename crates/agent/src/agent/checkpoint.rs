//! Checkpoints of apps on this node: making them ([`Agent::checkpoint`]), restoring them
//! when an instance starts, listing and removing them.
//!
//! A checkpoint is made from a private instance of the app, never from one that served
//! requests (its memory would carry visitors' data into every restored instance, and its
//! proxy connections into the dump): the agent starts one exactly as a launch would, waits
//! until it listens, warms it with [`AgentConfig::checkpoint_warmup`] requests (WordPress's
//! first page fills opcache and starts the PHP workers), dumps it with CRIU, then proves the
//! dump by restoring it once (the trial's start-to-ready time is what the daemon compares
//! with the cold start's), and only then files it under the app's version.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hako_criu::Criu;
use hako_model::{App, AppNetwork, RestoreMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Agent, AgentConfig, ImageStamp, LaunchError, Prepared};
use crate::checkpoints::CheckpointInfo;
use crate::ready::wait_ready;

/// Which start paths a launch may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMode {
    /// The best there is: a restore of a checkpoint of this version, else a container of the
    /// warm pool, else a new container.
    Auto,
    /// A warm-pool container or a new one; never a restore.
    NoRestore,
    /// A new container: neither the pool nor a checkpoint (what a cold start costs).
    Cold,
    /// A restore, or an error saying why not.
    Restore,
}

impl StartMode {
    /// What an app's `restore` setting allows.
    pub fn of(app: &hako_model::App) -> StartMode {
        match app.spec.restore {
            hako_model::RestoreMode::Never => StartMode::NoRestore,
            hako_model::RestoreMode::Auto | hako_model::RestoreMode::Always => StartMode::Auto,
        }
    }
}

/// Why a checkpoint could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// CRIU is not installed, or does not work on this host.
    #[error("{0}")]
    Criu(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("the instance to checkpoint did not start: {0}")]
    Start(LaunchError),
    #[error("{0}")]
    Dump(hako_runtime::checkpoint::CheckpointError),
    #[error("the checkpoint was made but restoring it failed, so it is not kept: {0}")]
    Trial(String),
    #[error("cannot store the checkpoint: {0}")]
    Store(std::io::Error),
}

impl Agent {
    /// The CRIU this agent uses, or why there is none. Found and checked (`criu check`) on
    /// first use; a failure is logged once and restores are skipped from then on.
    pub fn criu(&self) -> Result<&Criu, String> {
        self.criu
            .get_or_init(|| {
                let dir = self.config.criu_dir();
                let r = Criu::open(&dir)
                    .map_err(|e| e.to_string())
                    .and_then(|c| {
                        self.runtime
                            .criu_check(&c)
                            .map(|()| c)
                            .map_err(|e| e.to_string())
                    });
                match &r {
                    Ok(c) => tracing::info!(criu = %c.root().display(), "CRIU works: instances may start from checkpoints"),
                    Err(e) => tracing::warn!(error = %e, "no checkpoint/restore on this node: instances start cold"),
                }
                r
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The checkpoints on this node (of one app), oldest first.
    pub fn checkpoints(&self, app: Option<&str>) -> Vec<CheckpointInfo> {
        self.checkpoints.list(app)
    }

    /// The checkpoint of the current version of `app`, if there is one.
    pub fn checkpoint_of(&self, app: &App) -> Option<CheckpointInfo> {
        let key = self.checkpoint_key(app)?;
        self.checkpoints.get(&app.storage_key(), &key)
    }

    /// Checkpoints the disk bound removed since the last call (for the owner's events).
    pub fn take_evicted_checkpoints(&self) -> Vec<CheckpointInfo> {
        self.checkpoints.take_evicted()
    }

    /// Disk used by the checkpoints on this node, and its bound
    /// ([`AgentConfig::checkpoint_max_bytes`]).
    pub fn checkpoint_disk(&self) -> (u64, u64) {
        (self.checkpoints.total_bytes(), self.checkpoints.max_bytes())
    }

    /// Removes the app's checkpoints of every version but `app`'s current one (all of them
    /// when its restore setting is `never`). Call it whenever the app changes.
    pub fn forget_old_checkpoints(&self, app: &App) -> usize {
        let keep = match app.spec.restore {
            RestoreMode::Never => None,
            _ => self.checkpoint_key(app),
        };
        self.checkpoints.remove(&app.storage_key(), keep.as_deref())
    }

    /// Makes a checkpoint of the current version of `app` (see the module doc): a private
    /// instance, started, warmed, dumped, tried, filed. Returns the existing one if there is
    /// one. Takes the app's cold start plus a few tens of milliseconds.
    pub async fn checkpoint(
        self: &Arc<Self>,
        app: &App,
    ) -> Result<CheckpointInfo, CheckpointError> {
        if app.spec.restore == RestoreMode::Never {
            return Err(CheckpointError::Unsupported(format!(
                "{} has restore set to never",
                app.spec.name
            )));
        }
        if app.spec.network != AppNetwork::Isolated {
            return Err(CheckpointError::Unsupported(
                "only apps on the isolated network can be checkpointed".into(),
            ));
        }
        let criu = self.criu().map_err(CheckpointError::Criu)?.clone();
        let image = self.resolve_image(app).map_err(CheckpointError::Start)?;
        let key = checkpoint_key(app, &ImageStamp::of(&image));
        if let Some(info) = self.checkpoints.get(&app.storage_key(), &key) {
            return Ok(info);
        }
        let started = Instant::now();
        let p = self
            .blocking_start(app)
            .await
            .map_err(CheckpointError::Start)?;
        let timeout = app.spec.start_timeout.0;
        if let Err(why) = wait_ready(&p.container, p.addr, timeout).await {
            let e = LaunchError {
                kind: hako_model::StartFailure::NotListening,
                reason: format!("it did not become ready: {why:?}"),
                log_tail: String::new(),
            };
            self.throw_away(p).await;
            return Err(CheckpointError::Start(e));
        }
        let cold_ready_ms = ms(started.elapsed());
        let mut cold_first_ms = None;
        for _ in 0..self.config.checkpoint_warmup {
            if let Err(e) = warm_up(p.addr, app, timeout).await {
                self.throw_away(p).await;
                return Err(CheckpointError::Start(LaunchError::node(format!(
                    "its warm-up request failed: {e}"
                ))));
            }
            cold_first_ms.get_or_insert(ms(started.elapsed()));
        }

        let staging = self.checkpoints.staging(&app.storage_key(), &key);
        let agent = self.clone();
        let (p, dumped) = tokio::task::spawn_blocking({
            let (criu, staging) = (criu.clone(), staging.clone());
            move || {
                let r = agent.runtime.checkpoint(&criu, &p.container, &staging);
                (p, r)
            }
        })
        .await
        .map_err(|e| CheckpointError::Trial(format!("the dump task failed: {e}")))?;
        self.throw_away(p).await;
        let dumped = match dumped {
            Ok(d) => d,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staging);
                return Err(CheckpointError::Dump(e));
            }
        };

        // The trial restore.
        let t = Instant::now();
        let trial = self.blocking_restore(app, &criu, &staging).await;
        let (restore_ready_ms, restore_first_ms) = match trial {
            Ok(r) => {
                let ready = wait_ready(&r.container, r.addr, timeout).await;
                let elapsed = ms(t.elapsed());
                // Its first request, as a visitor's after a restore would be answered.
                let first = match (&ready, cold_first_ms) {
                    (Ok(_), Some(_)) => Some(
                        warm_up(r.addr, app, timeout)
                            .await
                            .map(|()| ms(t.elapsed())),
                    ),
                    _ => None,
                };
                self.throw_away(r).await;
                match (ready, first) {
                    (Ok(_), None) => (elapsed, None),
                    (Ok(_), Some(Ok(first))) => (elapsed, Some(first)),
                    (Ok(_), Some(Err(e))) => {
                        let _ = std::fs::remove_dir_all(&staging);
                        return Err(CheckpointError::Trial(format!(
                            "the restored app did not answer its first request: {e}"
                        )));
                    }
                    (Err(why), _) => {
                        let _ = std::fs::remove_dir_all(&staging);
                        return Err(CheckpointError::Trial(format!(
                            "the restored app did not answer: {why:?}"
                        )));
                    }
                }
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staging);
                return Err(CheckpointError::Trial(e));
            }
        };
        let info = CheckpointInfo {
            app: app.spec.name.clone(),
            key,
            release: app.release,
            image: format!("{}:{}", image.name, image.version),
            created_unix: hako_model::now_unix(),
            bytes: dumped.manifest.image_bytes + dumped.manifest.fs_bytes,
            cold_ready_ms,
            dump_ms: dumped.dump_ms,
            restore_ready_ms,
            cold_first_ms,
            restore_first_ms,
        };
        self.checkpoints
            .publish(&staging, &info)
            .map_err(CheckpointError::Store)?;
        tracing::info!(app = %info.app, key = %info.key, bytes = info.bytes,
            cold_ready_ms, restore_ready_ms, "checkpoint made");
        Ok(info)
    }

    /// For a launch: the app restored from the checkpoint of its current version, `None`
    /// when there is none, or why a restore that should have happened did not (the launch
    /// then starts the app cold). A checkpoint that fails to restore is removed.
    pub(super) async fn restore_for(
        self: &Arc<Self>,
        app: &App,
    ) -> Result<Option<Prepared>, String> {
        if app.spec.network != AppNetwork::Isolated {
            return Ok(None);
        }
        let none = || match app.spec.restore {
            RestoreMode::Always => self.criu().map(|_| None),
            _ => Ok(None),
        };
        if !self.checkpoints.has_any(&app.storage_key()) {
            return none();
        }
        let Some(key) = self.checkpoint_key(app) else {
            return Ok(None);
        };
        if self.checkpoints.get(&app.storage_key(), &key).is_none() {
            return none();
        }
        let criu = self.criu()?.clone();
        let agent = self.clone();
        let (name, key2) = (app.storage_key(), key.clone());
        let app2 = app.clone();
        let slot = self.take_slot();
        let r = tokio::task::spawn_blocking(move || {
            let Some((guard, _)) = agent.checkpoints.take(&name, &key2) else {
                return Ok(None);
            };
            agent
                .restore_blocking(&app2, &criu, &guard.dir, slot)
                .map(Some)
        })
        .await
        .map_err(|e| format!("the restore task failed: {e}"))?;
        if let Err(reason) = &r {
            self.warn_once(&app.spec.name, reason);
            self.checkpoints.remove(&app.storage_key(), None);
        }
        r
    }

    async fn blocking_restore(
        self: &Arc<Self>,
        app: &App,
        criu: &Criu,
        dir: &std::path::Path,
    ) -> Result<Prepared, String> {
        let (agent, app, criu, dir) = (self.clone(), app.clone(), criu.clone(), dir.to_path_buf());
        tokio::task::spawn_blocking(move || agent.restore_blocking(&app, &criu, &dir, None))
            .await
            .map_err(|e| format!("the restore task failed: {e}"))?
    }

    fn restore_blocking(
        &self,
        app: &App,
        criu: &Criu,
        dir: &std::path::Path,
        slot: Option<hako_runtime::Slot>,
    ) -> Result<Prepared, String> {
        let plan = self.plan(app).map_err(|e| e.reason)?;
        let restored = match slot {
            Some(slot) => self
                .runtime
                .restore_in(criu, &plan.spec, dir, &plan.id, slot),
            None => self.runtime.restore(criu, &plan.spec, dir, &plan.id),
        };
        let container = restored.map_err(|e| format!("restoring the checkpoint failed: {e}"))?;
        Ok(plan.with(container))
    }

    async fn blocking_start(self: &Arc<Self>, app: &App) -> Result<Prepared, LaunchError> {
        let (agent, app) = (self.clone(), app.clone());
        tokio::task::spawn_blocking(move || {
            let p = agent.prepare(&app)?;
            p.container
                .start()
                .map_err(|e| LaunchError::node(format!("cannot start the container: {e}")))?;
            Ok(p)
        })
        .await
        .map_err(|e| LaunchError::node(format!("start task failed: {e}")))?
    }

    /// Removes an instance that was never served (checkpoint work) with its log.
    async fn throw_away(&self, p: Prepared) {
        let _ = p.container.kill();
        let p = match tokio::task::spawn_blocking(move || {
            let _ = p.container.cleanup();
            p
        })
        .await
        {
            Ok(p) => p,
            Err(_) => return,
        };
        p.container.logs_flushed().await;
        let _ = std::fs::remove_file(&p.log);
        let _ = std::fs::remove_file(hako_runtime::log::rotated(&p.log));
    }

    fn checkpoint_key(&self, app: &App) -> Option<String> {
        let image = self.resolve_image(app).ok()?;
        Some(checkpoint_key(app, &ImageStamp::of(&image)))
    }

    fn warn_once(&self, app: &str, reason: &str) {
        self.count_error(crate::RuntimeOp::Restore);
        let fresh = self
            .restore_warned
            .lock()
            .expect("warned lock")
            .insert(format!("{app}\n{reason}"));
        if fresh {
            tracing::warn!(app, reason, "a restore failed; the instance starts cold");
        }
    }
}

impl AgentConfig {
    /// Where CRIU is installed: [`AgentConfig::criu_dir`], else `HAKO_CRIU_DIR`, else
    /// `<data-dir>/criu`.
    pub(super) fn criu_dir(&self) -> std::path::PathBuf {
        self.criu_dir
            .clone()
            .or_else(|| std::env::var_os("HAKO_CRIU_DIR").map(Into::into))
            .unwrap_or_else(|| self.data_dir.join("criu"))
    }
}

/// The key of a checkpoint: the app's version and the exact image version it ran.
fn checkpoint_key(app: &App, image: &ImageStamp) -> String {
    let s = format!(
        "{}|{}|{}|{}",
        app.version_key(),
        image.name,
        image.version,
        image.created_unix
    );
    format!("{:016x}", hako_model::restore::fnv1a(s.as_bytes()))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One `GET` of the app's health path (or `/`) with its first host name, read to the end.
async fn warm_up(addr: std::net::SocketAddr, app: &App, timeout: Duration) -> std::io::Result<()> {
    let path = app.spec.health_path.as_deref().unwrap_or("/");
    let host = app
        .spec
        .hosts
        .first()
        .map(String::as_str)
        .unwrap_or("localhost");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    tokio::time::timeout(timeout, async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(req.as_bytes()).await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        if buf.starts_with(b"HTTP/") {
            Ok(())
        } else {
            Err(std::io::Error::other("the app did not answer with HTTP"))
        }
    })
    .await
    .map_err(|_| std::io::Error::other("the app did not answer in time"))?
}
