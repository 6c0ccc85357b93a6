//! Certificates: an upload is checked (its key is the certificate's, it covers every host of
//! the app, it is valid now) and stored under `/certs/<app>`, where every node's proxy picks
//! it up; what is shown of it never includes the key.

use hako_model::{EventKind, now_unix};
use hako_store::{StoreExt, keys};
use hako_tls::schedule::in_words;
use hako_tls::{CertInfo, CertSource, ParsedCert, StoredCert};

use super::Engine;
use crate::action::CertUpload;
use crate::caller::Caller;
use crate::error::ApiError;

impl Engine {
    pub(super) async fn set_cert(
        &self,
        caller: &Caller,
        name: &str,
        upload: &CertUpload,
    ) -> Result<CertInfo, ApiError> {
        // Under the app lock: the hosts checked are the hosts stored.
        let _guard = self.app_writes.lock().await;
        let app = self.visible_app(caller, name).await?;
        if app.spec.acme {
            return Err(ApiError::Conflict(format!(
                "app {name:?} gets its certificate from ACME: turn that off first ('hako app update {name} --no-acme') to serve an uploaded one"
            )));
        }
        let parsed = ParsedCert::parse(&upload.cert, &upload.key).map_err(bad)?;
        let now = now_unix();
        parsed.check(&app.spec.hosts, now as i64).map_err(bad)?;
        let stored = StoredCert::new(
            &parsed,
            upload.cert.clone(),
            upload.key.clone(),
            CertSource::Uploaded,
            now,
        );
        self.store.put_json(&keys::cert(name), &stored).await?;
        let reason = format!(
            "certificate uploaded through the API: issued by {} for {}, expires in {}",
            stored.info.issuer,
            stored.info.names.join(", "),
            in_words(stored.info.not_after_unix - now as i64)
        );
        self.record(
            caller,
            app.tenant.as_deref(),
            name,
            EventKind::Certificate,
            reason,
        )
        .await;
        Ok(stored.info)
    }

    pub(super) async fn cert(&self, caller: &Caller, name: &str) -> Result<CertInfo, ApiError> {
        self.visible_app(caller, name).await?;
        self.store
            .get_json::<StoredCert>(&keys::cert(name))
            .await?
            .map(|c| c.info)
            .ok_or_else(|| no_cert(name))
    }

    pub(super) async fn remove_cert(&self, caller: &Caller, name: &str) -> Result<(), ApiError> {
        let _guard = self.app_writes.lock().await;
        let app = self.visible_app(caller, name).await?;
        let key = keys::cert(name);
        if self.store.get(&key).await?.is_none() {
            return Err(no_cert(name));
        }
        self.store.delete(&key).await?;
        let mut reason =
            "certificate removed through the API: HTTPS requests for its hosts are refused"
                .to_string();
        if app.spec.acme {
            reason = "certificate removed through the API: ACME orders a new one".into();
        }
        self.record(
            caller,
            app.tenant.as_deref(),
            name,
            EventKind::Certificate,
            reason,
        )
        .await;
        Ok(())
    }
}

fn bad(e: hako_tls::CertError) -> ApiError {
    ApiError::BadRequest(e.to_string())
}

fn no_cert(name: &str) -> ApiError {
    ApiError::NotFound(format!(
        "app {name:?} has no certificate: upload one with 'hako app cert {name} --cert FILE --key FILE' or let ACME get one ('hako app update {name} --acme')"
    ))
}
