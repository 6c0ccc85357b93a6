//! The blocking client the CLI uses: one method per API route, typed results, and errors
//! that carry the server's status and message (the CLI prints the message).
//!
//! Over 600 lines on purpose: one short method per API route, in the order of the routes;
//! split, a reader would hunt across files for the method of a route.
//!
//! ```no_run
//! # fn main() -> Result<(), hako_api::ClientError> {
//! let client = hako_api::Client::from_env(std::path::Path::new("/var/lib/hako"))?;
//! for app in client.list_apps()? {
//!     println!("{} {:?}", app.spec.name, app.spec.hosts);
//! }
//! # Ok(()) }
//! ```

use std::path::Path;
use std::time::Duration;

use hako_model::{App, AppSpec, Event, InstanceInfo, Release, valid_name};
use serde::de::DeserializeOwned;
use ureq::http::Response;

pub use crate::action::tenant::{NewToken, TenantInfo};
pub use hako_model::AppPatch;

mod tenants;

/// Where the CLI finds the API when `HAKO_API` is not set.
pub const DEFAULT_API_URL: &str = "http://127.0.0.1:7070";

/// Largest response the client reads (app lists, logs): 256 MiB.
const MAX_RESPONSE: u64 = 256 << 20;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error; `message` is its `{"error": …}`.
    #[error("{message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// No connection, or it broke.
    #[error(
        "cannot reach the hako API at {url}: {message}; is 'hako serve' running? (set HAKO_API to its address)"
    )]
    Unreachable {
        /// The API's base URL.
        url: String,
        /// What failed.
        message: String,
    },
    /// The server answered something that is not what this client expects.
    #[error(
        "the hako API at {url} answered something unexpected: {message}; are client and server the same version?"
    )]
    Protocol {
        /// The API's base URL.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// The argument cannot be sent (an invalid app name, an unreadable file).
    #[error("{0}")]
    Invalid(String),
    /// No token found.
    #[error("no API token: {0}")]
    Token(String),
}

impl ClientError {
    /// The HTTP status, for errors the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A connection to hako's API.
#[derive(Debug, Clone)]
pub struct Client {
    /// E.g. `http://127.0.0.1:7070` (no trailing slash needed).
    pub base_url: String,
    /// The admin token or a tenant's.
    pub token: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client for the API at `base_url` with `token`.
    pub fn new(base_url: impl Into<String>, token: impl Into<String>) -> Client {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(600)))
            .build();
        Client {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            token: token.into(),
            agent: ureq::Agent::new_with_config(config),
        }
    }

    /// The CLI's client: URL from `HAKO_API` (default [`DEFAULT_API_URL`]), token from
    /// `HAKO_TOKEN` or, on the machine running `hako serve`, `<data_dir>/admin.token`.
    pub fn from_env(data_dir: &Path) -> Result<Client, ClientError> {
        Client::configure(
            std::env::var("HAKO_API").ok().as_deref(),
            std::env::var("HAKO_TOKEN").ok().as_deref(),
            data_dir,
        )
    }

    /// [`Client::from_env`] with the variables' values given: `api` (default
    /// [`DEFAULT_API_URL`]) and `token` (default: read `<data_dir>/admin.token`); blank
    /// values count as unset.
    pub fn configure(
        api: Option<&str>,
        token: Option<&str>,
        data_dir: &Path,
    ) -> Result<Client, ClientError> {
        let url = api
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .unwrap_or(DEFAULT_API_URL);
        let token = match token.map(str::trim).filter(|t| !t.is_empty()) {
            Some(t) => t.to_string(),
            None => {
                let file = crate::token::path(data_dir);
                crate::token::read(&file).map_err(|e| {
                    ClientError::Token(format!(
                        "set HAKO_TOKEN, or run on the machine of 'hako serve' with the same --data-dir ({}: {e})",
                        file.display()
                    ))
                })?
            }
        };
        Ok(Client::new(url, token))
    }

    /// `GET /v1/health`: Ok if the server answers (no token needed).
    pub fn health(&self) -> Result<(), ClientError> {
        let r = self.agent.get(self.url("/v1/health")).call();
        self.json::<serde_json::Value>(r).map(|_| ())
    }

    /// `GET /v1/apps`
    pub fn list_apps(&self) -> Result<Vec<App>, ClientError> {
        self.json(self.get("/v1/apps").call())
    }

    /// `POST /v1/apps`: creates an app (of the token's tenant, or with the admin token an
    /// app of the admin's).
    pub fn create_app(&self, spec: &AppSpec) -> Result<App, ClientError> {
        self.json(self.post("/v1/apps").send_json(spec))
    }

    /// `POST /v1/apps?tenant=T`: the admin creates an app owned by tenant `T`.
    pub fn create_app_for(&self, spec: &AppSpec, tenant: &str) -> Result<App, ClientError> {
        self.json(
            self.post("/v1/apps")
                .query("tenant", tenant)
                .send_json(spec),
        )
    }

    /// `GET /v1/whoami`: the admin, or which tenant's token this is.
    pub fn whoami(&self) -> Result<crate::action::Whoami, ClientError> {
        self.json(self.get("/v1/whoami").call())
    }

    /// True when this client's token is a tenant's (by its `hkt_` prefix; the server decides).
    pub fn uses_tenant_token(&self) -> bool {
        self.token.starts_with(crate::token::TENANT_TOKEN_PREFIX)
    }

    /// `GET /v1/apps/{name}`
    pub fn app(&self, name: &str) -> Result<App, ClientError> {
        let path = app_path(name, "")?;
        self.json(self.get(&path).call())
    }

    /// `PATCH /v1/apps/{name}`: changes the fields set in `patch`.
    pub fn update_app(&self, name: &str, patch: &AppPatch) -> Result<App, ClientError> {
        self.update_app_resized(name, patch).map(|(app, _)| app)
    }

    /// `PATCH /v1/apps/{name}`, with what a live resize did to each running instance (empty
    /// when the limits did not change).
    pub fn update_app_resized(
        &self,
        name: &str,
        patch: &AppPatch,
    ) -> Result<(App, Vec<hako_model::ResizeOutcome>), ClientError> {
        let path = app_path(name, "")?;
        let mut v: serde_json::Value = self.json(
            self.with_token(self.agent.patch(self.url(&path)))
                .send_json(patch),
        )?;
        let protocol = |e: serde_json::Error| ClientError::Protocol {
            url: self.base_url.clone(),
            message: e.to_string(),
        };
        let resize = match v.as_object_mut().and_then(|o| o.remove("resize")) {
            Some(r) => serde_json::from_value(r).map_err(protocol)?,
            None => Vec::new(),
        };
        Ok((serde_json::from_value(v).map_err(protocol)?, resize))
    }

    /// `DELETE /v1/apps/{name}`
    pub fn delete_app(&self, name: &str) -> Result<(), ClientError> {
        let path = app_path(name, "")?;
        let r = self.with_token(self.agent.delete(self.url(&path))).call();
        self.empty(r)
    }

    /// `DELETE /v1/apps/{name}?database=keep|drop`: deletes an app that has a database,
    /// saying whether the database goes too.
    pub fn delete_app_with(
        &self,
        name: &str,
        database: crate::DatabaseOnDelete,
    ) -> Result<(), ClientError> {
        let path = app_path(name, "")?;
        let r = self
            .with_token(self.agent.delete(self.url(&path)))
            .query("database", database.as_str())
            .call();
        self.empty(r)
    }

    /// `POST /v1/apps/{name}/releases` with a tar or tar.gz archive in memory.
    pub fn deploy_archive(&self, name: &str, archive: &[u8]) -> Result<Release, ClientError> {
        let path = app_path(name, "/releases")?;
        let r = self
            .post(&path)
            .header("Content-Type", archive_type(archive))
            .header("Expect", "100-continue")
            .send(archive);
        self.json(r)
    }

    /// `POST /v1/apps/{name}/releases` streaming a tar or tar.gz file.
    pub fn deploy_archive_file(&self, name: &str, file: &Path) -> Result<Release, ClientError> {
        let path = app_path(name, "/releases")?;
        let invalid = |e: std::io::Error| {
            ClientError::Invalid(format!("cannot read archive {}: {e}", file.display()))
        };
        let mut f = std::fs::File::open(file).map_err(invalid)?;
        let mut head = [0u8; 2];
        let n = std::io::Read::read(&mut f, &mut head).map_err(invalid)?;
        let f = std::fs::File::open(file).map_err(invalid)?;
        let r = self
            .post(&path)
            .header("Content-Type", archive_type(&head[..n]))
            .header("Expect", "100-continue")
            .send(f);
        self.json(r)
    }

    /// `POST /v1/apps/{name}/releases` naming a directory on the API's own host (local CLI).
    pub fn deploy_dir(&self, name: &str, dir: &Path) -> Result<Release, ClientError> {
        let path = app_path(name, "/releases")?;
        let dir = std::path::absolute(dir)
            .map_err(|e| ClientError::Invalid(format!("cannot resolve {}: {e}", dir.display())))?;
        let r = self
            .post(&path)
            .send_json(serde_json::json!({ "dir": dir }));
        self.json(r)
    }

    /// `POST /v1/apps/{name}/releases` with a directory packed here into a tar.gz (what a
    /// tenant's token, or a client on another machine, must send: a directory path names the
    /// server's files). Symbolic links are packed as links, as the server checks them.
    pub fn deploy_dir_upload(&self, name: &str, dir: &Path) -> Result<Release, ClientError> {
        check_name(name)?;
        let packed = crate::pack::tar_gz(dir).map_err(|e| {
            ClientError::Invalid(format!("cannot pack {} for upload: {e}", dir.display()))
        })?;
        self.deploy_archive_file(name, packed.path())
    }

    /// `GET /v1/apps/{name}/releases`
    pub fn releases(&self, name: &str) -> Result<Vec<Release>, ClientError> {
        let path = app_path(name, "/releases")?;
        self.json(self.get(&path).call())
    }

    /// `POST /v1/apps/{name}/rollout`: replaces the app's instances.
    pub fn rollout(&self, name: &str) -> Result<App, ClientError> {
        let path = app_path(name, "/rollout")?;
        self.json(self.post(&path).send_empty())
    }

    /// `GET /v1/apps/{name}/events?limit=N`: the latest events, oldest first.
    pub fn events(&self, name: &str, limit: Option<usize>) -> Result<Vec<Event>, ClientError> {
        let path = app_path(name, "/events")?;
        let mut req = self.get(&path);
        if let Some(limit) = limit {
            req = req.query("limit", limit.to_string());
        }
        self.json(req.call())
    }

    /// `GET /v1/apps/{name}/metrics`
    pub fn metrics(&self, name: &str) -> Result<serde_json::Value, ClientError> {
        let path = app_path(name, "/metrics")?;
        self.json(self.get(&path).call())
    }

    /// `GET /metrics`: every metric in Prometheus's text format (the admin token, or a
    /// scrape token, may read it).
    pub fn prometheus(&self) -> Result<String, ClientError> {
        let mut response = self.check(self.get("/metrics").call())?;
        response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE)
            .read_to_string()
            .map_err(|e| self.unreachable(e))
    }

    /// `GET /v1/apps/{name}/checkpoint`: whether the app's starts restore a checkpoint and
    /// why, its checkpoint's measurements, the node's checkpoint disk use.
    pub fn checkpoint(&self, name: &str) -> Result<serde_json::Value, ClientError> {
        let path = app_path(name, "/checkpoint")?;
        self.json(self.get(&path).call())
    }

    /// `GET /v1/apps/{name}/slo[?target_cold=P|target_p99_wait=D]`: the service level of the
    /// app from its measurements, and the cheapest keep-alive for `target` if given.
    pub fn slo(
        &self,
        name: &str,
        target: Option<hako_policy::slo::Target>,
    ) -> Result<crate::slo::SloReport, ClientError> {
        use hako_policy::slo::Target;
        let path = app_path(name, "/slo")?;
        let mut req = self.get(&path);
        match target {
            Some(Target::ColdProbability(p)) => req = req.query("target_cold", p.to_string()),
            Some(Target::P99Wait(d)) => {
                req = req.query("target_p99_wait", hako_model::units::format_duration(d))
            }
            None => {}
        }
        self.json(req.call())
    }

    /// `GET /v1/apps/{name}/logs?bytes=N`
    pub fn logs(&self, name: &str, max_bytes: Option<usize>) -> Result<String, ClientError> {
        let path = app_path(name, "/logs")?;
        let mut req = self.get(&path);
        if let Some(n) = max_bytes {
            req = req.query("bytes", n.to_string());
        }
        let mut response = self.check(req.call())?;
        response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE)
            .lossy_utf8(true)
            .read_to_string()
            .map_err(|e| self.unreachable(e))
    }

    /// `GET /v1/apps/NAME/logs?follow=true`: the last `tail_bytes` of the app's logs (the
    /// server's default without), then what its instances write, as they write it — handed
    /// to `each` piece by piece — until `each` returns false, or the server ends the stream
    /// (it shuts down: `Ok`), or the connection breaks.
    pub fn follow_logs(
        &self,
        name: &str,
        tail_bytes: Option<usize>,
        mut each: impl FnMut(crate::LogPiece) -> bool,
    ) -> Result<(), ClientError> {
        use std::io::BufRead;
        let path = app_path(name, "/logs")?;
        let mut req = self.get(&path).query("follow", "true");
        if let Some(n) = tail_bytes {
            req = req.query("bytes", n.to_string());
        }
        let response = self.check(req.call())?;
        let reader = std::io::BufReader::new(response.into_body().into_reader());
        let (mut event, mut data) = (String::new(), Vec::<String>::new());
        for line in reader.lines() {
            let line = line.map_err(|e| ClientError::Unreachable {
                url: self.base_url.clone(),
                message: format!("the log stream broke: {e}"),
            })?;
            if line.is_empty() {
                let piece = match event.as_str() {
                    "instance" => Some(crate::LogPiece::Instance(data.join("\n"))),
                    "log" => {
                        let text: String = serde_json::from_str(&data.join("\n")).map_err(|e| {
                            ClientError::Protocol {
                                url: self.base_url.clone(),
                                message: format!("a log event is not a JSON string: {e}"),
                            }
                        })?;
                        Some(crate::LogPiece::Text(text))
                    }
                    _ => None,
                };
                event.clear();
                data.clear();
                if let Some(p) = piece
                    && !each(p)
                {
                    return Ok(());
                }
            } else if let Some(v) = line.strip_prefix("event:") {
                event = v.trim_start().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push(v.strip_prefix(' ').unwrap_or(v).to_string());
            }
            // Comments (":") keep the connection alive; other fields are not used.
        }
        Ok(())
    }

    /// `GET /v1/instances[?app=NAME]`
    pub fn instances(&self, app: Option<&str>) -> Result<Vec<InstanceInfo>, ClientError> {
        let mut req = self.get("/v1/instances");
        if let Some(app) = app {
            check_name(app)?;
            req = req.query("app", app);
        }
        self.json(req.call())
    }

    /// `GET /v1/nodes`: the nodes of the cluster (one on a single host).
    pub fn nodes(&self) -> Result<Vec<hako_model::NodeInfo>, ClientError> {
        self.json(self.get("/v1/nodes").call())
    }

    /// `POST /v1/nodes/{name}/{cordon|uncordon|drain}`.
    pub fn set_node_state(
        &self,
        name: &str,
        state: hako_model::NodeState,
    ) -> Result<hako_model::NodeInfo, ClientError> {
        let verb = match state {
            hako_model::NodeState::Active => "uncordon",
            hako_model::NodeState::Cordoned => "cordon",
            hako_model::NodeState::Draining => "drain",
        };
        self.json(self.post(&format!("/v1/nodes/{name}/{verb}")).send_empty())
    }

    /// `PUT /v1/apps/{name}/cert`: serve this certificate chain and key (PEM) for the app.
    pub fn set_cert(
        &self,
        name: &str,
        cert_pem: &str,
        key_pem: &str,
    ) -> Result<hako_tls::CertInfo, ClientError> {
        let path = app_path(name, "/cert")?;
        let upload = crate::action::CertUpload {
            cert: cert_pem.to_string(),
            key: key_pem.to_string(),
        };
        self.json(
            self.with_token(self.agent.put(self.url(&path)))
                .send_json(&upload),
        )
    }

    /// `GET /v1/apps/{name}/cert`: the app's certificate (issuer, names, validity; no key),
    /// `None` if it has none.
    pub fn cert(&self, name: &str) -> Result<Option<hako_tls::CertInfo>, ClientError> {
        let path = app_path(name, "/cert")?;
        match self.json(self.get(&path).call()) {
            Ok(info) => Ok(Some(info)),
            Err(ClientError::Api {
                status: 404,
                message,
            }) if message.contains("no certificate") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `DELETE /v1/apps/{name}/cert`
    pub fn remove_cert(&self, name: &str) -> Result<(), ClientError> {
        let path = app_path(name, "/cert")?;
        let r = self.with_token(self.agent.delete(self.url(&path))).call();
        self.empty(r)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    fn with_token<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        req.header("Authorization", format!("Bearer {}", self.token))
    }

    fn get(&self, path: &str) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        self.with_token(self.agent.get(self.url(path)))
    }

    fn post(&self, path: &str) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        self.with_token(self.agent.post(self.url(path)))
    }

    fn unreachable(&self, e: ureq::Error) -> ClientError {
        ClientError::Unreachable {
            url: self.base_url.clone(),
            message: e.to_string(),
        }
    }

    /// Turns a transport failure or a non-2xx answer into an error.
    fn check(
        &self,
        r: Result<Response<ureq::Body>, ureq::Error>,
    ) -> Result<Response<ureq::Body>, ClientError> {
        let mut response = r.map_err(|e| self.unreachable(e))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .lossy_utf8(true)
            .read_to_string()
            .unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("error")?.as_str().map(str::to_string))
            .unwrap_or_else(|| {
                format!(
                    "the API answered {status}: {}",
                    text.chars().take(500).collect::<String>()
                )
            });
        Err(ClientError::Api { status, message })
    }

    fn json<T: DeserializeOwned>(
        &self,
        r: Result<Response<ureq::Body>, ureq::Error>,
    ) -> Result<T, ClientError> {
        let mut response = self.check(r)?;
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE)
            .read_to_vec()
            .map_err(|e| self.unreachable(e))?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol {
            url: self.base_url.clone(),
            message: e.to_string(),
        })
    }

    fn empty(&self, r: Result<Response<ureq::Body>, ureq::Error>) -> Result<(), ClientError> {
        self.check(r).map(|_| ())
    }
}

fn check_name(name: &str) -> Result<(), ClientError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(ClientError::Invalid(format!(
            "app name {name:?} is not valid: use 1-63 lowercase letters, digits and '-', starting with a letter or digit"
        )))
    }
}

fn app_path(name: &str, rest: &str) -> Result<String, ClientError> {
    check_name(name)?;
    Ok(format!("/v1/apps/{name}{rest}"))
}

/// `application/gzip` for gzip data (magic 1f 8b), else `application/x-tar`.
fn archive_type(head: &[u8]) -> &'static str {
    if head.starts_with(&[0x1f, 0x8b]) {
        "application/gzip"
    } else {
        "application/x-tar"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_types() {
        assert_eq!(app_path("blog", "/logs").unwrap(), "/v1/apps/blog/logs");
        assert!(matches!(app_path("../x", ""), Err(ClientError::Invalid(_))));
        assert_eq!(archive_type(&[0x1f, 0x8b, 8]), "application/gzip");
        assert_eq!(archive_type(b"ustar"), "application/x-tar");
        let c = Client::new("http://127.0.0.1:1/", "t");
        assert_eq!(c.url("/v1/apps"), "http://127.0.0.1:1/v1/apps");
    }

    #[test]
    fn unreachable_server_says_so() {
        // Port 1 on loopback: nothing listens there.
        let err = Client::new("http://127.0.0.1:1", "t")
            .list_apps()
            .unwrap_err();
        assert!(matches!(err, ClientError::Unreachable { .. }), "{err:?}");
        assert!(err.to_string().contains("hako serve"), "{err}");
        assert_eq!(err.status(), None);
    }
}
