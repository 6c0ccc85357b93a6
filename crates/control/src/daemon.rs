//! `hako serve`: everything on one host. The daemon owns the store, the agent and the proxy's
//! router, and runs four loops: the store watch (apps → routes), the proxy's events (starts,
//! failures → events and instance records), the agent's exits, and the keep-alive policy.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use hako_agent::{Agent, AgentConfig};
use hako_model::{App, Event, EventKind, InstanceInfo};
use hako_proxy::{AppRoute, Proxy, ProxyConfig, Router};
use hako_runtime::RuntimeConfig;
use hako_store::{EmbeddedStore, Store, StoreExt, keys};
use tokio::sync::Notify;

use crate::events::EventLog;

/// Settings of `hako serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    /// Where the proxy listens.
    pub listen: SocketAddr,
    /// Where the API listens.
    pub api: SocketAddr,
    pub runtime: RuntimeConfig,
    pub proxy: ProxyConfig,
    /// SIGTERM-to-kill grace of a stopping instance.
    pub stop_grace: Duration,
    /// The shared database service apps with `database` get their database on.
    pub database: DatabaseConfig,
    /// Bounds on each app's releases and `/data`.
    pub storage: hako_agent::StorageLimits,
}

/// The shared database service (MariaDB on this host), `[database]` in the config file.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseConfig {
    /// The server's Unix socket; its directory is bound into instances at /run/mysqld.
    pub socket: PathBuf,
    /// Databases and accounts are named `<prefix>_<app>`; `None`: the runtime's prefix.
    pub prefix: Option<String>,
    /// A client defaults file with admin credentials, where root has no socket login.
    pub defaults_file: Option<PathBuf>,
    /// Connections each app's account may hold at once.
    pub max_user_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            socket: hako_database::DEFAULT_SOCKET.into(),
            prefix: None,
            defaults_file: None,
            max_user_connections: hako_database::DEFAULT_MAX_USER_CONNECTIONS,
        }
    }
}

impl ServeConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> ServeConfig {
        ServeConfig {
            data_dir: data_dir.into(),
            listen: "0.0.0.0:8080".parse().expect("valid"),
            api: "127.0.0.1:7070".parse().expect("valid"),
            runtime: RuntimeConfig::default(),
            proxy: ProxyConfig::default(),
            stop_grace: Duration::from_secs(10),
            database: DatabaseConfig::default(),
            storage: hako_agent::StorageLimits::default(),
        }
    }

    /// The database server as configured.
    pub(crate) fn database_server(&self) -> hako_database::MariaDb {
        let d = &self.database;
        let mut server = hako_database::MariaDb::new(&d.socket)
            .with_prefix(
                d.prefix
                    .clone()
                    .unwrap_or_else(|| self.runtime.prefix.clone()),
            )
            .with_max_user_connections(d.max_user_connections);
        if let Some(f) = &d.defaults_file {
            server = server.with_defaults_file(f);
        }
        server
    }
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot open the store: {0}")]
    Store(#[from] hako_store::StoreError),
    #[error("cannot start the node agent: {0}")]
    Agent(#[from] hako_agent::AgentError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot prepare the data dir {}: {source}", path.display())]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What one instance looks like to the keep-alive loop, beyond the router's counters.
#[derive(Debug, Clone)]
pub(crate) struct Tracked {
    pub started: Instant,
    pub ready: Instant,
    pub draining_since: Option<Instant>,
    /// [`App::fingerprint`] of the app the instance was started from.
    pub fingerprint: u64,
}

/// The running daemon's shared state.
pub struct Daemon {
    pub(crate) config: ServeConfig,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) agent: Arc<Agent>,
    pub(crate) router: Router,
    pub(crate) apps: RwLock<HashMap<String, App>>,
    pub(crate) tracked: std::sync::Mutex<HashMap<String, Tracked>>,
    pub(crate) events: EventLog,
    /// The shared database service.
    pub(crate) database: hako_database::MariaDb,
    /// Wakes the keep-alive loop early (apps changed, an instance started or ended).
    pub(crate) wake: Notify,
    pub(crate) epoch: Instant,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("config", &self.config)
            .finish()
    }
}

/// Addresses the daemon actually listens on (ports may have been 0).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub proxy: SocketAddr,
    pub api: SocketAddr,
}

/// Starts `hako serve` and runs until `shutdown` resolves; then stops every instance and
/// removes what the runtime made. `bound` receives the listening addresses once ready.
pub async fn serve(
    config: ServeConfig,
    bound: tokio::sync::oneshot::Sender<Bound>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ServeError> {
    let data_err = |path: &PathBuf| {
        let path = path.clone();
        move |source| ServeError::DataDir { path, source }
    };
    std::fs::create_dir_all(&config.data_dir).map_err(data_err(&config.data_dir))?;
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open_in_data_dir(&config.data_dir).await?);
    let mut agent_cfg = AgentConfig::new(&config.data_dir, config.runtime.clone());
    agent_cfg.log_max_bytes = 1 << 20;
    agent_cfg.storage = config.storage;
    agent_cfg.database_socket_dir = Some(config.database_server().socket_dir().to_path_buf());
    let (agent, exits) = Agent::new(agent_cfg)?;
    let token =
        hako_api::token::load_or_create(&config.data_dir).map_err(data_err(&config.data_dir))?;

    let proxy_listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: config.listen,
            source,
        })?;
    let api_listener = tokio::net::TcpListener::bind(config.api)
        .await
        .map_err(|source| ServeError::Listen {
            addr: config.api,
            source,
        })?;
    let addrs = Bound {
        proxy: proxy_listener
            .local_addr()
            .map_err(|source| ServeError::Listen {
                addr: config.listen,
                source,
            })?,
        api: api_listener
            .local_addr()
            .map_err(|source| ServeError::Listen {
                addr: config.api,
                source,
            })?,
    };

    let (proxy_events_tx, proxy_events) = tokio::sync::mpsc::unbounded_channel();
    let launcher = Arc::new(crate::launcher::DaemonLauncher::default());
    let router = Router::new(launcher.clone(), Arc::new(proxy_events_tx));
    let daemon = Arc::new(Daemon {
        events: EventLog::new(store.clone()),
        database: config.database_server(),
        config: config.clone(),
        store: store.clone(),
        agent: agent.clone(),
        router: router.clone(),
        apps: RwLock::new(HashMap::new()),
        tracked: std::sync::Mutex::new(HashMap::new()),
        wake: Notify::new(),
        epoch: Instant::now(),
    });
    launcher.attach(&daemon);

    daemon.forget_previous_instances().await;
    let watch = crate::reconcile::start(daemon.clone()).await?;
    let tasks = vec![
        watch,
        tokio::spawn(crate::events::consume_proxy_events(
            daemon.clone(),
            proxy_events,
        )),
        tokio::spawn(crate::events::consume_exits(daemon.clone(), exits)),
        tokio::spawn(crate::keepalive::run(daemon.clone())),
    ];

    let api = hako_api::router(hako_api::ApiState::new(
        store.clone(),
        Arc::new(crate::backend::DaemonBackend(daemon.clone())),
        token,
    ));
    let (stop_api_tx, stop_api_rx) = tokio::sync::oneshot::channel::<()>();
    let api_task = tokio::spawn(async move {
        let _ = axum::serve(api_listener, api)
            .with_graceful_shutdown(async {
                let _ = stop_api_rx.await;
            })
            .await;
    });
    tracing::info!(proxy = %addrs.proxy, api = %addrs.api, "hako is serving");
    let _ = bound.send(addrs);

    let proxy = Proxy::new(router.clone(), config.proxy.clone());
    proxy.serve(proxy_listener, shutdown).await;

    tracing::info!("shutting down: stopping every instance");
    let _ = stop_api_tx.send(());
    for t in tasks {
        t.abort();
    }
    let _ = api_task.await;
    tracing::debug!("API stopped");
    let ids: Vec<InstanceInfo> = agent.instances(None);
    agent.shutdown(config.stop_grace).await;
    tracing::debug!("instances stopped, runtime removed");
    for i in ids {
        let _ = store.delete(&keys::instance(&i.app, &i.id)).await;
    }
    if let Err(e) = store.delete_prefix(keys::INSTANCES).await {
        tracing::warn!(error = %e, "cannot clear instance records");
    }
    Ok(())
}

impl Daemon {
    /// The route the proxy uses for an app.
    pub(crate) fn route(app: &App) -> AppRoute {
        let mut r = AppRoute::new(app.spec.name.clone(), app.spec.hosts.clone());
        r.start_timeout = app.spec.start_timeout.0;
        r.health_path = app.spec.health_path.clone();
        r
    }

    pub(crate) fn app(&self, name: &str) -> Option<App> {
        self.apps.read().expect("apps lock").get(name).cloned()
    }

    /// Instance records of a previous run (killed with -9) are stale: their containers died
    /// with it and the runtime removed what they left. Record that and drop the records.
    async fn forget_previous_instances(&self) {
        let Ok(old) = self.store.range_json::<InstanceInfo>(keys::INSTANCES).await else {
            return;
        };
        for (_, i) in old {
            self.events
                .record(
                    Event::new(
                        &i.app,
                        EventKind::Stop,
                        "the previous hako process ended; its instance is gone",
                    )
                    .instance(&i.id),
                )
                .await;
        }
        let _ = self.store.delete_prefix(keys::INSTANCES).await;
    }

    /// Registers a started instance: router (if asked), records, keep-alive tracking.
    pub(crate) async fn register(&self, info: &InstanceInfo, app: &App, add_to_router: bool) {
        let now = Instant::now();
        let started = now - Duration::from_secs_f64(info.ready_ms.unwrap_or(0.0) / 1000.0);
        self.tracked.lock().expect("tracked lock").insert(
            info.id.clone(),
            Tracked {
                started,
                ready: now,
                draining_since: None,
                fingerprint: app.fingerprint(),
            },
        );
        if add_to_router
            && let Ok(addr) = info.addr.parse()
            && let Err(e) = self.router.add_ready(&info.app, &info.id, addr)
        {
            tracing::warn!(instance = %info.id, error = %e, "cannot route to instance");
        }
        if let Err(e) = self
            .store
            .put_json(&keys::instance(&info.app, &info.id), info)
            .await
        {
            tracing::warn!(error = %e, "cannot record instance");
        }
        self.wake.notify_one();
    }

    /// Stops an instance: no new requests, in-flight ones finish (bounded), then the
    /// container stops; the record goes and an event says why.
    pub(crate) async fn retire(
        self: &Arc<Self>,
        app: &str,
        id: &str,
        reason: String,
        drain_timeout: Duration,
    ) {
        if let Some(t) = self.tracked.lock().expect("tracked lock").get_mut(id) {
            t.draining_since.get_or_insert_with(Instant::now);
        }
        if let Ok(drain) = self.router.drain(app, id) {
            let _ = tokio::time::timeout(drain_timeout, drain.wait()).await;
        }
        let status = self.agent.stop(id, self.config.stop_grace).await;
        let _ = self.router.remove(app, id);
        self.tracked.lock().expect("tracked lock").remove(id);
        let _ = self.store.delete(&keys::instance(app, id)).await;
        let reason = match status {
            Some(s) => format!("{reason} ({s})"),
            None => reason,
        };
        self.events
            .record(Event::new(app, EventKind::Stop, reason).instance(id))
            .await;
        self.wake.notify_one();
    }
}
