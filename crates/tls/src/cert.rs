//! A site's certificate from PEM: the chain and the private key parsed, the key checked
//! against the certificate's public key, and what it says about itself (issuer, names,
//! validity). [`ParsedCert::check`] is what an upload must pass for an app.

use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::record::{CertInfo, CertSource};

/// Why a certificate or key was refused; each message says what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error(
        "no certificate found: send the PEM certificate chain (-----BEGIN CERTIFICATE-----), the site's certificate first"
    )]
    NoCertificate,
    #[error("the certificate is not valid PEM/X.509: {0}")]
    BadCertificate(String),
    #[error(
        "no private key found: send the PEM private key (PKCS#8, RSA or EC) of the certificate"
    )]
    NoKey,
    #[error("the private key cannot be used: {0}")]
    BadKey(String),
    #[error(
        "the private key does not belong to the certificate: send the key the certificate was issued for"
    )]
    KeyMismatch,
    #[error("the certificate expired at {not_after} (unix time): send a current one")]
    Expired { not_after: i64 },
    #[error(
        "the certificate is not valid before {not_before} (unix time): send one that is valid now"
    )]
    NotYetValid { not_before: i64 },
    #[error(
        "the certificate does not cover host {host:?} of the app (it names {names}): send one for every host of the app"
    )]
    DoesNotCover { host: String, names: String },
}

/// A certificate chain with its private key, ready to serve, and what it says about itself.
#[derive(Debug, Clone)]
pub struct ParsedCert {
    /// What rustls serves.
    pub key: Arc<CertifiedKey>,
    /// Issuer, names and validity (source and time stored left to the caller).
    pub issuer: String,
    /// DNS names of the certificate (its subject alternative names, else its common name).
    pub names: Vec<String>,
    pub not_before_unix: i64,
    pub not_after_unix: i64,
}

impl ParsedCert {
    /// Parses a PEM chain (site certificate first) and its PEM private key, and checks that
    /// the key is the certificate's.
    pub fn parse(cert_pem: &str, key_pem: &str) -> Result<ParsedCert, CertError> {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| CertError::BadCertificate(e.to_string()))?;
        let leaf = chain.first().ok_or(CertError::NoCertificate)?;
        let (issuer, names, not_before_unix, not_after_unix) = describe(leaf)?;
        let key_der = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| match e {
            rustls_pki_types::pem::Error::NoItemsFound => CertError::NoKey,
            e => CertError::BadKey(e.to_string()),
        })?;
        let signing = rustls::crypto::ring::sign::any_supported_type(&key_der)
            .map_err(|e| CertError::BadKey(e.to_string()))?;
        let key = CertifiedKey::new(chain, signing);
        key.keys_match().map_err(|e| match e {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                CertError::KeyMismatch
            }
            e => CertError::BadKey(e.to_string()),
        })?;
        Ok(ParsedCert {
            key: Arc::new(key),
            issuer,
            names,
            not_before_unix,
            not_after_unix,
        })
    }

    /// Checks that the certificate is valid at `now_unix` and covers every one of `hosts`.
    pub fn check(&self, hosts: &[String], now_unix: i64) -> Result<(), CertError> {
        if now_unix >= self.not_after_unix {
            return Err(CertError::Expired {
                not_after: self.not_after_unix,
            });
        }
        if now_unix < self.not_before_unix {
            return Err(CertError::NotYetValid {
                not_before: self.not_before_unix,
            });
        }
        if let Some(host) = hosts.iter().find(|h| !covers(&self.names, h)) {
            return Err(CertError::DoesNotCover {
                host: host.clone(),
                names: self.names.join(", "),
            });
        }
        Ok(())
    }

    /// What the store and the API keep of it.
    pub fn info(&self, source: CertSource, stored_unix: u64) -> CertInfo {
        CertInfo {
            source,
            issuer: self.issuer.clone(),
            names: self.names.clone(),
            not_before_unix: self.not_before_unix,
            not_after_unix: self.not_after_unix,
            stored_unix,
        }
    }
}

/// Whether a certificate naming `names` is valid for `host` (RFC 6125: exact, case-blind, or a
/// `*.` wildcard standing for exactly one left-most label).
pub fn covers(names: &[String], host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    names.iter().any(|name| {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        match name.strip_prefix("*.") {
            Some(parent) => host
                .split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
            None => name == host,
        }
    })
}

/// Issuer, DNS names and validity of a DER certificate.
fn describe(der: &CertificateDer<'_>) -> Result<(String, Vec<String>, i64, i64), CertError> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der.as_ref())
        .map_err(|e| CertError::BadCertificate(e.to_string()))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(dns) = name {
                names.push(dns.to_ascii_lowercase());
            }
        }
    }
    if names.is_empty() {
        // No SAN: the common name is the one name (old certificates; browsers refuse them,
        // but a site owner can see why).
        names.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .map(str::to_ascii_lowercase),
        );
    }
    let issuer = cert
        .issuer()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .next()
        .map(str::to_owned)
        .unwrap_or_else(|| cert.issuer().to_string());
    Ok((
        issuer,
        names,
        cert.validity().not_before.timestamp(),
        cert.validity().not_after.timestamp(),
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair};

    /// A certificate for `names` valid from `from` to `to` (unix seconds), issued by a test CA,
    /// as (chain PEM, key PEM).
    pub(crate) fn issue(names: &[&str], from: i64, to: i64) -> (String, String) {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "hako test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.not_before = rcgen::date_time_ymd(1970, 1, 1) + time_secs(from);
        params.not_after = rcgen::date_time_ymd(1970, 1, 1) + time_secs(to);
        let cert = params.signed_by(&key, &issuer).unwrap();
        (
            format!("{}{}", cert.pem(), ca_cert.pem()),
            key.serialize_pem(),
        )
    }

    fn time_secs(s: i64) -> std::time::Duration {
        std::time::Duration::from_secs(s as u64)
    }

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_matching_pair_parses_and_says_what_it_is() {
        let (cert, key) = issue(&["blog.example", "*.blog.example"], NOW - 10, NOW + 3600);
        let parsed = ParsedCert::parse(&cert, &key).unwrap();
        assert_eq!(parsed.issuer, "hako test CA");
        assert_eq!(parsed.names, ["blog.example", "*.blog.example"]);
        assert_eq!(
            (parsed.not_before_unix, parsed.not_after_unix),
            (NOW - 10, NOW + 3600)
        );
        assert_eq!(parsed.key.cert.len(), 2, "the chain is kept");
        let hosts = ["blog.example".to_string(), "www.blog.example".to_string()];
        parsed.check(&hosts, NOW).unwrap();
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        let (cert, key) = issue(&["blog.example"], NOW - 10, NOW + 3600);
        let (_, other_key) = issue(&["blog.example"], NOW - 10, NOW + 3600);
        assert_eq!(
            ParsedCert::parse(&cert, &other_key).unwrap_err(),
            CertError::KeyMismatch
        );
        assert_eq!(
            ParsedCert::parse("", &key).unwrap_err(),
            CertError::NoCertificate
        );
        assert_eq!(ParsedCert::parse(&cert, "").unwrap_err(), CertError::NoKey);
        assert_eq!(
            ParsedCert::parse(&key, &key).unwrap_err(),
            CertError::NoCertificate,
            "a key is not a certificate"
        );
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            ParsedCert::parse(garbage, &key).unwrap_err(),
            CertError::BadCertificate(_)
        ));
        let parsed = ParsedCert::parse(&cert, &key).unwrap();
        assert_eq!(
            parsed.check(&["blog.example".into()], NOW + 3600),
            Err(CertError::Expired {
                not_after: NOW + 3600
            })
        );
        assert!(matches!(
            parsed.check(&["blog.example".into()], NOW - 11),
            Err(CertError::NotYetValid { .. })
        ));
        let err = parsed
            .check(&["blog.example".into(), "shop.example".into()], NOW)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the certificate does not cover host \"shop.example\" of the app (it names blog.example): send one for every host of the app"
        );
    }

    #[test]
    fn wildcards_cover_one_label_only() {
        let names = vec!["*.example.com".to_string(), "Exact.Example".to_string()];
        assert!(covers(&names, "www.example.com"));
        assert!(covers(&names, "exact.example"));
        assert!(covers(&names, "EXACT.example."));
        assert!(!covers(&names, "example.com"), "the parent is not covered");
        assert!(!covers(&names, "a.b.example.com"), "only one label");
        assert!(!covers(&names, ".example.com"));
        assert!(!covers(&[], "example.com"));
    }
}
