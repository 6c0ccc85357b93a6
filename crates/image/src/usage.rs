//! How many bytes of file data a root filesystem holds (recorded once, at creation).

use std::collections::HashSet;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Sum of the sizes of regular files and symlinks under `root`, each inode
/// counted once (hard links), never following symlinks.
pub fn disk_usage(root: &Path) -> io::Result<u64> {
    let mut seen = HashSet::new();
    let mut total = 0u64;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let meta = entry.metadata()?; // lstat: DirEntry::metadata doesn't follow
            if meta.is_dir() {
                stack.push(entry.path());
            } else if (meta.is_file() || meta.is_symlink()) && seen.insert((meta.dev(), meta.ino()))
            {
                total = total.saturating_add(meta.len());
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_hard_links_once_and_does_not_follow_symlinks() {
        let dir = tempfile::Builder::new()
            .prefix("hako-usage-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/a"), vec![0u8; 1000]).unwrap();
        std::fs::hard_link(d.join("sub/a"), d.join("b")).unwrap();
        std::fs::write(d.join("c"), b"12345").unwrap();
        // A link to a big host dir must count as its own few bytes only.
        std::os::unix::fs::symlink("/usr", d.join("usr")).unwrap();
        assert_eq!(disk_usage(d).unwrap(), 1000 + 5 + 4);
    }
}
