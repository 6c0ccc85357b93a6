//! hako's proxy in front of a trivial hyper backend, for benchmarking with wrk.
//!
//! ```text
//! bench_proxy backend [--listen 127.0.0.1:9000]                  # only the backend
//! bench_proxy proxy [--listen 127.0.0.1:8080] --backend ADDR     # only the proxy
//!             [--per-core N]                                     # N single-threaded runtimes
//! bench_proxy [--listen 127.0.0.1:8080]                          # both, one process
//! wrk -t2 -c64 -d10s -H 'Host: bench.local' http://127.0.0.1:8080/
//! ```
//! The backend answers every request with `200 hello world`. The proxy routes
//! `Host: bench.local` to it (app `bench`, instance `bench-1`). Ctrl-C stops it
//! and prints the app's request metrics as JSON. Without `--per-core` the proxy
//! runs on tokio's multi-threaded runtime (one worker per core).

use bytes::Bytes;
use hako_proxy::{AppRoute, LogEvents, NoLauncher, Proxy, ProxyConfig, Router};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

fn flag<T: std::str::FromStr>(args: &[String], name: &str) -> anyhow::Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    let Some(at) = args.iter().position(|a| a == name) else {
        return Ok(None);
    };
    let value = args
        .get(at + 1)
        .ok_or_else(|| anyhow::anyhow!("{name} needs a value"))?;
    value
        .parse()
        .map(Some)
        .map_err(|e| anyhow::anyhow!("{name} {value}: {e}"))
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

fn bench_router(backend_addr: SocketAddr) -> anyhow::Result<Router> {
    let router = Router::new(Arc::new(NoLauncher), Arc::new(LogEvents));
    router.set_app(AppRoute::new("bench", ["bench.local"]))?;
    router.add_ready("bench", "bench-1", backend_addr)?;
    Ok(router)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args
        .first()
        .map(String::as_str)
        .filter(|m| !m.starts_with("--"))
        .unwrap_or("both");
    let listen: Option<SocketAddr> = flag(&args, "--listen")?;
    let runtime = tokio::runtime::Runtime::new()?;
    match mode {
        "backend" => runtime.block_on(async {
            let listener =
                TcpListener::bind(listen.unwrap_or(([127, 0, 0, 1], 9000).into())).await?;
            println!("backend: {}", listener.local_addr()?);
            backend(listener).await;
            Ok(())
        }),
        "proxy" | "both" => {
            let backend_addr = match flag::<SocketAddr>(&args, "--backend")? {
                Some(addr) => addr,
                None if mode == "both" => runtime.block_on(async {
                    let listener = TcpListener::bind("127.0.0.1:0").await?;
                    let addr = listener.local_addr()?;
                    tokio::spawn(backend(listener));
                    anyhow::Ok(addr)
                })?,
                None => anyhow::bail!("proxy mode needs --backend ADDR"),
            };
            let listen = listen.unwrap_or(([127, 0, 0, 1], 8080).into());
            let router = bench_router(backend_addr)?;
            let proxy = Proxy::new(router.clone(), ProxyConfig::default());
            println!("backend: {backend_addr}");
            match flag::<usize>(&args, "--per-core")? {
                Some(threads) => {
                    let server = proxy.bind_per_core(listen, threads)?;
                    println!(
                        "proxy: {} (Host: bench.local, {threads} threads)",
                        server.local_addr()
                    );
                    let (stop, stopped) = tokio::sync::watch::channel(false);
                    runtime.spawn(async move {
                        let _ = tokio::signal::ctrl_c().await;
                        stop.send_replace(true);
                    });
                    server.run(stopped)?;
                }
                None => runtime.block_on(async {
                    let listener = TcpListener::bind(listen).await?;
                    println!("proxy: {} (Host: bench.local)", listener.local_addr()?);
                    let stopped = async {
                        let _ = tokio::signal::ctrl_c().await;
                    };
                    proxy.serve(listener, stopped).await;
                    anyhow::Ok(())
                })?,
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&router.metrics("bench")?)?
            );
            Ok(())
        }
        other => anyhow::bail!("unknown mode {other:?}; use backend, proxy or nothing"),
    }
}
