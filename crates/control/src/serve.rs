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

/// Addresses the daemon actually listens on (ports may have been 0).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub proxy: SocketAddr,
    pub api: SocketAddr,
}

/// The proxy's and the API's listeners, bound.
pub(crate) struct Listeners {
    pub(crate) proxy: tokio::net::TcpListener,
    pub(crate) api: tokio::net::TcpListener,
    pub(crate) bound: Bound,
}

/// Starts `hako serve` and runs until `shutdown` resolves; then stops every instance and
/// removes what the runtime made. `bound` receives the listening addresses once ready.
pub async fn serve(
    config: ServeConfig,
    bound: tokio::sync::oneshot::Sender<Bound>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ServeError> {
    std::fs::create_dir_all(&config.data_dir).map_err(data_err(&config.data_dir))?;
    let store: Arc<dyn Store> = hako_store::open(&config.store).await?;
    let listeners = Listeners::bind(&config).await?;
    if matches!(config.store, StoreSpec::Etcd { .. }) {
        return crate::cluster::serve(config, store, listeners, bound, shutdown).await;
    }
    let (agent, exits) = Agent::new(agent_config(&config))?;
    let token =
        hako_api::token::load_or_create(&config.data_dir).map_err(data_err(&config.data_dir))?;
    let addrs = listeners.bound;
    let daemon = Daemon::start(&config, store.clone(), agent, exits, addrs.proxy).await?;
    let api_task = serve_api(listeners.api, store, daemon.backend.clone(), token);
    tracing::info!(proxy = %addrs.proxy, api = %addrs.api, "hako is serving");
    let _ = bound.send(addrs);

    serve_proxy(listeners.proxy, daemon.router.clone(), &config, shutdown).await;

    tracing::info!("shutting down: stopping every instance");
    for t in &daemon.tasks {
        t.abort();
    }
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
        let api = listen(config.api).await?;
        let bound = Bound {
            proxy: local_addr(&proxy, config.listen)?,
            api: local_addr(&api, config.api)?,
        };
        Ok(Listeners { proxy, api, bound })
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

pub(crate) fn serve_api(
    listener: tokio::net::TcpListener,
    store: Arc<dyn Store>,
    backend: Arc<dyn hako_api::Backend>,
    token: String,
) -> ApiTask {
    let api = hako_api::router(hako_api::ApiState::new(store, backend, token));
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

pub(crate) async fn serve_proxy(
    listener: tokio::net::TcpListener,
    router: Router,
    config: &ServeConfig,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let proxy = Proxy::new(router, config.proxy.clone());
    proxy.serve(listener, shutdown).await;
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
