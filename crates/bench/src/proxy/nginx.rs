//! The baseline: Debian's nginx as a reverse proxy to the same backend as hako, with a temp
//! config (`worker_processes 2`: as many workers as hako serve's proxy has threads, one
//! per core here; upstream keepalive; the same forwarding headers hako sets for an
//! untrusted client — X-Forwarded-For/-Proto/-Host, X-Real-IP, Forwarded; no access log),
//! run in the foreground as a guarded child.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use rustix::process::Signal;

use super::process::Guarded;
use crate::http;

/// The nginx.conf for a proxy on `listen` to `backend`, keeping its files under `dir`.
pub fn config(dir: &Path, listen: SocketAddr, backend: SocketAddr, workers: usize) -> String {
    let d = dir.display();
    format!(
        "# hako bench proxy: nginx baseline
daemon off;
master_process on;
worker_processes {workers};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream hako_bench_backend {{
        server {backend};
        keepalive 128;
    }}
    server {{
        listen {listen};
        location / {{
            proxy_pass http://hako_bench_backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header Forwarded \"for=$remote_addr;host=$host;proto=$scheme\";
        }}
    }}
}}
"
    )
}

/// Writes the config into `dir`, starts nginx and waits (polling) until it proxies a 200.
pub fn start(
    dir: &Path,
    listen: SocketAddr,
    backend: SocketAddr,
    workers: usize,
) -> anyhow::Result<Guarded> {
    std::fs::create_dir_all(dir)?;
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, config(dir, listen, backend, workers))?;
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(dir.join("error.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot run nginx: install it (apt-get install nginx-light)")?;
    // SIGQUIT: graceful shutdown of master and workers.
    let mut g = Guarded::new("nginx", child, Signal::QUIT);
    http::wait_for_200(listen, Instant::now() + Duration::from_secs(10)).with_context(|| {
        let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
        format!(
            "nginx does not answer on {listen}; its error log: {}",
            log.trim()
        )
    })?;
    g.check_running()?;
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_proxies_with_upstream_keepalive() {
        let c = config(
            Path::new("/tmp/x"),
            "127.0.0.1:8081".parse().unwrap(),
            "10.1.2.3:8080".parse().unwrap(),
            2,
        );
        assert!(c.contains("worker_processes 2;"));
        assert!(c.contains("server 10.1.2.3:8080;"));
        assert!(c.contains("keepalive 128;"));
        assert!(c.contains("listen 127.0.0.1:8081;"));
        assert!(c.contains("proxy_http_version 1.1;"));
        assert!(c.contains("proxy_set_header Connection \"\";"));
        assert!(c.contains("pid /tmp/x/nginx.pid;"));
        assert_eq!(c.matches('{').count(), c.matches('}').count());
    }

    #[test]
    fn nginx_proxies_to_a_backend_and_stops() {
        crate::tools::require(&[("nginx", "nginx-light")]).unwrap();
        let backend = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let backend_addr = backend.local_addr().unwrap();
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            for s in backend.incoming() {
                let Ok(mut s) = s else { break };
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf);
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            }
        });
        let dir = tempfile::Builder::new()
            .prefix("hako-bench-nginx-test")
            .tempdir()
            .unwrap();
        let listen: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let g = start(dir.path(), listen, backend_addr, 1).unwrap();
        let pid_file = dir.path().join("nginx.pid");
        assert!(pid_file.exists());
        drop(g);
        assert!(
            std::net::TcpStream::connect(listen).is_err(),
            "nginx still listens after the guard dropped"
        );
    }
}
