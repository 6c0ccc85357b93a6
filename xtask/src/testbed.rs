//! `cargo xtask testbed up|down|status`: a hako cluster on this machine (see the
//! `hako-testbed` crate): hosts as network namespaces on a private bridge, a 3-member etcd,
//! an agent per host, a front on the first host. `up` prints the shell `export` lines that
//! point hako's CLI at the front (on stdout, so `eval "$(cargo xtask testbed up)"` works; the
//! rest goes to stderr); `down` removes everything and says what, if anything, it could not.

use std::path::PathBuf;

use anyhow::{Context, bail};
use hako_testbed::{Testbed, TestbedConfig, teardown};

use crate::setup;
use crate::test::{require_root, run};

pub const USAGE: &str =
    "cargo xtask testbed up [--nodes N] [--name NAME] [--lan CIDR] [--state-root DIR]
             [--etcd-members N] [--lease DUR] [--debug] [--no-hako]
       cargo xtask testbed down [--name NAME] [--state-root DIR]
       cargo xtask testbed status [--name NAME] [--state-root DIR]
  --nodes N        hosts (network namespaces), 1 to 9 (default 3)
  --name NAME      the bed's name, 1 to 3 lowercase letters or digits (default tb)
  --lan CIDR       the hosts' network (default 10.99.0.0/24: host n is 10.99.0.(10+n))
  --state-root DIR where beds keep pids, logs and data (default /run/hako-testbed)
  --debug          run a debug build of hako (default: release)
  --no-hako        only the network and etcd";

/// Commands the bed runs, and their Debian packages.
const PACKAGES: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("nft", "nftables"),
    ("nsenter", "util-linux"),
    ("unshare", "util-linux"),
    ("etcd", "etcd-server"),
    ("busybox", "busybox-static"),
];

struct Options {
    nodes: usize,
    name: String,
    lan: Option<String>,
    state_root: Option<PathBuf>,
    etcd_members: Option<usize>,
    lease: Option<String>,
    debug: bool,
    hako: bool,
}

fn options(args: &[&str]) -> anyhow::Result<Options> {
    let mut o = Options {
        nodes: 3,
        name: "tb".into(),
        lan: None,
        state_root: None,
        etcd_members: None,
        lease: None,
        debug: false,
        hako: true,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .map(|v| v.to_string())
                .with_context(|| format!("{a} needs a value\n{USAGE}"))
        };
        match *a {
            "--nodes" => o.nodes = value()?.parse().context("--nodes takes a number")?,
            "--name" => o.name = value()?,
            "--lan" => o.lan = Some(value()?),
            "--state-root" => o.state_root = Some(value()?.into()),
            "--etcd-members" => {
                o.etcd_members = Some(value()?.parse().context("--etcd-members takes a number")?)
            }
            "--lease" => o.lease = Some(value()?),
            "--debug" => o.debug = true,
            "--no-hako" => o.hako = false,
            other => bail!("unknown option {other}\n{USAGE}"),
        }
    }
    Ok(o)
}

fn config(o: &Options) -> anyhow::Result<TestbedConfig> {
    let mut c = TestbedConfig::new(&o.name, o.nodes);
    if let Some(lan) = &o.lan {
        c.lan = lan
            .parse()
            .with_context(|| format!("--lan {lan}: write a network like 10.99.0.0/24"))?;
    }
    if let Some(root) = &o.state_root {
        c.state_root = root.clone();
    }
    if let Some(n) = o.etcd_members {
        c.etcd_members = n;
    }
    c.lease = o.lease.clone();
    Ok(c)
}

pub fn main(args: &[&str]) -> anyhow::Result<()> {
    match args {
        ["up", rest @ ..] => up(&options(rest)?),
        ["down", rest @ ..] => down(&options(rest)?),
        ["status", rest @ ..] => status(&options(rest)?),
        _ => bail!("usage: {USAGE}"),
    }
}

fn up(o: &Options) -> anyhow::Result<()> {
    require_root()?;
    setup::ensure_packages(PACKAGES)?;
    let mut c = config(o)?;
    if o.hako {
        let root = crate::workspace_root();
        let mut build = std::process::Command::new("cargo");
        build.current_dir(&root).args(["build", "-p", "hako"]);
        if !o.debug {
            build.arg("--release");
        }
        run(&mut build).context("cannot build hako")?;
        let profile = if o.debug { "debug" } else { "release" };
        c.hako = Some(target_dir(&root).join(profile).join("hako"));
    }
    let bed =
        Testbed::up(c.clone()).with_context(|| format!("test bed {} did not come up", c.name))?;
    let has = bed.commands().cloned();
    let state = bed.detach()?;
    eprintln!(
        "xtask: test bed {} is up: {} hosts on {} (bridge {}), etcd {}",
        state.name,
        state.nodes,
        state.lan,
        hako_testbed::lan::bridge_name(&state.name),
        state.store
    );
    for n in 1..=state.nodes {
        eprintln!(
            "  host{n}: ip netns exec {} … ; address {}; instances {}",
            hako_testbed::lan::host_name(&state.name, n),
            hako_testbed::lan::host_addr(c.lan, n),
            hako_testbed::node_subnet(n)
        );
    }
    match has {
        Some(h) if h.cluster() => eprintln!("  an agent on every host, the front on host1"),
        Some(_) => eprintln!(
            "  this hako has no `hako agent` yet: the front on host1 runs host1's instances itself"
        ),
        None => eprintln!("  no hako (--no-hako): network and etcd only"),
    }
    eprintln!(
        "  state, pids and logs: {}\n  take it down with: cargo xtask testbed down --name {}",
        state.state_dir.display(),
        state.name
    );
    print!("{}", state.exports());
    Ok(())
}

fn down(o: &Options) -> anyhow::Result<()> {
    require_root()?;
    let c = config(o)?;
    let left = teardown::down(&c.state_dir(), &c.name)?;
    if !left.is_empty() {
        bail!(
            "test bed {} is down but left:\n  {}",
            c.name,
            left.join("\n  ")
        );
    }
    eprintln!("xtask: test bed {} is down; nothing of it is left", c.name);
    Ok(())
}

fn status(o: &Options) -> anyhow::Result<()> {
    let c = config(o)?;
    let Some(state) = hako_testbed::state::BedState::load(&c.state_dir())? else {
        eprintln!(
            "xtask: no test bed named {} (no {})",
            c.name,
            c.state_dir().display()
        );
        return Ok(());
    };
    for p in &state.processes {
        let alive = if p.alive() { "running" } else { "gone" };
        eprintln!(
            "  {:<12} pid {:<8} {alive:<8} {}",
            p.name,
            p.pid,
            p.log.display()
        );
    }
    print!("{}", state.exports());
    Ok(())
}

/// The workspace's target dir (`CARGO_TARGET_DIR` or `target`).
fn target_dir(root: &std::path::Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}
