//! Through the real CLI and a real `hako serve` (root): a site whose code carries `hako.toml`
//! is created by its first `hako app deploy --code DIR` and updated by the next; a bad
//! manifest is refused with its key and line; every listing's `--json` parses; an OCI image's
//! own command, port and environment become an app's defaults.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Serve, wait_until};

fn show(d: &Serve, name: &str) -> serde_json::Value {
    let out = d.ok(&["app", "show", name, "--json"]);
    serde_json::from_str::<serde_json::Value>(&out).unwrap()["app"].clone()
}

fn manifest(memory: &str, greeting: &str, idle: Option<&str>) -> String {
    let idle = idle.map_or(String::new(), |d| format!("idle_timeout = \"{d}\"\n"));
    format!(
        r#"# The site's own settings.
name = "mf"
hosts = ["mf.example"]
image = "base:latest"
cmd = "busybox httpd -f -p $PORT -h /app"
memory = "{memory}"
{idle}
[env]
GREETING = "{greeting}"
"#
    )
}

#[test]
fn a_manifest_creates_then_updates_its_app() {
    let env = common::Env::new();
    let site = env.host_image_and_site("one\n");
    std::fs::write(
        site.join("hako.toml"),
        manifest("64MiB", "hello", Some("30s")),
    )
    .unwrap();
    let d = common::serve(&env.data_dir());
    let code = site.to_str().unwrap();

    // First deploy: no app yet, so the manifest makes it (the name is the file's).
    let out = d.ok(&["app", "deploy", "--code", code]);
    assert!(out.contains("created app mf (mf.example)"), "{out}");
    assert!(out.contains("deployed release 1 of mf"), "{out}");
    let app = show(&d, "mf");
    assert_eq!(app["memory"], "64MiB");
    assert_eq!(app["idle_timeout"], "30s");
    assert_eq!(app["env"]["GREETING"], "hello");
    let (status, body) = common::get(d.proxy, "mf.example", "/");
    assert_eq!((status, body.as_str()), (200, "one\n"));

    // Second deploy: new code and new settings; a setting the file no longer gives is back
    // at its default.
    std::fs::write(site.join("index.html"), "two\n").unwrap();
    std::fs::write(site.join("hako.toml"), manifest("128MiB", "bye", None)).unwrap();
    let out = d.ok(&["app", "deploy", "--code", code]);
    assert!(out.contains("updated app mf"), "{out}");
    assert!(out.contains("deployed release 2 of mf"), "{out}");
    let app = show(&d, "mf");
    assert_eq!(app["memory"], "128MiB");
    assert_eq!(app["idle_timeout"], "5m");
    assert_eq!(app["env"]["GREETING"], "bye");
    assert_eq!(app["release"], 2);
    wait_until("the new release serves", Duration::from_secs(30), || {
        common::get(d.proxy, "mf.example", "/").1 == "two\n"
    });

    // A bad manifest is refused before anything changes, with the key and its line.
    let bad = env.path("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("hako.toml"),
        "name = \"other\"\nhosts = [\"other.example\"]\nmemroy = \"1GiB\"\n",
    )
    .unwrap();
    let out = d.hako(&["app", "deploy", "--code", bad.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("memroy") && out.stderr.contains("line 3"),
        "{out:?}"
    );
    // Settings the API would refuse are refused here the same way.
    std::fs::write(
        bad.join("hako.toml"),
        "name = \"other\"\nhosts = [\"other.example\"]\nimage = \"base\"\ncmd = \"x\"\nmin = 9\n",
    )
    .unwrap();
    let out = d.hako(&["app", "deploy", "--code", bad.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("max instances"), "{out:?}");
    // The command line's name wins over the file's.
    let out = d.hako(&["app", "deploy", "Bad_Name", "--code", code]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("Bad_Name"), "{out:?}");
    let apps: serde_json::Value = serde_json::from_str(&d.ok(&["app", "list", "--json"])).unwrap();
    assert_eq!(apps.as_array().unwrap().len(), 1, "{apps}");

    // Every listing speaks JSON.
    d.ok(&["tenant", "create", "acme"]);
    d.ok(&["token", "create", "--tenant", "acme"]);
    for argv in [
        &["app", "list", "--json"][..],
        &["app", "show", "mf", "--json"],
        &["app", "events", "mf", "--json"],
        &["app", "releases", "mf", "--json"],
        &["instance", "list", "--json"],
        &["instance", "list", "--app", "mf", "--json"],
        &["image", "list", "--json"],
        &["node", "list", "--json"],
        &["tenant", "list", "--json"],
        &["tenant", "show", "acme", "--json"],
        &["tenant", "events", "acme", "--json"],
        &["token", "list", "--json"],
    ] {
        let out = d.ok(argv);
        let v: serde_json::Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("hako {argv:?} --json is not JSON ({e}): {out}"));
        assert!(!v.is_null(), "{argv:?}");
    }
    let releases: serde_json::Value =
        serde_json::from_str(&d.ok(&["app", "releases", "mf", "--json"])).unwrap();
    assert_eq!(releases[0]["number"], 2, "newest first: {releases}");
    assert_eq!(releases.as_array().unwrap().len(), 2);

    // A rollout followed to its end, with its progress when asked for (as on a terminal).
    let (status, _) = common::get(d.proxy, "mf.example", "/");
    assert_eq!(status, 200, "an instance runs");
    let out = common::Outcome::from(
        hako_testkit::hako_command(Path::new(common::HAKO), &env.data_dir())
            .args(["app", "rollout", "mf", "--wait", "--timeout", "60s"])
            .env("HAKO_API", d.api_url())
            .env("HAKO_PROGRESS", "always")
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("rolled out mf"), "{out:?}");
    assert!(out.stderr.contains("older ones left"), "{out:?}");
    let generation = show(&d, "mf")["generation"].as_u64().unwrap();
    let instances: serde_json::Value =
        serde_json::from_str(&d.ok(&["instance", "list", "--app", "mf", "--json"])).unwrap();
    for i in instances.as_array().unwrap() {
        assert_eq!(i["generation"], generation, "{instances}");
    }

    d.ok(&["app", "delete", "mf", "--yes"]);
    d.stop();
}

fn sha256_file(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// Stores `path` as a blob of the OCI layout in `dir`; its descriptor's digest and size.
fn blob(dir: &Path, path: &Path) -> (String, u64) {
    let hex = sha256_file(path);
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::copy(path, blobs.join(&hex)).unwrap();
    (
        format!("sha256:{hex}"),
        std::fs::metadata(path).unwrap().len(),
    )
}

#[test]
fn an_oci_images_command_port_and_environment_are_an_apps_defaults() {
    let env = common::Env::new();
    // One layer: busybox and a page in /srv, as an image builder would have made them.
    let rootfs = env.path("rootfs");
    common::busybox_rootfs(&rootfs);
    std::fs::create_dir_all(rootfs.join("srv")).unwrap();
    std::fs::write(rootfs.join("srv/index.html"), "from the image\n").unwrap();
    let layer = env.path("layer.tar");
    let status = Command::new("tar")
        .args([
            "-C",
            rootfs.to_str().unwrap(),
            "-cf",
            layer.to_str().unwrap(),
            ".",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let layout = env.path("layout");
    let (layer_digest, layer_size) = blob(&layout, &layer);
    let config = env.path("config.json");
    std::fs::write(
        &config,
        serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {
                "Env": ["GREETING=from the image"],
                "Entrypoint": ["busybox"],
                "Cmd": ["httpd", "-f", "-p", "8000", "-h", "/srv"],
                "WorkingDir": "/srv",
                "ExposedPorts": {"8000/tcp": {}}
            },
            "rootfs": {"type": "layers", "diff_ids": [layer_digest.clone()]}
        }))
        .unwrap(),
    )
    .unwrap();
    let (config_digest, config_size) = blob(&layout, &config);
    let manifest = env.path("manifest.json");
    std::fs::write(
        &manifest,
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}]
        }))
        .unwrap(),
    )
    .unwrap();
    let (m_digest, m_size) = blob(&layout, &manifest);
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m_digest, "size": m_size}]
        }))
        .unwrap(),
    )
    .unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();

    // The import shows its layers when asked to (as it does on a terminal).
    let out = common::Outcome::from(
        env.hako(&["image", "import", "web", layout.to_str().unwrap()])
            .env("HAKO_PROGRESS", "always")
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("layer 1/1 sha256:"), "{out:?}");
    assert!(
        out.stdout
            .contains("image defaults for apps: command \"busybox httpd"),
        "{out:?}"
    );

    // An app made without --cmd runs the image's command on its port, in its directory.
    let d = common::serve(&env.data_dir());
    let out = d.ok(&[
        "app",
        "create",
        "web",
        "--host",
        "web.example",
        "--image",
        "web",
    ]);
    assert!(out.contains("created app web"), "{out}");
    let app = show(&d, "web");
    assert_eq!(app["port"], 8000);
    assert_eq!(app["workdir"], "/srv");
    assert_eq!(app["env"]["GREETING"], "from the image");
    assert_eq!(app["cmd"], "busybox httpd -f -p 8000 -h /srv");
    let (status, body) = common::get(d.proxy, "web.example", "/");
    assert_eq!((status, body.as_str()), (200, "from the image\n"));
    // What the user gives wins over the image.
    let out = d.ok(&[
        "app",
        "create",
        "web2",
        "--host",
        "web2.example",
        "--image",
        "web",
        "--port",
        "8080",
        "--cmd",
        "busybox httpd -f -p $PORT -h /srv",
    ]);
    assert!(out.contains("created app web2"), "{out}");
    assert_eq!(show(&d, "web2")["port"], 8080);
    let (status, body) = common::get(d.proxy, "web2.example", "/");
    assert_eq!((status, body.as_str()), (200, "from the image\n"));

    d.ok(&["app", "delete", "web", "--yes"]);
    d.ok(&["app", "delete", "web2", "--yes"]);
    d.stop();
}
