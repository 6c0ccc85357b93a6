//! The multi-host test bed (`hako-testbed`) with this package's hako: hosts as network
//! namespaces, etcd, and hako's processes on them. A site created through the bed's front —
//! with the CLI pointed at it as the bed's `export` lines do — is served through the front's
//! proxy from this machine; after a `kill -9` of the front, `down` still leaves no process,
//! namespace, link, cgroup or mount.
//!
//! With a hako that has `hako agent`, the bed runs an agent per host and a front without
//! instances, so the site's instance runs on one of the agents' hosts; before that, the front
//! runs the first host's instances itself.

mod common;

use std::time::Duration;

use common::{HAKO, require_root, wait_until};
use hako_testkit::site::{STATIC_CMD, static_code};
use hako_testkit::testbed::{Testbed, TestbedConfig};

#[test]
fn a_site_is_served_through_the_beds_front_and_down_leaves_nothing() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let mut config = TestbedConfig::unique(2);
    config.hako = Some(HAKO.into());
    config.state_root = tmp.path().join("beds");
    let mut bed = Testbed::up(config).unwrap();
    let front = bed.front().expect("the bed runs a front");
    assert_eq!(front.api.ip(), std::net::IpAddr::V4(bed.node(1).addr));

    let code = static_code(&tmp.path().join("site"), "from the bed\n");
    let cli = |args: &[&str]| {
        let out = hako_testkit::hako_command(HAKO.as_ref(), &tmp.path().join("cli"))
            .args(args)
            .env("HAKO_API", format!("http://{}", front.api))
            .env("HAKO_TOKEN", &front.token)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "hako {args:?}: {text}");
        text
    };
    cli(&[
        "app",
        "create",
        "site",
        "--host",
        "site.example",
        "--image",
        "base",
        "--code",
        code.to_str().unwrap(),
        "--cmd",
        STATIC_CMD,
    ]);
    let (status, body) = common::get(front.proxy, "site.example", "/index.html");
    assert_eq!((status, body.as_str()), (200, "from the bed\n"));
    let instances = cli(&["instance", "list"]);
    assert!(instances.contains("site"), "{instances}");

    // The front's host keeps serving while another host's cable is out.
    bed.cut_network(2).unwrap();
    let (status, _) = common::get(front.proxy, "site.example", "/index.html");
    assert_eq!(status, 200);
    bed.restore_network(2).unwrap();
    wait_until("host2's etcd member back", Duration::from_secs(30), || {
        bed.etcd().healthy(1)
    });

    // A crash leaves the instance's cgroup and the front's runtime state: down removes them.
    let prefix = bed.node(1).prefix.clone();
    bed.kill_front().unwrap();
    let cgroups = || {
        std::fs::read_dir("/sys/fs/cgroup")
            .unwrap()
            .flatten()
            .any(|d| d.path().join(&prefix).exists())
    };
    let left_by_the_crash = cgroups();
    bed.down().unwrap();
    assert!(!cgroups(), "down left cgroups of {prefix}");
    eprintln!("the crash left cgroups of {prefix}: {left_by_the_crash}");
}
