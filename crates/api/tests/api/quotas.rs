//! Quotas per tenant: apps, instances (max + warm pool), memory (memory × slots) and release
//! size, enforced at create, update (scale) and deploy with 422 (413 for a release), for
//! whoever acts on the tenant's apps; a lowered quota blocks growth only.

use hako_api::AppPatch;
use hako_model::{ByteSize, Quota, QuotaPatch};

use crate::harness::{Server, api_status, spec};

fn quota() -> Quota {
    Quota {
        max_apps: Some(2),
        max_memory: Some(ByteSize(1 << 30)),
        max_instances: Some(6),
        max_release_size: Some(ByteSize(10)),
    }
}

#[test]
fn apps_instances_and_memory_are_bounded_at_create_and_update() {
    let server = Server::start();
    let acme = server.tenant("acme", quota());
    let mut small = spec("a", "a.example");
    small.max = 2;
    acme.create_app(&small).unwrap(); // 2 slots, 512MiB
    let mut b = spec("b", "b.example");
    b.max = 5;
    let (status, msg) = api_status(acme.create_app(&b).unwrap_err());
    assert_eq!(status, 422);
    assert!(
        msg.contains("quota of tenant \"acme\"")
            && msg.contains("at most 6 instances")
            && msg.contains("needs 7"),
        "{msg}"
    );
    b.max = 2;
    acme.create_app(&b).unwrap(); // 4 slots, 1GiB: at the memory bound
    let (status, msg) = api_status(acme.create_app(&spec("c", "c.example")).unwrap_err());
    assert_eq!(status, 422);
    assert!(
        msg.contains("at most 2 apps") && msg.contains("--max-apps"),
        "{msg}"
    );

    // Scaling up: more instances, more memory, a warm pool — each counted.
    let cases = [
        (
            AppPatch {
                max: Some(3),
                ..AppPatch::default()
            },
            "memory",
        ),
        (
            AppPatch {
                memory: Some(ByteSize(300 << 20)),
                ..AppPatch::default()
            },
            "memory",
        ),
        (
            AppPatch {
                warm_pool: Some(3),
                ..AppPatch::default()
            },
            "instances",
        ),
    ];
    for (patch, what) in cases {
        let (status, msg) = api_status(acme.update_app("a", &patch).unwrap_err());
        assert_eq!(status, 422, "{patch:?}");
        assert!(msg.contains(what), "{patch:?}: {msg}");
    }
    // Trading memory for instances within the bounds passes.
    let ok = AppPatch {
        memory: Some(ByteSize(128 << 20)),
        max: Some(4),
        ..AppPatch::default()
    };
    acme.update_app("a", &ok).unwrap();
    let usage = acme.tenant("acme").unwrap().usage;
    assert_eq!((usage.apps, usage.instances), (2, 6));
    assert_eq!(usage.memory_bytes, (128 << 20) * 4 + (256 << 20) * 2);
    // Another tenant's quota is its own.
    let other = server.tenant("other", Quota::default());
    let mut big = spec("big", "big.example");
    big.max = 50;
    other.create_app(&big).unwrap();
}

#[test]
fn the_admin_acts_within_a_tenants_quota_and_a_lowered_quota_blocks_growth_only() {
    let server = Server::start();
    let admin = server.client();
    let acme = server.tenant("acme", quota());
    acme.create_app(&spec("a", "a.example")).unwrap(); // 4 slots, 1GiB
    let (status, _) = api_status(
        admin
            .update_app(
                "a",
                &AppPatch {
                    max: Some(8),
                    ..AppPatch::default()
                },
            )
            .unwrap_err(),
    );
    assert_eq!(status, 422, "the admin raises the quota, not acts past it");
    let (status, _) = api_status(
        admin
            .create_app_for(&spec("x", "x.example"), "acme")
            .and_then(|_| admin.create_app_for(&spec("y", "y.example"), "acme"))
            .unwrap_err(),
    );
    assert_eq!(status, 422);
    // The admin's own apps have no quota.
    let mut own = spec("own", "own.example");
    own.max = 50;
    admin.create_app(&own).unwrap();

    // Lowered below what the apps hold: changes that do not grow still pass.
    admin
        .update_tenant(
            "acme",
            &QuotaPatch {
                max_instances: Some(Some(1)),
                max_memory: Some(None),
                ..QuotaPatch::default()
            },
        )
        .unwrap();
    let t = acme.tenant("acme").unwrap();
    assert_eq!(
        (t.tenant.quota.max_instances, t.tenant.quota.max_memory),
        (Some(1), None)
    );
    acme.update_app(
        "a",
        &AppPatch {
            idle_timeout: Some("20m".parse().unwrap()),
            ..AppPatch::default()
        },
    )
    .unwrap();
    acme.update_app(
        "a",
        &AppPatch {
            max: Some(3),
            ..AppPatch::default()
        },
    )
    .unwrap();
    let (status, _) = api_status(
        acme.update_app(
            "a",
            &AppPatch {
                max: Some(4),
                ..AppPatch::default()
            },
        )
        .unwrap_err(),
    );
    assert_eq!(status, 422);
    let (status, _) = api_status(
        acme.update_tenant("acme", &QuotaPatch::default())
            .unwrap_err(),
    );
    assert_eq!(status, 403, "a tenant does not set its own quota");
}

#[test]
fn a_release_over_the_tenants_bound_is_413_and_leaves_nothing() {
    let server = Server::start();
    let acme = server.tenant("acme", quota());
    acme.create_app(&spec("a", "a.example")).unwrap();
    let (status, msg) = api_status(acme.deploy_archive("a", b"fifteen bytes!!").unwrap_err());
    assert_eq!(status, 413);
    assert!(
        msg.contains("tenant \"acme\"'s quota allows releases of at most 10B"),
        "{msg}"
    );
    assert_eq!(acme.app("a").unwrap().release, None);
    assert!(acme.releases("a").unwrap().is_empty());
    assert_eq!(acme.deploy_archive("a", b"ten bytes!").unwrap().number, 1);
    // The bound went to the node with the release (the fake node enforces it as the real
    // one does while unpacking).
    let made = server.backend.made.lock().unwrap();
    assert_eq!(made.len(), 1);
}
