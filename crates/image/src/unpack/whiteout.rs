//! Whiteouts of image layers (OCI image spec, "Representing Changes"): an entry
//! `DIR/.wh.NAME` deletes `DIR/NAME` of the layers below; `DIR/.wh..wh..opq` makes `DIR`
//! opaque, deleting everything the layers below put in it. A whiteout never deletes what
//! its own layer wrote. Entries are checked before (no `..`, nothing under a symlink) by the
//! caller; deletions never follow a symlink.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};

use super::{Kind, UnpackError};

/// The prefix of a whiteout's file name.
const PREFIX: &str = ".wh.";
/// The file name that makes its directory opaque.
const OPAQUE: &str = ".wh..wh..opq";

/// One whiteout entry, read from its (normalized, relative) path.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Whiteout {
    /// Delete this path.
    Delete(PathBuf),
    /// Empty this directory of the layers below.
    Opaque(PathBuf),
    /// AUFS bookkeeping (`.wh..wh.plnk`, …): nothing to do.
    Ignore,
}

impl Whiteout {
    /// The whiteout `rel` stands for, `None` if it is an ordinary entry.
    pub(super) fn of(rel: &Path, shown: &str) -> Result<Option<Whiteout>, UnpackError> {
        let Some(file) = rel.file_name().and_then(|f| f.to_str()) else {
            return Ok(None);
        };
        let Some(name) = file.strip_prefix(PREFIX) else {
            return Ok(None);
        };
        let dir = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        if file == OPAQUE {
            return Ok(Some(Whiteout::Opaque(dir)));
        }
        if name.starts_with(PREFIX) {
            return Ok(Some(Whiteout::Ignore));
        }
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            return Err(UnpackError::Whiteout {
                entry: shown.to_owned(),
            });
        }
        Ok(Some(Whiteout::Delete(dir.join(name))))
    }

    /// Deletes what the whiteout hides under `dest`; `this_layer` holds the paths the
    /// whiteout's own layer wrote (kept).
    pub(super) fn apply(
        self,
        dest: &Path,
        kinds: &mut HashMap<PathBuf, Kind>,
        this_layer: &HashSet<PathBuf>,
    ) -> Result<(), UnpackError> {
        let failed = |path: &Path| {
            let entry = path.display().to_string();
            move |source| UnpackError::Write { entry, source }
        };
        match self {
            Whiteout::Ignore => Ok(()),
            Whiteout::Delete(path) => {
                if this_layer.contains(&path) {
                    return Ok(());
                }
                remove(dest, &path, kinds).map_err(failed(&path))
            }
            Whiteout::Opaque(dir) => {
                // Only a directory (or the root) is made opaque; through a symlink, nothing.
                let is_dir = dir.as_os_str().is_empty() || kinds.get(&dir) == Some(&Kind::Dir);
                if !is_dir {
                    return Ok(());
                }
                let entries = match std::fs::read_dir(dest.join(&dir)) {
                    Ok(e) => e,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                    Err(e) => return Err(failed(&dir)(e)),
                };
                for entry in entries {
                    let entry = entry.map_err(failed(&dir))?;
                    let child = dir.join(entry.file_name());
                    if !this_layer.contains(&child) {
                        remove(dest, &child, kinds).map_err(failed(&child))?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// Removes `rel` under `dest` — a directory with all it holds, a symlink itself (never what
/// it points to) — and forgets what was known about it and below it.
pub(super) fn remove(
    dest: &Path,
    rel: &Path,
    kinds: &mut HashMap<PathBuf, Kind>,
) -> io::Result<()> {
    let path = dest.join(rel);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path)?,
        Ok(_) => std::fs::remove_file(&path)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    kinds.retain(|p, _| !p.starts_with(rel));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whiteout_names() {
        let of = |p: &str| Whiteout::of(Path::new(p), p);
        assert_eq!(of("etc/passwd").unwrap(), None);
        assert_eq!(
            of("etc/.wh.passwd").unwrap(),
            Some(Whiteout::Delete("etc/passwd".into()))
        );
        assert_eq!(of(".wh.tmp").unwrap(), Some(Whiteout::Delete("tmp".into())));
        assert_eq!(
            of("var/cache/.wh..wh..opq").unwrap(),
            Some(Whiteout::Opaque("var/cache".into()))
        );
        assert_eq!(
            of(".wh..wh..opq").unwrap(),
            Some(Whiteout::Opaque("".into()))
        );
        assert_eq!(of("a/.wh..wh.plnk").unwrap(), Some(Whiteout::Ignore));
        assert!(of("a/.wh...").is_err(), "a whiteout of '..' escapes");
        assert!(of("a/.wh..").is_err());
        assert!(of("a/.wh.").is_err());
    }
}
