//! Where the benchmarks find what they run and write: the workspace (images/wordpress, docs),
//! its target dir, and the release-built `hako` binary and examples beside `hako-bench`
//! itself (`cargo xtask bench` builds them first).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The workspace root (this crate lives two levels below it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/bench is inside the workspace")
        .to_path_buf()
}

/// The target dir: `CARGO_TARGET_DIR` (absolute, or relative to `root`), else `root/target`.
pub fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if Path::new(&d).is_absolute() => PathBuf::from(d),
        Some(d) => root.join(d),
        None => root.join("target"),
    }
}

/// The dir of this executable's profile (`target/release` for `hako-bench`, also for its
/// tests, which run from `target/PROFILE/deps`).
fn profile_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let dir = exe.parent().context("the executable has no directory")?;
    Ok(if dir.ends_with("deps") {
        dir.parent().unwrap_or(dir).to_path_buf()
    } else {
        dir.to_path_buf()
    })
}

/// The `hako` binary: `HAKO_BIN` if set, else the one built beside this executable.
pub fn hako_binary() -> anyhow::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("HAKO_BIN") {
        return Ok(PathBuf::from(bin));
    }
    built(
        &profile_dir()?.join("hako"),
        "cargo build --release -p hako",
    )
}

/// The example `name` built beside this executable (e.g. hako-proxy's `bench_proxy`).
pub fn example(name: &str, build: &str) -> anyhow::Result<PathBuf> {
    built(&profile_dir()?.join("examples").join(name), build)
}

fn built(path: &Path, build: &str) -> anyhow::Result<PathBuf> {
    if !path.is_file() {
        bail!(
            "{} is not built: run `{build}` first (cargo xtask bench and cargo xtask experiment do)",
            path.display()
        );
    }
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_holds_this_crate() {
        let root = workspace_root();
        assert!(root.join("crates/bench/Cargo.toml").is_file(), "{root:?}");
        assert!(root.join("images/wordpress/packages").is_file(), "{root:?}");
    }

    #[test]
    fn target_dir_follows_cargo_target_dir() {
        // Only reads the variable; the test cannot set it without racing other tests.
        let root = Path::new("/ws");
        let d = target_dir(root);
        match std::env::var_os("CARGO_TARGET_DIR") {
            Some(v) if Path::new(&v).is_absolute() => assert_eq!(d, PathBuf::from(v)),
            Some(v) => assert_eq!(d, root.join(v)),
            None => assert_eq!(d, root.join("target")),
        }
    }

    #[test]
    fn binaries_are_found_beside_this_one_or_named() {
        // The test runs from target/PROFILE/deps: its profile dir is target/PROFILE.
        let dir = profile_dir().unwrap();
        assert!(dir.join("deps").is_dir(), "{dir:?}");
        let err = example("hako-no-such-example", "cargo build --example x").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("is not built") && msg.contains("cargo build --example x"),
            "{msg}"
        );
    }
}
