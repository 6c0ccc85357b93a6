//! WordPress hosted for real (issue 5): Debian's WordPress in an image built by `hako image
//! build`, MariaDB on the host, a real `hako serve`. The installer runs over HTTP, an admin
//! logs in and publishes a post with an uploaded image, the instance idles out, and the cold
//! start that follows finds post and image intact. Then a lifetime recycle under load drops
//! no request, and two sites cannot reach each other's files or databases.
//!
//! Over 600 lines on purpose: one scenario, a site's life from install to cycling, with the
//! WordPress-specific HTTP steps it needs (installer, login cookies, REST nonce, upload,
//! publish) beside it; they serve no other test.
//!
//! The image's Debian system is cached in a shared store (`/var/lib/hako-test/images`) so that
//! only the first run on a machine pays for debootstrap.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Serve;

const SHARED_IMAGES: &str = "/var/lib/hako-test/images";
const PASSWORD: &str = "correct horse battery staple";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `packages` of the WordPress image, as `hako image build` wants them.
fn packages() -> String {
    std::fs::read_to_string(repo().join("images/wordpress/packages"))
        .unwrap()
        .trim()
        .to_string()
}

fn require_mariadb() {
    let out = Command::new("mariadb")
        .args(["-e", "SELECT 1"])
        .output()
        .expect("the mariadb client is installed (cargo xtask test installs MariaDB)");
    assert!(
        out.status.success(),
        "MariaDB must run on /run/mysqld/mysqld.sock (cargo xtask test starts it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A data dir whose image store is the shared one; builds image `name` (the cached system
/// plus this checkout's images/wordpress/rootfs).
fn data_dir_with_image(tmp: &Path, name: &str) -> PathBuf {
    let data = tmp.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(SHARED_IMAGES).unwrap();
    std::os::unix::fs::symlink(SHARED_IMAGES, data.join("images")).unwrap();
    let build = |image: &str, add: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hako"));
        cmd.args([
            "--data-dir",
            data.to_str().unwrap(),
            "image",
            "build",
            image,
        ])
        .args(["--debian-packages", &packages()]);
        if add {
            cmd.arg("--add").arg(repo().join("images/wordpress/rootfs"));
        }
        let out = cmd.stdin(Stdio::null()).output().unwrap();
        assert!(
            out.status.success(),
            "image build failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // An image that keeps the cached system alive between runs (removing the last image
    // of a package set removes its cache), then this run's own image on top of it.
    build("hakotest-wordpress-cache", false);
    build(name, true);
    data
}

/// curl through the daemon's proxy with `Host: host`, cookies in `jar`. Returns (status,
/// headers, body).
fn curl(d: &Serve, host: &str, jar: &Path, path: &str, extra: &[&str]) -> (u16, String, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "60", "-D", "-", "-o", "-"])
        .args(["-H", &format!("Host: {host}")])
        .arg("-b")
        .arg(jar)
        .arg("-c")
        .arg(jar)
        .args(extra)
        .arg(format!("http://{}{path}", d.proxy))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Headers, then a blank line, then the body (a 100 Continue may come first).
    let raw = out.stdout;
    let mut at = 0;
    loop {
        let end = find(&raw[at..], b"\r\n\r\n").expect("a header block") + at;
        let head = String::from_utf8_lossy(&raw[at..end]).into_owned();
        at = end + 4;
        let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        if status != 100 {
            return (status, head, raw[at..].to_vec());
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json(b: &[u8]) -> serde_json::Value {
    serde_json::from_slice(b).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(b)))
}

/// A real 2×2 PNG (made by hand: signature, IHDR, IDAT, IEND with their CRCs).
fn png() -> Vec<u8> {
    fn crc(data: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend(data);
        out.extend(&body);
        out.extend(crc(&body).to_be_bytes());
    }
    fn adler(data: &[u8]) -> u32 {
        let (mut a, mut b) = (1u32, 0u32);
        for &x in data {
            a = (a + u32::from(x)) % 65521;
            b = (b + a) % 65521;
        }
        (b << 16) | a
    }
    // Two rows: filter byte 0, then 2 RGB pixels each.
    let raw = [0u8, 255, 0, 0, 0, 0, 255, 0, 0, 255, 0, 255, 255, 255];
    let mut z = vec![0x78, 0x01, 0x01];
    z.extend((raw.len() as u16).to_le_bytes());
    z.extend((!(raw.len() as u16)).to_le_bytes());
    z.extend(raw);
    z.extend(adler(&raw).to_be_bytes());
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &[0, 0, 0, 2, 0, 0, 0, 2, 8, 2, 0, 0, 0]);
    chunk(&mut png, b"IDAT", &z);
    chunk(&mut png, b"IEND", &[]);
    png
}

/// Drops these databases and their accounts when dropped (they may be gone already).
struct DropDatabases(Vec<String>);

impl Drop for DropDatabases {
    fn drop(&mut self) {
        for db in &self.0 {
            let _ = Command::new("mariadb")
                .args([
                    "-e",
                    &format!(
                        "DROP DATABASE IF EXISTS `{db}`; DROP USER IF EXISTS '{db}'@'localhost';"
                    ),
                ])
                .output();
        }
    }
}

/// Runs the CLI against the daemon: (exit code, stdout + stderr).
fn run(d: &Serve, args: &[&str]) -> (i32, String) {
    let o = d.hako(args);
    (o.code, format!("{}{}", o.stdout, o.stderr))
}

/// Where the app keeps its files on the node (`apps/<key>`), from its record in the API.
fn storage_key(d: &Serve, app: &str) -> String {
    let (code, out) = run(d, &["app", "show", app, "--json"]);
    assert_eq!(code, 0, "{out}");
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    let app: hako_model::App = serde_json::from_value(shown["app"].clone()).unwrap();
    assert!(!app.uid.is_empty(), "a new app has a uid");
    app.storage_key()
}

/// Running instances of `app`, from the API.
fn instances(d: &Serve, app: &str) -> Vec<serde_json::Value> {
    let (code, out) = run(d, &["instance", "list", "--json"]);
    assert_eq!(code, 0, "{out}");
    let all: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    all.into_iter().filter(|i| i["app"] == app).collect()
}

/// The environment of a running instance of `app` (found by its cgroup under `prefix`),
/// and its init's pid.
fn instance_env(prefix: &str, app: &str) -> (u32, HashMap<String, String>) {
    let base = format!("/sys/fs/cgroup/pids/{prefix}");
    for dir in std::fs::read_dir(&base).unwrap().flatten() {
        let Ok(procs) = std::fs::read_to_string(dir.path().join("cgroup.procs")) else {
            continue;
        };
        for pid in procs.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
            let Ok(raw) = std::fs::read(format!("/proc/{pid}/environ")) else {
                continue;
            };
            let env: HashMap<String, String> = raw
                .split(|b| *b == 0)
                .filter_map(|kv| {
                    let kv = String::from_utf8_lossy(kv);
                    kv.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                })
                .collect();
            if env.get("HAKO_APP").map(String::as_str) == Some(app) {
                return (pid, env);
            }
        }
    }
    panic!("no running instance of {app} under {base}");
}

/// Runs `argv` inside the container of `pid` (its mount, pid and network namespaces) as
/// nobody, with `env`. Returns (success, output).
fn inside(pid: u32, env: &HashMap<String, String>, argv: &[&str]) -> (bool, String) {
    let out = Command::new("nsenter")
        .args([
            "-t",
            &pid.to_string(),
            "-m",
            "-p",
            "-n",
            "-S",
            "65534",
            "-G",
            "65534",
            "--",
        ])
        .arg("env")
        .arg("-i")
        .args(env.iter().map(|(k, v)| format!("{k}={v}")))
        .args(argv)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Creates a WordPress site and runs its installer; returns its host.
fn create_site(data: &Path, d: &Serve, image: &str, app: &str, prefix: &str, idle: &str) -> String {
    let host = format!("{app}.{prefix}.test");
    let (code, out) = run(
        d,
        &[
            "app",
            "create",
            app,
            "--host",
            &host,
            "--image",
            image,
            "--database",
            "--cmd",
            "hako-wordpress",
            "--env",
            "WP_HTTP_BLOCK_EXTERNAL=1",
            "--idle-timeout",
            idle,
            "--memory",
            "256MiB",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("database"), "{out}");
    let jar = data.join(format!("{app}.cookies"));
    // A fresh site sends everyone to the installer.
    let (status, head, _) = curl(d, &host, &jar, "/", &[]);
    assert_eq!(status, 302, "{head}");
    assert!(head.contains("/wp-admin/install.php"), "{head}");
    let (status, _, body) = curl(
        d,
        &host,
        &jar,
        "/wp-admin/install.php?step=2",
        &[
            "--data-urlencode",
            &format!("weblog_title=Site {app}"),
            "--data-urlencode",
            "user_name=admin",
            "--data-urlencode",
            &format!("admin_password={PASSWORD}"),
            "--data-urlencode",
            &format!("admin_password2={PASSWORD}"),
            "--data-urlencode",
            "pw_weak=1",
            "--data-urlencode",
            &format!("admin_email=admin@{host}"),
            "--data-urlencode",
            "blog_public=0",
        ],
    );
    assert_eq!(status, 200);
    assert!(
        text(&body).contains("Success!"),
        "installer: {}",
        text(&body)
    );
    host
}

/// Logs in as admin; returns the REST API nonce of the session.
fn log_in(d: &Serve, host: &str, jar: &Path) -> String {
    let (status, head, body) = curl(
        d,
        host,
        jar,
        "/wp-login.php",
        &[
            "-b",
            "wordpress_test_cookie=WP%20Cookie%20check",
            "--data-urlencode",
            "log=admin",
            "--data-urlencode",
            &format!("pwd={PASSWORD}"),
            "--data-urlencode",
            "testcookie=1",
            "--data-urlencode",
            "wp-submit=Log In",
        ],
    );
    assert_eq!(status, 302, "login refused: {head}\n{}", text(&body));
    assert!(head.contains("wordpress_logged_in_"), "{head}");
    assert!(
        head.to_lowercase().contains("location: http://") && head.contains("/wp-admin/"),
        "{head}"
    );
    // What the block editor does: a nonce for the REST API from the logged-in session.
    let (status, _, nonce) = curl(
        d,
        host,
        jar,
        "/wp-admin/admin-ajax.php?action=rest-nonce",
        &[],
    );
    assert_eq!(status, 200);
    let nonce = text(&nonce).trim().to_string();
    assert!(
        nonce.len() >= 8 && nonce.chars().all(|c| c.is_ascii_hexdigit()),
        "nonce {nonce:?}"
    );
    nonce
}

/// Uploads `bytes` as `name` and publishes a post showing it. Returns (post id, image URL path).
fn publish(
    d: &Serve,
    host: &str,
    jar: &Path,
    nonce: &str,
    name: &str,
    bytes: &[u8],
    title: &str,
) -> (u64, String) {
    let file = jar.with_extension(name);
    std::fs::write(&file, bytes).unwrap();
    let (status, _, body) = curl(
        d,
        host,
        jar,
        "/?rest_route=/wp/v2/media",
        &[
            "-H",
            &format!("X-WP-Nonce: {nonce}"),
            "-H",
            "Content-Type: image/png",
            "-H",
            &format!("Content-Disposition: attachment; filename={name}"),
            "--data-binary",
            &format!("@{}", file.display()),
        ],
    );
    assert_eq!(status, 201, "upload: {}", text(&body));
    let media = json(&body);
    let url = media["source_url"].as_str().unwrap().to_string();
    let path = url
        .strip_prefix(&format!("http://{host}"))
        .unwrap_or_else(|| panic!("upload URL {url} is on the site"))
        .to_string();
    assert!(path.starts_with("/wp-content/uploads/"), "{path}");
    let post = serde_json::json!({
        "title": title,
        "content": format!("<p>Posted on hako.</p><img src=\"{url}\" alt=\"pixel\">"),
        "status": "publish",
        "featured_media": media["id"],
    });
    let (status, _, body) = curl(
        d,
        host,
        jar,
        "/?rest_route=/wp/v2/posts",
        &[
            "-H",
            &format!("X-WP-Nonce: {nonce}"),
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &post.to_string(),
        ],
    );
    assert_eq!(status, 201, "post: {}", text(&body));
    (json(&body)["id"].as_u64().unwrap(), path)
}

#[test]
fn wordpress_from_install_to_cycling() {
    common::require_root();
    require_mariadb();
    let tmp = tempfile::Builder::new()
        .prefix("hako-wp-test")
        .tempdir()
        .unwrap();
    let image = format!("wp-{}", std::process::id());
    let data = data_dir_with_image(tmp.path(), &image);
    let d = common::serve(&data);
    let prefix = d.prefix.clone();
    // A failing run must not leave its databases on the shared server.
    let _databases = DropDatabases(vec![format!("{prefix}_blog"), format!("{prefix}_shop")]);

    // Install, log in, publish a post with an uploaded image.
    let host = create_site(&data, &d, &image, "blog", &prefix, "2s");
    let jar = data.join("blog.cookies");
    let nonce = log_in(&d, &host, &jar);
    let pixel = png();
    let (post, image_path) = publish(
        &d,
        &host,
        &jar,
        &nonce,
        "hako-pixel.png",
        &pixel,
        "Hello from hako",
    );
    // The upload is on the app's persistent data dir on the host.
    let on_disk = data
        .join("apps")
        .join(storage_key(&d, "blog"))
        .join("data/uploads")
        .join(image_path.strip_prefix("/wp-content/uploads/").unwrap());
    assert_eq!(
        std::fs::read(&on_disk).unwrap(),
        pixel,
        "{}",
        on_disk.display()
    );

    // The instance idles out (2 s) and is gone...
    let first: Vec<String> = instances(&d, "blog")
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!first.is_empty());
    common::wait_until("the idle instance to stop", Duration::from_secs(60), || {
        instances(&d, "blog").is_empty()
    });
    // ...and the next request is a cold start that finds post and image intact.
    let anon = data.join("anon.cookies");
    let (status, _, body) = curl(&d, &host, &anon, &format!("/?p={post}"), &[]);
    assert_eq!(status, 200);
    let page = text(&body);
    assert!(page.contains("Hello from hako"), "{page}");
    assert!(
        page.contains(&image_path),
        "the post shows its image: {page}"
    );
    let now: Vec<String> = instances(&d, "blog")
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        !now.is_empty() && now.iter().all(|i| !first.contains(i)),
        "a new instance: {first:?} → {now:?}"
    );
    let (status, head, got) = curl(&d, &host, &anon, &image_path, &[]);
    assert_eq!(status, 200, "{head}");
    assert_eq!(got, pixel, "the image's bytes");
    // Uploaded files are never run as code.
    let (status, _, _) = curl(&d, &host, &anon, "/wp-content/uploads/evil.php", &[]);
    assert_eq!(status, 403);

    // A lifetime recycle under bounded load drops no request.
    let (code, out) = run(
        &d,
        &[
            "app",
            "update",
            "blog",
            "--max-lifetime",
            "3s",
            "--idle-timeout",
            "1m",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let started = Instant::now();
    let mut seen = std::collections::BTreeSet::new();
    let mut statuses = Vec::new();
    // The recycle waits for a moment with no open request (connection-aware), then starts
    // the successor first: keep the load on until one happened, and a while after it.
    let mut recycled_at: Option<usize> = None;
    while started.elapsed() < Duration::from_secs(40) && statuses.len() < 800 {
        if recycled_at.is_some_and(|n| statuses.len() >= n + 20) {
            break;
        }
        let (status, _, body) = curl(&d, &host, &anon, &format!("/?p={post}"), &[]);
        assert!(
            text(&body).contains("Hello from hako") || status != 200,
            "a 200 with the wrong page"
        );
        statuses.push(status);
        for i in instances(&d, "blog") {
            seen.insert(i["id"].as_str().unwrap().to_string());
        }
        if seen.len() >= 2 && recycled_at.is_none() {
            recycled_at = Some(statuses.len());
        }
    }
    assert!(
        statuses.iter().all(|s| *s == 200),
        "every request answered: {statuses:?}"
    );
    assert!(
        recycled_at.is_some(),
        "an instance was recycled under load: {seen:?}"
    );
    let (code, out) = run(
        &d,
        &[
            "app",
            "update",
            "blog",
            "--max-lifetime",
            "24h",
            "--idle-timeout",
            "5m",
        ],
    );
    assert_eq!(code, 0, "{out}");

    // A second site: neither can reach the other's files or database.
    let other = create_site(&data, &d, &image, "shop", &prefix, "1m");
    let shop_jar = data.join("shop.cookies");
    let shop_nonce = log_in(&d, &other, &shop_jar);
    let (_, shop_image) = publish(
        &d,
        &other,
        &shop_jar,
        &shop_nonce,
        "shop-secret.png",
        &pixel,
        "Shop news",
    );
    // Over HTTP: blog does not serve shop's upload.
    let (status, _, _) = curl(&d, &host, &anon, &shop_image, &[]);
    assert_eq!(status, 404);
    // From inside blog's container: shop's data is nowhere, shop's database is refused.
    let (_, shop_env) = instance_env(&prefix, "shop");
    let (blog_pid, blog_env) = instance_env(&prefix, "blog");
    let (ok, out) = inside(
        blog_pid,
        &blog_env,
        &[
            "sh",
            "-c",
            "find / \\( -path /proc -o -path /sys \\) -prune -o -name 'shop-secret*' -print; ls -R /data/uploads",
        ],
    );
    assert!(ok, "{out}");
    assert!(!out.contains("shop-secret"), "blog sees shop's file: {out}");
    assert!(out.contains("hako-pixel"), "blog sees its own: {out}");
    let shop_db = shop_env["DB_NAME"].clone();
    let (ok, out) = inside(
        blog_pid,
        &blog_env,
        &[
            "sh",
            "-c",
            &format!(
                "mariadb -u \"$DB_USER\" -p\"$DB_PASSWORD\" -e 'SELECT COUNT(*) FROM `{shop_db}`.wp_posts'"
            ),
        ],
    );
    assert!(
        !ok && out.contains("denied"),
        "blog reads shop's database: {out}"
    );
    let (ok, out) = inside(
        blog_pid,
        &blog_env,
        &[
            "sh",
            "-c",
            "mariadb -u \"$DB_USER\" -p\"$DB_PASSWORD\" -N -e 'SELECT COUNT(*) FROM wp_posts' \"$DB_NAME\"",
        ],
    );
    assert!(ok, "blog reads its own database: {out}");
    // The API never shows a database password.
    let (code, out) = run(&d, &["app", "show", "shop", "--json"]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains(&shop_env["DB_PASSWORD"]), "{out}");

    // Deleting asks about the database; then it is dropped for good.
    let (code, out) = run(&d, &["app", "delete", "shop", "--yes"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--drop-database"), "{out}");
    let (code, out) = run(&d, &["app", "delete", "shop", "--yes", "--drop-database"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("dropped database {shop_db}")),
        "{out}"
    );
    let (code, out) = run(&d, &["app", "delete", "blog", "--yes", "--drop-database"]);
    assert_eq!(code, 0, "{out}");
    let left = Command::new("mariadb")
        .args(["-N", "-e", &format!("SHOW DATABASES LIKE '{prefix}\\_%'")])
        .output()
        .unwrap();
    assert_eq!(text(&left.stdout).trim(), "", "databases left");
    d.stop();
    let left = common::leftovers(&prefix);
    assert!(left.is_empty(), "left behind: {left:?}");
    let _ = Command::new(env!("CARGO_BIN_EXE_hako"))
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "image",
            "remove",
            &image,
        ])
        .output();
}
