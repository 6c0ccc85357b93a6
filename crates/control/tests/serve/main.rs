//! `hako serve` end to end, in-process: real proxy, real API, real containers.
//! The harness is here; the cases are grouped by what they exercise.
//!
//! The daemon runs in this test's process (`hako_control::serve`); the rest — the root check,
//! the host image, the requests, the static site's spec — is hako-testkit's.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hako_api::Client;
use hako_control::{Bound, ServeConfig};
use hako_model::{AppSpec, EventKind, InstanceState};
use hako_runtime::RuntimeConfig;
pub(crate) use hako_testkit::site::static_app as static_site;

mod cycling;
mod dashboard;
mod etcd;
mod keep_alive;
mod lifecycle;
mod logs;
mod metrics;
mod requests;

pub(crate) struct Serve {
    bound: Bound,
    client: Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    tmp: tempfile::TempDir,
    /// The runtime's prefix: the name of its cgroup scope.
    prefix: String,
}

impl Serve {
    async fn start() -> Serve {
        Serve::start_with(|_| {}).await
    }

    /// A daemon whose config `tweak` changes first (e.g. to another store).
    async fn start_with(tweak: impl FnOnce(&mut ServeConfig)) -> Serve {
        hako_testkit::require_root();
        let tmp = tempfile::Builder::new()
            .prefix("hako-serve-test")
            .tempdir()
            .unwrap();
        hako_testkit::site::host_image(tmp.path(), "base").unwrap();
        let mut config = ServeConfig::new(tmp.path());
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.api = "127.0.0.1:0".parse().unwrap();
        config.runtime = RuntimeConfig::unique('s', "/run/hako-test");
        config.stop_grace = Duration::from_secs(2);
        tweak(&mut config);
        let prefix = config.runtime.prefix.clone();
        let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            hako_control::serve(config, bound_tx, async {
                let _ = stop_rx.await;
            })
            .await
            .unwrap();
        });
        let bound = bound_rx.await.unwrap();
        let client = hako_testkit::api_client(bound.api, tmp.path());
        Serve {
            bound,
            client,
            stop: Some(stop_tx),
            task,
            tmp,
            prefix,
        }
    }

    async fn create(&self, json: serde_json::Value) {
        let spec: AppSpec = serde_json::from_value(json).unwrap();
        let c = self.client.clone();
        tokio::task::spawn_blocking(move || c.create_app(&spec))
            .await
            .unwrap()
            .unwrap();
    }

    async fn deploy(&self, app: &str, files: &[(&str, &str)]) {
        let dir = self.tmp.path().join(format!("code-{app}"));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, body) in files {
            std::fs::write(dir.join(name), body).unwrap();
        }
        let (c, app) = (self.client.clone(), app.to_string());
        tokio::task::spawn_blocking(move || c.deploy_dir(&app, &dir))
            .await
            .unwrap()
            .unwrap();
    }

    async fn events(&self, app: &str) -> Vec<hako_model::Event> {
        let (c, app) = (self.client.clone(), app.to_string());
        tokio::task::spawn_blocking(move || c.events(&app, Some(1000)))
            .await
            .unwrap()
            .unwrap()
    }

    /// Instances of `app` that took requests (ready or draining), not those still starting.
    async fn instances(&self, app: &str) -> usize {
        self.instance_list(app)
            .await
            .iter()
            .filter(|i| i.state != InstanceState::Starting)
            .count()
    }

    /// Every instance of `app` (also of an app just deleted), starting ones included.
    async fn instance_list(&self, app: &str) -> Vec<hako_model::InstanceInfo> {
        let c = self.client.clone();
        let all = tokio::task::spawn_blocking(move || c.instances(None))
            .await
            .unwrap()
            .unwrap();
        all.into_iter().filter(|i| i.app == app).collect()
    }

    /// Changes some settings of `app`; returns what the live resize did.
    async fn update(&self, app: &str, patch: serde_json::Value) -> Vec<hako_model::ResizeOutcome> {
        let patch: hako_api::AppPatch = serde_json::from_value(patch).unwrap();
        let (c, app) = (self.client.clone(), app.to_string());
        tokio::task::spawn_blocking(move || c.update_app_resized(&app, &patch))
            .await
            .unwrap()
            .unwrap()
            .1
    }

    async fn metrics(&self, app: &str) -> serde_json::Value {
        let (c, app) = (self.client.clone(), app.to_string());
        tokio::task::spawn_blocking(move || c.metrics(&app))
            .await
            .unwrap()
            .unwrap()
    }

    async fn delete(&self, app: &str) {
        let (c, app) = (self.client.clone(), app.to_string());
        tokio::task::spawn_blocking(move || c.delete_app(&app))
            .await
            .unwrap()
            .unwrap();
    }

    /// Where the named app keeps its files on the node.
    async fn app_dir(&self, app: &str) -> std::path::PathBuf {
        let (c, name) = (self.client.clone(), app.to_string());
        let app = tokio::task::spawn_blocking(move || c.app(&name))
            .await
            .unwrap()
            .unwrap();
        self.tmp.path().join("apps").join(app.storage_key())
    }

    /// Waits (polling) until `app` has an event of `kind` that `matches`.
    async fn wait_event(
        &self,
        app: &str,
        kind: EventKind,
        matches: impl Fn(&hako_model::Event) -> bool,
    ) -> hako_model::Event {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(e) = self
                .events(app)
                .await
                .into_iter()
                .find(|e| e.kind == kind && matches(e))
            {
                return e;
            }
            assert!(Instant::now() < deadline, "no {kind:?} event for {app}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap();
    }
}

/// One HTTP/1.0 request (no keep-alive, no chunked answer); returns (status, body).
pub(crate) async fn http(addr: SocketAddr, host: &str, path: &str) -> (u16, String) {
    let host = host.to_string();
    let path = path.to_string();
    tokio::task::spawn_blocking(move || hako_testkit::http::get(addr, &host, &path))
        .await
        .unwrap()
}

/// Deploys a CGI script at /cgi-bin/NAME of `app` (busybox httpd runs it).
pub(crate) async fn deploy_cgi(s: &Serve, app: &str, dir_name: &str, scripts: &[(&str, &str)]) {
    use std::os::unix::fs::PermissionsExt;
    let dir = s.tmp.path().join(dir_name);
    std::fs::create_dir_all(dir.join("cgi-bin")).unwrap();
    std::fs::write(dir.join("index.html"), format!("{dir_name}\n")).unwrap();
    for (name, body) in scripts {
        let p = dir.join("cgi-bin").join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let (c, app) = (s.client.clone(), app.to_string());
    tokio::task::spawn_blocking(move || c.deploy_dir(&app, &dir))
        .await
        .unwrap()
        .unwrap();
}

/// A CGI script that marks /data/started, then answers after `secs` seconds.
pub(crate) fn slow_cgi(secs: u32) -> String {
    format!(
        "#!/bin/sh\ntouch /data/started\nsleep {secs}\necho 'Content-Type: text/plain'\necho\necho done slowly\n"
    )
}

/// Waits until the file exists (an app wrote it).
pub(crate) async fn wait_file(path: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
