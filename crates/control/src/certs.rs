//! The certificates the TLS listener serves: followed from the store (`/certs/<app>`, written
//! by the API's uploads and by the ACME loop, on any node) and matched with the apps' hosts
//! (from [`crate::reconcile`]'s hook), into the proxy's SNI resolver. A certificate is served
//! only for the hosts of its app that it covers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hako_model::App;
use hako_store::keys::{self, Key};
use hako_store::{Store, StoreError, StoreExt, WatchEvent};
use hako_tls::{CertInfo, ParsedCert, SiteCerts, StoredCert};
use tokio::sync::Notify;

/// What each app has: its hosts (while it is routed) and its certificate (while stored).
#[derive(Default)]
struct Entry {
    hosts: Option<Vec<String>>,
    cert: Option<(CertInfo, ParsedCert)>,
}

/// The apps' certificates, feeding [`SiteCerts`].
pub(crate) struct CertTable {
    site_certs: Arc<SiteCerts>,
    entries: Mutex<HashMap<String, Entry>>,
    /// Woken when an app or a certificate changes (the ACME loop waits on it).
    pub(crate) changed: Notify,
}

impl CertTable {
    pub(crate) fn new(site_certs: Arc<SiteCerts>) -> CertTable {
        CertTable {
            site_certs,
            entries: Mutex::new(HashMap::new()),
            changed: Notify::new(),
        }
    }

    fn change(&self, app: &str, f: impl FnOnce(&mut Entry)) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.entry(app.to_owned()).or_default();
        f(entry);
        match entry {
            Entry {
                hosts: Some(hosts),
                cert: Some((info, parsed)),
            } => {
                let served = self
                    .site_certs
                    .set(app, hosts, &info.names, parsed.key.clone());
                if served.len() < hosts.len() {
                    tracing::warn!(app, served = ?served, hosts = ?hosts, "the app's certificate does not cover all its hosts; HTTPS for the others is refused");
                }
            }
            Entry {
                hosts: None,
                cert: None,
            } => {
                entries.remove(app);
                self.site_certs.remove(app);
            }
            _ => self.site_certs.remove(app),
        }
        self.changed.notify_one();
    }

    /// An app was created or changed (its hosts may have).
    pub(crate) fn app_routed(&self, app: &App) {
        let hosts = app.spec.hosts.clone();
        self.change(&app.spec.name, |e| e.hosts = Some(hosts));
    }

    /// An app was deleted.
    pub(crate) fn app_removed(&self, name: &str) {
        self.change(name, |e| e.hosts = None);
    }

    /// A certificate was stored for `app`: parsed and served (an unreadable one is skipped
    /// with a warning and the app keeps none).
    pub(crate) fn cert_stored(&self, app: &str, stored: &StoredCert) {
        let parsed = match stored.parse() {
            Ok(p) => Some((stored.info.clone(), p)),
            Err(e) => {
                tracing::warn!(app, error = %e, "skipping an unusable stored certificate");
                None
            }
        };
        self.change(app, |e| e.cert = parsed);
    }

    pub(crate) fn cert_removed(&self, app: &str) {
        self.change(app, |e| e.cert = None);
    }

    /// What `app`'s current certificate is, if it has one.
    pub(crate) fn info(&self, app: &str) -> Option<CertInfo> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(app)?
            .cert
            .as_ref()
            .map(|(info, _)| info.clone())
    }

    /// Loads every stored certificate, then follows changes from the revision it read at.
    pub(crate) async fn follow(
        self: Arc<Self>,
        store: Arc<dyn Store>,
    ) -> Result<tokio::task::JoinHandle<()>, StoreError> {
        let listing = store.list(keys::CERTS).await?;
        for kv in &listing.kvs {
            self.put(&kv.key, &kv.value);
        }
        let mut watch = store.watch(keys::CERTS, Some(listing.revision + 1)).await?;
        Ok(tokio::spawn(async move {
            while let Some(batch) = watch.recv().await {
                let batch = match batch {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::error!(error = %e, "lost the store's watch of certificates");
                        return;
                    }
                };
                for ev in batch.events {
                    match ev {
                        WatchEvent::Put(kv) => self.put(&kv.key, &kv.value),
                        WatchEvent::Delete { key, .. } => {
                            if let Some(Key::Cert { app }) = keys::parse(&key) {
                                self.cert_removed(app);
                            }
                        }
                    }
                }
            }
        }))
    }

    fn put(&self, key: &str, value: &[u8]) {
        if let Some(Key::Cert { app }) = keys::parse(key) {
            match serde_json::from_slice::<StoredCert>(value) {
                Ok(stored) => self.cert_stored(app, &stored),
                Err(e) => {
                    tracing::warn!(key, error = %e, "skipping an unreadable certificate record")
                }
            }
        }
    }
}
