//! The `hako serve` the benchmarks measure: a real daemon from the release build
//! ([`hako_testkit::Serve`]: loopback, its own temp data dir with the host image `base`,
//! `hakob…` names, `--stop-grace 1s`, warnings echoed, stopped with SIGTERM when dropped),
//! with hako-api's client for the API calls the benchmarks poll with.

use std::ops::Deref;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use hako_api::Client;
use hako_model::InstanceInfo;
use hako_testkit::{Names, Serve, ServeBuilder, retry_until};

/// How often the benchmarks poll the API while they wait.
const POLL: Duration = Duration::from_millis(5);

/// A running `hako serve` and a client of its API; derefs to the [`Serve`].
pub struct HakoServe {
    serve: Serve,
    /// The API client (admin token), kept for its connection pool.
    pub client: Client,
}

impl Deref for HakoServe {
    type Target = Serve;

    fn deref(&self) -> &Serve {
        &self.serve
    }
}

impl HakoServe {
    /// Starts `hako serve` from the binary `hako` with the benchmarks' settings.
    pub fn start(hako: &Path) -> anyhow::Result<HakoServe> {
        HakoServe::from_builder(builder(hako))
    }

    /// Like [`HakoServe::start`], with the data dir's image store at `images` (a store kept
    /// between runs, so that a debootstrap-built image is built once per machine).
    pub fn start_with_images(hako: &Path, images: &Path) -> anyhow::Result<HakoServe> {
        HakoServe::from_builder(builder(hako).shared_images(images))
    }

    /// Like [`HakoServe::start`], also serving HTTPS on a loopback port (`--https`).
    pub fn start_with_https(hako: &Path) -> anyhow::Result<HakoServe> {
        HakoServe::from_builder(builder(hako).args(&["--https", "127.0.0.1:0"]))
    }

    /// Like [`HakoServe::start`] with these exact names (prefix and subnet).
    pub fn start_with(hako: &Path, names: Names) -> anyhow::Result<HakoServe> {
        HakoServe::from_builder(builder(hako).names(names))
    }

    /// The benchmarks' settings, to add to before [`HakoServe::from_builder`].
    pub fn builder(hako: &Path) -> ServeBuilder {
        builder(hako)
    }

    /// Starts the daemon `b` describes.
    pub fn from_builder(b: ServeBuilder) -> anyhow::Result<HakoServe> {
        let serve = b.start().context("cannot start hako serve")?;
        let client = serve.client();
        Ok(HakoServe { serve, client })
    }

    /// The app's running instances.
    pub fn instances(&self, app: &str) -> anyhow::Result<Vec<InstanceInfo>> {
        Ok(self.client.instances(Some(app))?)
    }

    /// The app's count of cold requests (from its metrics).
    pub fn cold_count(&self, app: &str) -> anyhow::Result<u64> {
        let m = self.client.metrics(app)?;
        m["cold"]
            .as_u64()
            .with_context(|| format!("metrics of {app} have no cold count: {m}"))
    }

    /// Polls (every 5 ms, up to `limit`) until the app has no running instance.
    pub fn wait_no_instances(&self, app: &str, limit: Duration) -> anyhow::Result<()> {
        retry_until(
            &format!("{app} to have no instance (is the idle stop working?)"),
            limit,
            POLL,
            || Ok(self.instances(app)?.is_empty().then_some(())),
        )
    }
}

/// The benchmarks' daemon: tag `b`, the host image `base`, a 1 s stop grace, warnings shown.
fn builder(hako: &Path) -> ServeBuilder {
    Serve::builder(hako)
        .tag('b')
        .host_image("base")
        .stop_grace(Duration::from_secs(1))
        .echo_warnings(true)
}
