//! hako's side of the runtime benchmark: containers made in-process by `hako-runtime`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hako_runtime::{
    BindMount, ContainerSpec, Limits, LogSpec, NetworkMode, RootfsSpec, Runtime, RuntimeConfig,
};

use super::Workload;
use crate::http;

/// One start of `/bin/true`.
#[derive(Debug, Clone, Copy)]
pub struct TrueSample {
    /// `create` + `start` returned: the command was exec'd.
    pub exec: Duration,
    /// The container's init exited.
    pub exit: Duration,
    /// The container was removed too (cgroup, state dir gone), as `crun run` does before it
    /// exits.
    pub removed: Duration,
    /// Inside `create`: until the clone returned.
    pub clone: Duration,
    /// Inside `create`: until the container was parked before exec.
    pub prepare: Duration,
    /// `start`: release of the parked container until exec.
    pub release: Duration,
}

/// A runtime with a unique `hakob…` prefix; shut down (everything removed) on drop.
pub struct Hako {
    runtime: Arc<Runtime>,
    image: RootfsSpec,
    app: PathBuf,
    limits: Limits,
}

impl Hako {
    pub fn new(image: RootfsSpec, app: PathBuf, limits: Limits) -> anyhow::Result<Hako> {
        let runtime = Runtime::new(RuntimeConfig::unique('b', "/run/hako"))
            .context("cannot set up hako's runtime")?;
        Ok(Hako {
            runtime,
            image,
            app,
            limits,
        })
    }

    /// The runtime's name prefix (for the report).
    pub fn prefix(&self) -> &str {
        &self.runtime.config().prefix
    }

    fn spec(&self, workload: &Workload, network: NetworkMode) -> ContainerSpec {
        let argv = workload.argv();
        let mut spec = ContainerSpec::new(self.image.clone(), argv[0].clone());
        spec.args = argv[1..].to_vec();
        spec.mounts.push(BindMount::app_code(&self.app));
        spec.limits = self.limits;
        spec.network = network;
        spec.log = LogSpec::Null;
        spec
    }

    /// `/bin/true`: create + start (exec), wait for its exit, remove.
    pub fn true_run(&self, network: NetworkMode) -> anyhow::Result<TrueSample> {
        let spec = self.spec(&Workload::True, network);
        let t0 = Instant::now();
        let c = self.runtime.create(&spec).context("create")?;
        c.start().context("start")?;
        let exec = t0.elapsed();
        let status = c.wait_blocking().context("wait")?;
        let exit = t0.elapsed();
        let t = c.timings();
        c.remove().context("remove")?;
        let removed = t0.elapsed();
        if !status.success() {
            bail!("/bin/true in a hako container {status}");
        }
        Ok(TrueSample {
            exec,
            exit,
            removed,
            clone: t.clone,
            prepare: t.prepare,
            release: t.release.unwrap_or_default(),
        })
    }

    /// A prepared (parked) container: only `start` → exec is timed (the warm-pool figure).
    pub fn parked_release(&self) -> anyhow::Result<Duration> {
        let spec = self.spec(&Workload::True, NetworkMode::None);
        let c = self.runtime.create(&spec).context("create")?;
        let t0 = Instant::now();
        c.start().context("start")?;
        let took = t0.elapsed();
        let status = c.wait_blocking().context("wait")?;
        c.remove().context("remove")?;
        if !status.success() {
            bail!("/bin/true in a parked hako container {status}");
        }
        Ok(took)
    }

    /// An HTTP server: create + start until the first HTTP 200, then remove (untimed).
    /// `isolated`: polled at the container's own address; `host`: at 127.0.0.1.
    pub fn http_ready(
        &self,
        workload: &Workload,
        network: NetworkMode,
    ) -> anyhow::Result<Duration> {
        let spec = self.spec(workload, network);
        let t0 = Instant::now();
        let c = self.runtime.create(&spec).context("create")?;
        c.start().context("start")?;
        let ip = match network {
            NetworkMode::Isolated => c
                .address()
                .context("an isolated container has an address")?,
            _ => [127, 0, 0, 1].into(),
        };
        let addr = SocketAddr::from((ip, workload.port()));
        let ready = http::wait_for_200(addr, t0 + Duration::from_secs(10));
        let took = ready.map(|at| at - t0);
        let exited = c.try_wait().ok().flatten();
        c.remove().context("remove")?;
        took.with_context(|| match exited {
            Some(s) => format!("hako {workload}: the server {s}"),
            None => format!("hako {workload}"),
        })
    }
}

impl Drop for Hako {
    fn drop(&mut self) {
        self.runtime.shutdown();
    }
}
