//! `cargo xtask bench wordpress`: hako's reference PHP site measured as users meet it.
//!
//! - **cold**: time to the first byte of WordPress's home page when the site has no running
//!   instance (container start, Apache + mod_php start, WordPress's first page with a cold
//!   opcache), through hako's proxy; starts spaced apart.
//! - **warm pool**: the same with a parked container ready for the app (`--warm-pool 1`),
//!   when this hako has the option.
//! - **restore**: a CRIU restore of a warmed instance, where CRIU works; this build has no
//!   CRIU path (Debian bookworm's CRIU 3.17 fails on this kernel), so it prints `n/a`.
//! - **warm req/s**: wrk on the home page through hako, and against the very same WordPress
//!   (the same image files, Apache config and database) run by Apache + mod_php directly on
//!   the host (a chroot, no hako, no container limits), in the same run.
//!
//! The image's Debian system is cached in `/var/lib/hako-bench/images`: only the first run on
//! a machine pays for debootstrap.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::daemon::HakoServe;
use crate::proxy::process::Guarded;
use crate::proxy::wrk;
use crate::samples::{Pacer, Samples, ms, print_table};

const APP: &str = "wp";
const HOST: &str = "wp.bench";
pub(crate) const IMAGES: &str = "/var/lib/hako-bench/images";
const PEER_USER: &str = "hakobench_peer";
/// wrk's connections: about Apache's workers per core here, so the figure is throughput,
/// not queueing behind a page that takes tens of milliseconds of CPU.
const CONNECTIONS: u32 = 8;

struct Opts {
    runs: usize,
    seconds: u64,
}

fn options(args: &[&str]) -> anyhow::Result<Opts> {
    let mut o = Opts {
        runs: 15,
        seconds: 10,
    };
    let mut it = args.iter();
    while let Some(&a) = it.next() {
        let mut num = |what: &str| -> anyhow::Result<u64> {
            let v = it.next().with_context(|| format!("{what} needs a value"))?;
            v.parse()
                .ok()
                .filter(|n| *n > 0)
                .with_context(|| format!("{what} {v:?}: give a positive number"))
        };
        match a {
            "--runs" => o.runs = num("--runs")? as usize,
            "--seconds" => o.seconds = num("--seconds")?,
            other => bail!("unknown option {other:?} (known: --runs N, --seconds S)"),
        }
    }
    Ok(o)
}

pub fn main(args: &[&str]) -> anyhow::Result<()> {
    let opts = options(args)?;
    if !hako_testkit::is_root() {
        bail!("the wordpress benchmark runs hako serve and containers: run it as root");
    }
    crate::tools::require(&[
        ("wrk", "wrk"),
        ("debootstrap", "debootstrap"),
        ("curl", "curl"),
        ("nft", "nftables"),
        ("mariadb", "mariadb-client"),
    ])?;
    let hako = crate::paths::hako_binary()?;
    let serve = HakoServe::start_with_images(&hako, Path::new(IMAGES))?;
    build_image(&serve, "bench wordpress")?;
    serve.cli(&[
        "app",
        "create",
        APP,
        "--host",
        HOST,
        "--image",
        "wordpress",
        "--database",
        "--cmd",
        "hako-wordpress",
        "--env",
        "WP_HTTP_BLOCK_EXTERNAL=1",
        "--memory",
        "1GiB",
        "--idle-timeout",
        "1s",
    ])?;
    let database = format!("{}_{APP}", serve.prefix);
    let _cleanup = DropDatabase(database.clone());
    install(serve.proxy, HOST)?;

    // Cold starts: no instance, then the first byte of the home page.
    let mut pacer = Pacer::new(Duration::from_millis(300));
    let mut cold = Samples::default();
    for _ in 0..opts.runs {
        serve.wait_no_instances(APP, Duration::from_secs(30))?;
        pacer.next();
        cold.push(first_byte(serve.proxy, HOST, "/")?);
    }
    let mut pooled = Samples::default();
    let has_pool = serve
        .cli(&["app", "update", APP, "--warm-pool", "1"])
        .is_ok();
    if has_pool {
        for _ in 0..opts.runs {
            serve.wait_no_instances(APP, Duration::from_secs(30))?;
            pacer.next();
            pooled.push(first_byte(serve.proxy, HOST, "/")?);
        }
    } else {
        eprintln!("bench wordpress: this hako has no --warm-pool; skipping that measure");
    }
    // Warm: the instance is running and has served the page before.
    serve.cli(&["app", "update", APP, "--idle-timeout", "10m"])?;
    let mut warm = Samples::default();
    first_byte(serve.proxy, HOST, "/")?;
    for _ in 0..opts.runs {
        warm.push(first_byte(serve.proxy, HOST, "/")?);
    }

    // The same WordPress without hako: Apache + mod_php in a chroot of the same image.
    let peer = Peer::start(&serve, &database)?;
    let cold_before = serve.cold_count(APP)?;
    let duration = Duration::from_secs(opts.seconds);
    eprintln!(
        "bench wordpress: warm-up, then wrk {}s on each",
        opts.seconds
    );
    let wrk = |addr: SocketAddr, d: Duration| {
        wrk::run_with(addr, HOST, d, CONNECTIONS, Duration::from_secs(30))
    };
    wrk(serve.proxy, Duration::from_secs(3))?;
    wrk(peer.addr, Duration::from_secs(3))?;
    let mut hako_runs = Vec::new();
    let mut apache_runs = Vec::new();
    for round in 0..2 {
        let (a, b) = if round == 0 {
            (true, false)
        } else {
            (false, true)
        };
        for first in [a, b] {
            if first {
                hako_runs.push(wrk(serve.proxy, duration)?);
            } else {
                apache_runs.push(wrk(peer.addr, duration)?);
            }
        }
    }
    if serve.cold_count(APP)? != cold_before {
        bail!("the instance restarted during the wrk runs: the figures mix in cold starts");
    }
    drop(peer);
    drop(serve);
    let best = |v: &[wrk::Figures]| v.iter().map(|f| f.rps).fold(0.0, f64::max);
    let (hako_rps, apache_rps) = (best(&hako_runs), best(&apache_runs));

    print_table(
        "WordPress home page, first byte",
        &[
            ("cold start through hako", &cold),
            ("cold start, warm pool", &pooled),
            ("warm instance through hako", &warm),
        ],
    );
    println!();
    println!(
        "{:<40} {:>10}",
        format!("warm req/s (wrk -c{CONNECTIONS}, best of 2)"),
        "req/s"
    );
    println!("{:<40} {:>10.1}", "hako serve → Apache + mod_php", hako_rps);
    println!(
        "{:<40} {:>10.1}",
        "Apache + mod_php on the host", apache_rps
    );
    println!();
    println!(
        "wordpress: cold_p50_ms={} restore_p50_ms=n/a hako_rps={hako_rps:.1} apache_rps={apache_rps:.1} ratio={:.2} warm_pool_p50_ms={} warm_p50_ms={}",
        ms(cold.p50()),
        hako_rps / apache_rps,
        if has_pool {
            ms(pooled.p50())
        } else {
            "n/a".into()
        },
        ms(warm.p50())
    );
    Ok(())
}

/// Builds the `wordpress` image (images/wordpress: Debian's packages and hako's Apache setup)
/// in `serve`'s image store; a store shared between runs ([`IMAGES`]) keeps the debootstrap,
/// so only a machine's first run pays for it. `who` prefixes the progress line.
pub(crate) fn build_image(serve: &HakoServe, who: &str) -> anyhow::Result<()> {
    let root = crate::paths::workspace_root();
    let packages = std::fs::read_to_string(root.join("images/wordpress/packages"))?;
    let add = root.join("images/wordpress/rootfs");
    eprintln!("{who}: building the WordPress image (cached after the first run)");
    serve.cli(&[
        "image",
        "build",
        "wordpress",
        "--debian-packages",
        packages.trim(),
        "--add",
        add.to_str().context("path is not UTF-8")?,
    ])?;
    Ok(())
}

/// Runs WordPress's installer over HTTP through hako.
pub(crate) fn install(proxy: SocketAddr, host: &str) -> anyhow::Result<()> {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "60",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args(["-H", &format!("Host: {host}")])
        .args(["--data-urlencode", "weblog_title=hako bench"])
        .args(["--data-urlencode", "user_name=admin"])
        .args(["--data-urlencode", "admin_password=bench bench bench bench"])
        .args([
            "--data-urlencode",
            "admin_password2=bench bench bench bench",
        ])
        .args(["--data-urlencode", "pw_weak=1"])
        .args(["--data-urlencode", "admin_email=admin@wp.bench"])
        .args(["--data-urlencode", "blog_public=0"])
        .arg(format!("http://{proxy}/wp-admin/install.php?step=2"))
        .output()
        .context("cannot run curl")?;
    let code = String::from_utf8_lossy(&out.stdout);
    if code != "200" {
        bail!(
            "WordPress's installer answered {code}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Connects, sends `GET path`, and returns the time until the response's first byte (after
/// checking it is a 200; the rest is read and dropped).
pub(crate) fn first_byte(addr: SocketAddr, host: &str, path: &str) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    let mut s = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut first = [0u8; 1];
    s.read_exact(&mut first)?;
    let took = t0.elapsed();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest)?;
    let head = String::from_utf8_lossy(&rest[..rest.len().min(20)]).into_owned();
    if !(first[0] == b'H' && head.starts_with("TTP/1.1 200")) {
        bail!("GET {path}: not a 200: H{head}");
    }
    Ok(took)
}

/// The image's layers (lowest first), from `hako image list --json`.
fn layers(serve: &HakoServe) -> anyhow::Result<Vec<PathBuf>> {
    let list: serde_json::Value = serde_json::from_str(&serve.cli(&["image", "list", "--json"])?)?;
    let newest = list
        .as_array()
        .context("image list is not a list")?
        .iter()
        .filter(|i| i["name"] == "wordpress")
        .max_by_key(|i| i["version"].as_u64())
        .context("no wordpress image")?;
    let images = Path::new(IMAGES);
    let key = newest["storage"]["key"]
        .as_str()
        .context("not a debian build")?;
    let mut layers = vec![images.join(".cache/debian").join(key).join("rootfs")];
    if newest["storage"]["added"] == true {
        let version = newest["version"].as_u64().context("no version")?;
        layers.push(
            images
                .join("wordpress")
                .join(version.to_string())
                .join("rootfs"),
        );
    }
    Ok(layers)
}

/// Apache + mod_php serving the same WordPress (image files, config, database) straight on
/// the host: a private mount namespace with the image's layers as an overlay root, chrooted
/// as nobody. Stopped (SIGTERM to Apache, then the namespace goes) on drop.
struct Peer {
    addr: SocketAddr,
    _process: Guarded,
    _tmp: tempfile::TempDir,
}

impl Peer {
    fn start(serve: &HakoServe, database: &str) -> anyhow::Result<Peer> {
        let tmp = tempfile::Builder::new()
            .prefix("hako-bench-apache-")
            .tempdir()?;
        let layers = layers(serve)?;
        let lower: Vec<String> = layers
            .iter()
            .rev()
            .map(|p| p.display().to_string())
            .collect();
        let password = format!("peer{}", std::process::id());
        mariadb(&format!(
            "CREATE USER IF NOT EXISTS '{PEER_USER}'@'localhost' IDENTIFIED BY '{password}'; \
             ALTER USER '{PEER_USER}'@'localhost' IDENTIFIED BY '{password}'; \
             GRANT ALL ON `{database}`.* TO '{PEER_USER}'@'localhost';"
        ))?;
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let app = serve.client.app(APP)?;
        let data = serve
            .data_dir()
            .join("apps")
            .join(app.storage_key())
            .join("data");
        let t = tmp.path().display();
        let script = format!(
            "set -e
             mount -t tmpfs tmpfs {t}
             mkdir {t}/upper {t}/work {t}/root
             mount -t overlay overlay -o lowerdir={lower},upperdir={t}/upper,workdir={t}/work {t}/root
             R={t}/root
             mount -t proc proc $R/proc
             mount --rbind /dev $R/dev
             mount -t tmpfs -o mode=1777 tmpfs $R/tmp
             mount -t tmpfs tmpfs $R/run
             mkdir -p $R/run/mysqld $R/data
             mount --bind /run/mysqld $R/run/mysqld
             mount --bind {data} $R/data
             exec chroot --userspec=65534:65534 $R /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
               PORT={port} DB_NAME={database} DB_USER={PEER_USER} DB_PASSWORD={password} \
               DB_SOCKET=/run/mysqld/mysqld.sock WP_HTTP_BLOCK_EXTERNAL=1 WP_SALT=bench \
               /usr/local/bin/hako-wordpress -c 'ErrorLog /tmp/apache-error.log'",
            lower = lower.join(":"),
            data = data.display(),
        );
        use std::os::unix::process::CommandExt;
        let child = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                &script,
            ])
            // Its own process group: Apache stops its children with kill(0, SIGTERM).
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start Apache")?;
        let process = Guarded::new("apache", child, rustix::process::Signal::TERM);
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline {
                bail!("Apache (without hako) did not listen on {addr}");
            }
            // Polling the port: the readiness check itself.
            std::thread::sleep(Duration::from_millis(20));
        }
        // Same page as through hako (and the same database): the peer serves the same site.
        first_byte(addr, HOST, "/")?;
        Ok(Peer {
            addr,
            _process: process,
            _tmp: tmp,
        })
    }
}

/// Removes the bench's database, the site's account and the peer's account at the end (also
/// after a failure).
struct DropDatabase(String);

impl Drop for DropDatabase {
    fn drop(&mut self) {
        let _ = mariadb(&format!(
            "DROP DATABASE IF EXISTS `{0}`; DROP USER IF EXISTS '{0}'@'localhost'; \
             DROP USER IF EXISTS '{PEER_USER}'@'localhost';",
            self.0
        ));
    }
}

pub(crate) fn mariadb(sql: &str) -> anyhow::Result<()> {
    let out = Command::new("mariadb")
        .args(["-e", sql])
        .output()
        .context("cannot run mariadb")?;
    if !out.status.success() {
        bail!("mariadb: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}
