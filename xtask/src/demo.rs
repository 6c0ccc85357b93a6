//! `cargo xtask demo`: installs what is missing, builds hako, and runs `hako serve` with three
//! demo sites on the embedded store: a static site (busybox httpd) and a PHP site (php -S),
//! both on the host image, and WordPress (Debian's, Apache + mod_php, its own MariaDB
//! database) on an image built with `hako image build`. Ctrl-C stops it (every instance is
//! stopped and cleaned up).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::setup;
use crate::test::{require_root, run};

const DEMO_PACKAGES: &[(&str, &str)] = &[
    ("busybox", "busybox-static"),
    ("php", "php-cli"),
    ("nft", "nftables"),
    ("ip", "iproute2"),
    ("curl", "curl"),
    ("debootstrap", "debootstrap"),
];

pub fn main(args: &[&str]) -> anyhow::Result<()> {
    require_root()?;
    setup::ensure_packages(DEMO_PACKAGES)?;
    let root = crate::workspace_root();
    run(Command::new("cargo")
        .current_dir(&root)
        .args(["build", "--release", "-p", "hako"]))?;
    let hako = root.join("target/release/hako");
    let data = std::env::var("HAKO_DATA_DIR").unwrap_or_else(|_| "/var/lib/hako".into());
    let listen = args.first().copied().unwrap_or("0.0.0.0:8080");
    let sites = root.join("target/demo-sites");
    write_sites(&sites)?;

    let hk = |a: &[&str]| {
        Command::new(&hako)
            .args(["--data-dir", &data])
            .args(a)
            .output()
    };
    let images = String::from_utf8_lossy(&hk(&["image", "list", "--json"])?.stdout).into_owned();
    if !images.contains("\"base\"") {
        run(Command::new(&hako).args(["--data-dir", &data, "image", "host", "base"]))?;
    }
    setup::ensure_mariadb()?;
    setup::ensure_criu()?;
    if !images.contains("\"wordpress\"") {
        let packages = std::fs::read_to_string(root.join("images/wordpress/packages"))?;
        run(Command::new(&hako).args([
            "--data-dir",
            &data,
            "image",
            "build",
            "wordpress",
            "--debian-packages",
            packages.trim(),
            "--add",
            root.join("images/wordpress/rootfs")
                .to_str()
                .expect("utf-8 path"),
        ]))?;
    }

    let mut serve = Command::new(&hako)
        .args([
            "--data-dir",
            &data,
            "serve",
            "--listen",
            listen,
            "--api",
            "127.0.0.1:7070",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start hako serve")?;
    let mut err = BufReader::new(serve.stderr.take().expect("piped"));
    let mut line = String::new();
    loop {
        line.clear();
        if err.read_line(&mut line)? == 0 {
            bail!("hako serve exited: {:?}", serve.wait()?);
        }
        eprint!("{line}");
        if line.starts_with("hako: serving sites") {
            break;
        }
    }
    std::thread::spawn(move || {
        for l in err.lines().map_while(Result::ok) {
            eprintln!("{l}");
        }
    });
    let apps = String::from_utf8_lossy(&hk(&["app", "list", "--json"])?.stdout).into_owned();
    let demo: [(&str, &str, &str, &str); 2] = [
        (
            "static",
            "static.localhost",
            "busybox httpd -f -p $PORT -h /app",
            "TERM",
        ),
        (
            "php",
            "php.localhost",
            "php -S 0.0.0.0:$PORT -t /app",
            "INT",
        ),
    ];
    for (name, host, cmd, stop_signal) in demo {
        if !apps.contains(&format!("\"name\": \"{name}\"")) {
            let code = sites.join(name);
            run(Command::new(&hako).args([
                "--data-dir",
                &data,
                "app",
                "create",
                name,
                "--host",
                host,
                "--image",
                "base",
                "--code",
                code.to_str().expect("utf-8 path"),
                "--cmd",
                cmd,
                "--idle-timeout",
                "1m",
                "--stop-signal",
                stop_signal,
            ]))?;
        }
    }
    if !apps.contains("\"name\": \"wordpress\"") {
        run(Command::new(&hako).args([
            "--data-dir",
            &data,
            "app",
            "create",
            "wordpress",
            "--host",
            "wordpress.localhost",
            "--image",
            "wordpress",
            "--database",
            "--cmd",
            "hako-wordpress",
            "--idle-timeout",
            "5m",
        ]))?;
    }
    let port = listen.rsplit(':').next().unwrap_or("8080");
    println!();
    println!(
        "hako is serving three demo sites; each starts on its first request and stops when idle:"
    );
    for (name, host, _, _) in demo {
        let url = format!("http://127.0.0.1:{port}/");
        let t = std::time::Instant::now();
        let out = Command::new("curl")
            .args(["-s", "-H", &format!("Host: {host}"), &url])
            .output()?;
        println!(
            "  {name:<7} curl -H 'Host: {host}' {url}   → {:?} ({:.0} ms, a cold start)",
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .unwrap_or(""),
            t.elapsed().as_secs_f64() * 1000.0
        );
    }
    let url = format!("http://127.0.0.1:{port}/");
    let t = std::time::Instant::now();
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
        ])
        .args(["-H", "Host: wordpress.localhost", &url])
        .output()?;
    println!(
        "  wordpress curl -H 'Host: wordpress.localhost' {url} → {} ({:.0} ms, a cold start)",
        String::from_utf8_lossy(&out.stdout),
        t.elapsed().as_secs_f64() * 1000.0
    );
    println!("  open http://wordpress.localhost:{port}/ in a browser to run WordPress's installer");
    println!(
        "  events: {} --data-dir {data} app events php",
        hako.display()
    );
    println!("Ctrl-C stops hako (and every instance).");
    let status = serve.wait()?;
    if !status.success() {
        bail!("hako serve ended with {status}");
    }
    Ok(())
}

fn write_sites(dir: &Path) -> anyhow::Result<()> {
    let s = |p: PathBuf, body: &str| -> anyhow::Result<()> {
        std::fs::create_dir_all(p.parent().expect("has parent"))?;
        std::fs::write(&p, body).with_context(|| format!("cannot write {}", p.display()))
    };
    s(
        dir.join("static/index.html"),
        "<!doctype html><title>hako static demo</title><h1>Hello from a static site on hako</h1>\n",
    )?;
    s(
        dir.join("php/index.php"),
        "<?php\necho \"Hello from PHP \", PHP_VERSION, \" in instance \", getenv('HAKO_INSTANCE'), \"\\n\";\n",
    )?;
    Ok(())
}
