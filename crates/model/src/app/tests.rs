use super::*;

pub(crate) fn spec() -> AppSpec {
    serde_json::from_value(serde_json::json!({
        "name": "blog",
        "hosts": ["Blog.Example.", "blog.example", "www.blog.example"],
        "image": "php",
        "cmd": "php -S 0.0.0.0:$PORT -t /app"
    }))
    .unwrap()
}

#[test]
fn defaults_and_normalisation() {
    let mut s = spec();
    s.validate().unwrap();
    assert_eq!(s.hosts, ["blog.example", "www.blog.example"]);
    assert_eq!(s.port, 8080);
    assert_eq!(s.memory, ByteSize(256 << 20));
    assert_eq!(s.idle_timeout.0, Duration::from_secs(300));
    assert_eq!(
        s.command(8080).unwrap(),
        ["php", "-S", "0.0.0.0:8080", "-t", "/app"]
    );
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["idle_timeout"], "5m");
    assert_eq!(json["memory"], "256MiB");
}

#[test]
fn rejects_bad_specs() {
    let cases: Vec<(&str, serde_json::Value)> = vec![
        ("name", serde_json::json!("Bad_Name")),
        ("hosts", serde_json::json!([])),
        ("hosts", serde_json::json!(["http://x.example"])),
        ("hosts", serde_json::json!(["x.example:8080"])),
        ("image", serde_json::json!("php:0")),
        ("cmd", serde_json::json!("  ")),
        ("cmd", serde_json::json!("echo 'x")),
        ("memory", serde_json::json!("1MiB")),
        ("cpu", serde_json::json!(-1.0)),
        ("pids", serde_json::json!(0)),
        ("max", serde_json::json!(0)),
        ("idle_timeout", serde_json::json!("1ms")),
        ("health_path", serde_json::json!("healthz")),
        ("health_path", serde_json::json!("/ HTTP/1.1\r\nHost: x")),
        ("user", serde_json::json!("")),
        ("user", serde_json::json!("www data")),
        ("workdir", serde_json::json!("/app\u{0}x")),
        ("env", serde_json::json!({"A": "x\u{0}y"})),
        ("cmd", serde_json::json!("php\u{0} -S")),
        ("warm_pool", serde_json::json!(9)),
    ];
    for (field, value) in cases {
        let mut v = serde_json::to_value(spec()).unwrap();
        v[field] = value.clone();
        // Refused when read (a typed field) or when validated.
        let refused = match serde_json::from_value::<AppSpec>(v) {
            Err(_) => true,
            Ok(mut s) => s.validate().is_err(),
        };
        assert!(refused, "{field} = {value} accepted");
    }
    let mut v = serde_json::to_value(spec()).unwrap();
    v["memroy"] = serde_json::json!("1GiB");
    assert!(
        serde_json::from_value::<AppSpec>(v).is_err(),
        "typo'd field accepted"
    );
}

#[test]
fn warm_pool_defaults_to_none_and_needs_the_isolated_network() {
    let mut s = spec();
    s.validate().unwrap();
    assert_eq!(s.warm_pool, 0);
    s.warm_pool = MAX_WARM_POOL;
    s.validate().unwrap();
    s.network = AppNetwork::Host;
    assert_eq!(s.validate(), Err(AppError::WarmPoolHostNetwork));
    s.warm_pool = 0;
    s.validate().unwrap();
}

#[test]
fn the_fingerprint_follows_what_shapes_a_container() {
    let app = |spec: AppSpec| App {
        spec,
        uid: String::new(),
        release: Some(1),
        release_digest: None,
        image_record: None,
        generation: 0,
        created_unix: 0,
        updated_unix: 0,
        database_grant: None,
        tenant: None,
    };
    let base = app(spec());
    let same = base.fingerprint();
    assert_eq!(same, app(spec()).fingerprint());
    // Settings that steer hako, not the container, keep it.
    let mut steer = base.clone();
    steer.spec.warm_pool = 2;
    steer.spec.min = 1;
    steer.spec.idle_timeout = "20m".parse().unwrap();
    steer.spec.hosts.push("other.example".into());
    steer.spec.stop_signal = StopSignal::Int;
    steer.spec.target_concurrency = 2.0;
    steer.spec.schedules = vec!["*/15 * * * * GET /wp-cron.php".parse().unwrap()];
    steer.spec.ignored_clients = IgnoredClients::uptime_checkers();
    // Limits change live on running instances: no replacement.
    steer.spec.memory = ByteSize(512 << 20);
    steer.spec.cpu = Some(0.5);
    steer.spec.pids = 64;
    steer.spec.https_redirect = true;
    steer.spec.hsts = Some("365d".parse().unwrap());
    steer.spec.acme = true;
    assert_eq!(steer.fingerprint(), same);
    assert_ne!(steer.limits(), base.limits());
    // What the container is made from changes it.
    let changes: Vec<fn(&mut App)> = vec![
        |a| a.release = Some(2),
        |a| a.generation = 1,
        |a| a.spec.image = "php:2".parse().unwrap(),
        |a| a.spec.cmd = "php -S 0.0.0.0:$PORT".into(),
        |a| {
            a.spec.env.insert("A".into(), "1".into());
        },
        |a| a.spec.port = 9000,
        |a| a.spec.user = Some("1000".into()),
        |a| a.spec.network = AppNetwork::Host,
        |a| a.spec.database = true,
        |a| {
            a.spec.seccomp = SeccompProfile::Unconfined;
            a.spec.seccomp_reason = Some("strace in production".into());
        },
    ];
    for (i, change) in changes.iter().enumerate() {
        let mut a = base.clone();
        change(&mut a);
        assert_ne!(a.fingerprint(), same, "change {i} kept the fingerprint");
    }
}

#[test]
fn storage_keys_tell_apps_of_one_name_apart() {
    let mut a = App {
        spec: spec(),
        uid: String::new(),
        release: None,
        release_digest: None,
        image_record: None,
        generation: 0,
        created_unix: 0,
        updated_unix: 0,
        database_grant: None,
        tenant: None,
    };
    assert_eq!(
        a.storage_key(),
        "blog",
        "apps stored before uids keep their paths"
    );
    a.uid = "0123456789ab".into();
    assert_eq!(a.storage_key(), "blog_0123456789ab");
    let mut b = a.clone();
    b.uid = "ba9876543210".into();
    assert_ne!(a.storage_key(), b.storage_key());
    a.spec.name = "x".repeat(63);
    let key = a.storage_key();
    assert_eq!(key.len(), 63);
    assert!(key.ends_with("_0123456789ab"));
    // The uid is not part of the JSON of an app that has none.
    a.uid.clear();
    assert!(serde_json::to_value(&a).unwrap().get("uid").is_none());
}

#[test]
fn stop_signals() {
    assert_eq!("sigint".parse::<StopSignal>().unwrap(), StopSignal::Int);
    assert_eq!("TERM".parse::<StopSignal>().unwrap().number(), 15);
    assert!("KILL".parse::<StopSignal>().is_err());
    assert_eq!(spec().stop_signal, StopSignal::Term);
    assert_eq!(serde_json::to_value(StopSignal::Int).unwrap(), "INT");
}

#[test]
fn image_references_are_typed_and_stored_as_written() {
    let mut v = serde_json::to_value(spec()).unwrap();
    v["image"] = "site:latest".into();
    let s: AppSpec = serde_json::from_value(v).unwrap();
    assert_eq!(s.image, ImageRef::latest("site"));
    assert_eq!(serde_json::to_value(&s).unwrap()["image"], "site");
    assert_eq!(serde_json::to_value(spec()).unwrap()["image"], "php");
}

#[test]
fn new_specs_take_the_same_defaults_as_json() {
    let mut built = AppSpec::new(
        "blog",
        vec!["blog.example".into()],
        ImageRef::latest("php"),
        "php -S 0.0.0.0:$PORT -t /app",
    );
    let mut read = spec();
    read.hosts = vec!["blog.example".into()];
    built.validate().unwrap();
    read.validate().unwrap();
    assert_eq!(built, read);
}

#[test]
fn an_app_with_a_database_round_trips_and_shows_no_password() {
    let mut spec = spec();
    spec.database = true;
    let app = App {
        spec,
        uid: "0123456789ab".into(),
        release: Some(2),
        release_digest: None,
        image_record: None,
        generation: 1,
        created_unix: 1,
        updated_unix: 2,
        database_grant: Some(crate::DatabaseGrant {
            database: "hako_blog".into(),
            user: "hako_blog".into(),
            password: "pw-secret".into(),
            created_unix: 1,
        }),
        tenant: None,
    };
    // The spec's `database` switch and the grant live side by side in one JSON object.
    let json = serde_json::to_value(&app).unwrap();
    assert_eq!(json["database"], true);
    assert_eq!(json["database_grant"]["database"], "hako_blog");
    let back: App = serde_json::from_value(json).unwrap();
    assert_eq!(back, app);
    let shown = serde_json::to_string(&app.redacted()).unwrap();
    assert!(!shown.contains("pw-secret"), "{shown}");
    assert_eq!(app.environment(8080)["DB_PASSWORD"], "pw-secret");
    // Switched off: the grant is kept but no longer given to instances.
    let mut off = app.clone();
    off.spec.database = false;
    assert!(!off.environment(8080).contains_key("DB_PASSWORD"));
}
