//! The dashboard in a real browser: headless Chromium (Debian's `chromium`, driven through
//! `chromedriver` with fantoccini) loads `/ui/`, is sent to the login page, logs in with the
//! admin token, opens an app, sees a request's cold start appear as an event row and an
//! instance, and takes a screenshot, kept at `target/tmp/dashboard/app.png`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use crate::{Serve, http, static_site};

/// Where the screenshots go.
fn artifacts() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard")
}

/// A chromedriver of this test, in a process group of its own: dropping it kills the group
/// (the driver and every browser it started).
struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Driver {
    fn start() -> Driver {
        let (driver, _) = hako_testkit::tools::chromium();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::os::unix::process::CommandExt::process_group(
            Command::new(driver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            0,
        )
        .spawn()
        .expect("start chromedriver");
        let profile = tempfile::Builder::new()
            .prefix("hako-chromium-")
            .tempdir()
            .unwrap();
        let d = Driver {
            child,
            port,
            _profile: profile,
        };
        let status = format!("http://127.0.0.1:{port}/status");
        hako_testkit::wait_until("chromedriver to answer", Duration::from_secs(10), || {
            ureq::get(&status).call().is_ok()
        });
        d
    }

    async fn browser(&self) -> Client {
        let (_, chromium) = hako_testkit::tools::chromium();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1280,1000",
                    format!("--user-data-dir={}", self._profile.path().display()),
                ],
            }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("start a headless Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = rustix::process::Pid::from_raw(self.child.id() as i32).expect("a pid");
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        let _ = self.child.wait();
    }
}

/// Waits until the browser shows `path` (a click's navigation may end after the click).
async fn wait_path(b: &Client, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = b.current_url().await.unwrap();
        if now.path() == path {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the browser stayed at {now}, not {path}:\n{}",
            b.source().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (without reloading) until `css` matches an element; its text.
async fn wait_for_element(b: &Client, css: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(e) = b.find(Locator::Css(css)).await {
            return e.text().await.unwrap();
        }
        assert!(Instant::now() < deadline, "no {css} on the page");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reloads the page until `css` matches an element; its text.
async fn wait_for(b: &Client, css: &str, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(e) = b.find(Locator::Css(css)).await {
            return e.text().await.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the dashboard never showed {what} ({css})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        b.refresh().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_browser_logs_in_and_sees_a_cold_start_appear() {
    let s = Serve::start().await;
    s.create(static_site("dash")).await;
    s.deploy("dash", &[("index.html", "dashboard test\n")])
        .await;
    let driver = Driver::start();
    let b = driver.browser().await;
    let base = format!("http://{}", s.bound.api);

    // Not logged in: sent to the login page.
    b.goto(&format!("{base}/ui/")).await.unwrap();
    assert_eq!(b.current_url().await.unwrap().path(), "/ui/login");
    // A wrong token is refused on the page.
    b.find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys("not-the-token")
        .await
        .unwrap();
    b.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let refused = wait_for_element(&b, "p.error").await;
    assert!(refused.contains("not valid"), "{refused}");

    let field = b.find(Locator::Css("#token")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(&s.client.token).await.unwrap();
    b.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_path(&b, "/ui/").await;
    let cookie = b.get_named_cookie(hako_api::ui::COOKIE).await.unwrap();
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.same_site(), Some(cookie::SameSite::Strict));
    let row = b
        .find(Locator::Css("table#apps tr[data-app=dash]"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(row.contains("idle"), "{row}");

    b.find(Locator::LinkText("dash"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_path(&b, "/ui/apps/dash").await;
    b.find(Locator::Css("#no-instances")).await.unwrap();
    assert!(
        b.find(Locator::Css("tr.event[data-kind=start]"))
            .await
            .is_err()
    );

    // A visitor's request starts an instance: its start appears.
    let (status, body) = http(s.bound.proxy, "dash.example", "/index.html").await;
    assert_eq!((status, body.as_str()), (200, "dashboard test\n"));
    let event = wait_for(&b, "tr.event[data-kind=start]", "the start event").await;
    assert!(event.contains("cold start"), "{event}");
    let instance = wait_for(&b, "table#instances tbody tr", "the instance").await;
    assert!(
        instance.contains("ready") && instance.contains("cold"),
        "{instance}"
    );
    let svg = b.find(Locator::Css("figure.chart svg rect.bar")).await;
    assert!(svg.is_ok(), "the request chart has no bar for this minute");

    std::fs::create_dir_all(artifacts()).unwrap();
    let png = b.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    std::fs::write(artifacts().join("app.png"), &png).unwrap();
    eprintln!("screenshot: {}", artifacts().join("app.png").display());

    // Logging out forgets the cookie: the pages send the browser back to the login.
    b.find(Locator::Css("header form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_path(&b, "/ui/login").await;
    b.goto(&format!("{base}/ui/apps/dash")).await.unwrap();
    assert_eq!(b.current_url().await.unwrap().path(), "/ui/login");

    b.close().await.unwrap();
    drop(driver);
    s.stop().await;
}
