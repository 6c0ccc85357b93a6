//! What an app keeps in its `/tmp`, `/run` and `/dev/shm`, carried from a dumped container to
//! the restored ones.
//!
//! CRIU would archive those tmpfs mounts with `tar` and unpack them at every restore (a
//! `tar` and a `gzip` process each, ~11 ms per mount on a 2-core VM). hako instead marks them
//! external, copies their content into the checkpoint while the dumped processes are stopped,
//! and at restore copies it into the new container's scratch tmpfs, whose directories CRIU
//! binds in their place. Regular files, directories and symlinks are carried with their mode
//! and owner; sockets and fifos are not (CRIU re-creates bound sockets itself); mount points
//! inside (the database socket directory under `/run`) are carried as empty directories.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Copies the tree at `from` into `to` (created), without crossing into other mounts.
pub(crate) fn copy_tree(from: &Path, to: &Path) -> std::io::Result<u64> {
    let top = std::fs::symlink_metadata(from)?;
    std::fs::create_dir_all(to)?;
    set_meta(to, &top)?;
    let mut bytes = 0;
    copy_dir(from, to, top.dev(), &mut bytes)?;
    Ok(bytes)
}

fn copy_dir(from: &Path, to: &Path, dev: u64, bytes: &mut u64) -> std::io::Result<()> {
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let m = std::fs::symlink_metadata(&src)?;
        let t = m.file_type();
        if t.is_dir() {
            std::fs::create_dir(&dst)?;
            set_meta(&dst, &m)?;
            if m.dev() == dev {
                copy_dir(&src, &dst, dev, bytes)?;
            }
        } else if t.is_file() {
            *bytes += std::fs::copy(&src, &dst)?;
            set_meta(&dst, &m)?;
        } else if t.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
            std::os::unix::fs::lchown(&dst, Some(m.uid()), Some(m.gid()))?;
        }
    }
    Ok(())
}

fn set_meta(p: &Path, m: &std::fs::Metadata) -> std::io::Result<()> {
    std::os::unix::fs::chown(p, Some(m.uid()), Some(m.gid()))?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m.mode() & 0o7777))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_files_dirs_links_with_modes() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::create_dir(a.path().join("d")).unwrap();
        std::fs::write(a.path().join("d/f"), "hello").unwrap();
        std::fs::set_permissions(a.path().join("d/f"), PermissionsExt::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink("d/f", a.path().join("l")).unwrap();
        let _sock = std::os::unix::net::UnixListener::bind(a.path().join("s")).unwrap();
        let to = b.path().join("t");
        assert_eq!(copy_tree(a.path(), &to).unwrap(), 5);
        assert_eq!(std::fs::read_to_string(to.join("l")).unwrap(), "hello");
        let mode = std::fs::metadata(to.join("d/f")).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!to.join("s").exists(), "sockets are left to CRIU");
    }
}
