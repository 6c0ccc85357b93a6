//! Advisory locks (flock) that serialise writers of one store, across processes.
//!
//! `<root>/.lock` guards version numbering, renames into place and removals.
//! Each staging directory is itself flocked by the process filling it, so a
//! later [`super::ImageStore::open`] can tell abandoned ones (their owner died)
//! from ones still being filled and delete only the former.

use std::fs::File;
use std::io;
use std::path::Path;

use rustix::fs::{FlockOperation, flock};

/// An exclusive flock, released when dropped (the file is closed).
#[derive(Debug)]
pub(crate) struct Flock {
    _file: File,
}

impl Flock {
    /// Blocks until `path` (created if missing) is locked exclusively.
    pub(crate) fn exclusive(path: &Path) -> io::Result<Self> {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        flock(&file, FlockOperation::LockExclusive)?;
        Ok(Self { _file: file })
    }

    /// Locks `path` (created if missing) exclusively, or returns `None` at once
    /// if someone else holds it.
    pub(crate) fn exclusive_if_free(path: &Path) -> io::Result<Option<Self>> {
        drop(
            File::options()
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)?,
        );
        Self::try_existing(path)
    }

    /// Locks an existing file or directory exclusively, or returns `None` at once
    /// if another open file description holds a lock on it.
    pub(crate) fn try_existing(path: &Path) -> io::Result<Option<Self>> {
        let file = File::open(path)?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(Self { _file: file })),
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_a_held_path_is_refused_until_release() {
        let dir = tempfile::Builder::new()
            .prefix("hako-lock-")
            .tempdir()
            .unwrap();
        let path = dir.path().join(".lock");
        let held = Flock::exclusive(&path).unwrap();
        assert!(Flock::try_existing(&path).unwrap().is_none());
        // Directories can be locked too (staging dirs are).
        let d = Flock::try_existing(dir.path()).unwrap();
        assert!(d.is_some());
        assert!(Flock::try_existing(dir.path()).unwrap().is_none());
        drop(held);
        assert!(Flock::try_existing(&path).unwrap().is_some());
    }
}
