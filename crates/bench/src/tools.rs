//! The programs a benchmark runs beside hako (crun, nginx, wrk, busybox, php…): checked
//! before anything starts, so a missing one fails at once with the package that brings it.
//! Installing them is `cargo xtask bench`'s job (xtask/src/setup.rs), not this binary's.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// Fails unless every `(command, Debian package)` is in `PATH`, naming the missing packages.
pub fn require(wanted: &[(&str, &str)]) -> anyhow::Result<()> {
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(cmd, _)| find_in_path(cmd).is_none())
        .map(|(_, pkg)| *pkg)
        .collect();
    if !missing.is_empty() {
        bail!(
            "missing programs: install {} (apt-get install {0}), or run the benchmark through \
             cargo xtask, which installs them",
            missing.join(" ")
        );
    }
    Ok(())
}

/// The first executable file named `cmd` in `PATH`.
fn find_in_path(cmd: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(cmd))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_missing_packages() {
        require(&[("sh", "dash")]).unwrap();
        let err = require(&[("sh", "dash"), ("hako-no-such-tool", "hako-pkg")]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("install hako-pkg"), "{msg}");
        assert!(!msg.contains("dash"), "{msg}");
    }
}
