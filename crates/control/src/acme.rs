//! The ACME loop: every app with `acme` gets a certificate for its hosts from the directory
//! in `[acme]`, renewed at 2/3 of its lifetime (`hako_tls::schedule`, pure), with jittered,
//! doubling retries after a failure; every attempt is an event with its reason. The account's
//! credentials and each certificate go to the store, so every node's proxy serves it.
//!
//! Cluster note: every `hako serve` with `[acme]` runs this loop; with several nodes only the
//! leader should (the leader election of the cluster work is the place to gate it), and the
//! HTTP-01 answers live in this node's proxy only, so the ACME server must reach this node.

use std::sync::Arc;
use std::time::Duration;

use hako_model::{Event, EventKind, now_unix};
use hako_store::{Store, StoreExt, keys};
use hako_tls::schedule::{self, Due, in_words};
use hako_tls::{AcmeClient, AcmeConfig, CertSource, Challenges, ParsedCert, StoredCert};

use crate::apps::Apps;
use crate::certs::CertTable;
use crate::event_log::EventLog;

/// The longest the loop sleeps before looking again (clock jumps, missed wake-ups).
const RECHECK: i64 = 600;

pub(crate) struct AcmeLoop {
    pub(crate) config: AcmeConfig,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) apps: Arc<Apps>,
    pub(crate) certs: Arc<CertTable>,
    pub(crate) challenges: Challenges,
    pub(crate) events: Arc<EventLog>,
}

/// Failed attempts in a row of one app, and when it may try again (unix seconds).
struct Backoff {
    failures: u32,
    until: i64,
}

impl AcmeLoop {
    pub(crate) async fn run(self) {
        let mut client: Option<AcmeClient> = None;
        let mut backoff: std::collections::HashMap<String, Backoff> = Default::default();
        loop {
            let now = now_unix() as i64;
            let mut wake_at = now + RECHECK;
            let apps = self.apps.select(|a| a.spec.acme);
            backoff.retain(|name, _| apps.iter().any(|a| a.spec.name == *name));
            for app in apps {
                let name = app.spec.name.clone();
                if let Some(b) = backoff.get(&name).filter(|b| b.until > now) {
                    wake_at = wake_at.min(b.until);
                    continue;
                }
                let reason = match schedule::next_order(
                    self.certs.info(&name).as_ref(),
                    &app.spec.hosts,
                    now,
                ) {
                    Due::At(t) => {
                        wake_at = wake_at.min(t);
                        continue;
                    }
                    Due::Now(reason) => reason,
                };
                match self.attempt(&mut client, &name, &app.spec.hosts).await {
                    Ok(stored) => {
                        backoff.remove(&name);
                        let now = now_unix() as i64;
                        wake_at = wake_at.min(schedule::renew_at(
                            stored.info.not_before_unix,
                            stored.info.not_after_unix,
                        ));
                        self.record(&name, EventKind::Certificate, format!(
                            "certificate issued by ACME ({reason}): by {} for {}, expires in {}, renewal due in {}",
                            stored.info.issuer,
                            stored.info.names.join(", "),
                            in_words(stored.info.not_after_unix - now),
                            in_words(schedule::renew_at(stored.info.not_before_unix, stored.info.not_after_unix) - now),
                        )).await;
                    }
                    Err(error) => {
                        let failures = backoff.get(&name).map_or(0, |b| b.failures) + 1;
                        let wait = schedule::retry_after(failures, jitter());
                        let until = now_unix() as i64 + wait.as_secs() as i64;
                        backoff.insert(name.clone(), Backoff { failures, until });
                        wake_at = wake_at.min(until);
                        let keeps = match self.certs.info(&name) {
                            Some(c) if c.not_after_unix > now => format!(
                                "; the current certificate is served meanwhile (it expires in {})",
                                in_words(c.not_after_unix - now)
                            ),
                            _ => "; HTTPS for its hosts is refused meanwhile".into(),
                        };
                        self.record(&name, EventKind::CertificateFailed, format!(
                            "ACME attempt {failures} failed ({reason}): {error}; next attempt in {}{keeps}",
                            in_words(wait.as_secs() as i64)
                        )).await;
                    }
                }
            }
            let sleep = Duration::from_secs((wake_at - now_unix() as i64).clamp(1, RECHECK) as u64);
            tokio::select! {
                () = tokio::time::sleep(sleep) => {}
                () = self.certs.changed.notified() => {}
            }
        }
    }

    /// One order for `hosts`: the account (made once, kept in the store), the order, the
    /// checks an upload would pass, then the certificate stored and served.
    async fn attempt(
        &self,
        client: &mut Option<AcmeClient>,
        app: &str,
        hosts: &[String],
    ) -> Result<StoredCert, String> {
        if client.is_none() {
            let stored: Option<serde_json::Value> = self
                .store
                .get_json(keys::ACME_ACCOUNT)
                .await
                .map_err(|e| e.to_string())?;
            let (c, fresh) = AcmeClient::connect(&self.config, stored.as_ref())
                .await
                .map_err(|e| {
                    format!(
                        "cannot reach the ACME account at {}: {e}",
                        self.config.directory
                    )
                })?;
            if let Some(fresh) = fresh {
                self.store
                    .put_json(keys::ACME_ACCOUNT, &fresh)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            *client = Some(c);
        }
        let acme = client.as_ref().expect("connected above");
        let issued = acme
            .order(hosts, &self.challenges)
            .await
            .map_err(|e| e.to_string())?;
        let parsed = ParsedCert::parse(&issued.cert_pem, &issued.key_pem)
            .map_err(|e| format!("the ACME server sent an unusable certificate: {e}"))?;
        let now = now_unix();
        parsed
            .check(hosts, now as i64)
            .map_err(|e| format!("the ACME server sent a certificate hako cannot serve: {e}"))?;
        let stored = StoredCert::new(
            &parsed,
            issued.cert_pem,
            issued.key_pem,
            CertSource::Acme,
            now,
        );
        self.store
            .put_json(&keys::cert(app), &stored)
            .await
            .map_err(|e| format!("cannot store the certificate: {e}"))?;
        // Served now (the store watch will say the same): the next look sees it.
        self.certs.cert_stored(app, &stored);
        Ok(stored)
    }

    async fn record(&self, app: &str, kind: EventKind, reason: String) {
        self.events.record(Event::new(app, kind, reason)).await;
    }
}

/// A number from 0 to 1 that differs between calls and processes (the retry jitter).
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(now_unix());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}
