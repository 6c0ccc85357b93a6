//! Where a container start's time goes: `/bin/true` start→exit on a one-layer busybox image
//! and on a host image (skeleton + read-only binds of /usr and /etc files), with and without a
//! network namespace. Starts are spaced 200 ms apart.
//! Usage: `cargo run --release -p hako-runtime --example start_cost [N]` (root).

use std::time::{Duration, Instant};

use hako_runtime::{ContainerSpec, LogSpec, NetworkMode, RootfsSpec, Runtime, RuntimeConfig};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(30);
    let tmp = tempfile::tempdir().expect("temp dir");
    let bb = tmp.path().join("bb");
    for d in ["bin", "etc", "tmp", "proc", "dev"] {
        std::fs::create_dir_all(bb.join(d)).expect("mkdir");
    }
    std::fs::copy("/usr/bin/busybox", bb.join("bin/busybox")).expect("busybox-static");
    std::os::unix::fs::symlink("busybox", bb.join("bin/true")).expect("symlink");
    let skel = tmp.path().join("skel");
    for d in ["usr", "etc", "proc", "dev", "tmp", "run", "app", "data"] {
        std::fs::create_dir_all(skel.join(d)).expect("mkdir");
    }
    for (l, t) in [
        ("bin", "usr/bin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
    ] {
        std::os::unix::fs::symlink(t, skel.join(l)).expect("symlink");
    }
    let mut host_binds = vec![("/usr".into(), "/usr".into())];
    let etc = [
        "passwd",
        "group",
        "nsswitch.conf",
        "ld.so.cache",
        "ld.so.conf",
        "ld.so.conf.d",
        "alternatives",
        "ssl",
        "localtime",
        "services",
        "protocols",
        "os-release",
        "debian_version",
        "mime.types",
        "host.conf",
        "gai.conf",
        "ca-certificates.conf",
    ];
    for f in etc {
        let p = std::path::Path::new("/etc").join(f);
        if p.exists() {
            host_binds.push((p.clone(), p));
        }
    }
    let nb = host_binds.len();
    let rt = Runtime::new(RuntimeConfig::unique('x', "/run/hako")).expect("runtime");
    let rtk = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let variants: Vec<(String, RootfsSpec, NetworkMode)> = vec![
        (
            "busybox, net none".into(),
            RootfsSpec::Layers(vec![bb.clone()]),
            NetworkMode::None,
        ),
        (
            "busybox, net host".into(),
            RootfsSpec::Layers(vec![bb.clone()]),
            NetworkMode::Host,
        ),
        (
            format!("host image ({nb} binds), net none"),
            RootfsSpec::Host {
                skeleton: skel.clone(),
                binds: host_binds.clone(),
            },
            NetworkMode::None,
        ),
    ];
    for (name, rootfs, net) in variants {
        let mut prep = Vec::new();
        let mut total = Vec::new();
        let mut cloned = Vec::new();
        let mut release = Vec::new();
        for _ in 0..n {
            std::thread::sleep(Duration::from_millis(200));
            let mut spec = ContainerSpec::new(rootfs.clone(), "/bin/true");
            spec.network = net;
            spec.log = LogSpec::Null;
            let t = Instant::now();
            let c = rt.create(&spec).expect("create");
            prep.push(t.elapsed());
            c.start().expect("start");
            cloned.push(c.timings().clone);
            release.push(c.timings().release.unwrap_or_default());
            rtk.block_on(c.wait()).expect("wait");
            total.push(t.elapsed());
            c.remove().expect("remove");
        }
        for v in [&mut prep, &mut total, &mut cloned, &mut release] {
            v.sort();
        }
        let p50 = |v: &Vec<Duration>| v[n / 2].as_secs_f64() * 1e3;
        println!(
            "{name:<36} until cloned {:.2} ms, prepared {:.2} ms, release→exec {:.2} ms, start→exit {:.2} ms (p50)",
            p50(&cloned),
            p50(&prep),
            p50(&release),
            p50(&total)
        );
    }
    rt.shutdown();
}
