//! App settings through the real CLI and a real `hako serve` (root): the values a user types
//! mean one thing (`100MB` = 10^8 bytes, `site:latest` = the latest version of `site`), and a
//! limit this host can never give is refused at create and update, with what the host has.

mod common;

use common::Serve;

fn show(d: &Serve, name: &str) -> serde_json::Value {
    let out = d.ok(&["app", "show", name, "--json"]);
    serde_json::from_str::<serde_json::Value>(&out).unwrap()["app"].clone()
}

#[test]
fn settings_mean_one_thing_and_impossible_limits_are_refused() {
    let env = common::Env::new();
    let site = env.host_image_and_site("hi\n");
    let d = common::serve(&env.data_dir());
    let cpus = hako_agent::node_capacity().cpus;
    let create = |extra: &[&str]| {
        let mut argv = vec![
            "app",
            "create",
            "blog",
            "--host",
            "blog.example",
            "--image",
            "base:latest",
            "--code",
            site.to_str().unwrap(),
            "--cmd",
            "busybox httpd -f -p $PORT -h /app",
        ];
        argv.extend_from_slice(extra);
        d.hako(&argv)
    };

    // Refused before anything is stored: more cores than the host has, a pids limit above
    // its kernel's, and cpu values that are no limit at all.
    let over = (cpus + 1).to_string();
    let out = create(&["--cpu", &over]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "cpu limit of {over} cores is more than this node has ({cpus} cores): give at most {cpus}"
        )),
        "{out:?}"
    );
    if cpus < 64 {
        let out = create(&["--cpu", "64"]);
        assert_eq!(out.code, 2, "{out:?}");
        assert!(out.stderr.contains("more than this node has"), "{out:?}");
    }
    let out = create(&["--pids", "99999999999"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("pids limit of 99999999999 is more than this node allows"),
        "{out:?}"
    );
    for cpu in ["inf", "nan"] {
        let out = create(&["--cpu", cpu]);
        assert_eq!(out.code, 2, "{out:?}");
        assert!(
            out.stderr
                .contains(&format!("cpu limit \"{cpu}\" is not valid")),
            "{out:?}"
        );
    }
    assert_eq!(
        d.ok(&["app", "list", "--json"]).trim(),
        "[]",
        "nothing stored"
    );

    // `site:latest` and `100MB` as everywhere else.
    let out = create(&["--memory", "100MB", "--cpu", "0.5"]);
    assert_eq!(out.code, 0, "{out:?}");
    let app = show(&d, "blog");
    assert_eq!(app["image"], "base");
    assert_eq!(app["memory"], "100MB");
    assert_eq!(app["cpu"], 0.5);
    let (status, body) = common::get(d.proxy, "blog.example", "/");
    assert_eq!(
        (status, body.as_str()),
        (200, "hi\n"),
        "the app starts and serves"
    );

    // Updates get the same check; nothing changes when refused.
    let out = d.hako(&["app", "update", "blog", "--cpu", &over]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("more than this node has"), "{out:?}");
    let out = d.hako(&["app", "update", "blog", "--idle-timeout", "45"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("add one, like 45s"), "{out:?}");
    assert_eq!(show(&d, "blog")["cpu"], 0.5);
    d.ok(&[
        "app",
        "update",
        "blog",
        "--memory",
        "64MiB",
        "--idle-timeout",
        "45s",
    ]);
    let app = show(&d, "blog");
    assert_eq!(
        (app["memory"].as_str(), app["idle_timeout"].as_str()),
        (Some("64MiB"), Some("45s"))
    );

    d.ok(&["app", "delete", "blog", "--yes"]);
    d.stop();
}

/// `app create --code … --min 1`: the minimum's instance starts with the first release, so the
/// request right after the command is answered by the code (not by an instance started
/// before it with an empty /app), and no start was spent on an instance without it.
#[test]
fn a_minimum_created_with_code_starts_with_the_code() {
    let env = common::Env::new();
    let site = env.host_image_and_site("hi\n");
    let d = common::serve(&env.data_dir());
    let out = d.hako(&[
        "app",
        "create",
        "early",
        "--host",
        "early.example",
        "--image",
        "base",
        "--code",
        site.to_str().unwrap(),
        "--cmd",
        "busybox httpd -f -p $PORT -h /app",
        "--min",
        "1",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(show(&d, "early")["min"], 1, "the minimum asked for is kept");
    let (status, body) = common::get(d.proxy, "early.example", "/");
    assert_eq!((status, body.as_str()), (200, "hi\n"));
    let events = d.ok(&["app", "events", "early"]);
    assert!(
        !events.contains("replaced: the app changed"),
        "an instance without the code was started and replaced:\n{events}"
    );
    d.ok(&["app", "delete", "early", "--yes"]);
    d.stop();
}
