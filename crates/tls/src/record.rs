//! What the store keeps of an app's certificate (`/certs/<app>`) and what the API shows of it.

use crate::cert::{CertError, ParsedCert};

/// Where a certificate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertSource {
    /// Uploaded by the site owner (`hako app cert`); renewing it is theirs.
    Uploaded,
    /// Obtained from the ACME server; hako renews it.
    Acme,
}

/// What anyone may see of a certificate: never the private key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CertInfo {
    pub source: CertSource,
    /// The issuer's common name (e.g. "R11" for Let's Encrypt).
    pub issuer: String,
    /// The DNS names it is valid for.
    pub names: Vec<String>,
    pub not_before_unix: i64,
    pub not_after_unix: i64,
    /// When hako stored it.
    pub stored_unix: u64,
}

/// An app's certificate as stored: the PEM chain, the PEM private key, and its [`CertInfo`].
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredCert {
    pub cert_pem: String,
    pub key_pem: String,
    #[serde(flatten)]
    pub info: CertInfo,
}

impl std::fmt::Debug for StoredCert {
    // The key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCert")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl StoredCert {
    /// A record of a parsed certificate and the PEM it came from.
    pub fn new(
        parsed: &ParsedCert,
        cert_pem: String,
        key_pem: String,
        source: CertSource,
        now_unix: u64,
    ) -> StoredCert {
        StoredCert {
            cert_pem,
            key_pem,
            info: parsed.info(source, now_unix),
        }
    }

    /// Parses the stored PEM again (the daemon does, to serve it).
    pub fn parse(&self) -> Result<ParsedCert, CertError> {
        ParsedCert::parse(&self.cert_pem, &self.key_pem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_round_trips_and_debug_hides_the_key() {
        let (cert, key) = crate::cert::tests::issue(&["a.example"], 0, 4_000_000_000);
        let parsed = ParsedCert::parse(&cert, &key).unwrap();
        let stored = StoredCert::new(&parsed, cert, key.clone(), CertSource::Uploaded, 7);
        let json = serde_json::to_value(&stored).unwrap();
        assert_eq!(json["source"], "uploaded");
        assert_eq!(json["names"][0], "a.example");
        let back: StoredCert = serde_json::from_value(json).unwrap();
        assert_eq!(back, stored);
        assert_eq!(back.parse().unwrap().names, ["a.example"]);
        assert!(!format!("{stored:?}").contains("PRIVATE KEY"));
        let shown = serde_json::to_string(&stored.info).unwrap();
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
        assert!(key.contains("PRIVATE KEY"));
    }
}
