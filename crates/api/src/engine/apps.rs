//! Apps: list, create, update, delete, rollout. Creates and updates check that the node can
//! give the app's limits, that the image exists and that no other app has one of the hosts.

use hako_model::{
    App, AppPatch, AppSpec, DatabaseGrant, EventKind, ImageRef, ResizeOutcome, now_unix,
};
use hako_store::keys::Key;
use hako_store::{Compare, StoreError, StoreExt, Txn, TxnOp, keys};

use super::Engine;
use crate::action::DatabaseOnDelete;
use crate::error::ApiError;

impl Engine {
    /// Every app, sorted by name.
    pub(super) async fn list_apps(&self) -> Result<Vec<App>, ApiError> {
        let mut apps = Vec::new();
        for kv in self.store.range(keys::APPS).await? {
            if let Some(Key::App { .. }) = keys::parse(&kv.key) {
                apps.push(hako_store::decode::<App>(&kv.key, &kv.value)?);
            }
        }
        Ok(apps)
    }

    pub(super) async fn create_app(&self, spec: AppSpec) -> Result<App, ApiError> {
        let _guard = self.app_writes.lock().await;
        let key = keys::app(&spec.name);
        if self.store.get(&key).await?.is_some() {
            return Err(exists(&spec.name));
        }
        self.backend.capacity().check_app(&spec)?;
        self.check_image(&spec.image).await?;
        self.check_hosts(&spec).await?;
        let (database, existed) = if spec.database {
            let (grant, existed) = self.backend.provision_database(&spec.name).await?;
            (Some(grant), existed)
        } else {
            (None, false)
        };
        let now = now_unix();
        let app = App {
            spec,
            uid: new_uid()?,
            release: None,
            generation: 0,
            created_unix: now,
            updated_unix: now,
            database_grant: database,
        };
        let created = match self.store.create_json(&key, &app).await {
            Ok(_) => Ok(()),
            Err(StoreError::AlreadyExists { .. }) => Err(exists(&app.spec.name)),
            Err(e) => Err(e.into()),
        };
        if let Err(e) = created {
            // A database made for this attempt goes with it; one that was kept stays.
            if let (Some(g), false) = (&app.database_grant, existed)
                && let Err(drop_err) = self.backend.drop_database(g).await
            {
                tracing::warn!(database = %g.database, error = %drop_err, "cannot drop the new database of a failed create");
            }
            return Err(e);
        }
        let mut reason = format!(
            "created through the API: hosts {}, image {}",
            app.spec.hosts.join(", "),
            app.spec.image
        );
        if let Some(g) = &app.database_grant {
            reason.push_str(&database_words(g, existed));
        }
        self.record(&app.spec.name, EventKind::AppCreated, reason)
            .await;
        Ok(app)
    }

    /// Applies `patch`; when the limits changed, the running instances are resized live and
    /// the answer says what happened to each.
    pub(super) async fn update_app(
        &self,
        name: &str,
        patch: &AppPatch,
    ) -> Result<(App, Vec<ResizeOutcome>), ApiError> {
        let _guard = self.app_writes.lock().await;
        let current = self.app(name).await?;
        let spec = patch.apply(&current.spec)?;
        if spec == current.spec {
            return Ok((current, Vec::new()));
        }
        crate::action::check_schedules(&spec)?;
        self.backend.capacity().check_app(&spec)?;
        if spec.image != current.spec.image {
            self.check_image(&spec.image).await?;
        }
        self.check_hosts(&spec).await?;
        let changed = changed_fields(&current.spec, &spec);
        // Switching the database on for the first time makes it; switching it off keeps it.
        let made = if spec.database && current.database_grant.is_none() {
            Some(self.backend.provision_database(name).await?)
        } else {
            None
        };
        let grant = made.as_ref().map(|(g, _)| g.clone());
        let updated = self
            .store
            .update_json(&keys::app(name), |app: &mut App| {
                app.spec = spec.clone();
                app.updated_unix = now_unix();
                if let Some(g) = &grant {
                    app.database_grant = Some(g.clone());
                }
            })
            .await
            .map_err(|e| not_found_or(e, name))?;
        let mut reason = format!("updated through the API: {}", changed.join(", "));
        if let Some((g, existed)) = &made {
            reason.push_str(&database_words(g, *existed));
        }
        let resize = if updated.value.limits() != current.limits() {
            let outcomes = self.backend.resize(&updated.value).await;
            let kept = outcomes.iter().filter(|o| !o.applied).count();
            reason.push_str(&format!(
                "; limits applied live to {} running instance(s){}",
                outcomes.len() - kept,
                if kept > 0 {
                    format!(", {kept} kept their old limits (see their resize events)")
                } else {
                    String::new()
                }
            ));
            outcomes
        } else {
            Vec::new()
        };
        self.record(name, EventKind::AppUpdated, reason).await;
        Ok((updated.value, resize))
    }

    pub(super) async fn delete_app(
        &self,
        name: &str,
        database: Option<DatabaseOnDelete>,
    ) -> Result<(), ApiError> {
        let _guard = self.app_writes.lock().await;
        let key = keys::app(name);
        let current = self.app(name).await?;
        let mut words = String::new();
        if let Some(g) = &current.database_grant {
            match database {
                None => {
                    return Err(ApiError::Conflict(format!(
                        "app {name:?} has a database ({}): say whether it goes too — database=drop deletes its data for good, database=keep leaves it on the server",
                        g.database
                    )));
                }
                Some(DatabaseOnDelete::Drop) => {
                    // Dropped first: if that fails the app is still there and nothing is lost.
                    self.backend.drop_database(g).await?;
                    words = format!("; database {} dropped", g.database);
                }
                Some(DatabaseOnDelete::Keep) => {
                    words = format!(
                        "; database {} kept (a new app {name:?} with a database takes it over)",
                        g.database
                    );
                }
            }
        }
        let txn = Txn::new()
            .when(Compare::present(&key))
            .and_then(TxnOp::delete(&key))
            .and_then(TxnOp::delete(keys::cert(name)))
            .and_then(TxnOp::DeletePrefix {
                prefix: keys::releases(name),
            });
        if !self.store.txn(txn).await?.succeeded {
            return Err(ApiError::no_app(name));
        }
        self.record(
            name,
            EventKind::AppDeleted,
            format!("deleted through the API{words}"),
        )
        .await;
        Ok(())
    }

    pub(super) async fn rollout(&self, name: &str) -> Result<App, ApiError> {
        let updated = self
            .store
            .update_json(&keys::app(name), |app: &mut App| {
                app.generation += 1;
                app.updated_unix = now_unix();
            })
            .await
            .map_err(|e| not_found_or(e, name))?;
        let reason = format!(
            "rollout through the API: instances older than generation {} are replaced",
            updated.value.generation
        );
        self.record(name, EventKind::Rollout, reason).await;
        Ok(updated.value)
    }

    async fn check_image(&self, image: &ImageRef) -> Result<(), ApiError> {
        if self.backend.image_exists(image).await {
            Ok(())
        } else {
            Err(ApiError::BadRequest(format!(
                "image \"{image}\" not found: build or import it first ('hako image build' or 'hako image import'), see 'hako image list'"
            )))
        }
    }

    /// 409 if another app already serves one of `spec`'s hosts.
    async fn check_hosts(&self, spec: &AppSpec) -> Result<(), ApiError> {
        for other in self.list_apps().await? {
            if other.spec.name == spec.name {
                continue;
            }
            if let Some(host) = spec.hosts.iter().find(|h| other.spec.hosts.contains(h)) {
                return Err(ApiError::Conflict(format!(
                    "host {host:?} already belongs to app {:?}: remove it there first or pick another host",
                    other.spec.name
                )));
            }
        }
        Ok(())
    }
}

/// The part of an event's reason about a database just made or taken over.
fn database_words(g: &DatabaseGrant, existed: bool) -> String {
    if existed {
        format!(
            "; database {} taken over (kept from an earlier app), new password",
            g.database
        )
    } else {
        format!("; database {} made", g.database)
    }
}

fn exists(name: &str) -> ApiError {
    ApiError::Conflict(format!(
        "app {name:?} already exists: pick another name, or change it with 'hako app update'"
    ))
}

/// Maps a store `NotFound` to the app's 404.
pub(super) fn not_found_or(e: StoreError, name: &str) -> ApiError {
    match e {
        StoreError::NotFound { .. } => ApiError::no_app(name),
        e => e.into(),
    }
}

/// Names of the top-level spec fields that differ, for the event's reason.
fn changed_fields(old: &AppSpec, new: &AppSpec) -> Vec<String> {
    let (Ok(serde_json::Value::Object(old)), Ok(serde_json::Value::Object(new))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return Vec::new();
    };
    new.iter()
        .filter(|(k, v)| old.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .collect()
}

/// A fresh [`App::uid`]: random hex, so an app never shares a node's files with an earlier or
/// later app of the same name.
fn new_uid() -> Result<String, ApiError> {
    let mut bytes = [0u8; hako_model::APP_UID_LEN / 2];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApiError::Internal(format!("no randomness for the app's uid: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_fields_names_what_differs() {
        let old: AppSpec = serde_json::from_value(serde_json::json!(
            {"name": "a", "hosts": ["a.example"], "image": "php", "cmd": "x"}
        ))
        .unwrap();
        let mut new = old.clone();
        new.memory.0 *= 2;
        new.cpu = Some(1.0);
        assert_eq!(changed_fields(&old, &new), ["cpu", "memory"]);
        assert!(changed_fields(&old, &old).is_empty());
    }
}
