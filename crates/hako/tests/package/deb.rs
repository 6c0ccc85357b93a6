//! The package under test and the Debian system it is installed on.
//!
//! - [`build`]: the .deb made by cargo-deb from `crates/hako/Cargo.toml`'s
//!   `[package.metadata.deb]`, as `cargo xtask package` makes it, but holding this test
//!   build's `hako` (a debug build: a release build of the workspace would cost minutes). cargo-deb
//!   packages `target/release/hako`, so the binary is put at that place in a target dir of the
//!   run's own, and cargo-deb runs with `--no-build` on it (fast compression, stripped);
//! - [`base`]: a minimal Debian (debootstrap `minbase`, the host's suite and mirror) with
//!   exactly the package's `Depends`, plus busybox (the test's site is `busybox httpd`) and
//!   init-system-helpers (`deb-systemd-helper`, on every systemd host: it enables the unit).
//!   Built once through hako's own image store under `target/package-test/images` (cached by
//!   package set, so a change of `Depends` builds a new one), about a minute and a half.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Packages the base system has besides the package's `Depends`.
const EXTRA: [&str; 2] = ["busybox-static", "init-system-helpers"];

/// Makes the .deb of `hako` (this test's binary) in `<run_dir>/deb/`; returns its path.
#[track_caller]
pub fn build(hako: &Path, run_dir: &Path) -> PathBuf {
    let stage = run_dir.join("target");
    let release = stage.join("release");
    std::fs::create_dir_all(&release).expect("make the staged target dir");
    std::fs::copy(hako, release.join("hako")).expect("stage the hako binary");
    let out = run_dir.join("deb");
    std::fs::create_dir_all(&out).expect("make the output dir");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let result = Command::new(cargo)
        .current_dir(&workspace)
        .args([
            "deb",
            "--package",
            "hako",
            "--no-build",
            "--fast",
            "--strip",
        ])
        .args(["--no-dbgsym", "--no-separate-debug-symbols"])
        .args(["--no-compress-debug-symbols", "--quiet", "--output"])
        .arg(&out)
        .env("CARGO_TARGET_DIR", &stage)
        .output()
        .expect("run cargo");
    let text = String::from_utf8_lossy(&result.stderr);
    assert!(
        result.status.success(),
        "cargo deb failed ({}): {text}{}",
        result.status,
        if text.contains("no such command") {
            "\ninstall cargo-deb: cargo install cargo-deb --locked (cargo xtask test does)"
        } else {
            ""
        }
    );
    let debs: Vec<PathBuf> = std::fs::read_dir(&out)
        .expect("read the output dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "cargo deb made {debs:?}");
    debs.into_iter().next().expect("one")
}

/// A field of the .deb's control file (`dpkg-deb -f`).
#[track_caller]
pub fn field(deb: &Path, name: &str) -> String {
    let out = Command::new("dpkg-deb")
        .arg("-f")
        .arg(deb)
        .arg(name)
        .output()
        .expect("run dpkg-deb");
    assert!(out.status.success(), "dpkg-deb -f {name}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The package names of a relationship field: the first of each `a | b` choice, without
/// versions (`libc6 (>= 2.34), nftables` → `libc6`, `nftables`).
pub fn names(relation: &str) -> Vec<String> {
    relation
        .split(',')
        .filter_map(|choice| {
            let first = choice.split('|').next()?.trim();
            let name = first.split([' ', '(', ':']).next()?;
            (!name.is_empty()).then(|| name.to_string())
        })
        .collect()
}

/// The root filesystem of the cached base system for `deb`, built if there is none.
#[track_caller]
pub fn base(deb: &Path, images: &Path) -> PathBuf {
    let mut packages = names(&field(deb, "Depends"));
    packages.extend(EXTRA.iter().map(|p| p.to_string()));
    packages.sort();
    packages.dedup();
    let store = hako_image::ImageStore::open(images).expect("open the base systems' store");
    let known = store
        .list()
        .expect("list the base systems")
        .into_iter()
        .find(|i| i.packages == packages);
    let image = match known {
        Some(i) => i,
        None => store
            .build_debian("base", &packages, &hako_image::DebianBuild::default())
            .unwrap_or_else(|e| panic!("cannot build a Debian base system with debootstrap: {e}")),
    };
    match image.rootfs() {
        hako_image::Rootfs::Layers(layers) if layers.len() == 1 => layers[0].clone(),
        other => panic!("a debootstrap image has one layer: {other:?}"),
    }
}

#[test]
fn relationship_fields_give_package_names() {
    assert_eq!(
        names("libc6 (>= 2.34), nftables, busybox-static | busybox, foo:any"),
        ["libc6", "nftables", "busybox-static", "foo"]
    );
    assert!(names("").is_empty());
}
