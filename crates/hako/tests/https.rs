//! HTTPS end to end, as a user runs it: `hako serve --https` with `[acme]` pointed at Debian's
//! `pebble` (Let's Encrypt's ACME test server) on loopback. An app with `--acme` gets a
//! certificate through real HTTP-01 validation (pebble connects to hako's HTTP port and reads
//! the challenge answer), a real TLS client fetches the site with SNI — HTTP/2 by ALPN, and
//! HTTP/1.1 — and the short-lived certificate is renewed for real at 2/3 of its lifetime. An
//! uploaded certificate is served for its host and bad uploads are refused; unknown names get
//! a TLS alert; the redirect and HSTS work. Needs root (real containers) and pebble.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use hako_model::EventKind;
use hako_testkit::https::{self, Protocol};
use hako_testkit::pebble;
use hako_testkit::pki::TestCa;

/// Lifetime of pebble's certificates here: short enough to see a renewal (at 2/3: 20 s).
const VALIDITY: Duration = Duration::from_secs(30);

#[test]
fn acme_certificates_from_pebble_are_served_over_h2_and_renewed() {
    common::require_root();
    let tmp = tempfile::Builder::new()
        .prefix("hako-https-")
        .tempdir()
        .unwrap();
    let setup = pebble::Setup::new().unwrap_or_else(|e| panic!("{e}"));
    let config = tmp.path().join("hako.toml");
    std::fs::write(
        &config,
        format!(
            "[acme]\ndirectory = \"{}\"\nemail = \"ops@hako.test\"\nca_file = \"{}\"\n",
            setup.directory,
            setup.ca_file.display()
        ),
    )
    .unwrap();
    let serve = common::Serve::builder(common::HAKO)
        .host_image("base")
        .args(&[
            "--https",
            "127.0.0.1:0",
            "--config",
            config.to_str().unwrap(),
        ])
        .start()
        .unwrap_or_else(|e| panic!("{e}"));
    let tls_addr = serve.https.expect("hako serve says where it serves HTTPS");
    // Pebble validates HTTP-01 against hako's real HTTP port.
    let pebble = setup
        .start(serve.proxy.port(), VALIDITY)
        .unwrap_or_else(|e| panic!("{e}"));
    let code = hako_testkit::site::static_code(&tmp.path().join("site"), "secure hello\n");
    serve.ok(&[
        "app",
        "create",
        "site",
        "--host",
        "site.hako.test",
        "--image",
        "base",
        "--code",
        code.to_str().unwrap(),
        "--cmd",
        hako_testkit::site::STATIC_CMD,
        "--acme",
    ]);
    let client = serve.client();
    let first = wait_for_cert(&client, "site", None);
    assert_eq!(first.source, hako_tls::CertSource::Acme);
    assert_eq!(first.names, ["site.hako.test"]);
    let root = pebble.issuing_root().unwrap_or_else(|e| panic!("{e}"));

    // A real TLS client with pebble's root and SNI: HTTP/2 by ALPN, and HTTP/1.1.
    let h2 = https::get(tls_addr, "site.hako.test", "/", &root, Protocol::H2).unwrap();
    assert_eq!(
        (h2.status, h2.alpn.as_str(), h2.body.as_str()),
        (200, "h2", "secure hello\n")
    );
    assert_eq!(h2.version, http::Version::HTTP_2);
    let h1 = https::get(tls_addr, "site.hako.test", "/", &root, Protocol::Http1).unwrap();
    assert_eq!(
        (h1.status, h1.alpn.as_str(), h1.body.as_str()),
        (200, "http/1.1", "secure hello\n")
    );
    // What the API and the CLI show: issuer, names, expiry — never the key.
    let shown = serve.ok(&["app", "show", "site"]);
    assert!(shown.contains("certificate: ACME by Pebble"), "{shown}");
    assert!(shown.contains("site.hako.test, not after"), "{shown}");
    let json = serve.ok(&["app", "show", "site", "--json"]);
    assert!(
        !json.contains("PRIVATE KEY") && json.contains("\"not_after_unix\""),
        "{json}"
    );
    // A name nobody routes: a TLS alert, no default certificate.
    let err = https::get(tls_addr, "nobody.hako.test", "/", &root, Protocol::H2).unwrap_err();
    assert!(err.to_string().contains("AccessDenied"), "{err}");

    // Renewal for real: at 2/3 of the 30 s lifetime a new certificate replaces it.
    let renewed = wait_for_cert(&client, "site", Some(first.not_after_unix));
    assert!(
        renewed.not_before_unix >= first.not_before_unix,
        "{renewed:?}"
    );
    // The event follows the stored certificate.
    let issued: Vec<_> = retry(|| {
        let events = client.events("site", Some(50)).unwrap();
        let issued: Vec<_> = events
            .into_iter()
            .filter(|e| e.kind == EventKind::Certificate)
            .collect();
        (issued.len() >= 2).then_some(issued)
    });
    assert!(
        issued[0].reason.contains("no certificate yet"),
        "{}",
        issued[0].reason
    );
    assert!(
        issued[1].reason.contains("renewal: 2/3"),
        "{}",
        issued[1].reason
    );
    let again = https::get(tls_addr, "site.hako.test", "/", &root, Protocol::H2).unwrap();
    assert_eq!(again.status, 200);

    uploaded_certificates(&serve, tmp.path(), &code, tls_addr);
    serve.stop();
}

/// Uploads through `hako app cert`: served for their host; bad ones refused with what is
/// wrong; an ACME app refuses them; the redirect and HSTS.
fn uploaded_certificates(
    serve: &common::Serve,
    dir: &std::path::Path,
    code: &std::path::Path,
    tls_addr: std::net::SocketAddr,
) {
    serve.ok(&[
        "app",
        "create",
        "up",
        "--host",
        "up.hako.test",
        "--image",
        "base",
        "--code",
        code.to_str().unwrap(),
        "--cmd",
        hako_testkit::site::STATIC_CMD,
    ]);
    let ca = TestCa::new("hako upload test CA");
    let good = ca.issue(&["up.hako.test"]);
    let other_host = ca.issue(&["elsewhere.hako.test"]);
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let (cert, key) = (
        write("up.pem", &good.chain_pem),
        write("up.key", &good.key_pem),
    );
    let wrong_key = write("wrong.key", &other_host.key_pem);
    let wrong_cert = write("wrong.pem", &other_host.chain_pem);

    let out = serve.hako(&["app", "cert", "up", "--cert", &cert, "--key", &wrong_key]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.text().contains("does not belong to the certificate"),
        "{out:?}"
    );
    let out = serve.hako(&[
        "app",
        "cert",
        "up",
        "--cert",
        &wrong_cert,
        "--key",
        &wrong_key,
    ]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.text().contains("does not cover host \"up.hako.test\""),
        "{out:?}"
    );
    let out = serve.hako(&["app", "cert", "site", "--cert", &cert, "--key", &key]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.text().contains("--no-acme"), "{out:?}");

    let shown = serve.ok(&["app", "cert", "up", "--cert", &cert, "--key", &key]);
    assert!(
        shown.contains("uploaded by hako upload test CA for up.hako.test"),
        "{shown}"
    );
    // Served as soon as every node's store watch has it.
    let reply = retry(|| https::get(tls_addr, "up.hako.test", "/", &ca.pem, Protocol::H2).ok());
    assert_eq!((reply.status, reply.body.as_str()), (200, "secure hello\n"));
    assert!(reply.headers.get("strict-transport-security").is_none());

    // Redirect and HSTS.
    serve.ok(&["app", "update", "up", "--https-redirect", "--hsts", "1d"]);
    let head = retry(|| {
        let head = plain_head(serve.proxy, "up.hako.test", "/x?y=1");
        head.starts_with("HTTP/1.1 308").then_some(head)
    });
    let location = format!(
        "location: https://up.hako.test:{}/x?y=1\r\n",
        tls_addr.port()
    );
    assert!(head.contains(&location), "{head}");
    let reply = https::get(tls_addr, "up.hako.test", "/", &ca.pem, Protocol::Http1).unwrap();
    assert_eq!(reply.headers["strict-transport-security"], "max-age=86400");

    serve.ok(&["app", "cert", "up", "--remove"]);
    let err = retry(|| https::get(tls_addr, "up.hako.test", "/", &ca.pem, Protocol::H2).err());
    assert!(err.to_string().contains("AccessDenied"), "{err}");
}

/// The app's certificate once it exists (and, with `newer_than`, once its expiry is later).
/// Fails at once, with its reason, if an ACME attempt fails.
fn wait_for_cert(
    client: &hako_api::Client,
    app: &str,
    newer_than: Option<i64>,
) -> hako_tls::CertInfo {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(cert) = client.cert(app).unwrap()
            && newer_than.is_none_or(|t| cert.not_after_unix > t)
        {
            return cert;
        }
        let events = client.events(app, Some(50)).unwrap();
        if let Some(failed) = events
            .iter()
            .find(|e| e.kind == EventKind::CertificateFailed)
        {
            panic!("ACME failed: {}", failed.reason);
        }
        assert!(
            Instant::now() < deadline,
            "no certificate for {app}: {events:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls `f` (every 50 ms, up to 20 s) until it gives a value.
#[track_caller]
fn retry<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The status line and headers of a plain-HTTP GET.
fn plain_head(addr: std::net::SocketAddr, host: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_string()
        + "\r\n"
}
