//! Code releases: a deploy asks the backend to make release `n` (one past the highest known),
//! records it at `keys::release(app, n)` and points the app at it, so new instances get it.
//! A directory of the server as code is the admin's alone (a tenant could name `/etc`); a
//! tenant's releases are bounded by its quota's `max_release_size` as well as the node's.

use hako_model::{App, EventKind, Release, now_unix};
use hako_store::keys::Key;
use hako_store::{StoreError, StoreExt, keys};

use super::Engine;
use super::apps::not_found_or;
use crate::backend::ReleaseSource;
use crate::caller::Caller;
use crate::error::ApiError;

impl Engine {
    pub(super) async fn deploy(
        &self,
        caller: &Caller,
        name: &str,
        source: ReleaseSource,
    ) -> Result<Release, ApiError> {
        let described = source.describe();
        let (app, number, release) = {
            let _guard = self.deploys.lock().await;
            let app = self.visible_app(caller, name).await?;
            if let ReleaseSource::Dir(dir) = &source {
                caller.require_admin(&format!(
                    "deploying a directory of the server ({})",
                    dir.display()
                ))
                .map_err(|e| {
                    ApiError::Forbidden(format!(
                        "{e}: upload the code as a tar or tar.gz body instead ('hako app deploy --code DIR' does that with a tenant's token)"
                    ))
                })?;
            }
            let bound = self.release_bound(app.tenant.as_deref()).await?;
            let number = self.last_release(name).await?.max(app.release.unwrap_or(0)) + 1;
            let mut release = self
                .backend
                .create_release(&app.storage_key(), number, source, bound)
                .await
                .map_err(|e| match (e, &app.tenant, bound) {
                    (crate::BackendError::TooLarge(m), Some(t), Some(b)) => {
                        ApiError::ContentTooLarge(format!(
                            "{m}; tenant {t:?}'s quota allows releases of at most {}",
                            hako_model::ByteSize(b)
                        ))
                    }
                    (e, _, _) => e.into(),
                })?;
            release.app = name.to_string();
            release.number = number;
            if release.created_unix == 0 {
                release.created_unix = now_unix();
            }
            match self
                .store
                .create_json(&keys::release(name, number), &release)
                .await
            {
                Ok(_) => {}
                Err(StoreError::AlreadyExists { .. }) => {
                    return Err(ApiError::Conflict(format!(
                        "release {number} of app {name:?} was made by another deploy at the same time: retry"
                    )));
                }
                Err(e) => return Err(e.into()),
            }
            (app, number, release)
        };
        let pointed = self
            .store
            .try_update_json(&keys::app(name), |current: &mut App| {
                // Another app of the same name since (deleted and made again): not ours.
                if current.uid != app.uid {
                    return Err(StoreError::NotFound {
                        key: keys::app(name),
                    });
                }
                current.release = Some(current.release.map_or(number, |r| r.max(number)));
                current.updated_unix = now_unix();
                Ok(())
            })
            .await
            .and_then(|r| r);
        if let Err(e) = pointed {
            // The app went away meanwhile: do not leave an orphan record behind.
            if let Err(e) = self.store.delete(&keys::release(name, number)).await {
                tracing::warn!(app = name, error = %e, "could not remove release record");
            }
            return Err(not_found_or(e, name));
        }
        let reason = format!(
            "release {number} deployed through the API from {described}: {} files, {} bytes; new instances get it",
            release.files, release.size_bytes
        );
        self.record(
            caller,
            app.tenant.as_deref(),
            name,
            EventKind::Deployed,
            reason,
        )
        .await;
        Ok(release)
    }

    pub(super) async fn releases(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<Vec<Release>, ApiError> {
        self.visible_app(caller, name).await?;
        Ok(self
            .store
            .range_json::<Release>(&keys::releases(name))
            .await?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    /// The highest release number recorded for an app (0 if none).
    async fn last_release(&self, name: &str) -> Result<u64, ApiError> {
        Ok(self
            .store
            .range(&keys::releases(name))
            .await?
            .iter()
            .filter_map(|kv| match keys::parse(&kv.key) {
                Some(Key::Release { n, .. }) => Some(n),
                _ => None,
            })
            .max()
            .unwrap_or(0))
    }
}
