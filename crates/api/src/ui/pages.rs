//! The dashboard's pages: the overview (every app the caller may see, with its state, cold
//! ratio and requests of the last hour) and one app's page (its settings, instances, charts,
//! events and logs). Both refresh themselves every few seconds.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use hako_model::{App, Event, InstanceInfo, InstanceState, now_unix_ms};
use maud::{DOCTYPE, Markup, html};

use super::{chart, format, html};
use crate::action::{Action, Reply, check_name};
use crate::caller::Caller;
use crate::error::ApiError;
use crate::series::Series;
use crate::server::Shared;

/// Seconds between a page's reloads.
const REFRESH_S: u32 = 5;
/// Events shown on an app's page.
const EVENTS_SHOWN: usize = 50;
/// Log bytes shown on an app's page.
const LOG_BYTES: usize = 16 << 10;

/// What one app's row and page read of its measurements.
struct Figures {
    /// Requests that waited for a start, and all requests, since the daemon started.
    cold: u64,
    requests: u64,
    /// Median start time, if any start was measured.
    start_p50_ms: Option<f64>,
    /// Containers parked in the warm pool.
    parked: u64,
    series: Series,
}

impl Figures {
    async fn of(shared: &Shared, app: &str) -> Figures {
        let backend = shared.engine.backend();
        let m = backend.metrics(app).await.unwrap_or_default();
        let n = |k: &str| m.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
        let start_count = m.pointer("/start/count").and_then(|v| v.as_u64());
        Figures {
            cold: n("cold"),
            requests: n("cold") + n("warm"),
            start_p50_ms: start_count
                .filter(|c| *c > 0)
                .and_then(|_| m.pointer("/start/p50_ms").and_then(|v| v.as_f64())),
            parked: n("warm_pool_parked"),
            series: backend.series(app).await.unwrap_or_default(),
        }
    }

    fn cold_ratio(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.cold as f64 / self.requests as f64)
    }
}

/// `GET /ui/`: the apps the caller sees (the session middleware found the caller).
pub(crate) async fn overview(State(shared): State<Arc<Shared>>, caller: Caller) -> Response {
    match overview_page(&shared, &caller).await {
        Ok(page) => html(StatusCode::OK, page),
        Err(e) => error_page(&e),
    }
}

async fn overview_page(shared: &Shared, caller: &Caller) -> Result<Markup, ApiError> {
    let apps = shared.engine.visible_apps(caller).await?;
    let mut instances: BTreeMap<String, Vec<InstanceInfo>> = BTreeMap::new();
    for i in shared.engine.backend().instances(None).await {
        instances.entry(i.app.clone()).or_default().push(i);
    }
    let mut rows = Vec::new();
    for app in &apps {
        let figures = Figures::of(shared, &app.spec.name).await;
        let mine = instances.remove(&app.spec.name).unwrap_or_default();
        rows.push((app, mine, figures));
    }
    let capacity = caller
        .sees_node()
        .then(|| shared.engine.backend().capacity());
    let running: usize = rows.iter().map(|(_, i, _)| i.len()).sum();
    let body = html! {
        h1 { "Apps" }
        @if let Some(c) = capacity {
            p.node {
                "This node: " (c.cpus) " CPUs, "
                (hako_model::ByteSize(c.memory_bytes)) " of memory for instances; "
                (running) " instances running."
            }
        }
        @if rows.is_empty() {
            p { "No apps yet: create one with " code { "hako app create" } "." }
        } @else {
            table #apps {
                thead { tr {
                    th { "App" } th { "Hosts" } th { "Image" } th { "State" }
                    th.num { "Requests (1 h)" } th.num { "Cold ratio" } th.num { "Start p50" }
                    th.num { "Warm pool" }
                } }
                tbody {
                    @for (app, mine, f) in &rows {
                        tr data-app=(app.spec.name) {
                            td { a href=(format!("/ui/apps/{}", app.spec.name)) { (app.spec.name) } }
                            td { (app.spec.hosts.join(", ")) }
                            td { (app.spec.image.to_string()) }
                            td { (state_words(mine)) }
                            td.num { (f.series.requests()) }
                            td.num { (f.cold_ratio().map(format::percent).unwrap_or_else(|| "–".into())) }
                            td.num { (f.start_p50_ms.map(format::ms).unwrap_or_else(|| "–".into())) }
                            td.num { (f.parked) }
                        }
                    }
                }
            }
        }
    };
    Ok(shell("Apps", body))
}

/// `GET /ui/apps/NAME`: one app, if the caller sees it (404 otherwise, as for no app).
pub(crate) async fn app(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Response {
    let page = async {
        let name = check_name(&name)?;
        let app = shared.engine.visible_app(&caller, &name).await?;
        app_page(&shared, &caller, &app).await
    };
    match page.await {
        Ok(page) => html(StatusCode::OK, page),
        Err(e) => error_page(&e),
    }
}

async fn app_page(shared: &Shared, caller: &Caller, app: &App) -> Result<Markup, ApiError> {
    let name = &app.spec.name;
    let backend = shared.engine.backend();
    let instances = backend.instances(Some(name)).await;
    let f = Figures::of(shared, name).await;
    // As the caller: a tenant reads its app's events from the app's creation on.
    let mut events = match shared
        .engine
        .execute_as(
            caller,
            Action::Events {
                name: name.clone(),
                limit: EVENTS_SHOWN,
            },
        )
        .await?
    {
        Reply::Events(e) => e,
        _ => Vec::new(),
    };
    events.reverse();
    let logs = backend.logs(name, LOG_BYTES).await;
    let now_ms = now_unix_ms();
    let s = &app.spec;
    let body = html! {
        h1 { (name) }
        dl.settings {
            dt { "Hosts" } dd { (s.hosts.join(", ")) }
            dt { "Image" } dd { (s.image.to_string()) }
            dt { "Release" } dd { (app.release.map(|r| r.to_string()).unwrap_or_else(|| "none".into())) }
            dt { "Memory" } dd { (s.memory) }
            dt { "CPU" } dd { (s.cpu.map(|c| format!("{c} cores")).unwrap_or_else(|| "no limit".into())) }
            dt { "Instances" } dd { (s.min) " to " (s.max) }
            dt { "Idle timeout" } dd { (s.idle_timeout) }
        }
        section.figures {
            div { span.big { (f.cold_ratio().map(format::percent).unwrap_or_else(|| "–".into())) }
                  " of " (plural(f.requests, "request")) " waited for a start (since hako started)" }
            div { span.big { (f.series.cold_ratio().map(format::percent).unwrap_or_else(|| "–".into())) }
                  " in the last hour (" (plural(f.series.requests(), "request")) ")" }
            div { span.big { (f.start_p50_ms.map(format::ms).unwrap_or_else(|| "–".into())) }
                  " median start time" }
        }
        section.charts {
            (chart::bars("Requests per minute", &f.series.minutes, |m| Some(m.requests as f64), "req/min"))
            (chart::bars("Mean start time per minute", &f.series.minutes, |m| m.mean_start_ms(), "ms"))
        }
        h2 { "Instances" }
        @if instances.is_empty() {
            p #no-instances { "None running: the next request starts one." }
        } @else {
            table #instances {
                thead { tr {
                    th { "Instance" } th { "State" } th { "Started" } th.num { "Age" }
                    th { "Image" } th.num { "Release" } th.num { "Ready after" }
                } }
                tbody {
                    @for i in &instances {
                        tr {
                            td { code { (i.id) } }
                            td { (state_word(i.state)) }
                            td { (i.start_path.to_string()) }
                            td.num { (format::age(now_ms.saturating_sub(i.started_unix_ms) / 1000)) }
                            td { (i.image) }
                            td.num { (i.release.map(|r| r.to_string()).unwrap_or_else(|| "–".into())) }
                            td.num { (i.ready_ms.map(format::ms).unwrap_or_else(|| "–".into())) }
                        }
                    }
                }
            }
        }
        h2 { "Events" }
        @if events.is_empty() {
            p { "No events yet." }
        } @else {
            table #events {
                thead { tr { th { "Time (UTC)" } th { "Event" } th { "Instance" } th { "Why" } } }
                tbody {
                    @for e in &events {
                        (event_row(e))
                    }
                }
            }
        }
        h2 { "Logs" }
        @if logs.is_empty() {
            p { "Nothing written yet." }
        } @else {
            pre #logs { (logs) }
        }
    };
    Ok(shell(name, body))
}

fn event_row(e: &Event) -> Markup {
    let kind = serde_json::to_value(e.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    html! {
        tr.event data-kind=(kind) {
            td { (format::utc(e.time_unix_ms)) }
            td { (kind.replace('_', " ")) }
            td { @if let Some(i) = &e.instance { code { (i) } } }
            td {
                (e.reason)
                @if let Some(tail) = e.log_tail.as_ref().filter(|t| !t.is_empty()) {
                    details { summary { "log" } pre { (tail) } }
                }
            }
        }
    }
}

/// `1 request`, `2 requests`.
fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// An app's state in words, from its instances.
fn state_words(instances: &[InstanceInfo]) -> String {
    if instances.is_empty() {
        return "idle".into();
    }
    let count = |s| instances.iter().filter(|i| i.state == s).count();
    let parts: Vec<String> = [
        (InstanceState::Ready, "ready"),
        (InstanceState::Starting, "starting"),
        (InstanceState::Draining, "draining"),
    ]
    .into_iter()
    .filter_map(|(s, w)| {
        let n = count(s);
        (n > 0).then(|| format!("{n} {w}"))
    })
    .collect();
    parts.join(", ")
}

fn state_word(s: InstanceState) -> &'static str {
    match s {
        InstanceState::Starting => "starting",
        InstanceState::Ready => "ready",
        InstanceState::Draining => "draining",
    }
}

/// A page around `body`: head, navigation, the logout button.
fn shell(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta http-equiv="refresh" content=(REFRESH_S);
                title { (title) " — hako" }
                link rel="stylesheet" href="/ui/style.css";
            }
            body {
                header {
                    a.brand href="/ui/" { "hako" }
                    nav { a href="/ui/" { "Apps" } }
                    form method="post" action="/ui/logout" { button type="submit" { "Log out" } }
                }
                main { (body) }
            }
        }
    }
}

/// An error as a page, with the API's status.
fn error_page(e: &ApiError) -> Response {
    let body = html! {
        h1 { "Not shown" }
        p.error { (e.to_string()) }
        p { a href="/ui/" { "Back to the apps" } }
    };
    let status = e.status();
    let status = if status == StatusCode::UNAUTHORIZED {
        StatusCode::FORBIDDEN
    } else {
        status
    };
    html(status, shell("Not shown", body))
}
