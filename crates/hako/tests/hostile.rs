//! Issue 13's findings through a real `hako serve` configured by a file: the trust rule for
//! forwarded headers reaches the proxy, a release over `release_max_size` is refused with 413
//! and leaves the app's release as it was, and a bad trust entry stops the daemon from
//! starting with a usage error.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

/// One raw request through the proxy; the body of the answer.
fn raw(proxy: &std::net::SocketAddr, request: &str) -> String {
    let mut s = std::net::TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut r = String::new();
    let _ = s.read_to_string(&mut r);
    r
}

#[test]
fn serve_config_bounds_releases_and_sets_the_trust_rule() {
    let env = common::Env::new();
    let site = env.path("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(
        site.join("index.php"),
        "<?php echo ($_SERVER['HTTP_HOST'] ?? '-'), '|', ($_SERVER['HTTP_X_FORWARDED_HOST'] ?? '-'), '|', ($_SERVER['HTTP_X_FORWARDED_FOR'] ?? '-');",
    )
    .unwrap();
    assert_eq!(env.run(&["image", "host", "base"]).code, 0);
    let config = env.path("serve.toml");
    std::fs::write(
        &config,
        "release_max_size = \"1MiB\"\ntrusted_proxies = [\"127.0.0.1\"]\n",
    )
    .unwrap();
    let d = common::Serve::builder(common::HAKO)
        .data_dir(env.data_dir())
        .args(&["--config", config.to_str().unwrap()])
        .start()
        .unwrap_or_else(|e| panic!("{e}"));
    d.ok(&[
        "app",
        "create",
        "site",
        "--host",
        "site.example",
        "--image",
        "base",
        "--code",
        site.to_str().unwrap(),
        "--cmd",
        "php -S 0.0.0.0:$PORT -t /app",
        "--stop-signal",
        "INT",
    ]);
    // The test is a trusted front proxy here: its forwarding headers are kept and extended;
    // the Host is still the one the request was routed by (the absolute-form target's).
    let reply = raw(
        &d.proxy,
        "GET http://site.example/ HTTP/1.0\r\nHost: evil.example\r\nX-Forwarded-Host: www.site.example\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n",
    );
    assert!(
        reply.ends_with("site.example|www.site.example|203.0.113.9, 127.0.0.1"),
        "{reply}"
    );
    // A release over the bound: 413 (a usage error for the CLI), the app keeps release 1.
    let big = env.path("big");
    std::fs::create_dir_all(&big).unwrap();
    std::fs::write(big.join("index.php"), vec![b' '; 2 << 20]).unwrap();
    let out = d.hako(&["app", "deploy", "site", "--code", big.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("release_max_size"), "{out:?}");
    let app: serde_json::Value =
        serde_json::from_str(&d.ok(&["app", "show", "site", "--json"])).unwrap();
    assert_eq!(app["app"]["release"], 1, "{app}");
    assert!(
        raw(&d.proxy, "GET / HTTP/1.0\r\nHost: site.example\r\n\r\n").contains("site.example|")
    );
    d.stop();
}

#[test]
fn a_bad_trusted_proxy_is_a_usage_error_before_serving() {
    let env = common::Env::new();
    let out = env.run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--trusted-proxy",
        "10.0.0.1/8",
    ]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("10.0.0.1/8") && out.stderr.contains("CIDR"),
        "{out:?}"
    );
}
