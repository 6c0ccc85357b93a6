//! Instance logs on this node: one capped file per instance under the app's logs dir, the
//! newest few kept after their instances stop. The (empty) logs of the warm pool's parked
//! containers are passed as `parked`: they are neither pruned nor shown.

use std::path::{Path, PathBuf};

pub use hako_runtime::log::tail;

/// Deletes all but the newest `keep` log files (and their rotated parts) in `dir`, leaving
/// those of `parked` containers alone.
pub fn prune(dir: &Path, keep: usize, parked: &[PathBuf]) {
    let mut files = log_files(dir, parked);
    if files.len() <= keep {
        return;
    }
    let excess = files.len() - keep;
    for (path, _) in files.drain(..excess) {
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(hako_runtime::log::rotated(&path));
    }
}

/// The newest logs' ends, oldest first, at most `max` bytes in all (`parked` containers'
/// left out).
pub fn recent(dir: &Path, max: usize, parked: &[PathBuf]) -> String {
    let mut parts = Vec::new();
    let mut left = max;
    for (path, _) in log_files(dir, parked).into_iter().rev() {
        if left == 0 {
            break;
        }
        let t = tail(&path, left);
        left = left.saturating_sub(t.len());
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        parts.push(format!("==> {name} <==\n{t}"));
    }
    parts.reverse();
    parts.join("\n")
}

/// `*.log` files in `dir` but `parked`, oldest first.
fn log_files(dir: &Path, parked: &[PathBuf]) -> Vec<(PathBuf, std::time::SystemTime)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .filter(|e| !parked.contains(&e.path()))
        .filter_map(|e| Some((e.path(), e.metadata().ok()?.modified().ok()?)))
        .collect();
    v.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..5 {
            let p = d.path().join(format!("a-{i}.log"));
            std::fs::write(&p, format!("line {i}\n")).unwrap();
            let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000 + i);
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        // a-0 belongs to a parked container: kept, not counted, not shown.
        let parked = [d.path().join("a-0.log")];
        prune(d.path(), 2, &parked);
        let r = recent(d.path(), 1000, &parked);
        assert_eq!(r, "==> a-3 <==\nline 3\n\n==> a-4 <==\nline 4\n");
        assert!(d.path().join("a-0.log").exists());
        assert!(!d.path().join("a-1.log").exists());
        prune(d.path(), 2, &[]);
        assert!(!d.path().join("a-0.log").exists());
    }
}
