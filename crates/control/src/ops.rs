//! What the daemon keeps for its operators beside serving: its own counters ([`Telemetry`]:
//! store errors, log followers, autoscaler decisions), the last hour per minute for the
//! dashboard ([`Minutes`], sampled by a task of its own), and the signal that ends the streams
//! the API serves (followed logs) when the daemon shuts down. One per `hako serve`, whether it
//! runs instances itself or is a front of a cluster.

use std::sync::Arc;

use hako_proxy::Router;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::Telemetry;
use crate::minutes::Minutes;

/// The daemon's operator-facing state.
pub(crate) struct Ops {
    pub(crate) telemetry: Arc<Telemetry>,
    pub(crate) minutes: Arc<Minutes>,
    closing: watch::Sender<bool>,
}

impl Ops {
    /// Starts sampling `router`'s apps per minute; returns the state and the sampler's task.
    pub(crate) fn start(telemetry: Arc<Telemetry>, router: Router) -> (Arc<Ops>, JoinHandle<()>) {
        let minutes = Arc::new(Minutes::default());
        let task = tokio::spawn(crate::minutes::run(minutes.clone(), router));
        let (closing, _) = watch::channel(false);
        let ops = Arc::new(Ops {
            telemetry,
            minutes,
            closing,
        });
        (ops, task)
    }

    /// Becomes true when the daemon shuts down.
    pub(crate) fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// The daemon shuts down: streams end (else the API would wait for them forever).
    pub(crate) fn close(&self) {
        self.closing.send_replace(true);
    }
}
