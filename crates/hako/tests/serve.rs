//! The real `hako serve` process: sites through the CLI, a kill -9 and a restart that finds
//! every app intact and nothing left of the old run.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Names, Serve, hako};

/// The daemon of this test: the same prefix and subnet for both runs, so that the second one
/// finds what the first left.
fn start(data: &Path, names: &Names) -> Serve {
    Serve::builder(common::HAKO)
        .data_dir(data)
        .names(names.clone())
        .start()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn get(proxy: &SocketAddr, host: &str) -> (u16, String) {
    common::get(proxy, host, "/")
}

fn cgroups(prefix: &str) -> Vec<String> {
    std::fs::read_dir(format!("/sys/fs/cgroup/pids/{prefix}"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn apps_survive_kill_9_and_the_restart_cleans_the_old_run() {
    common::require_root();
    let tmp = tempfile::Builder::new()
        .prefix("hako-cli-serve")
        .tempdir()
        .unwrap();
    let data = tmp.path().join("data");
    let site = tmp.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(
        site.join("index.php"),
        "<?php echo 'php says ', 6 * 7, \"\\n\";",
    )
    .unwrap();
    let names = Names::unique('q');
    let p = names.prefix.clone();

    let (code, out) = hako(&data, "127.0.0.1:1", &["image", "host", "base"]);
    assert_eq!(code, 0, "{out}");
    let mut d = start(&data, &names);
    let (code, out) = hako(
        &data,
        &d.api,
        &[
            "app",
            "create",
            "blog",
            "--host",
            "blog.example",
            "--image",
            "base",
            "--code",
            site.to_str().unwrap(),
            "--cmd",
            "php -S 0.0.0.0:$PORT -t /app",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("deployed release 1 of blog"), "{out}");
    assert_eq!(
        get(&d.proxy, "blog.example"),
        (200, "php says 42\n".to_string())
    );
    let old = cgroups(&p);
    assert_eq!(old.len(), 1, "one instance: {old:?}");

    // kill -9: the instance dies with its daemon; its cgroup is left for the next start.
    d.kill();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(format!("/sys/fs/cgroup/pids/{p}/{}/cgroup.procs", old[0]))
        .unwrap_or_default()
        .trim()
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the instance outlived its daemon"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    let mut d = start(&data, &names);
    assert!(
        cgroups(&p).is_empty(),
        "the old run's cgroups are still there: {:?}",
        cgroups(&p)
    );
    let (code, out) = hako(&data, &d.api, &["app", "list", "--json"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("\"blog\"") && out.contains("blog.example"),
        "{out}"
    );
    assert_eq!(
        get(&d.proxy, "blog.example"),
        (200, "php says 42\n".to_string())
    );
    let (_, events) = hako(&data, &d.api, &["app", "events", "blog"]);
    assert!(
        events.contains("the previous hako process ended"),
        "{events}"
    );

    // A graceful stop leaves nothing at all.
    let status = d.terminate().unwrap().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!std::path::Path::new(&format!("/sys/fs/cgroup/pids/{p}")).exists());
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&links.stdout).contains(&p));
    assert!(!std::path::Path::new(&format!("/run/hako/{p}")).exists());
}
