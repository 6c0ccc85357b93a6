//! Site owners end to end (root): a real `hako serve`, the admin making two tenants and their
//! tokens with the CLI, one tenant deploying a site from a directory (packed and uploaded, as
//! a tenant's token must) that a real container serves, the other getting 404s for it on
//! every command and nothing of it from `/metrics`, a quota refusing with exit code 4, and a
//! revoked token refused with exit code 3.

mod common;

use std::path::Path;

use common::{Outcome, Serve};

/// `hako ARGS…` as a site owner: `HAKO_TOKEN` set, and a data dir of its own (no admin
/// token to fall back on).
fn as_owner(d: &Serve, home: &Path, token: &str, args: &[&str]) -> Outcome {
    Outcome::from(
        hako_testkit::hako_command(Path::new(common::HAKO), home)
            .args(args)
            .env("HAKO_API", d.api_url())
            .env("HAKO_TOKEN", token)
            .output()
            .unwrap(),
    )
}

#[test]
fn a_tenant_deploys_its_site_and_another_tenant_cannot_see_it() {
    let env = common::Env::new();
    let site = env.host_image_and_site("alpha's site\n");
    let d = common::serve(&env.data_dir());
    let home = env.path("owner-home");
    std::fs::create_dir_all(&home).unwrap();

    // The admin: two tenants, a token each (printed once, on stdout).
    d.ok(&[
        "tenant",
        "create",
        "alpha",
        "--max-apps",
        "2",
        "--max-instances",
        "4",
        "--max-memory",
        "2GiB",
    ]);
    d.ok(&["tenant", "create", "beta"]);
    let alpha = d
        .ok(&["token", "create", "--tenant", "alpha", "--name", "owner"])
        .trim()
        .to_string();
    let beta = d
        .ok(&["token", "create", "--tenant", "beta"])
        .trim()
        .to_string();
    assert!(
        alpha.starts_with("hkt_") && beta.starts_with("hkt_"),
        "{alpha} {beta}"
    );
    let listed = d.ok(&["token", "list"]);
    assert!(
        listed.contains("owner") && listed.contains("token-1"),
        "{listed}"
    );
    assert!(
        !listed.contains(&alpha) && !listed.contains(&beta),
        "{listed}"
    );

    // Alpha creates its site from a directory: packed and uploaded, served by a container.
    let out = as_owner(
        &d,
        &home,
        &alpha,
        &[
            "app",
            "create",
            "site",
            "--host",
            "site.example",
            "--image",
            "base",
            "--max",
            "2",
            "--code",
            site.to_str().unwrap(),
            "--cmd",
            "busybox httpd -f -p $PORT -h /app",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("deployed release 1 of site"), "{out:?}");
    let (status, body) = common::get(&d.proxy, "site.example", "/index.html");
    assert_eq!((status, body.as_str()), (200, "alpha's site\n"));
    let release = &d.client().releases("site").unwrap()[0];
    assert!(release.source.starts_with("upload"), "{release:?}");

    // Beta: the site does not exist, whatever it asks.
    let missing = "app \"site\" not found";
    for args in [
        &["app", "show", "site"][..],
        &["app", "logs", "site"],
        &["app", "logs", "site", "--follow"],
        &["app", "cert", "site"],
        &["app", "events", "site"],
        &["app", "metrics", "site"],
        &["app", "rollout", "site"],
        &["app", "update", "site", "--max", "1"],
        &["app", "deploy", "site", "--code", site.to_str().unwrap()],
        &["app", "delete", "site", "--yes"],
        &["instance", "list", "--app", "site"],
        &["slo", "site"],
    ] {
        let out = as_owner(&d, &home, &beta, args);
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(out.stderr.contains(missing), "{args:?}: {out:?}");
    }
    let out = as_owner(&d, &home, &beta, &["app", "list"]);
    assert!(out.success() && !out.stdout.contains("site"), "{out:?}");
    let out = as_owner(&d, &home, &beta, &["instance", "list", "--json"]);
    let listed: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    assert!(listed.is_empty(), "{listed:?}");
    // The daemon's own exposition: a tenant scrapes its apps' series, none of the node's.
    let scrape = |token: &str| {
        hako_testkit::http::raw(
            d.api,
            &format!(
                "GET /metrics HTTP/1.0\r\nHost: hako\r\nAuthorization: Bearer {token}\r\n\r\n"
            ),
        )
    };
    let (status, theirs) = scrape(&beta);
    assert_eq!(status, 200, "{theirs}");
    assert!(
        !theirs.contains("app=\"site\"") && !theirs.contains("hako_node_"),
        "{theirs}"
    );
    let (status, own) = scrape(&alpha);
    assert_eq!(status, 200, "{own}");
    assert!(
        own.contains("hako_requests_total{")
            && own.contains("app=\"site\"")
            && !own.contains("hako_node_"),
        "{own}"
    );
    let out = as_owner(
        &d,
        &home,
        &beta,
        &[
            "app",
            "create",
            "mine",
            "--host",
            "site.example",
            "--image",
            "base",
            "--cmd",
            "x",
        ],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("already in use by another app") && !out.stderr.contains("alpha"),
        "{out:?}"
    );
    assert_eq!(
        common::get(&d.proxy, "site.example", "/index.html"),
        (200, "alpha's site\n".to_string()),
        "untouched"
    );

    // Alpha's own view: its events say who did what; its quota holds.
    let out = as_owner(&d, &home, &alpha, &["app", "events", "site", "--json"]);
    let events: Vec<hako_model::Event> = serde_json::from_str(&out.stdout).unwrap();
    let deployed = events
        .iter()
        .find(|e| e.kind == hako_model::EventKind::Deployed)
        .unwrap();
    assert_eq!(deployed.actor.as_deref(), Some("alpha/owner"));
    assert!(
        events
            .iter()
            .any(|e| e.kind == hako_model::EventKind::Start)
    );
    let out = as_owner(
        &d,
        &home,
        &alpha,
        &[
            "app",
            "create",
            "big",
            "--host",
            "big.example",
            "--image",
            "base",
            "--cmd",
            "x",
            "--max",
            "3",
        ],
    );
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("quota of tenant \"alpha\""), "{out:?}");
    let err = hako_api::Client::new(d.api_url(), &alpha)
        .deploy_dir("site", Path::new("/etc"))
        .unwrap_err();
    assert_eq!(err.status(), Some(403), "{err}");

    // The admin sees every app with its tenant; a revoked token stops at once.
    let list = d.ok(&["app", "list"]);
    let line = list.lines().find(|l| l.starts_with("site")).unwrap();
    assert!(line.contains("alpha"), "{list}");
    d.ok(&["token", "revoke", "--tenant", "alpha", "owner"]);
    let out = as_owner(&d, &home, &alpha, &["app", "list"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("revoked"), "{out:?}");
    d.stop();
}
