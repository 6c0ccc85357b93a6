//! Reading what happened and what runs: events from the store; instances, metrics and logs
//! from the backend — each limited to what the caller sees.

use hako_model::{Event, EventKind, InstanceInfo};
use hako_store::{StoreExt, keys};

use super::Engine;
use crate::caller::Caller;
use crate::error::ApiError;

impl Engine {
    /// The latest `limit` events, oldest first.
    ///
    /// The admin reads every event kept under the name, also of a deleted app (until trimmed);
    /// a name with neither app nor events is a 404. A tenant reads the events of its own app
    /// only, and only from that app's creation on: earlier events under the same name belong
    /// to an earlier app, maybe another owner's.
    pub(super) async fn events(
        &self,
        caller: &Caller,
        name: &str,
        limit: usize,
    ) -> Result<Vec<Event>, ApiError> {
        if !caller.is_admin() {
            self.visible_app(caller, name).await?;
        }
        let mut events: Vec<Event> = self
            .store
            .range_json::<Event>(&keys::events(name))
            .await?
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        if caller.is_admin() && events.is_empty() {
            self.app(name).await?;
        }
        if !caller.is_admin() {
            let created = events
                .iter()
                .rposition(|e| e.kind == EventKind::AppCreated && e.actor.is_some())
                .unwrap_or(0);
            events.drain(..created);
        }
        let skip = events.len().saturating_sub(limit);
        Ok(events.split_off(skip))
    }

    pub(super) async fn metrics(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<serde_json::Value, ApiError> {
        self.visible_app(caller, name).await?;
        self.backend.metrics(name).await.ok_or_else(|| {
            ApiError::NotFound(format!(
                "no metrics for app {name:?} yet: they appear after its first request"
            ))
        })
    }

    /// Whether the app's starts restore a checkpoint, and its checkpoint. The node's checkpoint
    /// disk use (every tenant's checkpoints) is shown only to a caller that sees the node.
    pub(super) async fn checkpoint(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<serde_json::Value, ApiError> {
        self.visible_app(caller, name).await?;
        let mut status = self.backend.checkpoint_status(name).await.ok_or_else(|| {
            ApiError::NotFound(format!(
                "no checkpoint status for app {name:?}: this node does not run it"
            ))
        })?;
        if !caller.sees_node()
            && let Some(fields) = status.as_object_mut()
        {
            fields.retain(|k, _| !k.starts_with("node_"));
        }
        Ok(status)
    }

    pub(super) async fn logs(
        &self,
        caller: &Caller,
        name: &str,
        max_bytes: usize,
    ) -> Result<String, ApiError> {
        self.visible_app(caller, name).await?;
        Ok(self.backend.logs(name, max_bytes).await)
    }

    /// Instances of one app the caller sees, or of every app it sees.
    pub(super) async fn instances(
        &self,
        caller: &Caller,
        app: Option<&str>,
    ) -> Result<Vec<InstanceInfo>, ApiError> {
        if let Some(name) = app {
            self.visible_app(caller, name).await?;
            return Ok(self.backend.instances(Some(name)).await);
        }
        let mut all = self.backend.instances(None).await;
        if !caller.is_admin() {
            let mine: std::collections::HashSet<String> = self
                .visible_apps(caller)
                .await?
                .into_iter()
                .map(|a| a.spec.name)
                .collect();
            all.retain(|i| mine.contains(&i.app));
        }
        Ok(all)
    }
}
