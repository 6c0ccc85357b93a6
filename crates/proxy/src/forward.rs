//! One request's path through the proxy, as a short list of phases:
//!
//! 0. **answer ACME**: an HTTP-01 challenge in progress for the request's host is answered
//!    here, before routing (and never redirected);
//! 1. **route**: Host → app (400 for a bad Host, 404 for an unknown one); a plain-HTTP
//!    request to an app with `https_redirect` gets a 308 to HTTPS;
//! 2. **prepare**: body limit (413), hop-by-hop headers out, Host and forwarding headers set
//!    under the trust rule of [`crate::forwarded`];
//! 3. **select**: least-outstanding ready instance, or wait for a start (activator);
//! 4. **send**: pooled connection, response-head timeout (504); a request that never
//!    reached the app is retried on another instance, anything else is not (502);
//! 5. **respond**: stream the body back (with `Strict-Transport-Security` over HTTPS when the
//!    app asks for it); after a 101, tunnel both ways.

use http::{Request, Response, StatusCode, Uri, Version, header};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::activator::wait_for_instance;
use crate::app::App;
use crate::body::{BodyError, ProxyBody, RequestBody};
use crate::config::ProxyConfig;
use crate::error::ProxyError;
use crate::events::ProxyEvent;
use crate::forwarded::{Peer, routed_host, set_forwarding};
use crate::headers::{HostError, remove_hop_by_hop, request_host, wants_upgrade};
use crate::instance::{InFlight, Instance, InstanceState, Upgraded};
use crate::pages::error_response;
use crate::pool::{Sender, connect};
use crate::router::Router;

/// What every connection's requests share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) router: Router,
    pub(crate) config: ProxyConfig,
}

/// Answer one client request (`tls`: it came over HTTPS). Never fails: errors become pages.
pub(crate) async fn handle(
    shared: &Shared,
    client: &Peer,
    tls: bool,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    if let Some(answer) = acme_answer(&shared.config.challenges, &req) {
        return answer;
    }
    let app = match route(&shared.router, &req) {
        Ok(app) => app,
        Err(error) => return error_response(&error, shared.config.retry_after_secs),
    };
    let https = app.https.load();
    if !tls
        && https.redirect
        && let Some(port) = shared.config.https_port
    {
        return redirect_to_https(&req, port);
    }
    app.metrics.record_arrival(Instant::now());
    let abandoned = Abandoned(Some(&app));
    let proto = if tls {
        "https"
    } else {
        shared.config.forwarded_proto
    };
    let mut response = match proxy(shared, &app, client, proto, req).await {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(app = %app.name, %error, side = ?error.source_side(), "request answered by the proxy");
            error_response(&error, shared.config.retry_after_secs)
        }
    };
    abandoned.disarm();
    app.metrics.record_status(response.status().as_u16());
    if tls && let Some(hsts) = &https.hsts {
        response
            .headers_mut()
            .insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
    }
    response
}

/// Phase 0: the key authorization of an ACME HTTP-01 challenge in progress for this host.
fn acme_answer(
    challenges: &hako_tls::Challenges,
    req: &Request<Incoming>,
) -> Option<Response<ProxyBody>> {
    let path = req.uri().path();
    if !path.starts_with(hako_tls::challenges::CHALLENGE_PATH) || challenges.is_empty() {
        return None;
    }
    let host = request_host(req.uri(), req.headers()).ok()?;
    let answer = challenges.answer(&host, path)?;
    let mut response = Response::new(ProxyBody::full(answer.into()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/octet-stream"),
    );
    Some(response)
}

/// The 308 of a plain-HTTP request to an app that wants HTTPS: same host (without the
/// plain port), the HTTPS listener's port unless 443, same path and query.
fn redirect_to_https(req: &Request<Incoming>, port: u16) -> Response<ProxyBody> {
    let host = request_host(req.uri(), req.headers()).unwrap_or_default();
    let host = if host.contains(':') && !host.starts_with('[') {
        // A bare IPv6 literal from the URI.
        format!("[{host}]")
    } else {
        host.into_owned()
    };
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = if port == 443 {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}:{port}{path}")
    };
    let mut response = crate::pages::page(
        StatusCode::PERMANENT_REDIRECT,
        &format!("This site is served over HTTPS: {location}"),
    );
    if let Ok(value) = http::HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Counts a request as abandoned if its future is dropped (the client went away) before a response.
struct Abandoned<'a>(Option<&'a Arc<App>>);

impl Abandoned<'_> {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for Abandoned<'_> {
    fn drop(&mut self) {
        if let Some(app) = self.0 {
            app.metrics.record_abandoned();
        }
    }
}

/// Phase 1: which app the request is for.
fn route(router: &Router, req: &Request<Incoming>) -> Result<Arc<App>, ProxyError> {
    let host = request_host(req.uri(), req.headers())?;
    router.lookup(&host).ok_or_else(|| ProxyError::UnknownHost {
        host: host.into_owned(),
    })
}

async fn proxy(
    shared: &Shared,
    app: &Arc<App>,
    client: &Peer,
    proto: &'static str,
    mut req: Request<Incoming>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let config = &shared.config;
    // Phase 2: limits and headers.
    let limit = config.max_body_size;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(ProxyError::BodyTooLarge { limit });
    }
    let upgrade = wants_upgrade(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    let class = classify(&shared.router, app, &mut parts);
    app.metrics.record_class(class);
    // The predictive keep-alive learns the idle periods of visitors only: an uptime checker
    // or the app's own schedule must not teach it to keep the app up.
    if class.keeps_awake() {
        app.metrics.idle.record(tokio::time::Instant::now());
    }
    // Taken before the hop-by-hop pass; route() checked it is there and valid.
    let host = routed_host(&parts.uri, &parts.headers).ok_or(HostError::Invalid)?;
    remove_hop_by_hop(&mut parts.headers, upgrade);
    set_forwarding(&mut parts.headers, client, host, proto);
    if parts.uri.scheme().is_some() {
        parts.uri = origin_form(&parts.uri);
    }
    parts.version = Version::HTTP_11;
    let mut req = Request::from_parts(parts, RequestBody::new(body, limit));

    // Phases 3 and 4: select an instance (or wait for one) and send, retrying
    // only requests that never reached an app.
    let mut cold_since: Option<Instant> = None;
    let mut counted = false;
    // Cold or warm is decided by the first attempt: did it have to wait for a start?
    let mut count = |cold_since: Option<Instant>| {
        if !std::mem::replace(&mut counted, true) {
            match cold_since {
                Some(since) => app.metrics.record_cold(since.elapsed()),
                None => app.metrics.record_warm(),
            }
        }
    };
    let mut starts = 0;
    let mut failures = 0;
    loop {
        let Some(instance) = app.pick() else {
            let since = *cold_since.get_or_insert_with(Instant::now);
            if starts > config.max_retries {
                count(Some(since));
                return Err(ProxyError::Unreachable {
                    app: app.name.clone(),
                    attempts: failures,
                    last: "no instance became ready".into(),
                });
            }
            starts += 1;
            let waited =
                wait_for_instance(app, shared.router.launcher(), shared.router.events()).await;
            // A request the full queue turned away did not wait: it counts as rejected only.
            if waited
                .as_ref()
                .is_err_and(|e| !matches!(e, ProxyError::QueueFull { .. }))
            {
                count(Some(since));
            }
            waited?;
            continue;
        };
        count(cold_since);
        let in_flight = InFlight::new(instance.clone(), class);
        if instance.state() != InstanceState::Ready {
            // Drained between the pick and the count: the drainer may already
            // have seen it idle, so this request must go elsewhere.
            continue;
        }
        let sent_at = Instant::now();
        match send(&instance, req, config).await {
            Ok((response, conn)) => {
                app.metrics.record_upstream(sent_at.elapsed());
                return Ok(respond(response, conn, in_flight, client_upgrade));
            }
            Err(SendError::NotSent { request, error }) => {
                failures += 1;
                if app.remove(&instance.id).is_some() {
                    tracing::warn!(app = %app.name, instance = %instance.id, %error, "instance unreachable; removed from routing");
                    shared
                        .router
                        .events()
                        .on_event(ProxyEvent::InstanceUnreachable {
                            app: app.name.clone(),
                            instance_id: instance.id.clone(),
                            addr: instance.addr,
                            error: error.clone(),
                        });
                }
                if failures > config.max_retries {
                    return Err(ProxyError::Unreachable {
                        app: app.name.clone(),
                        attempts: failures,
                        last: error,
                    });
                }
                app.metrics.record_retry();
                req = *request;
            }
            Err(SendError::Failed(error)) => {
                return Err(match body_error(&error) {
                    Some(BodyError::TooLarge { limit }) => {
                        ProxyError::BodyTooLarge { limit: *limit }
                    }
                    // The client's body broke (a bad chunk size, cut short): its fault, 400.
                    Some(BodyError::Client(e)) => ProxyError::BadBody(e.to_string()),
                    _ => ProxyError::Upstream(error),
                });
            }
            Err(SendError::Timeout(after)) => return Err(ProxyError::UpstreamTimeout(after)),
        }
    }
}

/// Who the request is for, as far as keeping the app awake goes (see
/// [`hako_policy::wake::classify`]): a scheduled run when it carries the daemon's schedule
/// token (the header is removed either way: apps never see it, and without the token a
/// client cannot pass for a scheduled run), else an ignored client by the app's list, else a
/// visitor.
fn classify(
    router: &Router,
    app: &App,
    parts: &mut http::request::Parts,
) -> hako_policy::wake::RequestClass {
    let token = parts.headers.remove(crate::router::SCHEDULE_HEADER);
    let scheduled = match (token, router.schedule_token()) {
        (Some(sent), Some(ours)) => sent.as_bytes() == ours.as_bytes(),
        _ => false,
    };
    let ignored = app.ignored();
    if !scheduled && ignored.is_empty() {
        return hako_policy::wake::RequestClass::Visitor;
    }
    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    hako_policy::wake::classify(user_agent, parts.uri.path(), scheduled, &ignored)
}

fn origin_form(uri: &Uri) -> Uri {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    path.parse().unwrap_or_else(|_| Uri::from_static("/"))
}

fn body_error(error: &hyper::Error) -> Option<&BodyError> {
    let mut source = std::error::Error::source(error);
    while let Some(err) = source {
        if let Some(body) = err.downcast_ref::<BodyError>() {
            return Some(body);
        }
        source = err.source();
    }
    None
}

/// How sending to one instance failed.
enum SendError {
    /// Nothing reached the app; the request comes back for another try.
    NotSent {
        request: Box<Request<RequestBody>>,
        error: String,
    },
    /// The request was (maybe partly) sent; it must not be retried.
    Failed(hyper::Error),
    /// No response head within the timeout.
    Timeout(Duration),
}

/// Phase 4: send on a pooled connection (a stale one is replaced by a fresh
/// one to the same instance) or a new one.
async fn send(
    instance: &Instance,
    mut req: Request<RequestBody>,
    config: &ProxyConfig,
) -> Result<(Response<Incoming>, Sender), SendError> {
    loop {
        let (mut conn, reused) = match instance.pool.take() {
            Some(conn) => (conn, true),
            None => match connect(instance.addr, config.upstream_connect_timeout).await {
                Ok(conn) => (conn, false),
                Err(error) => {
                    return Err(SendError::NotSent {
                        request: Box::new(req),
                        error: error.to_string(),
                    });
                }
            },
        };
        let timeout = config.upstream_response_timeout;
        match tokio::time::timeout(timeout, conn.try_send_request(req)).await {
            Err(_) => return Err(SendError::Timeout(timeout)),
            Ok(Ok(response)) => return Ok((response, conn)),
            Ok(Err(mut error)) => match error.take_message() {
                Some(request) if reused => req = request,
                Some(request) => {
                    return Err(SendError::NotSent {
                        request: Box::new(request),
                        error: error.into_error().to_string(),
                    });
                }
                None => return Err(SendError::Failed(error.into_error())),
            },
        }
    }
}

/// Phase 5: the client's response; after a 101 the two upgraded connections
/// are joined by a tunnel task that counts as an upgraded connection.
fn respond(
    mut response: Response<Incoming>,
    conn: Sender,
    in_flight: InFlight,
    client_upgrade: Option<OnUpgrade>,
) -> Response<ProxyBody> {
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            return error_response(&ProxyError::UnexpectedUpgrade, 0);
        };
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        let guard = Upgraded::new(in_flight.instance().clone(), in_flight.class());
        drop(in_flight);
        tokio::spawn(tunnel(client_upgrade, upstream_upgrade, guard));
        let (mut parts, _) = response.into_parts();
        remove_hop_by_hop(&mut parts.headers, true);
        return Response::from_parts(parts, ProxyBody::empty());
    }
    let (mut parts, body) = response.into_parts();
    remove_hop_by_hop(&mut parts.headers, false);
    if parts.version != Version::HTTP_11 {
        parts.version = Version::HTTP_11;
    }
    Response::from_parts(parts, ProxyBody::upstream(body, Some(conn), in_flight))
}

async fn tunnel(client: OnUpgrade, upstream: OnUpgrade, _guard: Upgraded) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(pair) => pair,
        Err(error) => {
            tracing::debug!(%error, "upgrade did not complete");
            return;
        }
    };
    let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
    if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!(%error, "upgraded connection ended with an error");
    }
}
