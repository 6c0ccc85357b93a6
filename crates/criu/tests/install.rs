//! Installs the pinned CRIU into a fresh directory from Debian forky (root, network to the
//! Debian mirror) and runs it.

use hako_criu::{Criu, PACKAGES, VERSION, install};

#[test]
fn installs_the_pinned_criu_without_touching_the_host() {
    assert!(
        std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0")),
        "this test needs root (apt-get, dpkg-deb): run it as root"
    );
    let host_status = std::fs::read("/var/lib/dpkg/status").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let done = install(dir.path()).unwrap();
    assert!(!done.already);
    assert_eq!(done.packages.len(), PACKAGES.len());
    println!(
        "criu install: {:.1} s, {:.1} MiB, pinned={}",
        done.seconds,
        done.bytes as f64 / (1 << 20) as f64,
        done.pinned
    );
    let criu = Criu::open(dir.path()).unwrap();
    assert_eq!(criu.version().unwrap(), VERSION);
    // The work directory (apt's lists, the downloads) is gone; the host's dpkg state is not
    // changed.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        left.iter().all(|n| n == VERSION || n == ".install.lock"),
        "{left:?}"
    );
    assert_eq!(std::fs::read("/var/lib/dpkg/status").unwrap(), host_status);
    // A second install finds it.
    let again = install(dir.path()).unwrap();
    assert!(again.already);
}
