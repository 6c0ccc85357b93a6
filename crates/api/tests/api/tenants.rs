//! Tenants and tokens: made and managed by the admin only, tokens shown once and stored
//! hashed, revoked at once; apps owned by a tenant; who made each change; what only the admin
//! may give an app (a directory of the server as code, the host's network, no syscall filter).

use hako_api::{AppPatch, Client};
use hako_model::{AppNetwork, EventKind, InstanceInfo, InstanceState, Quota, StartPath};
use hako_store::keys;

use crate::harness::{Server, api_status, spec};

#[test]
fn tokens_are_shown_once_stored_hashed_and_revoked_at_once() {
    let server = Server::start();
    let admin = server.client();
    let t = admin.create_tenant("acme", &Quota::default()).unwrap();
    assert_eq!((t.tenant.name.as_str(), t.usage.apps), ("acme", 0));
    let (status, msg) = api_status(admin.create_tenant("acme", &Quota::default()).unwrap_err());
    assert_eq!(status, 409, "{msg}");
    for bad in ["Acme", "admin", "a b"] {
        let (status, msg) = api_status(admin.create_tenant(bad, &Quota::default()).unwrap_err());
        assert_eq!(status, 400, "{bad}: {msg}");
        let (status, _) = server.send(
            "POST",
            "/v1/tenants",
            Some(&server.token),
            Some((
                "application/json",
                format!(r#"{{"name": "{bad}"}}"#).into_bytes(),
            )),
        );
        assert_eq!(status, 400, "{bad}");
    }

    let first = admin.create_token("acme", None).unwrap();
    let second = admin.create_token("acme", None).unwrap();
    let named = admin.create_token("acme", Some("ci")).unwrap();
    assert_eq!(
        [&first, &second, &named].map(|t| t.record.name.as_str()),
        ["token-1", "token-2", "ci"]
    );
    assert!(first.token.starts_with("hkt_") && first.token.len() == 68);
    let (status, msg) = api_status(admin.create_token("acme", Some("ci")).unwrap_err());
    assert_eq!(status, 409, "{msg}");
    assert_eq!(
        api_status(admin.create_token("nobody", None).unwrap_err()).0,
        404
    );
    // Lists show names and first characters, never a token; the store holds none either.
    let listed = admin.tokens("acme").unwrap();
    assert_eq!(listed.len(), 3);
    assert!(
        listed
            .iter()
            .any(|t| t.hint == format!("{}…", &first.token[..8]))
    );
    let everything = store_dump(&server);
    for t in [&first, &second, &named] {
        assert!(!everything.contains(&t.token), "a token in the store");
        assert!(
            !everything.contains(&t.token[4..]),
            "a token's random part in the store"
        );
        assert!(
            everything.contains(&hako_api::token::hash(&t.token)),
            "its hash is the key"
        );
    }

    let ci = Client::new(server.url(), &named.token);
    let who = ci.whoami().unwrap();
    assert_eq!(
        (who.actor.as_str(), who.admin, who.tenant.as_deref()),
        ("acme/ci", false, Some("acme"))
    );
    assert!(admin.whoami().unwrap().admin);
    admin.revoke_token("acme", "ci").unwrap();
    assert_eq!(
        ci.list_apps().unwrap_err().status(),
        Some(401),
        "revoked at once"
    );
    assert_eq!(
        api_status(admin.revoke_token("acme", "ci").unwrap_err()).0,
        404
    );
    Client::new(server.url(), &first.token).list_apps().unwrap();
    assert_eq!(admin.tokens("acme").unwrap().len(), 2);

    // Each change is an event of the tenant's, with who made it; its tokens read them too.
    admin
        .update_tenant(
            "acme",
            &hako_model::QuotaPatch {
                max_apps: Some(Some(3)),
                ..hako_model::QuotaPatch::default()
            },
        )
        .unwrap();
    let events = Client::new(server.url(), &first.token)
        .tenant_events("acme")
        .unwrap();
    let kinds: Vec<(EventKind, Option<&str>)> = events
        .iter()
        .map(|e| (e.kind, e.actor.as_deref()))
        .collect();
    assert_eq!(
        kinds,
        [
            (EventKind::TenantCreated, Some("admin")),
            (EventKind::TokenCreated, Some("admin")),
            (EventKind::TokenCreated, Some("admin")),
            (EventKind::TokenCreated, Some("admin")),
            (EventKind::TokenRevoked, Some("admin")),
            (EventKind::TenantUpdated, Some("admin")),
        ]
    );
    assert!(
        events[3].reason.contains("token ci made"),
        "{}",
        events[3].reason
    );
    assert!(
        events[5].reason.contains("max apps 3"),
        "{}",
        events[5].reason
    );
    assert!(events.iter().all(|e| e.tenant.as_deref() == Some("acme")));
    assert!(!format!("{events:?}").contains(&first.token));
}

/// Every key and value in the store, as text.
fn store_dump(server: &Server) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(server.store.range("/"))
        .unwrap()
        .into_iter()
        .map(|kv| format!("{} {}\n", kv.key, String::from_utf8_lossy(&kv.value)))
        .collect()
}

#[test]
fn tenants_are_the_admins_to_manage_and_a_tenant_sees_its_own() {
    let server = Server::start();
    let admin = server.client();
    let acme = server.tenant("acme", Quota::default());
    server.tenant("other", Quota::default());
    for (status, _) in [
        api_status(acme.tenants().unwrap_err()),
        api_status(acme.create_tenant("mine", &Quota::default()).unwrap_err()),
        api_status(acme.create_token("acme", None).unwrap_err()),
        api_status(acme.tokens("acme").unwrap_err()),
        api_status(acme.revoke_token("acme", "owner").unwrap_err()),
        api_status(acme.delete_tenant("acme").unwrap_err()),
    ] {
        assert_eq!(status, 403);
    }
    let (_, msg) = api_status(acme.tenants().unwrap_err());
    assert!(msg.contains("needs the admin token"), "{msg}");
    // Its own tenant: quota and usage. Another: as if there were none.
    acme.create_app(&spec("blog", "blog.example")).unwrap();
    let own = acme.tenant("acme").unwrap();
    assert_eq!((own.usage.apps, own.usage.instances), (1, 4));
    let (status, other) = api_status(acme.tenant("other").unwrap_err());
    let (_, nobody) = api_status(acme.tenant("nobody").unwrap_err());
    assert_eq!(status, 404);
    assert_eq!(other.replace("other", "X"), nobody.replace("nobody", "X"));

    // A tenant with apps stays; without, it goes with its tokens.
    let (status, msg) = api_status(admin.delete_tenant("acme").unwrap_err());
    assert_eq!(status, 409);
    assert!(msg.contains("blog"), "{msg}");
    acme.delete_app("blog").unwrap();
    admin.delete_tenant("acme").unwrap();
    assert_eq!(acme.list_apps().unwrap_err().status(), Some(401));
    let names: Vec<String> = admin
        .tenants()
        .unwrap()
        .into_iter()
        .map(|t| t.tenant.name)
        .collect();
    assert_eq!(names, ["other"]);
    let dump = store_dump(&server);
    assert!(!dump.contains(&keys::tenant("acme")), "{dump}");
}

#[test]
fn apps_belong_to_a_tenant_and_events_say_who_changed_them() {
    let server = Server::start();
    let admin = server.client();
    let acme = server.tenant("acme", Quota::default());
    let made = acme.create_app(&spec("blog", "blog.example")).unwrap();
    assert_eq!(made.tenant.as_deref(), Some("acme"));
    // The admin makes an app for a tenant, or one of its own.
    let shop = admin
        .create_app_for(&spec("shop", "shop.example"), "acme")
        .unwrap();
    assert_eq!(shop.tenant.as_deref(), Some("acme"));
    admin.create_app(&spec("ops", "ops.example")).unwrap();
    let (status, msg) = api_status(
        admin
            .create_app_for(&spec("x", "x.example"), "nobody")
            .unwrap_err(),
    );
    assert_eq!(status, 404);
    assert!(msg.contains("tenant \"nobody\" not found"), "{msg}");
    // A tenant may name its own tenant (and no other, see the isolation test).
    let y = acme
        .create_app_for(&spec("y", "y.example"), "acme")
        .unwrap();
    assert_eq!(y.tenant.as_deref(), Some("acme"));

    let mine: Vec<String> = acme
        .list_apps()
        .unwrap()
        .into_iter()
        .map(|a| a.spec.name)
        .collect();
    assert_eq!(mine, ["blog", "shop", "y"]);
    let all: Vec<(String, Option<String>)> = admin
        .list_apps()
        .unwrap()
        .into_iter()
        .map(|a| (a.spec.name, a.tenant))
        .collect();
    assert_eq!(
        all,
        [
            ("blog".into(), Some("acme".into())),
            ("ops".into(), None),
            ("shop".into(), Some("acme".into())),
            ("y".into(), Some("acme".into())),
        ]
    );
    assert_eq!(
        acme.app("ops").unwrap_err().status(),
        Some(404),
        "the admin's own"
    );

    acme.update_app(
        "blog",
        &AppPatch {
            max: Some(2),
            ..AppPatch::default()
        },
    )
    .unwrap();
    admin.rollout("blog").unwrap();
    acme.deploy_archive("blog", b"code").unwrap();
    let events = admin.events("blog", None).unwrap();
    let who: Vec<(EventKind, Option<&str>, Option<&str>)> = events
        .iter()
        .map(|e| (e.kind, e.actor.as_deref(), e.tenant.as_deref()))
        .collect();
    assert_eq!(
        who,
        [
            (EventKind::AppCreated, Some("acme/owner"), Some("acme")),
            (EventKind::AppUpdated, Some("acme/owner"), Some("acme")),
            (EventKind::Rollout, Some("admin"), Some("acme")),
            (EventKind::Deployed, Some("acme/owner"), Some("acme")),
        ]
    );
    assert_eq!(
        acme.events("blog", None).unwrap(),
        events,
        "the owner reads them too"
    );
}

#[test]
fn what_only_the_admin_may_give_an_app() {
    let server = Server::start();
    let admin = server.client();
    let acme = server.tenant("acme", Quota::default());
    acme.create_app(&spec("blog", "blog.example")).unwrap();

    // Finding 7: a directory of the server as code is the admin's alone.
    let etc = std::path::Path::new("/etc");
    let (status, msg) = api_status(acme.deploy_dir("blog", etc).unwrap_err());
    assert_eq!(status, 403);
    assert!(
        msg.contains("deploying a directory of the server (/etc) needs the admin token")
            && msg.contains("tar"),
        "{msg}"
    );
    assert!(
        server.backend.made.lock().unwrap().is_empty(),
        "nothing read"
    );
    assert_eq!(acme.app("blog").unwrap().release, None);
    // Packed and uploaded instead, it is the tenant's own code.
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("index.html"), "hello").unwrap();
    assert_eq!(
        acme.deploy_dir_upload("blog", site.path()).unwrap().number,
        1
    );
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(admin.deploy_dir("blog", dir.path()).unwrap().number, 2);

    // Settings that open the host.
    let host_net = AppPatch {
        network: Some(AppNetwork::Host),
        ..AppPatch::default()
    };
    let (status, msg) = api_status(acme.update_app("blog", &host_net).unwrap_err());
    assert_eq!(status, 403);
    assert!(msg.contains("--net host"), "{msg}");
    let mut unconfined = spec("raw", "raw.example");
    unconfined.seccomp = hako_model::SeccompProfile::Unconfined;
    unconfined.seccomp_reason = Some("runs its own sandbox".into());
    let (status, msg) = api_status(acme.create_app(&unconfined).unwrap_err());
    assert_eq!(status, 403);
    assert!(msg.contains("--seccomp unconfined"), "{msg}");
    // Given by the admin, kept through the tenant's other changes.
    admin.update_app("blog", &host_net).unwrap();
    let kept = acme
        .update_app(
            "blog",
            &AppPatch {
                max: Some(2),
                ..AppPatch::default()
            },
        )
        .unwrap();
    assert_eq!(kept.spec.network, AppNetwork::Host);
}

#[test]
fn an_app_name_passes_to_another_owner_once_its_instances_are_gone() {
    let server = Server::start();
    let alpha = server.tenant("alpha", Quota::default());
    let beta = server.tenant("beta", Quota::default());
    alpha.create_app(&spec("blog", "blog.example")).unwrap();
    alpha.deploy_archive("blog", b"alpha's code").unwrap();
    alpha.delete_app("blog").unwrap();
    // Its instance still drains.
    server.backend.instances.lock().unwrap().push(InstanceInfo {
        id: "blog-1".into(),
        app: "blog".into(),
        node: "local".into(),
        addr: "10.77.0.3:8080".into(),
        state: InstanceState::Draining,
        started_unix_ms: 1,
        ready_ms: Some(2.0),
        listen_ms: None,
        release: Some(1),
        image: "php:1".into(),
        generation: 0,
        from_pool: false,
        start_path: StartPath::Cold,
        restore_error: None,
        slot: None,
        limits: None,
    });
    let (status, msg) = api_status(beta.create_app(&spec("blog", "b.example")).unwrap_err());
    assert_eq!(status, 409);
    assert!(
        msg.contains("still in use") && !msg.contains("alpha"),
        "{msg}"
    );
    // Its owner may take the name back at once; another, once the instance is gone.
    alpha.create_app(&spec("blog", "blog.example")).unwrap();
    alpha.delete_app("blog").unwrap();
    server.backend.instances.lock().unwrap().clear();
    beta.create_app(&spec("blog", "b.example")).unwrap();
    // The new owner reads its app's events only, not the earlier app's.
    let seen = beta.events("blog", None).unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].actor.as_deref(), Some("beta/owner"));
    assert!(server.client().events("blog", None).unwrap().len() > 1);
    assert_eq!(alpha.events("blog", None).unwrap_err().status(), Some(404));
}

#[test]
fn a_kept_database_passes_only_to_an_app_of_its_owner() {
    let server = Server::start();
    let admin = server.client();
    let alpha = server.tenant("alpha", Quota::default());
    let beta = server.tenant("beta", Quota::default());
    let with_db = |name: &str| {
        let mut s = spec(name, &format!("{name}.example"));
        s.database = true;
        s
    };
    alpha.create_app(&with_db("blog")).unwrap();
    alpha
        .delete_app_with("blog", hako_api::DatabaseOnDelete::Keep)
        .unwrap();
    let password = |db: &str| {
        server.backend.databases.lock().unwrap()[db]
            .password
            .clone()
    };
    let kept_password = password("hako_blog");

    let (status, msg) = api_status(beta.create_app(&with_db("blog")).unwrap_err());
    assert_eq!(status, 409);
    assert!(
        msg.contains("another owner") && !msg.contains("alpha"),
        "{msg}"
    );
    beta.create_app(&spec("blog", "b.example")).unwrap();
    let on = AppPatch {
        database: Some(true),
        ..AppPatch::default()
    };
    assert_eq!(api_status(beta.update_app("blog", &on).unwrap_err()).0, 409);
    assert_eq!(password("hako_blog"), kept_password, "untouched");
    assert!(beta.app("blog").unwrap().database_grant.is_none());
    beta.delete_app("blog").unwrap();

    // Its owner takes it over (new password), and the record of it goes.
    let back = alpha.create_app(&with_db("blog")).unwrap();
    assert!(back.database_grant.is_some());
    assert_ne!(password("hako_blog"), kept_password);
    let events = alpha.events("blog", None).unwrap();
    assert!(
        events[0].reason.contains("taken over"),
        "{}",
        events[0].reason
    );

    // A database kept before tenants existed (no record) is the admin's.
    server.backend.databases.lock().unwrap().insert(
        "hako_legacy".into(),
        hako_model::DatabaseGrant {
            database: "hako_legacy".into(),
            user: "hako_legacy".into(),
            password: "old".into(),
            created_unix: 1,
        },
    );
    assert_eq!(
        api_status(alpha.create_app(&with_db("legacy")).unwrap_err()).0,
        409
    );
    assert_eq!(password("hako_legacy"), "old");
    admin.create_app(&with_db("legacy")).unwrap();
}
