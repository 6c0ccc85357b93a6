//! `hako criu install|status`: the CRIU that lets instances start from checkpoints.
//!
//! `install` fetches the pinned CRIU 4.2.1 and its libraries from Debian forky with a private
//! apt configuration and unpacks them under `<data-dir>/criu` (or `HAKO_CRIU_DIR`): nothing
//! else on the host changes. Without it hako works as before, every start cold.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{Exit, Failure, OrExit, out};

#[derive(Debug, clap::Args)]
pub struct CriuArgs {
    #[command(subcommand)]
    pub command: CriuCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum CriuCommand {
    /// Install the pinned CRIU from Debian (about 20 MiB; needs root and the Debian mirror).
    Install,
    /// Whether CRIU is installed here and runs.
    Status,
}

/// Where CRIU lives for this data dir: `HAKO_CRIU_DIR`, else `<data-dir>/criu`.
fn dir(data_dir: &Path) -> PathBuf {
    std::env::var_os("HAKO_CRIU_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| data_dir.join("criu"))
}

pub fn execute(args: CriuArgs, data_dir: &Path) -> Result<u8, Failure> {
    let dir = dir(data_dir);
    match args.command {
        CriuCommand::Install => {
            let done = hako_criu::install(&dir)
                .context("cannot install CRIU")
                .or_exit(Exit::Failure)?;
            if done.already {
                out(&format!(
                    "CRIU {} is already installed in {}\n",
                    hako_criu::VERSION,
                    done.criu.root().display()
                ));
            } else {
                out(&format!(
                    "installed CRIU {} in {} ({:.1} MiB, {} packages{}, {:.1} s)\n",
                    hako_criu::VERSION,
                    done.criu.root().display(),
                    done.bytes as f64 / (1 << 20) as f64,
                    done.packages.len(),
                    if done.pinned {
                        ", all at their pinned versions"
                    } else {
                        "; some libraries newer than pinned"
                    },
                    done.seconds
                ));
            }
            Ok(0)
        }
        CriuCommand::Status => {
            let criu = hako_criu::Criu::open(&dir).or_exit(Exit::Failure)?;
            let version = criu.version().or_exit(Exit::Failure)?;
            out(&format!(
                "CRIU {version} in {} ({:.1} MiB)\n",
                criu.root().display(),
                criu.disk_bytes() as f64 / (1 << 20) as f64
            ));
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_without_an_installation_says_how_to_install() {
        let d = tempfile::tempdir().unwrap();
        let f = execute(
            CriuArgs {
                command: CriuCommand::Status,
            },
            d.path(),
        );
        let failure = f.unwrap_err();
        assert_eq!(failure.exit.code(), 1);
        let text = failure.lines().join(" ");
        assert!(text.contains("hako criu install"), "{text}");
    }
}
