//! [`SiteCerts`]: which certificate the TLS handshake presents for a server name (SNI), over
//! the routed apps' certificates, and the rustls server configuration built on it.
//!
//! **Unknown names get no certificate.** A handshake whose SNI names no routed host with a
//! certificate — or that sends no SNI at all (a bare IP address) — ends with a TLS
//! `access_denied` alert and never reaches the HTTP layer. hako has no default certificate on
//! purpose: any certificate it could show would belong to another site (leaking its name) or
//! fail the client's name check anyway.
//!
//! Lookups (every handshake) read an `ArcSwap`ped map without locking; changes rebuild it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::cert::covers;

/// Per app: the hosts its certificate is served for, and the certificate.
type ByApp = BTreeMap<String, (Vec<String>, Arc<CertifiedKey>)>;

/// The certificates of the routed apps, by host. Cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct SiteCerts {
    by_host: ArcSwap<HashMap<String, Arc<CertifiedKey>>>,
    /// app → (hosts it serves with the certificate, the certificate).
    apps: Mutex<ByApp>,
}

impl SiteCerts {
    /// An empty table: every handshake is refused until an app gets a certificate.
    pub fn new() -> Arc<SiteCerts> {
        Arc::new(SiteCerts::default())
    }

    /// Serve `key` for those of `hosts` its `names` cover (a certificate that does not cover a
    /// host of the app is not shown for it). Returns the hosts it is served for.
    pub fn set(
        &self,
        app: &str,
        hosts: &[String],
        names: &[String],
        key: Arc<CertifiedKey>,
    ) -> Vec<String> {
        let served: Vec<String> = hosts
            .iter()
            .filter(|h| covers(names, h))
            .map(|h| h.to_ascii_lowercase())
            .collect();
        let mut apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        apps.insert(app.to_owned(), (served.clone(), key));
        self.publish(&apps);
        served
    }

    /// Stop serving an app's certificate (deleted app or certificate).
    pub fn remove(&self, app: &str) {
        let mut apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        if apps.remove(app).is_some() {
            self.publish(&apps);
        }
    }

    /// The certificate served for `host` (lowercase, no port), if any.
    pub fn get(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        self.by_host.load().get(host).cloned()
    }

    /// The hosts that have a certificate.
    pub fn hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self.by_host.load().keys().cloned().collect();
        hosts.sort();
        hosts
    }

    fn publish(&self, apps: &ByApp) {
        let mut map = HashMap::new();
        for (hosts, key) in apps.values() {
            for host in hosts {
                map.insert(host.clone(), key.clone());
            }
        }
        self.by_host.store(Arc::new(map));
    }
}

impl ResolvesServerCert for SiteCerts {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name()?;
        let map = self.by_host.load();
        match map.get(name) {
            Some(key) => Some(key.clone()),
            // rustls passes the name as sent; hosts are stored lowercase.
            None if name.bytes().any(|b| b.is_ascii_uppercase()) => {
                map.get(&name.to_ascii_lowercase()).cloned()
            }
            None => None,
        }
    }
}

/// The server side of hako's TLS: certificates from `certs` by SNI, TLS 1.2 and 1.3 with
/// *ring*, ALPN `h2` then `http/1.1` (clients without ALPN get HTTP/1.1).
pub fn server_config(certs: Arc<SiteCerts>) -> Arc<ServerConfig> {
    let mut config = ServerConfig::builder_with_provider(crate::provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_no_client_auth()
        .with_cert_resolver(certs);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::ParsedCert;

    #[test]
    fn hosts_map_to_their_apps_certificate_and_only_covered_hosts_are_served() {
        let (cert, key) = crate::cert::tests::issue(&["*.blog.example"], 0, 4_000_000_000);
        let parsed = ParsedCert::parse(&cert, &key).unwrap();
        let certs = SiteCerts::new();
        let served = certs.set(
            "blog",
            &["www.blog.example".into(), "blog.example".into()],
            &parsed.names,
            parsed.key.clone(),
        );
        assert_eq!(served, ["www.blog.example"], "the parent is not covered");
        assert!(certs.get("www.blog.example").is_some());
        assert!(certs.get("blog.example").is_none());
        assert_eq!(certs.hosts(), ["www.blog.example"]);
        certs.remove("blog");
        assert!(certs.get("www.blog.example").is_none());
        certs.remove("blog");
    }
}
