//! hako's proxy in front of a trivial hyper backend, for benchmarking with wrk.
//!
//! ```text
//! bench_proxy backend [--listen 127.0.0.1:9000]                 # only the backend
//! bench_proxy proxy [--listen 127.0.0.1:8080] --backend ADDR    # only the proxy
//! bench_proxy [--listen 127.0.0.1:8080]                         # both, one process
//! wrk -t2 -c64 -d10s -H 'Host: bench.local' http://127.0.0.1:8080/
//! ```
//! The backend answers every request with `200 hello world`. The proxy routes
//! `Host: bench.local` to it (app `bench`, instance `bench-1`). Ctrl-C stops it
//! and prints the app's request metrics as JSON.

use bytes::Bytes;
use hako_proxy::{AppRoute, LogEvents, NoLauncher, Proxy, ProxyConfig, Router};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

fn flag(args: &[String], name: &str) -> Option<SocketAddr> {
    let at = args.iter().position(|a| a == name)?;
    let value = args
        .get(at + 1)
        .unwrap_or_else(|| panic!("{name} needs an address"));
    Some(
        value
            .parse()
            .unwrap_or_else(|e| panic!("{name} {value}: {e}")),
    )
}

async fn backend(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(|_req| async {
                Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                    b"hello world",
                ))))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args
        .first()
        .map(String::as_str)
        .filter(|m| !m.starts_with("--"))
        .unwrap_or("both");
    match mode {
        "backend" => {
            let listen =
                flag(&args, "--listen").unwrap_or_else(|| "127.0.0.1:9000".parse().unwrap());
            let listener = TcpListener::bind(listen).await?;
            println!("backend: {}", listener.local_addr()?);
            backend(listener).await;
            Ok(())
        }
        "proxy" | "both" => {
            let backend_addr = match flag(&args, "--backend") {
                Some(addr) => addr,
                None if mode == "both" => {
                    let listener = TcpListener::bind("127.0.0.1:0").await?;
                    let addr = listener.local_addr()?;
                    tokio::spawn(backend(listener));
                    addr
                }
                None => anyhow::bail!("proxy mode needs --backend ADDR"),
            };
            let listen =
                flag(&args, "--listen").unwrap_or_else(|| "127.0.0.1:8080".parse().unwrap());
            let router = Router::new(Arc::new(NoLauncher), Arc::new(LogEvents));
            router.set_app(AppRoute::new("bench", ["bench.local"]))?;
            router.add_ready("bench", "bench-1", backend_addr)?;
            let proxy = Proxy::new(router.clone(), ProxyConfig::default());
            let listener = TcpListener::bind(listen).await?;
            println!("backend: {backend_addr}");
            println!("proxy: {} (Host: bench.local)", listener.local_addr()?);
            proxy
                .serve(listener, async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await;
            println!(
                "{}",
                serde_json::to_string_pretty(&router.metrics("bench")?)?
            );
            Ok(())
        }
        other => anyhow::bail!("unknown mode {other:?}; use backend, proxy or nothing"),
    }
}
