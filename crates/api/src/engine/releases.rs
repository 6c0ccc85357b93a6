//! Code releases: a deploy asks the backend to make release `n` (one past the highest known),
//! records it at `keys::release(app, n)` and points the app at it (its number and the digest
//! of its tree), so new instances get it.

use hako_model::{App, EventKind, Release, now_unix};
use hako_store::keys::Key;
use hako_store::{StoreError, StoreExt, keys};

use super::Engine;
use super::apps::not_found_or;
use crate::backend::ReleaseSource;
use crate::error::ApiError;

impl Engine {
    pub(super) async fn deploy(
        &self,
        name: &str,
        source: ReleaseSource,
    ) -> Result<Release, ApiError> {
        let described = source.describe();
        let (number, release) = {
            let _guard = self.deploys.lock().await;
            let app = self.app(name).await?;
            let number = self.last_release(name).await?.max(app.release.unwrap_or(0)) + 1;
            let mut release = self
                .backend
                .create_release(&app.storage_key(), number, source)
                .await?;
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
            (number, release)
        };
        let pointed = self
            .store
            .update_json(&keys::app(name), |app: &mut App| {
                // Concurrent deploys: the highest release wins, with its own digest (the
                // anchor a cluster's nodes verify the release's bytes against).
                if app.release.is_none_or(|r| number >= r) {
                    app.release = Some(number);
                    app.release_digest = release.digest.clone();
                }
                app.updated_unix = now_unix();
            })
            .await;
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
        self.record(name, EventKind::Deployed, reason).await;
        Ok(release)
    }

    pub(super) async fn releases(&self, name: &str) -> Result<Vec<Release>, ApiError> {
        self.app(name).await?;
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
