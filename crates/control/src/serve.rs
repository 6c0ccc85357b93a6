//! `hako serve`: on one host (the embedded store) everything — the store, the node agent, the
//! proxy, the API and the daemon's loops — until shutdown, then every instance stops and the
//! runtime's objects go. On etcd it is a front of a cluster ([`crate::cluster`]).

use std::sync::Arc;

use hako_agent::Agent;
use hako_store::{Store, StoreSpec};

use crate::config::ServeConfig;
use crate::daemon::Daemon;
use crate::error::ServeError;
use crate::listeners::{
    Bound, Listeners, agent_config, data_err, metrics_token, serve_api, serve_proxy,
};
use crate::metrics::{CountedStore, Telemetry};

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
