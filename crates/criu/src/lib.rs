//! CRIU (Checkpoint/Restore In Userspace) for hako: one pinned build, installed from Debian
//! without a chroot, and the command that runs it.
//!
//! Debian bookworm's CRIU 3.17 fails on current kernels (vDSO) and trixie's 4.1 cannot dump
//! TCP sockets on kernels ≥ 6.16; CRIU 4.2.1 from Debian forky works. [`install`] fetches it
//! and the libraries it links against (forky's own glibc among them) with a private apt
//! configuration and unpacks them into `<dir>/4.2.1` (about 20 MiB); [`Criu::command`] runs
//! it through that directory's own `ld-linux-x86-64.so.2 --library-path …`, so nothing on the
//! host changes. Who installs: `hako criu install` and the setup of `cargo xtask demo|test`.
//!
//! ```no_run
//! let criu = hako_criu::Criu::open(&hako_criu::default_dir())?;
//! let out = criu.command().arg("--version").output()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod install;
mod log;

use std::path::{Path, PathBuf};
use std::process::Command;

pub use install::{APT_SOURCE, Installed, PACKAGES, install};
pub use log::errors as log_errors;

/// The CRIU version hako installs and runs.
pub const VERSION: &str = "4.2.1";

/// Where CRIU is installed when nothing says otherwise: `HAKO_CRIU_DIR`, else the default
/// data dir's `criu` (`/var/lib/hako/criu`).
pub fn default_dir() -> PathBuf {
    std::env::var_os("HAKO_CRIU_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/hako/criu"))
}

/// Why CRIU cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CriuError {
    #[error(
        "CRIU {VERSION} is not installed in {}: run `hako criu install` (instances start cold until then)",
        .0.display()
    )]
    Missing(PathBuf),
    #[error("cannot run CRIU from {}: {source}", path.display())]
    Run {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("CRIU does not work on this host: {0}")]
    Broken(String),
    #[error("installing CRIU failed at {step}: {detail}")]
    Install { step: String, detail: String },
}

/// An installed CRIU.
#[derive(Debug, Clone)]
pub struct Criu {
    /// `<dir>/<VERSION>`: the unpacked packages (`usr/sbin/criu`, `usr/lib/x86_64-linux-gnu`).
    root: PathBuf,
}

impl Criu {
    /// The CRIU installed under `dir` (as [`install`] lays it out); fails with
    /// [`CriuError::Missing`] when it is not there.
    pub fn open(dir: &Path) -> Result<Criu, CriuError> {
        let c = Criu {
            root: dir.join(VERSION),
        };
        if c.binary().is_file() && c.loader().is_file() && c.root.join(install::DONE).is_file() {
            Ok(c)
        } else {
            Err(CriuError::Missing(dir.to_path_buf()))
        }
    }

    /// The unpacked installation.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn lib_dir(&self) -> PathBuf {
        self.root.join("usr/lib/x86_64-linux-gnu")
    }

    fn loader(&self) -> PathBuf {
        self.lib_dir().join("ld-linux-x86-64.so.2")
    }

    fn binary(&self) -> PathBuf {
        self.root.join("usr/sbin/criu")
    }

    /// A command that runs this CRIU: its own loader with its own libraries. Add the action
    /// (`dump`, `restore`, `check`) and options.
    pub fn command(&self) -> Command {
        let mut c = Command::new(self.loader());
        c.arg("--library-path")
            .arg(self.lib_dir())
            .arg(self.binary());
        c
    }

    /// `criu --version` works (the libraries load): the installation is usable.
    pub fn version(&self) -> Result<String, CriuError> {
        let out = self
            .command()
            .arg("--version")
            .output()
            .map_err(|source| CriuError::Run {
                path: self.root.clone(),
                source,
            })?;
        let text = String::from_utf8_lossy(&out.stdout);
        match text.lines().find_map(|l| l.strip_prefix("Version: ")) {
            Some(v) if out.status.success() => Ok(v.trim().to_string()),
            _ => Err(CriuError::Broken(format!(
                "`criu --version` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))),
        }
    }

    /// Bytes the installation takes on disk.
    pub fn disk_bytes(&self) -> u64 {
        install::dir_bytes(&self.root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_installation_says_how_to_install() {
        let dir = tempfile::tempdir().unwrap();
        let e = Criu::open(dir.path()).unwrap_err();
        assert!(matches!(e, CriuError::Missing(_)));
        assert!(e.to_string().contains("hako criu install"), "{e}");
    }

    #[test]
    fn the_command_runs_criu_through_its_own_loader() {
        let c = Criu {
            root: "/x/4.2.1".into(),
        };
        let cmd = c.command();
        assert_eq!(
            cmd.get_program(),
            "/x/4.2.1/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
        );
        let args: Vec<_> = cmd.get_args().collect();
        assert_eq!(
            args,
            [
                "--library-path",
                "/x/4.2.1/usr/lib/x86_64-linux-gnu",
                "/x/4.2.1/usr/sbin/criu"
            ]
        );
    }
}
