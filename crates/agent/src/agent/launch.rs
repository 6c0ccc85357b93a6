//! Starting an instance: preparing its app (image, release, data, logs) and launching it
//! through the runtime, from a warm pool slot, or from a checkpoint.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hako_image::Image;
use hako_model::{App, InstanceInfo, InstanceState, StartFailure, StartPath};

use super::{Agent, Instance, LaunchError, Prepared, StartMode};
use crate::ready::{NotReady, wait_ready};

impl Agent {
    /// Starts an instance of `app` and returns once it is ready: its port accepts connections
    /// and its health path, if it has one, answers 2xx/3xx.
    ///
    /// Unless the app says `restore: never`, a checkpoint of this very version of the app
    /// (and of its image) is restored when there is one (see [`Agent::checkpoint`]); if that
    /// fails, or there is none, a container of the app's warm pool made from this version is
    /// used; otherwise one is made now. Either way the pool is refilled in the background,
    /// [`AgentConfig::pool_refill_delay`] later. [`InstanceInfo::start_path`] says which.
    pub async fn launch(self: &Arc<Self>, app: &App) -> Result<InstanceInfo, LaunchError> {
        self.launch_observed(app, StartMode::of(app), |_| {}).await
    }

    /// Like [`Agent::launch`] with the start paths `mode` allows.
    pub async fn launch_with(
        self: &Arc<Self>,
        app: &App,
        mode: StartMode,
    ) -> Result<InstanceInfo, LaunchError> {
        self.launch_observed(app, mode, |_| {}).await
    }

    /// [`Agent::launch_with`], calling `created` with the instance (state `Starting`) as soon
    /// as its container exists and its command runs, before it is ready: whoever tracks
    /// instances can show and count it from then on.
    pub async fn launch_observed(
        self: &Arc<Self>,
        app: &App,
        mode: StartMode,
        created: impl FnOnce(&InstanceInfo),
    ) -> Result<InstanceInfo, LaunchError> {
        let started = Instant::now();
        let started_ms = hako_model::now_unix_ms();
        let spec = &app.spec;
        let mut restore_error = None;
        let mut restored = None;
        if matches!(mode, StartMode::Auto | StartMode::Restore) {
            match self.restore_for(app).await {
                Ok(r) => restored = r,
                Err(reason) => restore_error = Some(reason),
            }
            if mode == StartMode::Restore && restored.is_none() {
                return Err(LaunchError::node(restore_error.unwrap_or_else(|| {
                    format!(
                        "no checkpoint of this version of {} on this node",
                        spec.name
                    )
                })));
            }
        }
        let pooled = match (&restored, mode) {
            (None, StartMode::Auto | StartMode::NoRestore) => self.take_pooled(app).await,
            _ => None,
        };
        let (prepared, start_path) = match (restored, pooled) {
            (Some(p), _) => (p, StartPath::Restore),
            (None, Some(p)) => (p, StartPath::Pool),
            (None, None) => {
                let slot = match mode {
                    StartMode::Auto | StartMode::NoRestore => self.take_slot(),
                    _ => None,
                };
                let path = if slot.is_some() {
                    StartPath::Shared
                } else {
                    StartPath::Cold
                };
                let (agent, app) = (self.clone(), app.clone());
                let p = tokio::task::spawn_blocking(move || {
                    let p = agent.prepare_with(&app, slot)?;
                    match p.container.start() {
                        Ok(()) => Ok(p),
                        Err(e) => {
                            let log = p.log.clone();
                            drop(p);
                            Err(LaunchError {
                                kind: StartFailure::Node,
                                reason: format!("cannot start the container: {e}"),
                                log_tail: crate::logs::tail(&log, 4096),
                            })
                        }
                    }
                })
                .await
                .map_err(|e| LaunchError::node(format!("start task failed: {e}")))??;
                (p, path)
            }
        };
        let Prepared {
            id,
            key,
            container,
            addr,
            port,
            log,
            image,
            blobs,
            fetched,
            ..
        } = prepared;
        let mut info = InstanceInfo {
            id: id.clone(),
            app: spec.name.clone(),
            node: self.config.node.clone(),
            addr: addr.to_string(),
            state: InstanceState::Starting,
            started_unix_ms: started_ms,
            ready_ms: None,
            listen_ms: None,
            release: app.release,
            image: format!("{}:{}", image.name, image.version),
            generation: app.generation,
            from_pool: start_path == StartPath::Pool,
            start_path,
            restore_error,
            slot: None,
            limits: Some(app.limits()),
        };
        created(&info);
        // The app's start timeout runs from when its container could be made: a first use of
        // its code or image on this node (copied and verified into the cache) is the node's.
        let fetched = match start_path {
            StartPath::Pool => Duration::ZERO, // made earlier, in the background
            _ => fetched,
        };
        let app_clock = started + fetched;
        let timeout = spec.start_timeout.0.saturating_sub(app_clock.elapsed());
        let listen_from = Instant::now();
        let ready = match wait_ready(&container, addr, timeout).await {
            Ok(_) => match &spec.health_path {
                // Health checks stop just before the start timeout, so the caller hears why.
                Some(path) => {
                    let host = spec.hosts.first().cloned().unwrap_or_default();
                    let deadline = tokio::time::Instant::from_std(app_clock) + spec.start_timeout.0;
                    crate::health::wait_healthy(addr, &host, path, deadline)
                        .await
                        .map_err(|e| (StartFailure::Unhealthy, e.to_string()))
                }
                None => Ok(()),
            },
            Err(why) => Err(match why {
                NotReady::Exited(status) => (
                    StartFailure::Crashed,
                    format!("the app {status} before it listened on port {port}"),
                ),
                NotReady::Timeout(_) => (
                    StartFailure::NotListening,
                    format!(
                        "the app did not listen on port {port} within the start timeout ({})",
                        spec.start_timeout
                    ),
                ),
            }),
        };
        match ready {
            Ok(()) => {}
            Err((kind, reason)) => {
                let _ = container
                    .stop_with(spec.stop_signal.number(), Duration::from_millis(100))
                    .await;
                container.logs_flushed().await;
                let log_tail = crate::logs::tail(&log, 4096);
                let _ = tokio::task::spawn_blocking(move || container.remove()).await;
                return Err(LaunchError {
                    kind,
                    reason,
                    log_tail,
                });
            }
        }
        info.state = InstanceState::Ready;
        info.ready_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
        info.listen_ms = Some(listen_from.elapsed().as_secs_f64() * 1000.0);
        let instance = Arc::new(Instance {
            info: info.clone(),
            addr,
            key: key.clone(),
            memory_limit: spec.memory.0,
            stop_signal: spec.stop_signal.number(),
            container,
            log,
            _blobs: blobs,
            limits: Mutex::new(info.limits),
        });
        self.instances
            .lock()
            .expect("instances lock")
            .insert(id.clone(), instance.clone());
        self.watch_exit(instance);
        self.refill_pool_soon(&key);
        Ok(info)
    }

    /// Makes a container of `app` exactly as a start would and leaves it parked before exec.
    /// Blocking (image lookup, directories, [`Runtime::create`]): call it in `spawn_blocking`.
    pub(super) fn prepare(&self, app: &App) -> Result<Prepared, LaunchError> {
        self.prepare_with(app, None)
    }

    /// [`Agent::prepare`], in a slot of the shared warm pool when one is given.
    pub(super) fn prepare_with(
        &self,
        app: &App,
        slot: Option<hako_runtime::Slot>,
    ) -> Result<Prepared, LaunchError> {
        let plan = self.plan(app)?;
        let made = match slot {
            Some(slot) => self.runtime.create_in(&plan.spec, slot),
            None => self.runtime.create(&plan.spec),
        };
        let container = made.map_err(|e| {
            self.count_error(crate::RuntimeOp::Create);
            LaunchError {
                kind: StartFailure::Node,
                reason: format!("cannot start the container: {e}"),
                log_tail: crate::logs::tail(&plan.log, 4096),
            }
        })?;
        Ok(plan.with(container))
    }

    /// The image version an instance of `app` gets now (the latest one when the app names
    /// no version).
    /// On a node of a cluster it is the version the leader resolved (the assignment's
    /// [`App::image_record`]).
    pub(super) fn resolve_image(&self, app: &App) -> Result<Image, LaunchError> {
        let image = &app.spec.image;
        let version = match &app.image_record {
            Some(r) if r.name == image.name => Some(r.version),
            _ => image.version,
        };
        self.images
            .get(&image.name, version)
            .map_err(|e| LaunchError::new(StartFailure::Image, e.to_string()))
    }
}
