//! The benchmark's cluster: a test bed of three hosts (`hako-testbed`: hosts as network
//! namespaces, a 3-member etcd, an agent per host, a front on the first host without
//! instances of its own) brought up by the benchmark itself with the release-built `hako`,
//! and the ways the benchmark talks to it — the CLI and the API client pointed at the front,
//! requests through the front's proxy, the cluster store. The bed is taken down when this
//! value is dropped, also on an error or a panic; [`Bed::down`] checks that nothing is left.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hako_model::{InstanceInfo, NodeState};
use hako_testkit::testbed::{Testbed, TestbedConfig};

/// The bed's hosts.
pub const NODES: usize = 3;

/// A running bed and its front.
pub struct Bed {
    pub bed: Testbed,
    hako: PathBuf,
    cli_dir: PathBuf,
    pub client: hako_api::Client,
    pub api: SocketAddr,
    pub token: String,
    pub proxy: SocketAddr,
}

impl Bed {
    /// Brings a bed up (a unique name and LAN, its state under `tmp`).
    pub fn up(hako: &Path, tmp: &Path) -> anyhow::Result<Bed> {
        let t = Instant::now();
        let mut config = TestbedConfig::unique(NODES);
        config.hako = Some(hako.to_path_buf());
        config.state_root = tmp.join("beds");
        let bed = Testbed::up(config).context("the test bed did not come up")?;
        let has = bed.commands().context("the bed runs no hako")?;
        if !has.cluster() {
            bail!("this hako has no cluster commands ({has:?})");
        }
        let front = bed.front().context("the bed runs no front")?;
        let (api, token, proxy) = (front.api, front.token.clone(), front.proxy);
        eprintln!(
            "bench cluster: bed {} up in {:.1} s (front API http://{api}, proxy {proxy})",
            bed.name(),
            t.elapsed().as_secs_f64()
        );
        Ok(Bed {
            client: hako_api::Client::new(format!("http://{api}"), &token),
            bed,
            hako: hako.to_path_buf(),
            cli_dir: tmp.join("cli"),
            api,
            token,
            proxy,
        })
    }

    /// `hako ARGS…` against the front; its output, or an error with it.
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = hako_testkit::Outcome::from(
            hako_testkit::hako_command(&self.hako, &self.cli_dir)
                .args(args)
                .env("HAKO_API", format!("http://{}", self.api))
                .env("HAKO_TOKEN", &self.token)
                .output()
                .context("cannot run hako")?,
        );
        if !out.success() {
            bail!("hako {}: {}", args.join(" "), out.text().trim());
        }
        Ok(out.stdout)
    }

    /// Creates a static site `name` (host `NAME.bench`, image `base`, busybox httpd) with
    /// `code` and the `extra` options.
    pub fn create(&self, name: &str, code: &Path, extra: &[&str]) -> anyhow::Result<()> {
        let host = host(name);
        let mut args = vec![
            "app",
            "create",
            name,
            "--host",
            &host,
            "--image",
            "base",
            "--code",
            code.to_str().context("the temp dir path is not UTF-8")?,
            "--cmd",
            "busybox httpd -f -p $PORT -h /app",
        ];
        args.extend_from_slice(extra);
        self.cli(&args).map(drop)
    }

    /// `GET /index.html` of site `name` through the front, which must answer 200; the time
    /// from connecting to its last byte.
    pub fn get_ok(&self, name: &str) -> anyhow::Result<Duration> {
        let (r, took) = crate::request::get(
            self.proxy,
            &host(name),
            "/index.html",
            &[],
            Duration::from_secs(30),
        )?;
        if r.status != 200 {
            bail!("{name} answered {} {:?}", r.status, r.text());
        }
        Ok(took)
    }

    /// The node (its name) of app `name`'s one ready instance.
    pub fn node_of(&self, name: &str) -> anyhow::Result<String> {
        let ready: Vec<InstanceInfo> = self
            .client
            .instances(Some(name))?
            .into_iter()
            .filter(|i| i.state == hako_model::InstanceState::Ready)
            .collect();
        match ready.as_slice() {
            [one] => Ok(one.node.clone()),
            _ => bail!("{name} has {} ready instances: {ready:?}", ready.len()),
        }
    }

    /// New instances go to host `n` only: every other host cordoned, `n` active.
    pub fn only_on(&self, n: usize) -> anyhow::Result<()> {
        for node in self.bed.nodes() {
            let state = if node.index == n {
                NodeState::Active
            } else {
                NodeState::Cordoned
            };
            self.client.set_node_state(&node.name, state)?;
        }
        Ok(())
    }

    /// Creates and starts each of `names` (the same code, 10 min idle timeout, 64 MiB) on host
    /// `n` alone, checks each runs there, then makes every host active again.
    pub fn sites_on(&self, n: usize, names: &[String], code: &Path) -> anyhow::Result<()> {
        let node = self.bed.node(n).name.clone();
        self.only_on(n)?;
        for name in names {
            self.create(name, code, &["--idle-timeout", "10m", "--memory", "64MiB"])?;
            self.get_ok(name)?;
            let on = self.node_of(name)?;
            if on != node {
                bail!("{name} started on {on}, not on {node}");
            }
        }
        self.uncordon_all()
    }

    /// Every host active again (a lost one is skipped).
    pub fn uncordon_all(&self) -> anyhow::Result<()> {
        for node in self.bed.nodes() {
            if node.agent_pid().is_some() {
                self.client.set_node_state(&node.name, NodeState::Active)?;
            }
        }
        Ok(())
    }

    /// The cluster store (the bed's etcd), for writes the benchmark makes directly.
    pub async fn store(&self) -> anyhow::Result<Arc<dyn hako_store::Store>> {
        let spec = self
            .bed
            .etcd()
            .endpoint()
            .parse()
            .context("the bed's etcd endpoint")?;
        Ok(hako_store::open(&spec).await?)
    }

    /// Takes the bed down, failing if anything is left.
    pub fn down(self) -> anyhow::Result<()> {
        let name = self.bed.name().to_string();
        self.bed
            .down()
            .with_context(|| format!("taking bed {name} down"))
    }
}

/// The host name of site `name`.
pub fn host(name: &str) -> String {
    format!("{name}.bench")
}
