//! Helpers: throw-away stores, tarball builders (including hostile headers
//! that `tar::Header::set_path` would refuse), and leftover checks.

use std::io::Write;
use std::path::{Path, PathBuf};

use hako_image::ImageStore;
use tar::{EntryType, Header};

/// A store in a fresh temp dir; the dir is removed when dropped.
pub struct TestStore {
    pub dir: tempfile::TempDir,
    pub store: ImageStore,
}

impl TestStore {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("hako-image-test-{}-", std::process::id()))
            .tempdir()
            .unwrap();
        let store = ImageStore::open(dir.path().join("images")).unwrap();
        Self { dir, store }
    }

    /// Entries of the store root other than the lock file (and the debian
    /// cache dir, which only holds caches and their locks).
    pub fn leftovers(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.store.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != ".lock")
            .collect();
        names.sort();
        names
    }

    /// A scratch path next to the store (not inside it).
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Builds tar archives entry by entry with raw control over names.
pub struct TarBuilder {
    b: tar::Builder<Vec<u8>>,
}

/// Per-entry metadata for [`TarBuilder`].
#[derive(Clone, Copy)]
pub struct Meta {
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
}

impl Default for Meta {
    fn default() -> Self {
        Self {
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1_600_000_000,
        }
    }
}

impl TarBuilder {
    pub fn new() -> Self {
        Self {
            b: tar::Builder::new(Vec::new()),
        }
    }

    /// Appends an entry whose name bytes are written verbatim (no checks).
    pub fn raw(
        &mut self,
        name: &str,
        kind: EntryType,
        meta: Meta,
        link: Option<&str>,
        data: &[u8],
    ) -> &mut Self {
        let mut h = Header::new_gnu();
        let slot = &mut h.as_old_mut().name;
        assert!(name.len() < slot.len(), "test names must fit the header");
        slot.fill(0);
        slot[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(meta.mode);
        h.set_uid(meta.uid);
        h.set_gid(meta.gid);
        h.set_mtime(meta.mtime);
        h.set_size(data.len() as u64);
        if let Some(l) = link {
            h.set_link_name_literal(l).unwrap();
        }
        if matches!(kind, EntryType::Char | EntryType::Block) {
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
        }
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        let meta = Meta {
            mode,
            ..Meta::default()
        };
        self.raw(name, EntryType::Directory, meta, None, &[])
    }

    pub fn file(&mut self, name: &str, data: &[u8], meta: Meta) -> &mut Self {
        self.raw(name, EntryType::Regular, meta, None, data)
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        let meta = Meta {
            mode: 0o777,
            ..Meta::default()
        };
        self.raw(name, EntryType::Symlink, meta, Some(target), &[])
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(name, EntryType::Link, Meta::default(), Some(target), &[])
    }

    pub fn bytes(&mut self) -> Vec<u8> {
        let b = std::mem::replace(&mut self.b, tar::Builder::new(Vec::new()));
        b.into_inner().unwrap()
    }

    /// Writes the archive to `path`, gzip-compressed if `gzip`.
    pub fn write_to(&mut self, path: &Path, gzip: bool) -> PathBuf {
        let bytes = self.bytes();
        let mut f = std::fs::File::create(path).unwrap();
        if gzip {
            let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
            gz.write_all(&bytes).unwrap();
            gz.finish().unwrap();
        } else {
            f.write_all(&bytes).unwrap();
        }
        path.to_path_buf()
    }
}
