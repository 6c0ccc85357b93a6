//! Small-file IO on the cgroup filesystem, with errors that name the path.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::Path;

use crate::error::CgroupError;

/// Writes `value` to a cgroup file in one `write` call. With `create`, a missing file is
/// created (used by v2 so it also works on a plain directory tree standing in for cgroupfs).
pub(crate) fn write(path: &Path, value: &str, create: bool) -> Result<(), CgroupError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(create)
        .truncate(create)
        .open(path)
        .map_err(|e| CgroupError::io("open", path, e))?;
    // cgroup files take the whole value in a single write; a short write would be a bug.
    let n = f
        .write(value.as_bytes())
        .map_err(|e| CgroupError::io("write", path, e))?;
    if n != value.len() {
        return Err(CgroupError::io(
            "write",
            path,
            std::io::Error::new(ErrorKind::WriteZero, "short write"),
        ));
    }
    Ok(())
}

/// Reads a small cgroup file.
pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|e| CgroupError::io("read", path, e))
}

/// Reads a small cgroup file, `None` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, CgroupError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CgroupError::io("read", path, e)),
    }
}

/// Creates a directory; `Ok(false)` when it already existed.
pub(crate) fn mkdir(path: &Path) -> Result<bool, CgroupError> {
    match fs::create_dir(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(CgroupError::io("mkdir", path, e)),
    }
}

/// Removes a cgroup directory; a missing one counts as removed. The raw io error is returned
/// so callers can tell EBUSY (processes still inside) from real failures.
pub(crate) fn rmdir(path: &Path) -> std::io::Result<()> {
    match fs::remove_dir(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Names of the subdirectories of `dir` (the child cgroups), sorted; empty when `dir` is missing.
pub(crate) fn subdirs(dir: &Path) -> Result<Vec<String>, CgroupError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(CgroupError::io("list", dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| CgroupError::io("list", dir, e))?;
        let is_dir = entry
            .file_type()
            .map_err(|e| CgroupError::io("stat", entry.path(), e))?
            .is_dir();
        if is_dir && let Some(name) = entry.file_name().to_str() {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_and_list() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("memory.max");
        assert!(
            write(&f, "1", false).is_err(),
            "without create a missing file is an error"
        );
        write(&f, "123456", true).unwrap();
        write(&f, "max", true).unwrap();
        assert_eq!(read(&f).unwrap(), "max", "create also truncates");
        assert_eq!(read_optional(&dir.path().join("nope")).unwrap(), None);
        assert!(mkdir(&dir.path().join("b")).unwrap());
        assert!(mkdir(&dir.path().join("a")).unwrap());
        assert!(!mkdir(&dir.path().join("a")).unwrap());
        assert_eq!(subdirs(dir.path()).unwrap(), vec!["a", "b"]);
        assert!(subdirs(&dir.path().join("missing")).unwrap().is_empty());
    }
}
