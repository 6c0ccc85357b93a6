//! Unpacking rootfs tarballs (plain or gzip-compressed) into a staging dir,
//! refusing anything that could write outside it or smuggle in special files.
//!
//! Refused, with the entry named: absolute paths; any `..` component; entries
//! written through a symlink extracted earlier; relative symlinks whose target
//! climbs out of the image root; hard links whose target is absolute, has `..`,
//! goes through a symlink, or is not an earlier non-directory entry; character
//! and block devices, fifos; unknown entry types; more entries or more file
//! bytes than [`ImportLimits`] allow (checked from each entry's header before its data is
//! read, so decompression stops at the bound). Absolute symlink targets are allowed: they
//! resolve inside the container's root. Modes (including setuid/setgid),
//! owners and mtimes are preserved; extended attributes are not unpacked (an
//! overlayfs lower layer must not carry attacker-chosen `trusted.overlay.*`).
//! The caller deletes the staging dir on any error.
//!
//! The layers of an OCI or Docker image are unpacked one over the other into one tree
//! ([`Tree`]) with the same checks, their whiteouts applied ([`Whiteouts::Apply`]).

pub(crate) mod paths;
mod whiteout;

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::os::unix::fs::{PermissionsExt, lchown};
use std::path::{Path, PathBuf};

use filetime::FileTime;
use tar::EntryType;

use paths::PathProblem;

/// Limits on an import (a tarball or a directory), so a hostile one can't fill the disk or
/// exhaust memory. Entries count files, directories, symlinks and hard links; bytes count
/// regular-file data (a hard link adds none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportLimits {
    /// Most entries accepted (default 2,000,000).
    pub max_entries: u64,
    /// Most bytes of regular-file data accepted (default 64 GiB).
    pub max_bytes: u64,
}

impl Default for ImportLimits {
    fn default() -> Self {
        Self {
            max_entries: 2_000_000,
            max_bytes: 64 << 30,
        }
    }
}

/// Why a tarball was refused or could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// An entry path starting with `/`.
    #[error(
        "archive entry {entry:?} has an absolute path: make the tarball from inside the root filesystem (tar -C ROOTFS -cf IMAGE.tar .)"
    )]
    AbsolutePath {
        /// The entry's path.
        entry: String,
    },
    /// An entry path with a `..` component.
    #[error(
        "archive entry {entry:?} contains a '..' component: refusing to unpack outside the image"
    )]
    ParentDir {
        /// The entry's path.
        entry: String,
    },
    /// An entry below a symlink that an earlier entry created.
    #[error(
        "archive entry {entry:?} would be written through the symlink {link:?} extracted earlier: refusing the tarball"
    )]
    ThroughSymlink {
        /// The entry's path.
        entry: String,
        /// The symlink on its way.
        link: String,
    },
    /// A relative symlink pointing above the image root.
    #[error("symlink {entry:?} -> {target:?} points outside the image root: refusing the tarball")]
    SymlinkEscapes {
        /// The link's path.
        entry: String,
        /// Its target.
        target: String,
    },
    /// A hard link to something that is not an earlier file of the archive.
    #[error("hard link {entry:?} -> {target:?} is refused: {reason}")]
    HardLink {
        /// The link's path.
        entry: String,
        /// Its target as written in the archive.
        target: String,
        /// What is wrong with the target.
        reason: &'static str,
    },
    /// A device node, fifo or other special file.
    #[error(
        "archive entry {entry:?} is a {kind}: images may not contain device nodes or fifos (hako mounts its own /dev); leave dev/ out of the tarball"
    )]
    SpecialFile {
        /// The entry's path.
        entry: String,
        /// What it is.
        kind: &'static str,
    },
    /// An entry type this importer doesn't know.
    #[error("archive entry {entry:?} has unknown type {byte:#04x}: refusing the tarball")]
    UnknownType {
        /// The entry's path.
        entry: String,
        /// The raw type flag.
        byte: u8,
    },
    /// Over [`ImportLimits::max_entries`].
    #[error(
        "the archive has more than {limit} entries: refusing it (raise the limit if it is genuine)"
    )]
    TooManyEntries {
        /// The limit.
        limit: u64,
    },
    /// Over [`ImportLimits::max_bytes`].
    #[error(
        "the archive holds more than {limit} bytes of file data: refusing it (raise the limit if it is genuine)"
    )]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The archive itself is unreadable (truncated, corrupt, bad gzip).
    #[error("cannot read the archive ({source}): is it a complete tar or tar.gz file?")]
    Read {
        /// The underlying error.
        source: io::Error,
    },
    /// A whiteout entry of an image layer that names no file it could delete.
    #[error("image layer entry {entry:?} is not a valid whiteout: refusing the image")]
    Whiteout {
        /// The entry's path.
        entry: String,
    },
    /// Writing an entry failed.
    #[error("cannot unpack archive entry {entry:?}: {source}")]
    Write {
        /// The entry's path.
        entry: String,
        /// The underlying error.
        source: io::Error,
    },
}

/// Archive formats recognised by content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// A plain tar archive (`ustar` magic at offset 257).
    Tar,
    /// gzip (magic `1f 8b`), assumed to hold a tar archive.
    Gzip,
}

/// Recognises a tarball by its first bytes; the error says what it looks like.
pub(crate) fn sniff(head: &[u8]) -> Result<Format, String> {
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Format::Gzip)
    } else if head.len() >= 262 && &head[257..262] == b"ustar" {
        Ok(Format::Tar)
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Err("it is xz-compressed: decompress it first (xz -d) or use a .tar.gz".into())
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Err("it is zstd-compressed: decompress it first (zstd -d) or use a .tar.gz".into())
    } else if head.starts_with(b"BZh") {
        Err("it is bzip2-compressed: decompress it first (bunzip2) or use a .tar.gz".into())
    } else {
        Err("it is neither a directory, a tar archive nor a gzip-compressed tar archive".into())
    }
}

/// What an extracted path is, as far as later entries are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File,
    Symlink,
}

/// Unpacks the tar stream `reader` into `dest` (created, must not exist).
pub(crate) fn unpack_tar(
    reader: impl Read,
    dest: &Path,
    limits: &ImportLimits,
) -> Result<(), UnpackError> {
    let mut tree = Tree::new(dest, limits)?;
    tree.apply(reader, Whiteouts::Keep)?;
    tree.finish()
}

/// Whether `.wh.` entries are files of the image or an image layer's deletions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Whiteouts {
    /// A plain root filesystem tarball: `.wh.` names are ordinary files.
    Keep,
    /// A layer of an OCI or Docker image: `.wh.NAME` deletes `NAME` of the layers below and
    /// `.wh..wh..opq` empties its directory of what the layers below put there.
    Apply,
}

/// A root filesystem being unpacked from one tarball or several layers, lowest first. What
/// is known about each extracted path carries from layer to layer, so that no layer writes
/// through a symlink an earlier one made; the limits count all layers together.
pub(crate) struct Tree<'a> {
    dest: &'a Path,
    limits: &'a ImportLimits,
    kinds: HashMap<PathBuf, Kind>,
    dir_times: Vec<(PathBuf, FileTime)>,
    root_header: Option<tar::Header>,
    count: u64,
    bytes: u64,
}

impl<'a> Tree<'a> {
    /// Creates `dest` (which must not exist) for the tree.
    pub(crate) fn new(dest: &'a Path, limits: &'a ImportLimits) -> Result<Tree<'a>, UnpackError> {
        std::fs::create_dir(dest).map_err(write_err("."))?;
        std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o755))
            .map_err(write_err("."))?;
        Ok(Tree {
            dest,
            limits,
            kinds: HashMap::new(),
            dir_times: Vec::new(),
            root_header: None,
            count: 0,
            bytes: 0,
        })
    }

    /// Unpacks one tar stream over what the tree holds.
    pub(crate) fn apply(
        &mut self,
        reader: impl Read,
        whiteouts: Whiteouts,
    ) -> Result<(), UnpackError> {
        let dest = self.dest;
        let mut archive = tar::Archive::new(reader);
        archive.set_preserve_permissions(true);
        archive.set_preserve_ownerships(true);
        archive.set_preserve_mtime(true);
        archive.set_unpack_xattrs(false);
        archive.set_overwrite(true);
        // Paths this stream wrote: a layer's whiteouts hide only what the layers below made.
        let mut this_layer: HashSet<PathBuf> = HashSet::new();

        for entry in archive
            .entries()
            .map_err(|source| UnpackError::Read { source })?
        {
            let mut entry = entry.map_err(|source| UnpackError::Read { source })?;
            self.count += 1;
            if self.count > self.limits.max_entries {
                return Err(UnpackError::TooManyEntries {
                    limit: self.limits.max_entries,
                });
            }
            let raw = entry
                .path()
                .map_err(|source| UnpackError::Read { source })?
                .into_owned();
            let shown = raw.display().to_string();
            let kind = match entry.header().entry_type() {
                EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => Kind::File,
                EntryType::Directory => Kind::Dir,
                EntryType::Symlink => Kind::Symlink,
                EntryType::Link => Kind::File, // refined below from the target
                EntryType::Char => return Err(special(shown, "character device")),
                EntryType::Block => return Err(special(shown, "block device")),
                EntryType::Fifo => return Err(special(shown, "fifo")),
                EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink => continue,
                other => {
                    return Err(UnpackError::UnknownType {
                        entry: shown,
                        byte: other.as_byte(),
                    });
                }
            };
            let rel = paths::normalize(&raw).map_err(|p| match p {
                PathProblem::Absolute => UnpackError::AbsolutePath {
                    entry: shown.clone(),
                },
                PathProblem::ParentDir => UnpackError::ParentDir {
                    entry: shown.clone(),
                },
            })?;
            if rel.as_os_str().is_empty() {
                if kind == Kind::Dir {
                    self.root_header = Some(entry.header().clone());
                    continue;
                }
                return Err(UnpackError::Write {
                    entry: shown,
                    source: io::Error::other("only a directory may stand for the image root"),
                });
            }
            if let Some(link) =
                paths::ancestors(&rel).find(|a| self.kinds.get(a) == Some(&Kind::Symlink))
            {
                return Err(UnpackError::ThroughSymlink {
                    entry: shown,
                    link: link.display().to_string(),
                });
            }
            if whiteouts == Whiteouts::Apply
                && let Some(w) = whiteout::Whiteout::of(&rel, &shown)?
            {
                w.apply(dest, &mut self.kinds, &this_layer)?;
                continue;
            }
            let dst = dest.join(&rel);
            // A later entry replaces an earlier symlink at the same path; remove it
            // first so that nothing (chmod, chown) is applied through it. A layer's entry
            // also replaces a lower layer's entry of another kind (a file over a directory).
            match self.kinds.get(&rel) {
                Some(Kind::Symlink) => {
                    std::fs::remove_file(&dst).map_err(write_err(&shown))?;
                    self.kinds.remove(&rel);
                }
                Some(Kind::Dir) if whiteouts == Whiteouts::Apply && kind != Kind::Dir => {
                    whiteout::remove(dest, &rel, &mut self.kinds).map_err(write_err(&shown))?;
                }
                Some(Kind::File) if whiteouts == Whiteouts::Apply && kind == Kind::Dir => {
                    whiteout::remove(dest, &rel, &mut self.kinds).map_err(write_err(&shown))?;
                }
                _ => {}
            }

            let kind = match entry.header().entry_type() {
                EntryType::Link => hard_link(&entry, &rel, &shown, dest, &self.kinds)?,
                EntryType::Symlink => {
                    let target = link_target(&entry, &shown)?;
                    if paths::symlink_escapes(&rel, &target) {
                        return Err(UnpackError::SymlinkEscapes {
                            entry: shown,
                            target: target.display().to_string(),
                        });
                    }
                    unpack_one(&mut entry, dest, &shown)?;
                    Kind::Symlink
                }
                _ => {
                    if kind == Kind::File {
                        // The entry's own size (for a sparse file, as written out: holes included).
                        self.bytes = self
                            .bytes
                            .saturating_add(entry.size().max(entry.header().size().unwrap_or(0)));
                        if self.bytes > self.limits.max_bytes {
                            return Err(UnpackError::TooLarge {
                                limit: self.limits.max_bytes,
                            });
                        }
                    }
                    unpack_one(&mut entry, dest, &shown)?;
                    if let (Kind::Dir, Ok(mtime)) = (kind, entry.header().mtime()) {
                        self.dir_times
                            .push((dst, FileTime::from_unix_time(mtime as i64, 0)));
                    }
                    kind
                }
            };
            if whiteouts == Whiteouts::Apply {
                this_layer.insert(rel.clone());
            }
            self.kinds.insert(rel, kind);
        }
        Ok(())
    }

    /// Sets directory times (creating children changed them) and the root's mode and owner.
    pub(crate) fn finish(self) -> Result<(), UnpackError> {
        let dest = self.dest;
        // Deepest first; a directory a later layer removed is gone and skipped.
        for (dir, mtime) in self.dir_times.iter().rev() {
            match filetime::set_symlink_file_times(dir, *mtime, *mtime) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                r => r.map_err(write_err(
                    &dir.strip_prefix(dest).unwrap_or(dir).display().to_string(),
                ))?,
            }
        }
        if let Some(h) = self.root_header {
            apply_root_header(&h, dest).map_err(write_err("."))?;
        }
        Ok(())
    }
}

fn write_err(entry: &str) -> impl FnOnce(io::Error) -> UnpackError {
    let entry = entry.to_owned();
    move |source| UnpackError::Write { entry, source }
}

fn special(entry: String, kind: &'static str) -> UnpackError {
    UnpackError::SpecialFile { entry, kind }
}

fn link_target<R: Read>(entry: &tar::Entry<'_, R>, shown: &str) -> Result<PathBuf, UnpackError> {
    match entry.link_name() {
        Ok(Some(t)) if !t.as_os_str().is_empty() => Ok(t.into_owned()),
        Ok(_) => Err(UnpackError::Write {
            entry: shown.to_owned(),
            source: io::Error::other("link without a target"),
        }),
        Err(source) => Err(UnpackError::Read { source }),
    }
}

fn unpack_one<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    dest: &Path,
    shown: &str,
) -> Result<(), UnpackError> {
    match entry.unpack_in(dest) {
        Ok(true) => Ok(()),
        Ok(false) => Err(UnpackError::ParentDir {
            entry: shown.to_owned(),
        }),
        Err(source) => Err(UnpackError::Write {
            entry: shown.to_owned(),
            source,
        }),
    }
}

/// Makes a hard link entry after checking its target; returns the target's kind.
fn hard_link<R: Read>(
    entry: &tar::Entry<'_, R>,
    rel: &Path,
    shown: &str,
    dest: &Path,
    kinds: &HashMap<PathBuf, Kind>,
) -> Result<Kind, UnpackError> {
    let raw_target = link_target(entry, shown)?;
    let refuse = |reason| UnpackError::HardLink {
        entry: shown.to_owned(),
        target: raw_target.display().to_string(),
        reason,
    };
    let target = paths::normalize(&raw_target).map_err(|p| match p {
        PathProblem::Absolute => refuse("its target is an absolute path"),
        PathProblem::ParentDir => refuse("its target contains '..'"),
    })?;
    if paths::ancestors(&target).any(|a| kinds.get(&a) == Some(&Kind::Symlink)) {
        return Err(refuse("its target lies under a symlink"));
    }
    let kind = match kinds.get(&target) {
        None => return Err(refuse("its target is not an earlier entry of the archive")),
        Some(Kind::Dir) => return Err(refuse("its target is a directory")),
        Some(k) => *k,
    };
    let dst = dest.join(rel);
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent).map_err(|source| UnpackError::Write {
            entry: shown.to_owned(),
            source,
        })?;
    }
    match std::fs::symlink_metadata(&dst) {
        Ok(m) if !m.is_dir() => std::fs::remove_file(&dst),
        _ => Ok(()),
    }
    .and_then(|()| std::fs::hard_link(dest.join(&target), &dst))
    .map_err(|source| UnpackError::Write {
        entry: shown.to_owned(),
        source,
    })?;
    Ok(kind)
}

/// Gives the image root the mode, owner and mtime of the archive's `./` entry.
fn apply_root_header(h: &tar::Header, dest: &Path) -> io::Result<()> {
    if let (Ok(uid), Ok(gid)) = (h.uid(), h.gid()) {
        let uid = u32::try_from(uid).map_err(io::Error::other)?;
        let gid = u32::try_from(gid).map_err(io::Error::other)?;
        lchown(dest, Some(uid), Some(gid))?;
    }
    if let Ok(mode) = h.mode() {
        std::fs::set_permissions(dest, std::fs::Permissions::from_mode(mode & 0o7777))?;
    }
    if let Ok(mtime) = h.mtime() {
        let t = FileTime::from_unix_time(mtime as i64, 0);
        filetime::set_file_times(dest, t, t)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_recognises_formats_by_content() {
        assert_eq!(sniff(&[0x1f, 0x8b, 8, 0]), Ok(Format::Gzip));
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(sniff(&tar), Ok(Format::Tar));
        assert!(
            sniff(&[0xfd, b'7', b'z', b'X', b'Z', 0])
                .unwrap_err()
                .contains("xz")
        );
        assert!(sniff(b"hello world").unwrap_err().contains("neither"));
        assert!(sniff(&[]).is_err());
    }
}
