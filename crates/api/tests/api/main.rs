//! The API over a real socket: the blocking client and raw requests against a server with an
//! in-memory store and a fake backend.

mod apps;
mod auth;
mod certs;
mod databases;
mod events;
mod garbage;
mod harness;
mod limits;
mod live;
mod malformed;
mod releases;
mod slo;
mod ui;
mod vocabulary;
