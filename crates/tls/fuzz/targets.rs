//! Fuzz target for the TLS crate's parser of outside input: a certificate upload (PEM chain and
//! PEM private key, as `hako app cert` sends them). Random bytes, and real PEM with bytes
//! flipped, cut or spliced, must never panic; what parses must keep its promises.
//!
//! `cargo test` runs it for under a second after replaying `fuzz/__fuzz__/cert_upload/`.

use std::time::Duration;

use hako_tls::{ParsedCert, covers};

const SUITE_TIME: Duration = Duration::from_millis(700);

/// A real certificate and key to mutate (made once per run).
fn seed() -> &'static (String, String) {
    static SEED: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    SEED.get_or_init(|| {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["fuzz.example".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    })
}

#[test]
fn cert_upload() {
    bolero::check!(name = "cert_upload")
        .with_test_time(SUITE_TIME)
        .for_each(|input: &[u8]| {
            let (cert, key) = seed();
            let text = String::from_utf8_lossy(input);
            // The input alone, as certificate and as key; then spliced into the real PEM.
            let _ = ParsedCert::parse(&text, key);
            let _ = ParsedCert::parse(cert, &text);
            let at = input.first().map_or(0, |b| *b as usize * cert.len() / 256);
            let mut spliced = cert.clone();
            if cert.is_char_boundary(at) {
                spliced.insert_str(at, &text);
            }
            if let Ok(parsed) = ParsedCert::parse(&spliced, key) {
                // Whatever parses says where it is valid and passes its own name check.
                assert!(
                    parsed.not_before_unix <= parsed.not_after_unix,
                    "{spliced:?}"
                );
                for name in parsed.names.iter().filter(|n| !n.starts_with("*.")) {
                    assert!(covers(&parsed.names, name), "{name}");
                }
            }
        });
}
