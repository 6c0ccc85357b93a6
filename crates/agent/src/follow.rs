//! Following an app's logs on this node as its instances write them: the end of its recent
//! logs first, then whatever any of its instances — also ones that start later — adds to its
//! log file. A [`LogFollower`] remembers how far it read each file; each [`LogFollower::poll`]
//! reads what was added since, in the order the files were last written, and says which
//! instance each piece comes from. A log that passed its cap and was rotated (`<file>.1`) is
//! read to its end before the new file. Text is cut at whole UTF-8 characters, so a
//! character written in two parts arrives whole.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// One piece of a followed log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogPiece {
    /// The text that follows comes from this instance.
    Instance(String),
    /// Text an instance wrote.
    Text(String),
}

/// Most bytes read from one file in one poll (the rest comes with the next).
const MAX_READ: u64 = 1 << 20;

/// How far an app's log files have been read.
#[derive(Debug)]
pub struct LogFollower {
    dir: PathBuf,
    /// Bytes of each file already read.
    offsets: HashMap<PathBuf, u64>,
    /// The inode each file had when last read: another one means it was rotated.
    inodes: HashMap<PathBuf, u64>,
    /// The instance whose text was sent last.
    last: Option<String>,
}

impl LogFollower {
    /// Starts following the logs in `dir` (`parked` containers' logs left out): returns the
    /// follower and the last `tail_bytes` of the recent logs (oldest first).
    pub fn start(
        dir: &Path,
        tail_bytes: usize,
        parked: &[PathBuf],
    ) -> (LogFollower, Vec<LogPiece>) {
        let mut f = LogFollower {
            dir: dir.to_path_buf(),
            offsets: HashMap::new(),
            inodes: HashMap::new(),
            last: None,
        };
        let files = log_files(dir, parked);
        // The newest files' ends, up to tail_bytes in all.
        let mut left = tail_bytes as u64;
        let mut starts = HashMap::new();
        for (path, len, _) in files.iter().rev() {
            let take = left.min(*len);
            starts.insert(path.clone(), len - take);
            left -= take;
        }
        let mut out = Vec::new();
        for (path, len, ino) in &files {
            let from = starts.get(path).copied().unwrap_or(*len);
            f.offsets.insert(path.clone(), from);
            f.inodes.insert(path.clone(), *ino);
            f.read_new(path, &mut out);
        }
        (f, out)
    }

    /// What was written since the last call (`parked` containers' logs left out).
    pub fn poll(&mut self, parked: &[PathBuf]) -> Vec<LogPiece> {
        let files = log_files(&self.dir, parked);
        let mut out = Vec::new();
        for (path, len, ino) in &files {
            let offset = self.offsets.get(path).copied().unwrap_or(0);
            let moved = self
                .inodes
                .insert(path.clone(), *ino)
                .is_some_and(|i| i != *ino);
            if moved || *len < offset {
                // Rotated: the rest of what was read is in `<file>.1`; the file starts anew.
                let rotated = hako_runtime::log::rotated(path);
                self.offsets.insert(rotated.clone(), offset);
                self.read_new(&rotated, &mut out);
                self.offsets.remove(&rotated);
                self.offsets.insert(path.clone(), 0);
            } else {
                self.offsets.entry(path.clone()).or_insert(0);
            }
            self.read_new(path, &mut out);
        }
        // Files pruned meanwhile are forgotten.
        self.offsets
            .retain(|p, _| files.iter().any(|(f, _, _)| f == p));
        self.inodes
            .retain(|p, _| files.iter().any(|(f, _, _)| f == p));
        out
    }

    /// Reads `path` from its offset to its end (whole UTF-8 characters), into `out`.
    fn read_new(&mut self, path: &Path, out: &mut Vec<LogPiece>) {
        let offset = self.offsets.get(path).copied().unwrap_or(0);
        let Some(bytes) = read_from(path, offset) else {
            return;
        };
        let whole = match std::str::from_utf8(&bytes) {
            Ok(_) => bytes.len(),
            // Invalid in the middle: pass it on (lossily); cut only a character begun at the end.
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => bytes.len(),
        };
        if whole == 0 {
            return;
        }
        self.offsets
            .insert(path.to_path_buf(), offset + whole as u64);
        let instance = instance_of(path);
        if self.last.as_deref() != Some(instance.as_str()) {
            out.push(LogPiece::Instance(instance.clone()));
            self.last = Some(instance);
        }
        out.push(LogPiece::Text(
            String::from_utf8_lossy(&bytes[..whole]).into_owned(),
        ));
    }
}

/// The instance a log file belongs to: its name without `.log` (and `.1`).
fn instance_of(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = name.strip_suffix(".1").unwrap_or(&name);
    name.strip_suffix(".log").unwrap_or(name).to_string()
}

/// Bytes of `path` from `offset` on (at most [`MAX_READ`]); `None` if there are none.
fn read_from(path: &Path, offset: u64) -> Option<Vec<u8>> {
    let mut f = std::fs::File::open(path).ok()?;
    f.seek(SeekFrom::Start(offset)).ok()?;
    let mut v = Vec::new();
    f.take(MAX_READ).read_to_end(&mut v).ok()?;
    (!v.is_empty()).then_some(v)
}

/// `*.log` files in `dir` but `parked`, with their lengths and inodes, least recently
/// written first.
fn log_files(dir: &Path, parked: &[PathBuf]) -> Vec<(PathBuf, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .filter(|e| !parked.contains(&e.path()))
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((e.path(), m.len(), m.ino(), m.modified().ok()?))
        })
        .collect();
    v.sort_by(|a, b| a.3.cmp(&b.3).then(a.0.cmp(&b.0)));
    v.into_iter()
        .map(|(p, len, ino, _)| (p, len, ino))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(path: &Path, text: &[u8]) {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
            .write_all(text)
            .unwrap();
    }

    fn texts(pieces: &[LogPiece]) -> String {
        pieces
            .iter()
            .map(|p| match p {
                LogPiece::Instance(i) => format!("[{i}]"),
                LogPiece::Text(t) => t.clone(),
            })
            .collect()
    }

    #[test]
    fn the_tail_then_new_text_across_instances_and_rotation() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("blog-1.log");
        append(&a, b"old line\nlast line\n");
        let (mut f, tail) = LogFollower::start(d.path(), 10, &[]);
        assert_eq!(texts(&tail), "[blog-1]last line\n");
        assert!(f.poll(&[]).is_empty(), "nothing new");

        append(&a, b"new\n");
        assert_eq!(
            texts(&f.poll(&[])),
            "new\n",
            "same instance: no header again"
        );

        // A second instance starts (its file is new); a parked container's log is left out.
        let b = d.path().join("blog-2.log");
        let parked = d.path().join("blog-3.log");
        append(&parked, b"");
        append(&b, b"second instance\n");
        assert_eq!(
            texts(&f.poll(std::slice::from_ref(&parked))),
            "[blog-2]second instance\n"
        );

        // The first one's log is rotated after more text: the rest of the old part comes first.
        append(&a, b"before rotation\n");
        std::fs::rename(&a, hako_runtime::log::rotated(&a)).unwrap();
        append(&a, b"after\n");
        assert_eq!(texts(&f.poll(&[])), "[blog-1]before rotation\nafter\n");

        // Rotated again, and the new file grew past the old offset before the poll: the
        // inode tells.
        append(&a, b"tail of the second part\n");
        std::fs::rename(&a, hako_runtime::log::rotated(&a)).unwrap();
        append(&a, &[b'x'; 100]);
        let got = texts(&f.poll(&[]));
        assert_eq!(got, format!("tail of the second part\n{}", "x".repeat(100)));
    }

    #[test]
    fn a_character_written_in_two_parts_arrives_whole() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("x-1.log");
        append(&a, b"");
        let (mut f, _) = LogFollower::start(d.path(), 100, &[]);
        let snow = "☃".as_bytes();
        append(&a, &snow[..1]);
        assert!(f.poll(&[]).is_empty(), "half a character waits");
        append(&a, &snow[1..]);
        append(&a, b"\n");
        assert_eq!(texts(&f.poll(&[])), "[x-1]☃\n");
    }
}
