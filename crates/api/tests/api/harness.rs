//! A real API server on 127.0.0.1:0 over an in-memory store, with a small fake backend, run
//! on its own runtime thread so tests can use the blocking client.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hako_api::{ApiState, Backend, BackendError, Client, ClientError, ReleaseSource};
use hako_model::{DatabaseGrant, ImageRef, InstanceInfo, NodeCapacity, Release};
use hako_store::{EmbeddedStore, Store};

/// The fake node's capacity: a 2-core host with 4 GiB and the kernel's default pid_max.
pub const CAPACITY: NodeCapacity = NodeCapacity {
    cpus: 2,
    memory_bytes: 4 << 30,
    max_pids: 32768,
};

/// The fake daemon side.
#[derive(Default)]
pub struct FakeBackend {
    pub images: Mutex<BTreeSet<String>>,
    pub metrics: Mutex<BTreeMap<String, serde_json::Value>>,
    pub histories: Mutex<BTreeMap<String, hako_api::slo::History>>,
    pub instances: Mutex<Vec<InstanceInfo>>,
    /// (app, number, source) of every release made.
    pub made: Mutex<Vec<(String, u64, ReleaseSource)>>,
    /// The fake database server's databases, by name.
    pub databases: Mutex<BTreeMap<String, DatabaseGrant>>,
    /// When set, the fake database server is down.
    pub database_down: std::sync::atomic::AtomicBool,
    /// Checkpoint statuses, by app.
    pub checkpoints: Mutex<BTreeMap<String, serde_json::Value>>,
}

#[async_trait::async_trait]
impl Backend for FakeBackend {
    async fn provision_database(&self, app: &str) -> Result<(DatabaseGrant, bool), BackendError> {
        if self.database_down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(BackendError::internal(
                "the database server does not answer",
            ));
        }
        let name = format!("hako_{}", app.replace('-', "_"));
        let mut dbs = self.databases.lock().unwrap();
        let existed = dbs.contains_key(&name);
        let grant = DatabaseGrant {
            database: name.clone(),
            user: name.clone(),
            password: format!("secret-{app}-{}", dbs.len()),
            created_unix: 1,
        };
        dbs.insert(name, grant.clone());
        Ok((grant, existed))
    }

    async fn database_exists(&self, app: &str) -> Result<bool, BackendError> {
        let name = format!("hako_{}", app.replace('-', "_"));
        Ok(self.databases.lock().unwrap().contains_key(&name))
    }

    async fn drop_database(&self, grant: &DatabaseGrant) -> Result<(), BackendError> {
        if self.database_down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(BackendError::internal(
                "the database server does not answer",
            ));
        }
        self.databases.lock().unwrap().remove(&grant.database);
        Ok(())
    }

    async fn image_exists(&self, image: &ImageRef) -> bool {
        self.images.lock().unwrap().contains(&image.name)
    }

    fn capacity(&self) -> NodeCapacity {
        CAPACITY
    }

    async fn create_release(
        &self,
        app: &str,
        number: u64,
        source: ReleaseSource,
        max_bytes: Option<u64>,
    ) -> Result<Release, BackendError> {
        let size_bytes = match &source {
            ReleaseSource::Archive(b) if b.starts_with(b"HOSTILE") => {
                return Err(BackendError::user(
                    "archive entry ../etc/passwd leaves the release: refused",
                ));
            }
            ReleaseSource::Archive(b) => b.len() as u64,
            ReleaseSource::Dir(d) if !d.is_dir() => {
                return Err(BackendError::user(format!(
                    "code directory {} does not exist",
                    d.display()
                )));
            }
            ReleaseSource::Dir(_) => 0,
        };
        // The fake "unpacks" the archive as its bytes: over the bound, nothing is made.
        if let Some(max) = max_bytes
            && size_bytes > max
        {
            return Err(BackendError::too_large(format!(
                "the release holds more than {max} bytes of files"
            )));
        }
        self.made
            .lock()
            .unwrap()
            .push((app.to_string(), number, source.clone()));
        Ok(Release {
            app: app.to_string(),
            number,
            created_unix: 0,
            size_bytes,
            files: 1,
            source: source.describe(),
        })
    }

    async fn instances(&self, app: Option<&str>) -> Vec<InstanceInfo> {
        let all = self.instances.lock().unwrap().clone();
        all.into_iter()
            .filter(|i| app.is_none_or(|a| a == i.app))
            .collect()
    }

    async fn metrics(&self, app: &str) -> Option<serde_json::Value> {
        self.metrics.lock().unwrap().get(app).cloned()
    }

    async fn history(&self, app: &str) -> Option<hako_api::slo::History> {
        self.histories.lock().unwrap().get(app).cloned()
    }

    async fn logs(&self, app: &str, max_bytes: usize) -> String {
        let log = format!("first line of {app}\nlast line of {app}\n");
        log[log.len().saturating_sub(max_bytes)..].to_string()
    }

    async fn checkpoint_status(&self, app: &str) -> Option<serde_json::Value> {
        self.checkpoints.lock().unwrap().get(app).cloned()
    }

    /// One series per app in scope (with its request count, if it has metrics), and the
    /// node's capacity when the scope has the node.
    async fn prometheus(&self, scope: &hako_api::Scope) -> String {
        let metrics = self.metrics.lock().unwrap();
        let mut text = String::new();
        for app in &scope.apps {
            let n = metrics
                .get(app)
                .and_then(|m| m["requests"].as_u64())
                .unwrap_or(0);
            text += &format!("hako_requests_total{{app=\"{app}\",kind=\"warm\"}} {n}\n");
        }
        if scope.node {
            text += &format!("hako_node_cpus {}\n", CAPACITY.cpus);
        }
        text
    }
}

/// A running server; stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    pub token: String,
    pub backend: Arc<FakeBackend>,
    pub store: Arc<dyn Store>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub const TEST_UPLOAD_LIMIT: usize = 64 << 10;

impl Server {
    pub fn start() -> Server {
        Server::start_with(None)
    }

    /// A server that also takes `metrics_token` on `GET /metrics`.
    pub fn start_with_metrics_token(metrics_token: String) -> Server {
        Server::start_with(Some(metrics_token))
    }

    fn start_with(metrics_token: Option<String>) -> Server {
        let backend = Arc::new(FakeBackend::default());
        backend
            .images
            .lock()
            .unwrap()
            .extend(["php".to_string(), "static".to_string()]);
        let token = "t".repeat(8) + &format!("{:056x}", std::process::id());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (store, listener) = rt.block_on(async {
            let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open_in_memory().await.unwrap());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            (store, listener)
        });
        let addr = listener.local_addr().unwrap();
        let state = ApiState {
            store: store.clone(),
            backend: backend.clone(),
            token: token.clone(),
            metrics_token,
            max_upload: TEST_UPLOAD_LIMIT,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            rt.block_on(async move {
                axum::serve(listener, hako_api::router(state))
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            })
        });
        Server {
            addr,
            token,
            backend,
            store,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn client(&self) -> Client {
        Client::new(self.url(), &self.token)
    }

    /// A raw HTTP agent that returns every status as a response and follows no redirect.
    pub fn raw(&self) -> ureq::Agent {
        ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .build(),
        )
    }

    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// Makes tenant `name` with `quota` (through the API, as the admin) and a token for it;
    /// returns a client holding that token.
    pub fn tenant(&self, name: &str, quota: hako_model::Quota) -> Client {
        let admin = self.client();
        admin.create_tenant(name, &quota).unwrap();
        let made = admin.create_token(name, Some("owner")).unwrap();
        Client::new(self.url(), made.token)
    }

    /// One raw request: `method` on `path` (with its query), with `token` as the bearer if
    /// given and a body of `(content type, bytes)` if given; the status and the body's text.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> (u16, String) {
        self.send_as(method, path, token.map(Credential::Bearer), body)
    }

    /// Like [`Server::send`], with the token as a bearer or as the dashboard's login cookie.
    pub fn send_as(
        &self,
        method: &str,
        path: &str,
        credential: Option<Credential<'_>>,
        body: Option<(&str, Vec<u8>)>,
    ) -> (u16, String) {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url()));
        match credential {
            Some(Credential::Bearer(t)) => req = req.header("Authorization", format!("Bearer {t}")),
            Some(Credential::Cookie(t)) => {
                req = req.header("Cookie", format!("{}={t}", hako_api::ui::COOKIE));
            }
            None => {}
        }
        let response = match body {
            Some((content_type, bytes)) => self.raw().run(
                req.header("Content-Type", content_type)
                    .body(bytes)
                    .unwrap(),
            ),
            None => self.raw().run(req.body(()).unwrap()),
        };
        let mut r = response.unwrap();
        let status = r.status().as_u16();
        (status, r.body_mut().read_to_string().unwrap_or_default())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How a request carries its token.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    /// `Authorization: Bearer <token>` (the API, `/metrics`).
    Bearer(&'a str),
    /// The dashboard's login cookie.
    Cookie(&'a str),
}

/// A valid spec named `name` serving `host`.
pub fn spec(name: &str, host: &str) -> hako_model::AppSpec {
    serde_json::from_value(serde_json::json!({
        "name": name,
        "hosts": [host],
        "image": "php",
        "cmd": "php -S 0.0.0.0:$PORT -t /app",
    }))
    .unwrap()
}

/// Reads a raw response's status and JSON body.
pub fn status_json(
    r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> (u16, serde_json::Value) {
    let mut r = r.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = r.body_mut().read_to_string().unwrap();
    assert!(
        ct.starts_with("application/json"),
        "status {status}: content type {ct:?}, body {text:?}"
    );
    (status, serde_json::from_str(&text).unwrap())
}

/// Asserts a response is an error with `status` and a message containing `needle`.
pub fn assert_error(
    r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    status: u16,
    needle: &str,
) {
    let (got, body) = status_json(r);
    let msg = body["error"].as_str().unwrap_or_else(|| panic!("{body}"));
    assert_eq!(got, status, "{msg}");
    assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
}

/// The status and message of a client error the server answered.
pub fn api_status(e: ClientError) -> (u16, String) {
    match e {
        ClientError::Api { status, message } => (status, message),
        other => panic!("not an API error: {other:?}"),
    }
}
