//! hako's HTTP API server and its client.
//!
//! The server ([`router`]) speaks JSON under `/v1`: apps (create, list, show, update,
//! delete), code releases (upload a tar/tar.gz or name a directory), rollout, events,
//! instances, metrics and logs (also followed, as server-sent events), certificates,
//! checkpoints, the service level of a live app ([`slo`]), and tenants with their tokens and
//! quotas. Every route under `/v1` but `/v1/health` needs a token as
//! `Authorization: Bearer <token>`: the admin token ([`token::load_or_create`]) or a tenant's,
//! which sees only its tenant's apps.
//! Every error is `{"error": "…"}` with a fitting status. `GET /metrics` serves the Prometheus
//! text format to the admin token, the metrics token ([`token::load_or_create_metrics`]) or a
//! tenant's (its own apps), and `/ui/` is the dashboard ([`ui`]). Every route is in one table
//! with who may call it ([`routes()`]). Who a token belongs to is a [`Caller`] ([`caller`]: the
//! auth model); what it may see is decided in one place, [`Caller::can_see`]. Each request is
//! parsed into an [`Action`] that the [`Engine`] carries out as the request's [`Caller`]:
//! desired state goes to the store, which the daemon watches; what needs the node goes through
//! the daemon's [`Backend`].
//!
//! The blocking [`Client`] is what the CLI uses.
//!
//! ```no_run
//! # async fn serve(store: std::sync::Arc<dyn hako_store::Store>,
//! #                backend: std::sync::Arc<dyn hako_api::Backend>) -> std::io::Result<()> {
//! let token = hako_api::token::load_or_create(std::path::Path::new("/var/lib/hako"))?;
//! let app = hako_api::router(hako_api::ApiState::new(store, backend, token));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:7070").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod action;
pub mod backend;
pub mod caller;
pub mod client;
pub mod engine;
pub mod error;
pub mod pack;
pub mod series;
pub mod server;
pub mod slo;
pub mod token;
pub mod ui;

pub use action::{Action, DatabaseOnDelete, Reply};
pub use backend::{Backend, BackendError, LogFollow, LogPiece, ReleaseSource};
pub use caller::{Authenticator, Caller, Scope};
pub use client::{AppPatch, Client, ClientError};
pub use engine::Engine;
pub use error::ApiError;
pub use server::{Access, ApiState, DEFAULT_MAX_UPLOAD, RouteInfo, router, router_with, routes};
