//! Importing a directory: a faithful copy that never follows a symlink out of
//! the source.
//!
//! The walk holds a file descriptor for each directory and opens every child
//! relative to it with `O_NOFOLLOW`, so a symlink anywhere in the source (even
//! one swapped in while copying) is copied as a symlink and never traversed.
//! Kept: file contents, directories, symlinks (as symlinks), modes including
//! setuid/setgid/sticky, owners, mtimes, and hard links within the source.
//! Not kept: extended attributes (file capabilities, ACLs). Device nodes,
//! fifos and sockets directly under the top-level `dev/` are skipped (hako
//! mounts its own /dev); anywhere else they are refused.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, lchown};
use std::path::{Path, PathBuf};

use filetime::FileTime;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};

use crate::unpack::ImportLimits;

/// Why a directory could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A device node, fifo or socket outside `dev/`.
    #[error(
        "{} in the source is a {kind}: images may not contain device nodes, fifos or sockets outside dev/; remove it from the source",
        .path.display()
    )]
    SpecialFile {
        /// Path relative to the source root.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// A file was replaced while it was being copied.
    #[error("{} changed while it was being copied: stop writing to the source and retry", .path.display())]
    Changed {
        /// Path relative to the source root.
        path: PathBuf,
    },
    /// Over [`ImportLimits::max_entries`].
    #[error(
        "the directory has more than {limit} entries: refusing it (raise the limit if it is genuine)"
    )]
    TooManyEntries {
        /// The limit.
        limit: u64,
    },
    /// Over [`ImportLimits::max_bytes`].
    #[error(
        "the directory holds more than {limit} bytes of file data: refusing it (raise the limit if it is genuine)"
    )]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// Reading the source or writing the copy failed.
    #[error("cannot copy {}: {source}", .path.display())]
    Io {
        /// Path relative to the source root.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// Copies the directory `src` to `dst` (created; must not exist), within `limits`: contents,
/// modes, owners, times and hard links, symlinks as symlinks (never followed), no extended
/// attributes; device nodes, fifos and sockets are skipped under `dev/` and refused elsewhere.
/// What the importer uses, and what a node uses to copy a release or layer into its cache.
pub fn copy_tree(src: &Path, dst: &Path, limits: &ImportLimits) -> Result<(), CopyError> {
    let root = PathBuf::new();
    let fd = rustix::fs::open(
        src,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io_at(&root))?;
    let st = rustix::fs::fstat(&fd).map_err(io_at(&root))?;
    std::fs::create_dir(dst).map_err(io_at(&root))?;
    let mut copier = Copier {
        dst_root: dst.to_path_buf(),
        links: HashMap::new(),
        limits: *limits,
        entries: 0,
        bytes: 0,
    };
    copier.copy_dir(fd, &root)?;
    set_owner_mode(dst, &st).map_err(io_at(&root))?;
    set_times(dst, &st, false).map_err(io_at(&root))?;
    Ok(())
}

struct Copier {
    dst_root: PathBuf,
    /// Source inode → first copied path (relative), to recreate hard links.
    links: HashMap<(u64, u64), PathBuf>,
    limits: ImportLimits,
    entries: u64,
    bytes: u64,
}

impl Copier {
    /// Copies the children of the directory `dir` (already created at `rel`).
    fn copy_dir(&mut self, dir: OwnedFd, rel: &Path) -> Result<(), CopyError> {
        let mut names = Vec::new();
        for entry in rustix::fs::Dir::read_from(&dir).map_err(io_at(rel))? {
            let entry = entry.map_err(io_at(rel))?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(OsStr::from_bytes(name).to_os_string());
            }
        }
        names.sort();
        for name in names {
            self.entries += 1;
            if self.entries > self.limits.max_entries {
                return Err(CopyError::TooManyEntries {
                    limit: self.limits.max_entries,
                });
            }
            let child = rel.join(&name);
            let st = rustix::fs::statat(&dir, &*name, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(io_at(&child))?;
            let out = self.dst_root.join(&child);
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => {
                    let fd = rustix::fs::openat(
                        &dir,
                        &*name,
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(io_at(&child))?;
                    same_inode(&fd, &st, &child)?;
                    std::fs::create_dir(&out).map_err(io_at(&child))?;
                    self.copy_dir(fd, &child)?;
                    set_owner_mode(&out, &st).map_err(io_at(&child))?;
                    set_times(&out, &st, false).map_err(io_at(&child))?;
                }
                FileType::RegularFile => self.copy_file(&dir, &name, &st, &child, &out)?,
                FileType::Symlink => {
                    let target =
                        rustix::fs::readlinkat(&dir, &*name, Vec::new()).map_err(io_at(&child))?;
                    std::os::unix::fs::symlink(OsStr::from_bytes(target.to_bytes()), &out)
                        .map_err(io_at(&child))?;
                    lchown(&out, Some(st.st_uid), Some(st.st_gid)).map_err(io_at(&child))?;
                    set_times(&out, &st, true).map_err(io_at(&child))?;
                }
                other => {
                    let kind = match other {
                        FileType::CharacterDevice => "character device",
                        FileType::BlockDevice => "block device",
                        FileType::Fifo => "fifo",
                        FileType::Socket => "socket",
                        _ => "special file",
                    };
                    if rel.starts_with("dev") {
                        tracing::debug!(path = %child.display(), kind, "skipped in dev/");
                        continue;
                    }
                    return Err(CopyError::SpecialFile { path: child, kind });
                }
            }
        }
        Ok(())
    }

    fn copy_file(
        &mut self,
        dir: &OwnedFd,
        name: &OsStr,
        st: &Stat,
        child: &Path,
        out: &Path,
    ) -> Result<(), CopyError> {
        let key = (st.st_dev, st.st_ino);
        if st.st_nlink > 1 {
            if let Some(first) = self.links.get(&key) {
                return std::fs::hard_link(self.dst_root.join(first), out).map_err(io_at(child));
            }
            self.links.insert(key, child.to_path_buf());
        }
        self.bytes = self.bytes.saturating_add(st.st_size as u64);
        if self.bytes > self.limits.max_bytes {
            return Err(CopyError::TooLarge {
                limit: self.limits.max_bytes,
            });
        }
        let fd = rustix::fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .map_err(io_at(child))?;
        same_inode(&fd, st, child)?;
        let mut input = File::from(fd);
        let mut output = File::options()
            .write(true)
            .create_new(true)
            .open(out)
            .map_err(io_at(child))?;
        io::copy(&mut input, &mut output).map_err(io_at(child))?;
        // Owner before mode: chown clears setuid/setgid bits.
        output
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io_at(child))?;
        std::os::unix::fs::fchown(&output, Some(st.st_uid), Some(st.st_gid))
            .map_err(io_at(child))?;
        output
            .set_permissions(std::fs::Permissions::from_mode(st.st_mode & 0o7777))
            .map_err(io_at(child))?;
        let mtime = FileTime::from_unix_time(st.st_mtime, st.st_mtime_nsec as u32);
        filetime::set_file_handle_times(&output, Some(mtime), Some(mtime)).map_err(io_at(child))
    }
}

/// Checks that what was opened is what was stat'ed (no swap in between).
fn same_inode(fd: &OwnedFd, st: &Stat, child: &Path) -> Result<(), CopyError> {
    let now = rustix::fs::fstat(fd).map_err(io_at(child))?;
    if now.st_ino != st.st_ino || now.st_dev != st.st_dev {
        return Err(CopyError::Changed {
            path: child.to_path_buf(),
        });
    }
    Ok(())
}

fn set_owner_mode(path: &Path, st: &Stat) -> io::Result<()> {
    lchown(path, Some(st.st_uid), Some(st.st_gid))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(st.st_mode & 0o7777))
}

fn set_times(path: &Path, st: &Stat, symlink: bool) -> io::Result<()> {
    let mtime = FileTime::from_unix_time(st.st_mtime, st.st_mtime_nsec as u32);
    if symlink {
        filetime::set_symlink_file_times(path, mtime, mtime)
    } else {
        filetime::set_file_times(path, mtime, mtime)
    }
}

fn io_at<E: Into<io::Error>>(path: &Path) -> impl FnOnce(E) -> CopyError {
    let path = path.to_path_buf();
    move |e| CopyError::Io {
        path,
        source: e.into(),
    }
}
