//! The service level of a live app: the daemon's measurements through the model
//! ([`crate::slo::report`]).

use hako_policy::slo::Target;

use super::Engine;
use crate::caller::Caller;
use crate::error::ApiError;
use crate::slo::{SloReport, report};

impl Engine {
    /// 404 for an unknown app; otherwise always a report, which says when there is too little
    /// history for an estimate.
    pub(super) async fn slo(
        &self,
        caller: &Caller,
        name: &str,
        target: Option<Target>,
    ) -> Result<SloReport, ApiError> {
        self.visible_app(caller, name).await?;
        let history = self.backend.history(name).await;
        Ok(report(name, history, target))
    }
}
