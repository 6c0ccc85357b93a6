//! Reading what happened and what runs: events from the store; instances, metrics and logs
//! from the backend.

use hako_model::{Event, InstanceInfo};
use hako_store::{StoreExt, keys};

use super::Engine;
use crate::error::ApiError;

impl Engine {
    /// The latest `limit` events, oldest first. Events of a deleted app stay readable until
    /// trimmed; a name with neither app nor events is a 404.
    pub(super) async fn events(&self, name: &str, limit: usize) -> Result<Vec<Event>, ApiError> {
        let mut events: Vec<Event> = self
            .store
            .range_json::<Event>(&keys::events(name))
            .await?
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        if events.is_empty() {
            self.app(name).await?;
        }
        let skip = events.len().saturating_sub(limit);
        Ok(events.split_off(skip))
    }

    pub(super) async fn metrics(&self, name: &str) -> Result<serde_json::Value, ApiError> {
        self.app(name).await?;
        self.backend.metrics(name).await.ok_or_else(|| {
            ApiError::NotFound(format!(
                "no metrics for app {name:?} yet: they appear after its first request"
            ))
        })
    }

    pub(super) async fn checkpoint(&self, name: &str) -> Result<serde_json::Value, ApiError> {
        self.app(name).await?;
        self.backend.checkpoint_status(name).await.ok_or_else(|| {
            ApiError::NotFound(format!(
                "no checkpoint status for app {name:?}: this node does not run it"
            ))
        })
    }

    pub(super) async fn logs(&self, name: &str, max_bytes: usize) -> Result<String, ApiError> {
        self.app(name).await?;
        Ok(self.backend.logs(name, max_bytes).await)
    }

    pub(super) async fn instances(&self, app: Option<&str>) -> Result<Vec<InstanceInfo>, ApiError> {
        if let Some(name) = app {
            self.app(name).await?;
        }
        Ok(self.backend.instances(app).await)
    }
}
