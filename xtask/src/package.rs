//! `cargo xtask package`: the Debian package of hako, made by cargo-deb from a release build
//! into `target/debian/`: `hako_<version>-1_<arch>.deb` (the binary, stripped; hako.service;
//! /etc/hako/hako.toml; the maintainer scripts) and `hako-dbgsym_<version>-1_<arch>.ddeb`
//! (its debug symbols, for backtraces with file and line). What goes in, and why each
//! dependency is a Depends, a Recommends or a Suggests: `[package.metadata.deb]` in
//! `crates/hako/Cargo.toml`, and `crates/hako/debian/`. cargo-deb is installed with
//! `cargo install cargo-deb --locked` when it is missing.
//!
//! The package's test (`crates/hako/tests/package`, in `cargo xtask test`) installs it in a
//! fresh Debian root and starts it as its unit says.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::test::run;

pub const USAGE: &str =
    "cargo xtask package   the Debian package (release build) into target/debian/";

pub fn main(args: &[&str]) -> anyhow::Result<()> {
    if !args.is_empty() {
        bail!("`cargo xtask package` takes no arguments\nusage: {USAGE}");
    }
    ensure_cargo_deb()?;
    let root = crate::workspace_root();
    let out = root.join("target/debian");
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    // Older versions' files would make `apt install ./target/debian/hako_*.deb` ambiguous.
    for old in packages(&out)? {
        std::fs::remove_file(&old).with_context(|| format!("cannot remove {}", old.display()))?;
    }
    run(Command::new("cargo")
        .current_dir(&root)
        .args(["deb", "--package", "hako", "--locked", "--output"])
        .arg(&out))
    .context("cargo deb failed")?;
    let made = packages(&out)?;
    let deb = made
        .iter()
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .context("cargo deb made no .deb")?;
    for p in &made {
        let size = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        println!(
            "{} ({:.1} MiB)",
            p.strip_prefix(&root).unwrap_or(p).display(),
            size as f64 / f64::from(1 << 20)
        );
    }
    println!(
        "install it with: apt install ./{}   (then: systemctl enable --now hako)",
        deb.strip_prefix(&root).unwrap_or(deb).display()
    );
    Ok(())
}

/// hako's packages in `dir`: `hako_*.deb` and `hako-dbgsym_*.ddeb`.
fn packages(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if (name.starts_with("hako_") && name.ends_with(".deb"))
            || (name.starts_with("hako-dbgsym_") && name.ends_with(".ddeb"))
        {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// Installs cargo-deb with cargo if it is missing.
pub fn ensure_cargo_deb() -> anyhow::Result<()> {
    let ok = Command::new("cargo")
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("xtask: installing cargo-deb");
        run(Command::new("cargo").args(["install", "cargo-deb", "--locked"]))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_only_hakos_packages() {
        let t = tempfile::tempdir().unwrap();
        for f in [
            "hako_0.1.0-1_amd64.deb",
            "hako-dbgsym_0.1.0-1_amd64.ddeb",
            "hakoctl_1_amd64.deb",
            "other_1_amd64.deb",
            "hako_notes.txt",
        ] {
            std::fs::write(t.path().join(f), "").unwrap();
        }
        let names: Vec<String> = packages(t.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["hako-dbgsym_0.1.0-1_amd64.ddeb", "hako_0.1.0-1_amd64.deb"]
        );
    }
}
