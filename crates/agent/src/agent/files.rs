//! Where an app's files live on this node (its code, `/data`, logs) and forgetting them.

use std::path::PathBuf;

use super::{Agent, LaunchError};

impl Agent {
    /// What the app keeps on this node, by its [`App::storage_key`](hako_model::App::storage_key).
    pub(super) fn app_dir(&self, key: &str) -> PathBuf {
        self.config.data_dir.join("apps").join(key)
    }

    /// What the app keeps on the shared storage (the data dir when there is none).
    pub(super) fn shared_app_dir(&self, key: &str) -> PathBuf {
        match &self.config.shared_dir {
            Some(s) => s.join("apps").join(key),
            None => self.app_dir(key),
        }
    }

    /// The persistent data directory (mounted read-write at /data) of the app with this
    /// [`App::storage_key`](hako_model::App::storage_key).
    pub fn data_path(&self, key: &str) -> PathBuf {
        self.shared_app_dir(key).join("data")
    }

    pub(super) fn logs_dir(&self, key: &str) -> PathBuf {
        self.app_dir(key).join("logs")
    }

    /// Removes the warm pool and files on this node (releases, data and logs) of the app with
    /// this [`App::storage_key`](hako_model::App::storage_key): the app was deleted. Another app of the same name (another
    /// key) keeps everything it has.
    pub async fn forget_app(&self, key: &str) {
        self.remove_pool(key).await;
        self.checkpoints.remove(key, None);
        if let Err(e) = self.releases.remove_app(key) {
            tracing::warn!(key, error = %e, "cannot remove releases");
        }
        let _ = std::fs::remove_dir_all(self.app_dir(key));
        let _ = std::fs::remove_dir_all(self.shared_app_dir(key));
        self.data_usage.forget(key);
    }

    /// Removes what this node alone keeps of the app with this storage key — parked
    /// containers, checkpoints, logs — but not what lies on the shared storage.
    pub async fn forget_local(&self, key: &str) {
        self.remove_pool(key).await;
        self.checkpoints.remove(key, None);
        let _ = std::fs::remove_dir_all(self.app_dir(key));
        self.data_usage.forget(key);
    }

    /// The storage keys of the apps this node keeps files of (logs, local data).
    pub fn local_app_keys(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(self.config.data_dir.join("apps")) else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect()
    }

    pub(super) fn empty_dir(&self, key: &str) -> Result<PathBuf, LaunchError> {
        let p = self.app_dir(key).join("no-code");
        std::fs::create_dir_all(&p)
            .map_err(|e| LaunchError::node(format!("cannot create {}: {e}", p.display())))?;
        Ok(p)
    }

    pub(super) fn data_dir_for(
        &self,
        key: &str,
        uid: u32,
        gid: u32,
    ) -> Result<PathBuf, LaunchError> {
        let p = self.data_path(key);
        if !p.exists() {
            std::fs::create_dir_all(&p)
                .map_err(|e| LaunchError::node(format!("cannot create {}: {e}", p.display())))?;
            std::os::unix::fs::chown(&p, Some(uid), Some(gid))
                .map_err(|e| LaunchError::node(format!("cannot chown {}: {e}", p.display())))?;
        }
        Ok(p)
    }
}
