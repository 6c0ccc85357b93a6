//! Packing a directory into a tar.gz for upload: what the client sends when a directory path
//! would name the server's files instead of the caller's (a tenant's token, a remote API).

use std::io;
use std::path::Path;

/// Packs `dir`'s contents (not `dir` itself) into a temporary `.tar.gz`, removed when the
/// returned file is dropped. Symbolic links are packed as links, never followed: the server
/// refuses those that leave the release, as it does for any archive.
pub fn tar_gz(dir: &Path) -> io::Result<tempfile::NamedTempFile> {
    if !dir.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} is not a directory", dir.display()),
        ));
    }
    let file = tempfile::Builder::new()
        .prefix(".hako-upload-")
        .suffix(".tar.gz")
        .tempfile()?;
    let gz = flate2::write::GzEncoder::new(file.reopen()?, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Deterministic);
    tar.append_dir_all(".", dir)?;
    tar.into_inner()?.finish()?.sync_all()?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_files_and_links_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("index.html"), "hi").unwrap();
        std::fs::write(dir.path().join("sub/a.txt"), "a").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
        let packed = tar_gz(dir.path()).unwrap();
        let gz = flate2::read::GzDecoder::new(std::fs::File::open(packed.path()).unwrap());
        let mut seen: Vec<(String, bool)> = tar::Archive::new(gz)
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let path = e.path().unwrap().display().to_string();
                (path, e.header().entry_type().is_symlink())
            })
            .collect();
        seen.sort();
        assert!(seen.contains(&("index.html".into(), false)), "{seen:?}");
        assert!(seen.contains(&("sub/a.txt".into(), false)), "{seen:?}");
        assert!(
            seen.contains(&("link".into(), true)),
            "not followed: {seen:?}"
        );
        assert!(tar_gz(&dir.path().join("index.html")).is_err());
    }
}
