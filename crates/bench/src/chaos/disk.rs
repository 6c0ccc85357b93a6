//! The data dir's own filesystem: a tmpfs of a fixed size mounted by the benchmark (source
//! `hako-chaos-<prefix>`), filled to the last byte by a file in it for the full-disk case and
//! freed by removing that file; unmounted when dropped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// A mounted tmpfs.
pub struct Tmpfs {
    dir: PathBuf,
    mounted: bool,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `512m`) at `dir` (created), named after `prefix`.
    pub fn mount(dir: &Path, size: &str, prefix: &str) -> anyhow::Result<Tmpfs> {
        std::fs::create_dir_all(dir)?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755")])
            .arg(format!("hako-chaos-{prefix}"))
            .arg(dir)
            .status()
            .context("cannot run mount")?;
        if !status.success() {
            bail!("mounting a tmpfs at {} failed: {status}", dir.display());
        }
        Ok(Tmpfs {
            dir: dir.to_path_buf(),
            mounted: true,
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn filler(&self) -> PathBuf {
        self.dir.join("hako-chaos-filler")
    }

    /// Writes a file until the filesystem has no byte left (ENOSPC); returns its size.
    pub fn fill(&self) -> anyhow::Result<u64> {
        let mut f = std::fs::File::create(self.filler())?;
        let block = vec![0x5au8; 1 << 20];
        let mut written = 0u64;
        // Whole blocks, then smaller writes down to single bytes: nothing left at all.
        let mut size = block.len();
        while size > 0 {
            match f.write(&block[..size]) {
                Ok(0) => size /= 2,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(28) => size /= 2, // ENOSPC
                Err(e) => return Err(e).context("filling the data dir's filesystem"),
            }
        }
        let _ = f.sync_all();
        Ok(written)
    }

    /// Removes the filler: room again.
    pub fn free(&self) -> anyhow::Result<()> {
        std::fs::remove_file(self.filler()).context("removing the filler")
    }

    /// Unmounts (lazily if something still holds it).
    pub fn unmount(&mut self) {
        if !self.mounted {
            return;
        }
        self.mounted = false;
        let ok = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        self.unmount();
    }
}
