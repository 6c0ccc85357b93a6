//! Lexical checks on archive paths and link targets, with no file system access.

use std::path::{Component, Path, PathBuf};

/// Why an archive path is refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PathProblem {
    /// Starts with `/`.
    Absolute,
    /// Has a `..` component.
    ParentDir,
}

/// The path relative to the image root, with `.` components dropped; empty for
/// the root itself. Absolute paths and `..` are refused.
pub(crate) fn normalize(path: &Path) -> Result<PathBuf, PathProblem> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::Prefix(_) => return Err(PathProblem::Absolute),
            Component::ParentDir => return Err(PathProblem::ParentDir),
            Component::CurDir => {}
            Component::Normal(part) => out.push(part),
        }
    }
    Ok(out)
}

/// Whether a relative symlink target, resolved lexically from the directory
/// holding the link at `link` (normalized, relative to the image root), climbs
/// above the image root. Absolute targets never escape: they resolve inside the
/// container's root.
pub(crate) fn symlink_escapes(link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth = link.components().count().saturating_sub(1);
    for c in target.components() {
        match c {
            Component::ParentDir => {
                if depth == 0 {
                    return true;
                }
                depth -= 1;
            }
            Component::Normal(_) => depth += 1,
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    false
}

/// The proper ancestors of a normalized path, shortest first (`a`, `a/b` for `a/b/c`).
pub(crate) fn ancestors(path: &Path) -> impl Iterator<Item = PathBuf> + '_ {
    let n = path.components().count();
    (1..n).map(move |i| path.components().take(i).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_drops_dots_and_refuses_escapes() {
        assert_eq!(
            normalize(Path::new("./etc/./passwd")).unwrap(),
            Path::new("etc/passwd")
        );
        assert_eq!(normalize(Path::new("./")).unwrap(), Path::new(""));
        assert_eq!(
            normalize(Path::new("/etc/passwd")),
            Err(PathProblem::Absolute)
        );
        assert_eq!(
            normalize(Path::new("a/../../b")),
            Err(PathProblem::ParentDir)
        );
        assert_eq!(normalize(Path::new("a/b/..")), Err(PathProblem::ParentDir));
    }

    #[test]
    fn symlink_escape_is_judged_from_the_links_directory() {
        let l = Path::new("usr/lib/x/link");
        assert!(!symlink_escapes(l, Path::new("/etc/alternatives/awk")));
        assert!(!symlink_escapes(l, Path::new("../../../etc/passwd")));
        assert!(symlink_escapes(l, Path::new("../../../../etc/passwd")));
        assert!(!symlink_escapes(Path::new("bin"), Path::new("usr/bin")));
        assert!(symlink_escapes(Path::new("bin"), Path::new("../bin")));
        assert!(!symlink_escapes(Path::new("a/l"), Path::new("x/../../b")));
        assert!(symlink_escapes(Path::new("a/l"), Path::new("x/../../../b")));
    }

    #[test]
    fn ancestors_are_proper_prefixes() {
        let got: Vec<PathBuf> = ancestors(Path::new("a/b/c")).collect();
        assert_eq!(got, vec![PathBuf::from("a"), PathBuf::from("a/b")]);
        assert_eq!(ancestors(Path::new("a")).count(), 0);
    }
}
