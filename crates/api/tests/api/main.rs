//! The API over a real socket: the blocking client and raw requests against a server with an
//! in-memory store and a fake backend.

mod apps;
mod auth;
mod certs;
mod databases;
mod events;
mod garbage;
mod harness;
mod isolation;
mod limits;
mod live;
mod malformed;
mod quotas;
mod releases;
mod slo;
mod tenants;
mod ui;
mod vocabulary;
