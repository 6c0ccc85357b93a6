//! Certificates through the API: an upload is checked (key, hosts, validity) with a clear 400,
//! shown without its key, refused for an ACME app, removed, and gone with its app.

use hako_api::AppPatch;

use crate::harness::{Server, api_status, assert_error, spec};

/// A certificate for `names` from a fresh CA, valid from `from` to `to` seconds from now:
/// (chain PEM, key PEM).
pub(crate) fn issue(names: &[&str], from: i64, to: i64) -> (String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "api test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let now = std::time::SystemTime::now();
    let at = |s: i64| {
        if s >= 0 {
            now + std::time::Duration::from_secs(s as u64)
        } else {
            now - std::time::Duration::from_secs(s.unsigned_abs())
        }
    };
    params.not_before = at(from).into();
    params.not_after = at(to).into();
    let cert = params.signed_by(&key, &issuer).unwrap();
    (
        format!("{}{}", cert.pem(), ca_cert.pem()),
        key.serialize_pem(),
    )
}

#[test]
fn uploads_are_checked_shown_without_the_key_and_removed() {
    let server = Server::start();
    let client = server.client();
    let mut blog = spec("blog", "blog.example");
    blog.hosts.push("www.blog.example".into());
    client.create_app(&blog).unwrap();
    assert_eq!(client.cert("blog").unwrap(), None, "none yet");

    let (cert, key) = issue(&["blog.example", "*.blog.example"], -60, 86400);
    let (_, other_key) = issue(&["blog.example"], -60, 86400);
    let (narrow, narrow_key) = issue(&["blog.example"], -60, 86400);
    let (old, old_key) = issue(&["blog.example", "www.blog.example"], -7200, -3600);
    for (c, k, words) in [
        (&cert, &other_key, "does not belong to the certificate"),
        (
            &narrow,
            &narrow_key,
            "does not cover host \"www.blog.example\"",
        ),
        (&old, &old_key, "expired"),
        (&String::new(), &key, "no certificate found"),
        (&cert, &String::new(), "no private key found"),
    ] {
        let (status, message) = api_status(client.set_cert("blog", c, k).unwrap_err());
        assert_eq!(status, 400, "{message}");
        assert!(message.contains(words), "{message}");
    }
    let info = client.set_cert("blog", &cert, &key).unwrap();
    assert_eq!(info.names, ["blog.example", "*.blog.example"]);
    assert_eq!(info.issuer, "api test CA");
    assert_eq!(client.cert("blog").unwrap(), Some(info));

    // The key never comes back, on any route.
    let raw = server.raw();
    for path in ["/v1/apps/blog/cert", "/v1/apps/blog", "/v1/apps"] {
        let mut resp = raw
            .get(format!("{}{path}", server.url()))
            .header("Authorization", server.bearer())
            .call()
            .unwrap();
        let body = resp.body_mut().read_to_string().unwrap();
        assert!(!body.contains("PRIVATE KEY"), "{path}: {body}");
    }
    // A body that is not the upload's shape.
    assert_error(
        raw.put(format!("{}/v1/apps/blog/cert", server.url()))
            .header("Authorization", server.bearer())
            .header("Content-Type", "application/json")
            .send(r#"{"certificate": "x"}"#),
        400,
        "{\"cert\"",
    );

    // An ACME app takes no upload.
    let patch = AppPatch {
        acme: Some(true),
        ..AppPatch::default()
    };
    client.update_app("blog", &patch).unwrap();
    let (status, message) = api_status(client.set_cert("blog", &cert, &key).unwrap_err());
    assert_eq!(status, 409, "{message}");
    assert!(message.contains("--no-acme"), "{message}");

    client.remove_cert("blog").unwrap();
    assert_eq!(client.cert("blog").unwrap(), None);
    let (status, message) = api_status(client.remove_cert("blog").unwrap_err());
    assert_eq!(status, 404, "{message}");
    let (status, _) = api_status(client.cert("nope").unwrap_err());
    assert_eq!(status, 404);
    let events = client.events("blog", None).unwrap();
    let certs: Vec<_> = events
        .iter()
        .filter(|e| e.kind == hako_model::EventKind::Certificate)
        .map(|e| e.reason.as_str())
        .collect();
    assert_eq!(certs.len(), 2, "{certs:?}");
    assert!(certs[0].starts_with("certificate uploaded through the API: issued by api test CA"));
    assert!(certs[1].contains("ACME orders a new one"), "{}", certs[1]);
}

#[test]
fn a_deleted_app_takes_its_certificate_along() {
    let server = Server::start();
    let client = server.client();
    client.create_app(&spec("shop", "shop.example")).unwrap();
    let (cert, key) = issue(&["shop.example"], -60, 86400);
    client.set_cert("shop", &cert, &key).unwrap();
    client.delete_app("shop").unwrap();
    client.create_app(&spec("shop", "shop.example")).unwrap();
    assert_eq!(client.cert("shop").unwrap(), None);
}
