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

use common::{HAKO, require_root};
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
    let cluster = bed.commands().is_some_and(|c| c.cluster());
    let front = bed.front().expect("the bed runs a front");
    assert_eq!(front.api.ip(), std::net::IpAddr::V4(bed.node(1).addr));
    let (api, token, proxy) = (front.api, front.token.clone(), front.proxy);

    let code = static_code(&tmp.path().join("site"), "from the bed\n");
    let cli = |args: &[&str]| {
        let out = hako_testkit::hako_command(HAKO.as_ref(), &tmp.path().join("cli"))
            .args(args)
            .env("HAKO_API", format!("http://{api}"))
            .env("HAKO_TOKEN", &token)
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
    // The site's instance runs on host2: the front on host1 reaches it across the bed.
    let runs_on = if cluster {
        cli(&["node", "cordon", "host1"]);
        2
    } else {
        1
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
    let (status, body) = common::get(proxy, "site.example", "/index.html");
    assert_eq!((status, body.as_str()), (200, "from the bed\n"));
    let instances = cli(&["instance", "list"]);
    let subnet = bed.node(runs_on).subnet.to_string();
    let net = subnet.trim_end_matches("0/24");
    assert!(
        instances
            .lines()
            .any(|l| l.contains("site") && l.contains(net)),
        "the instance is not on host{runs_on} ({subnet}): {instances}"
    );

    // A crash of the process that ran the instance leaves its cgroup: down removes it.
    let prefix = bed.node(runs_on).prefix.clone();
    if cluster {
        bed.kill_agent(runs_on).unwrap();
    } else {
        bed.kill_front().unwrap();
    }
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

/// Isolation across nodes, end to end: a site's instance on host2 asks (through a CGI
/// script, on a request sent through the front) for another site's instance on host1, and
/// for host1's own services (the front's API): every attempt is refused, while the same probe
/// reaches its own instance.
#[test]
#[ignore = "needs hako's processes to follow the node set with cluster_routes::sync and \
            --cluster-cidr (issue 10): without them an instance reaches the other nodes'"]
fn an_instance_reaches_no_instance_and_no_service_on_another_node() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let mut config = TestbedConfig::unique(2);
    config.hako = Some(HAKO.into());
    config.state_root = tmp.path().join("beds");
    let bed = Testbed::up(config).unwrap();
    assert!(
        bed.commands().is_some_and(|c| c.cluster()),
        "this hako has no `hako agent`"
    );
    let front = bed.front().unwrap();
    let (api, token, proxy) = (front.api, front.token.clone(), front.proxy);
    let cli = |args: &[&str]| {
        let out = hako_testkit::hako_command(HAKO.as_ref(), &tmp.path().join("cli"))
            .args(args)
            .env("HAKO_API", format!("http://{api}"))
            .env("HAKO_TOKEN", &token)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "hako {args:?}: {text}");
        text
    };
    let create = |name: &str, code: &std::path::Path| {
        cli(&[
            "app",
            "create",
            name,
            "--host",
            &format!("{name}.example"),
            "--image",
            "base",
            "--code",
            code.to_str().unwrap(),
            "--cmd",
            STATIC_CMD,
        ]);
    };
    // The target on host1.
    cli(&["node", "cordon", "host2"]);
    create(
        "target",
        &static_code(&tmp.path().join("target"), "secret of host1\n"),
    );
    assert_eq!(common::get(proxy, "target.example", "/index.html").0, 200);
    let list = cli(&["instance", "list"]);
    let target = list
        .lines()
        .find(|l| l.contains("target"))
        .and_then(|l| l.split_whitespace().nth(2))
        .expect("the target's instance")
        .to_string();
    assert!(target.starts_with("10.77.1."), "{list}");
    // The probe on host2: busybox httpd runs /cgi-bin/probe, which fetches ?ADDR:PORT.
    cli(&["node", "uncordon", "host2"]);
    cli(&["node", "cordon", "host1"]);
    let code = static_code(&tmp.path().join("probe"), "the probe itself\n");
    std::fs::create_dir_all(code.join("cgi-bin")).unwrap();
    let script = code.join("cgi-bin/probe");
    std::fs::write(
        &script,
        "#!/bin/sh\necho 'Content-Type: text/plain'\necho\n\
         busybox timeout 2 busybox wget -q -O - \"http://$QUERY_STRING/index.html\" || echo unreachable\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(code.join("cgi-bin"), std::fs::Permissions::from_mode(0o755)).unwrap();
    create("probe", &code);
    let probe = |target: &str| {
        let (status, body) =
            common::get(proxy, "probe.example", &format!("/cgi-bin/probe?{target}"));
        assert_eq!(status, 200, "{body}");
        body
    };
    // The probe works: it reaches its own instance.
    assert_eq!(common::get(proxy, "probe.example", "/index.html").0, 200);
    let list = cli(&["instance", "list"]);
    let own = list
        .lines()
        .find(|l| l.contains("probe"))
        .and_then(|l| l.split_whitespace().nth(2))
        .expect("the probe's instance")
        .to_string();
    assert!(own.starts_with("10.77.2."), "{list}");
    assert!(probe(&own).contains("the probe itself"));
    for (what, addr) in [
        ("host1's instance", target.clone()),
        ("host1's front API", api.to_string()),
        ("host1's etcd", format!("{}:2379", bed.node(1).addr)),
    ] {
        let body = probe(&addr);
        assert!(
            body.contains("unreachable") && !body.contains("secret"),
            "an instance on host2 reached {what} ({addr}): {body}"
        );
    }
    bed.down().unwrap();
}
