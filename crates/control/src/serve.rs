//! `hako serve`: everything on one host — the store, the node agent, the proxy, the API and
//! the daemon's loops — until shutdown; then every instance stops and the runtime's objects go.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hako_agent::{Agent, AgentConfig};
use hako_proxy::Proxy;
use hako_store::Store;

use crate::config::ServeConfig;
use crate::daemon::Daemon;
use crate::error::ServeError;

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
    let store: Arc<dyn Store> = hako_store::open(&config.store).await?;
    let mut agent_cfg = AgentConfig::new(&config.data_dir, config.runtime.clone());
    agent_cfg.log_max_bytes = 1 << 20;
    agent_cfg.storage = config.storage;
    agent_cfg.database_socket_dir = Some(config.database_server().socket_dir().to_path_buf());
    let (agent, exits) = Agent::new(agent_cfg)?;
    let token =
        hako_api::token::load_or_create(&config.data_dir).map_err(data_err(&config.data_dir))?;

    let proxy_listener = listen(config.listen).await?;
    let api_listener = listen(config.api).await?;
    let addrs = Bound {
        proxy: local_addr(&proxy_listener, config.listen)?,
        api: local_addr(&api_listener, config.api)?,
    };

    let daemon = Daemon::start(&config, store.clone(), agent, exits, addrs.proxy).await?;
    let api = hako_api::router(hako_api::ApiState::new(
        store.clone(),
        daemon.backend.clone(),
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

    let proxy = Proxy::new(daemon.router.clone(), config.proxy.clone());
    proxy.serve(proxy_listener, shutdown).await;

    tracing::info!("shutting down: stopping every instance");
    let _ = stop_api_tx.send(());
    for t in &daemon.tasks {
        t.abort();
    }
    let _ = api_task.await;
    tracing::debug!("API stopped");
    daemon.lifecycle.shutdown().await;
    tracing::debug!("instances stopped, runtime removed");
    Ok(())
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
