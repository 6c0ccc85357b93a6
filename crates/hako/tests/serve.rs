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

#[test]
fn app_logs_follow_prints_lines_as_the_app_writes_them() {
    use std::io::BufRead;
    common::require_root();
    let tmp = tempfile::Builder::new()
        .prefix("hako-cli-follow")
        .tempdir()
        .unwrap();
    let data = tmp.path().join("data");
    let site = tmp.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("index.html"), "hi\n").unwrap();
    let (code, out) = hako(&data, "127.0.0.1:1", &["image", "host", "base"]);
    assert_eq!(code, 0, "{out}");
    let d = common::serve(&data);
    let (code, out) = hako(
        &data,
        &d.api,
        &[
            "app",
            "create",
            "talk",
            "--host",
            "talk.example",
            "--image",
            "base",
            "--code",
            site.to_str().unwrap(),
            "--cmd",
            "busybox sh -c 'busybox httpd -p $PORT -h /app; i=0; while :; do echo tick $i; i=$((i+1)); busybox sleep 0.2; done'",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let mut follow = hako_testkit::hako_command(Path::new(common::HAKO), &data)
        .args(["app", "logs", "talk", "--follow"])
        .env("HAKO_API", format!("http://{}", d.api))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    assert_eq!(get(&d.proxy, "talk.example").0, 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    // A header naming the instance, then its numbered lines in order.
    while !(seen.iter().any(|l: &String| l.starts_with("==> talk-"))
        && seen.iter().any(|l| l == "tick 2"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("hako app logs --follow printed only {seen:?}"),
        }
    }
    let ticks: Vec<&String> = seen.iter().filter(|l| l.starts_with("tick ")).collect();
    assert_eq!(ticks[..3], ["tick 0", "tick 1", "tick 2"], "{seen:?}");
    // It follows until stopped.
    assert!(follow.try_wait().unwrap().is_none(), "it ended on its own");
    follow.kill().unwrap();
    follow.wait().unwrap();
    reader.join().unwrap();
}
