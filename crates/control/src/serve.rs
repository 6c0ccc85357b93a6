//! `hako serve`: on one host (the embedded store) everything — the store, the node agent, the
//! proxy, the API and the daemon's loops — until shutdown, then every instance stops and the
//! runtime's objects go. On etcd it is a front of a cluster ([`crate::cluster`]).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use hako_agent::{Agent, AgentConfig};
use hako_proxy::{Proxy, Router};
use hako_store::{Store, StoreSpec};

use crate::config::ServeConfig;
use crate::daemon::Daemon;
use crate::error::ServeError;
use crate::metrics::{CountedStore, Telemetry};

/// Addresses the daemon actually listens on (ports may have been 0).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub proxy: SocketAddr,
    /// The HTTPS listener, when `https` is set.
    pub https: Option<SocketAddr>,
    pub api: SocketAddr,
}

/// The proxy's (plain and HTTPS) and the API's listeners, bound.
pub(crate) struct Listeners {
    pub(crate) proxy: tokio::net::TcpListener,
    pub(crate) https: Option<tokio::net::TcpListener>,
    pub(crate) api: tokio::net::TcpListener,
    pub(crate) bound: Bound,
}

/// Starts `hako serve` and runs until `shutdown` resolves; then stops every instance and
/// removes what the runtime made. `bound` receives the listening addresses once ready.
pub async fn serve(
    mut config: ServeConfig,
    bound: tokio::sync::oneshot::Sender<Bound>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ServeError> {
    std::fs::create_dir_all(&config.data_dir).map_err(data_err(&config.data_dir))?;
    // Every part's store calls are counted (`hako_store_errors_total`).
    let telemetry = Arc::new(Telemetry::default());
    let store: Arc<dyn Store> = Arc::new(CountedStore::new(
        hako_store::open(&config.store).await?,
        telemetry.store_errors.clone(),
    ));
    let mut listeners = Listeners::bind(&config).await?;
    // Redirects to HTTPS name the port it really listens on.
    config.proxy.https_port = listeners.bound.https.map(|a| a.port());
    if matches!(config.store, StoreSpec::Etcd { .. }) {
        return crate::cluster::serve(config, store, listeners, bound, shutdown, telemetry).await;
    }
    let (agent, exits) = Agent::new(agent_config(&config))?;
    let token =
        hako_api::token::load_or_create(&config.data_dir).map_err(data_err(&config.data_dir))?;
    let addrs = listeners.bound;
    let daemon =
        Daemon::start(&config, store.clone(), agent, exits, telemetry, addrs.proxy).await?;
    let api_task = serve_api(
        listeners.api,
        store,
        daemon.backend.clone(),
        token,
        metrics_token(&config)?,
    );
    tracing::info!(proxy = %addrs.proxy, https = ?addrs.https, api = %addrs.api, "hako is serving");
    let _ = bound.send(addrs);

    let https = listeners
        .https
        .take()
        .map(|l| (l, daemon.site_certs.clone()));
    serve_proxy(
        listeners.proxy,
        https,
        daemon.router.clone(),
        &config,
        shutdown,
    )
    .await;

    tracing::info!("shutting down: stopping every instance");
    for t in &daemon.tasks {
        t.abort();
    }
    daemon.ops.close();
    api_task.stop().await;
    daemon.lifecycle.shutdown().await;
    tracing::debug!("instances stopped, runtime removed");
    Ok(())
}

/// The node agent's settings from hako serve's.
pub(crate) fn agent_config(config: &ServeConfig) -> AgentConfig {
    let mut agent_cfg = AgentConfig::new(&config.data_dir, config.runtime.clone());
    agent_cfg.log_max_bytes = 1 << 20;
    agent_cfg.storage = config.storage;
    agent_cfg.shared_dir = config.shared_dir.clone();
    agent_cfg.checkpoint_max_bytes = config.checkpoint_max_bytes;
    agent_cfg.criu_dir = config.criu_dir.clone();
    agent_cfg.shared_pool = config.shared_pool;
    agent_cfg.database_socket_dir = Some(config.database_server().socket_dir().to_path_buf());
    if let Some(n) = &config.node {
        agent_cfg.node = n.clone();
    }
    agent_cfg
}

pub(crate) fn data_err(path: &Path) -> impl FnOnce(std::io::Error) -> ServeError + use<> {
    let path = path.to_path_buf();
    move |source| ServeError::DataDir { path, source }
}

impl Listeners {
    async fn bind(config: &ServeConfig) -> Result<Listeners, ServeError> {
        let proxy = listen(config.listen).await?;
        let https = match config.https {
            Some(addr) => Some((listen(addr).await?, addr)),
            None => None,
        };
        let api = listen(config.api).await?;
        let bound = Bound {
            proxy: local_addr(&proxy, config.listen)?,
            https: match &https {
                Some((l, asked)) => Some(local_addr(l, *asked)?),
                None => None,
            },
            api: local_addr(&api, config.api)?,
        };
        Ok(Listeners {
            proxy,
            https: https.map(|(l, _)| l),
            api,
            bound,
        })
    }
}

/// The API, served until [`ApiTask::stop`].
pub(crate) struct ApiTask {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl ApiTask {
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
        tracing::debug!("API stopped");
    }
}

/// The metrics token of this host (`<data-dir>/metrics.token`, made on first start).
pub(crate) fn metrics_token(config: &ServeConfig) -> Result<String, ServeError> {
    hako_api::token::load_or_create_metrics(&config.data_dir).map_err(data_err(&config.data_dir))
}

pub(crate) fn serve_api(
    listener: tokio::net::TcpListener,
    store: Arc<dyn Store>,
    backend: Arc<dyn hako_api::Backend>,
    token: String,
    metrics_token: String,
) -> ApiTask {
    let mut state = hako_api::ApiState::new(store, backend, token);
    state.metrics_token = Some(metrics_token);
    let api = hako_api::router(state);
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, api)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await;
    });
    ApiTask { stop, task }
}

/// The proxy on its plain listener and, with `https`, on the HTTPS one too (certificates by
/// SNI from the given table) until `shutdown`; both stop together.
pub(crate) async fn serve_proxy(
    listener: tokio::net::TcpListener,
    https: Option<(tokio::net::TcpListener, Arc<hako_tls::SiteCerts>)>,
    router: Router,
    config: &ServeConfig,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let proxy = Proxy::new(router, config.proxy.clone());
    let Some((tls_listener, certs)) = https else {
        return proxy.serve(listener, shutdown).await;
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let plain = proxy.serve(listener, stopped(stop_rx.clone()));
    let tls = hako_tls::server_config(certs);
    let secure = proxy.serve_tls(tls_listener, tls, stopped(stop_rx));
    let signal = async move {
        shutdown.await;
        stop_tx.send_replace(true);
    };
    tokio::join!(plain, secure, signal);
}

async fn listen(addr: SocketAddr) -> Result<tokio::net::TcpListener, ServeError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listen { addr, source })
}

fn local_addr(l: &tokio::net::TcpListener, asked: SocketAddr) -> Result<SocketAddr, ServeError> {
    l.local_addr().map_err(|source| ServeError::Listen {
        addr: asked,
        source,
    })
}
