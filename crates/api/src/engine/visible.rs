//! What a caller may see, for the routes that read more than one action's worth (the
//! dashboard, `/metrics`) or that stream (following logs). Every one goes through
//! [`crate::Caller::can_see`]: an app the caller may not see is answered as one that does not
//! exist.

use hako_model::App;

use super::Engine;
use crate::backend::LogFollow;
use crate::caller::{Caller, Scope};
use crate::error::ApiError;

impl Engine {
    /// The app `name` if it exists and `caller` may see it; 404 otherwise (the same answer
    /// for both, so a caller learns nothing of apps it may not see).
    pub async fn visible_app(&self, caller: &Caller, name: &str) -> Result<App, ApiError> {
        let app = self.app(name).await?;
        if caller.can_see(&app) {
            Ok(app)
        } else {
            Err(ApiError::no_app(name))
        }
    }

    /// Every app `caller` may see, sorted by name.
    pub async fn visible_apps(&self, caller: &Caller) -> Result<Vec<App>, ApiError> {
        let mut apps = self.list_apps().await?;
        apps.retain(|a| caller.can_see(a));
        Ok(apps)
    }

    /// What of the daemon `caller` may see: its apps by name and, for operators, the node.
    pub async fn scope(&self, caller: &Caller) -> Result<Scope, ApiError> {
        let apps = self.list_apps().await?;
        Ok(caller.scope(&apps))
    }

    /// The Prometheus text exposition of what `caller` may see.
    pub async fn prometheus(&self, caller: &Caller) -> Result<String, ApiError> {
        let scope = self.scope(caller).await?;
        Ok(self.backend.prometheus(&scope).await)
    }

    /// Follows the logs of app `name` (the last `tail_bytes` first, then what its instances
    /// write) if `caller` may see it.
    pub async fn follow_logs(
        &self,
        caller: &Caller,
        name: &str,
        tail_bytes: usize,
    ) -> Result<LogFollow, ApiError> {
        let app = self.visible_app(caller, name).await?;
        Ok(self.backend.follow_logs(&app, tail_bytes).await?)
    }

    /// The daemon's side, for readers that need more than the actions give (the dashboard).
    pub fn backend(&self) -> &dyn crate::Backend {
        self.backend.as_ref()
    }
}
