//! A container's stdout and stderr, copied from a pipe into a size-capped log file.
//!
//! When the file passes its cap it is renamed to `<file>.1` (replacing the previous one) and a
//! new file starts, so a container never holds more than twice its cap on disk. The copy runs
//! as a tokio task per container: no thread per container.

use std::io::{Read, Seek, SeekFrom};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;

/// Copies everything from `pipe` into `path` until the writers are gone.
pub(crate) async fn pump(pipe: OwnedFd, path: PathBuf, max_bytes: u64) {
    if let Err(e) = pump_inner(pipe, &path, max_bytes).await {
        tracing::warn!(log = %path.display(), error = %e, "container log copy stopped");
    }
}

async fn pump_inner(pipe: OwnedFd, path: &Path, max_bytes: u64) -> std::io::Result<()> {
    crate::sys::set_nonblocking(std::os::fd::AsRawFd::as_raw_fd(&pipe))?;
    let mut rx = tokio::net::unix::pipe::Receiver::from_owned_fd(pipe)?;
    let mut file = open_append(path).await?;
    let mut size = file.metadata().await?.len();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = rx.read(&mut buf).await?;
        if n == 0 {
            file.flush().await?;
            return Ok(());
        }
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            if size >= max_bytes {
                file.flush().await?;
                drop(file);
                tokio::fs::rename(path, rotated(path)).await?;
                file = open_append(path).await?;
                size = 0;
            }
            let take = rest.len().min((max_bytes - size) as usize);
            file.write_all(&rest[..take]).await?;
            size += take as u64;
            rest = &rest[take..];
        }
    }
}

async fn open_append(path: &Path) -> std::io::Result<tokio::fs::File> {
    tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
}

/// `<file>.1`, where the previous part of the log goes.
pub fn rotated(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".1");
    PathBuf::from(s)
}

/// The last `max` bytes of a container's log (across the rotation), as text.
pub fn tail(path: &Path, max: usize) -> String {
    let mut out = Vec::new();
    let cur = read_tail(path, max);
    if cur.len() < max {
        out.extend(read_tail(&rotated(path), max - cur.len()));
    }
    out.extend(cur);
    String::from_utf8_lossy(&out).into_owned()
}

fn read_tail(path: &Path, max: usize) -> Vec<u8> {
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(max as u64);
    let mut v = Vec::new();
    if f.seek(SeekFrom::Start(start)).is_ok() {
        let _ = f.take(max as u64).read_to_end(&mut v);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[tokio::test]
    async fn caps_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let (r, w) = crate::sys::pipe().unwrap();
        let task = tokio::spawn(pump(r, path.clone(), 1024));
        for i in 0..100 {
            let line = format!("line {i:04} ........................................\n");
            crate::sys::write_all(w.as_raw_fd(), line.as_bytes()).unwrap();
        }
        drop(w);
        task.await.unwrap();
        let cur = std::fs::metadata(&path).unwrap().len();
        let old = std::fs::metadata(rotated(&path)).unwrap().len();
        assert!(cur <= 1024 && old <= 1024, "cur {cur} old {old}");
        let t = tail(&path, 200);
        assert!(
            t.ends_with("line 0099 ........................................\n"),
            "{t}"
        );
        assert!(!tail(&path, 1 << 20).contains("line 0000"));
    }
}
