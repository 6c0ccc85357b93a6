//! Measures how long after `start()` an isolated container's HTTP port first accepts a
//! connection from the host (busybox httpd), to spot network set-up delays such as ARP
//! retries. Usage: `cargo run --release -p hako-runtime --example first_connect [N]` (root).

use std::time::{Duration, Instant};

use hako_runtime::{ContainerSpec, LogSpec, RootfsSpec, Runtime, RuntimeConfig};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(30);
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("img");
    for d in ["bin", "etc", "tmp", "proc", "dev"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    std::fs::copy("/usr/bin/busybox", root.join("bin/busybox"))
        .expect("busybox-static is installed");
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).expect("symlink");
    let mut config = RuntimeConfig::unique('x', "/run/hako");
    config.subnet = "10.213.7.0/28".parse().expect("subnet"); // small: addresses get reused
    let rt = Runtime::new(config).expect("runtime");
    let rtk = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let mut times = Vec::new();
    for _ in 0..n {
        let mut spec = ContainerSpec::new(RootfsSpec::Layers(vec![root.clone()]), "/bin/busybox");
        spec.args = ["httpd", "-f", "-p", "8080", "-h", "/tmp"]
            .map(String::from)
            .to_vec();
        spec.log = LogSpec::Null;
        let c = rt.run(&spec).expect("run");
        let t = Instant::now();
        let addr = (c.address().expect("isolated"), 8080);
        while std::net::TcpStream::connect_timeout(&addr.into(), Duration::from_secs(5)).is_err() {
            std::thread::sleep(Duration::from_micros(200));
        }
        times.push(t.elapsed());
        rtk.block_on(c.stop(Duration::from_millis(100)))
            .expect("stop");
        c.remove().expect("remove");
        std::thread::sleep(Duration::from_millis(200));
    }
    rt.shutdown();
    times.sort();
    println!(
        "first_connect: n={n} p50_ms={:.2} max_ms={:.2} over_500ms={}",
        times[n / 2].as_secs_f64() * 1000.0,
        times[n - 1].as_secs_f64() * 1000.0,
        times
            .iter()
            .filter(|t| **t > Duration::from_millis(500))
            .count()
    );
}
