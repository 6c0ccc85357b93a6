//! Apps: list, create, update, delete, rollout. Creates and updates check that the node can
//! give the app's limits, that the image exists, that no other app has one of the hosts and
//! that the owning tenant's quota holds ([`super::access`]).

use hako_model::{
    App, AppPatch, AppSpec, DatabaseGrant, EventKind, ImageRef, KeptDatabase, ResizeOutcome,
    now_unix,
};
use hako_store::keys::Key;
use hako_store::{Compare, StoreError, StoreExt, Txn, TxnOp, keys};

use super::Engine;
use crate::action::DatabaseOnDelete;
use crate::caller::Caller;
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

    pub(super) async fn create_app(
        &self,
        caller: &Caller,
        spec: AppSpec,
        tenant: Option<String>,
    ) -> Result<App, ApiError> {
        let owner = self.owner_for_create(caller, tenant).await?;
        let _guard = self.app_writes.lock().await;
        let key = keys::app(&spec.name);
        if let Some(existing) = self.store.get_json::<App>(&key).await? {
            return Err(exists(caller, &existing));
        }
        Self::check_isolation(caller, &spec, None)?;
        self.backend.capacity().check_app(&spec)?;
        self.check_image(&spec.image).await?;
        self.check_hosts(caller, &spec).await?;
        self.check_quota(owner.as_deref(), &spec.name, &spec)
            .await?;
        self.check_name_handover(&spec.name, owner.as_deref())
            .await?;
        let (database, existed) = if spec.database {
            let (grant, existed) = self
                .provision_database_of(&spec.name, owner.as_deref())
                .await?;
            (Some(grant), existed)
        } else {
            (None, false)
        };
        let now = now_unix();
        let app = App {
            spec,
            uid: new_uid()?,
            release: None,
            release_digest: None,
            image_record: None,
            generation: 0,
            created_unix: now,
            updated_unix: now,
            database_grant: database,
            tenant: owner,
        };
        let created = match self.store.create_json(&key, &app).await {
            Ok(revision) => {
                self.hosts
                    .set(&app.spec.name, &app.spec.hosts, revision)
                    .await;
                Ok(())
            }
            Err(StoreError::AlreadyExists { .. }) => Err(exists(caller, &app)),
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
        if app.database_grant.is_some() {
            self.forget_kept_database(&app.spec.name).await;
        }
        let mut reason = format!(
            "created through the API: hosts {}, image {}",
            app.spec.hosts.join(", "),
            app.spec.image
        );
        if let Some(t) = &app.tenant {
            reason.push_str(&format!(", tenant {t}"));
        }
        if let Some(g) = &app.database_grant {
            reason.push_str(&database_words(g, existed));
        }
        self.record(
            caller,
            app.tenant.as_deref(),
            &app.spec.name,
            EventKind::AppCreated,
            reason,
        )
        .await;
        Ok(app)
    }

    /// Applies `patch`; when the limits changed, the running instances are resized live and
    /// the answer says what happened to each.
    pub(super) async fn update_app(
        &self,
        caller: &Caller,
        name: &str,
        patch: &AppPatch,
    ) -> Result<(App, Vec<ResizeOutcome>), ApiError> {
        let _guard = self.app_writes.lock().await;
        let current = self.visible_app(caller, name).await?;
        let spec = patch.apply(&current.spec)?;
        if spec == current.spec {
            return Ok((current, Vec::new()));
        }
        crate::action::check_schedules(&spec)?;
        Self::check_isolation(caller, &spec, Some(&current.spec))?;
        self.backend.capacity().check_app(&spec)?;
        if spec.image != current.spec.image {
            self.check_image(&spec.image).await?;
        }
        self.check_hosts(caller, &spec).await?;
        self.check_quota(current.tenant.as_deref(), name, &spec)
            .await?;
        let changed = changed_fields(&current.spec, &spec);
        // Switching the database on for the first time makes it; switching it off keeps it.
        let made = if spec.database && current.database_grant.is_none() {
            Some(
                self.provision_database_of(name, current.tenant.as_deref())
                    .await?,
            )
        } else {
            None
        };
        let grant = made.as_ref().map(|(g, _)| g.clone());
        let updated = self
            .store
            .try_update_json(&keys::app(name), |app: &mut App| {
                // Held under the app-writes lock, so this is the app read above.
                if app.uid != current.uid {
                    return Err(ApiError::no_app(name));
                }
                app.spec = spec.clone();
                app.updated_unix = now_unix();
                if let Some(g) = &grant {
                    app.database_grant = Some(g.clone());
                }
                Ok(())
            })
            .await
            .map_err(|e| not_found_or(e, name))??;
        self.hosts
            .set(name, &updated.value.spec.hosts, updated.mod_revision)
            .await;
        if made.is_some() {
            self.forget_kept_database(name).await;
        }
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
        self.record(
            caller,
            current.tenant.as_deref(),
            name,
            EventKind::AppUpdated,
            reason,
        )
        .await;
        Ok((updated.value, resize))
    }

    pub(super) async fn delete_app(
        &self,
        caller: &Caller,
        name: &str,
        database: Option<DatabaseOnDelete>,
    ) -> Result<(), ApiError> {
        let _guard = self.app_writes.lock().await;
        let key = keys::app(name);
        let current = self.visible_app(caller, name).await?;
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
        let mut txn = Txn::new()
            .when(Compare::present(&key))
            .and_then(TxnOp::delete(&key))
            .and_then(TxnOp::delete(keys::cert(name)))
            .and_then(TxnOp::DeletePrefix {
                prefix: keys::releases(name),
            });
        if let (Some(g), Some(DatabaseOnDelete::Keep)) = (&current.database_grant, database) {
            // Whose the kept database is: only an app of this name and owner takes it over.
            let kept = KeptDatabase {
                database: g.database.clone(),
                tenant: current.tenant.clone(),
                kept_unix: now_unix(),
            };
            let kept_key = keys::kept_database(name);
            txn = txn.and_then(TxnOp::put(&kept_key, hako_store::encode(&kept_key, &kept)?));
        }
        let done = self.store.txn(txn).await?;
        if !done.succeeded {
            return Err(ApiError::no_app(name));
        }
        self.hosts.remove(name, done.revision).await;
        self.record(
            caller,
            current.tenant.as_deref(),
            name,
            EventKind::AppDeleted,
            format!("deleted through the API{words}"),
        )
        .await;
        Ok(())
    }

    pub(super) async fn rollout(&self, caller: &Caller, name: &str) -> Result<App, ApiError> {
        let updated = self
            .store
            .try_update_json(&keys::app(name), |app: &mut App| {
                if !caller.can_see(app) {
                    return Err(ApiError::no_app(name));
                }
                app.generation += 1;
                app.updated_unix = now_unix();
                Ok(())
            })
            .await
            .map_err(|e| not_found_or(e, name))??;
        let reason = format!(
            "rollout through the API: instances older than generation {} are replaced",
            updated.value.generation
        );
        self.record(
            caller,
            updated.value.tenant.as_deref(),
            name,
            EventKind::Rollout,
            reason,
        )
        .await;
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

/// 409 for a name taken. App names are one namespace for every tenant (they name hosts'
/// files and databases): a caller who does not see the app learns only that the name is
/// taken, not by whom.
fn exists(caller: &Caller, app: &App) -> ApiError {
    let name = &app.spec.name;
    ApiError::Conflict(if caller.can_see(app) {
        format!(
            "app {name:?} already exists: pick another name, or change it with 'hako app update'"
        )
    } else {
        format!("app name {name:?} is taken: pick another name")
    })
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
