//! The image store: a directory of versioned images, safe for concurrent use by
//! several processes.
//!
//! Layout under the root (e.g. `<data-dir>/images`):
//! ```text
//! .lock                         flock: version numbering, renames, removals
//! .tmp-<random>/                staging dirs (deleted on error; swept when abandoned)
//! .cache/debian/<key>/rootfs    debootstrap builds shared by image versions
//! <name>/.last                  highest version ever given to <name>
//! <name>/<version>/image.json   metadata (see [`Image`])
//! <name>/<version>/rootfs/      the root filesystem (or a host image's skeleton)
//! ```
//! Every new version is built in a staging dir and renamed into place with the
//! store lock held, so readers see either nothing or a complete image, and two
//! writers never get the same version number.

mod lock;
mod staging;

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::NameError;
use crate::copy::CopyError;
use crate::debian::{DebianBuild, DebianError};
use crate::digest::{DigestError, tree_digest};
use crate::host::HostError;
use crate::image::{META_FILE, ROOTFS_DIR};
use crate::unpack::{ImportLimits, UnpackError};
use crate::{Image, ImageKind, Storage};

pub(crate) use lock::Flock;
pub(crate) use staging::Staging;

/// Store lock file name.
const LOCK_FILE: &str = ".lock";
/// Per-name file holding the highest version ever given out.
const LAST_FILE: &str = ".last";

/// Errors of the image store.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The image name is not valid.
    #[error(transparent)]
    Name(#[from] NameError),
    /// No such image or version.
    #[error("image {name}{} not found: see `hako image list`", .version.map(|v| format!(" version {v}")).unwrap_or_default())]
    NotFound {
        /// The name asked for.
        name: String,
        /// The version asked for (`None`: any).
        version: Option<u32>,
    },
    /// A file system operation failed.
    #[error("{what} {}: {source}", .path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// An `image.json` could not be read or written.
    #[error("image metadata {} is unreadable ({source}): remove that version of the image", .path.display())]
    Meta {
        /// The metadata file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The import source is neither a directory nor a (gzip-compressed) tar archive.
    #[error("cannot import {}: {reason}", .path.display())]
    Source {
        /// The source given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A tarball was refused or could not be unpacked.
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    /// A directory could not be copied.
    #[error(transparent)]
    Copy(#[from] CopyError),
    /// A debootstrap build failed.
    #[error(transparent)]
    Debian(#[from] DebianError),
    /// A host image could not be made.
    #[error(transparent)]
    Host(#[from] HostError),
    /// A new version's tree could not be digested.
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// An OCI or Docker image was refused or could not be read.
    #[error(transparent)]
    Oci(#[from] crate::OciError),
}

impl ImageError {
    /// True when an import was refused for holding more than its [`ImportLimits`] allow
    /// (too many entries or too many bytes): the client's fault, answered 413 by the API.
    pub fn is_over_limit(&self) -> bool {
        matches!(
            self,
            ImageError::Unpack(UnpackError::TooLarge { .. } | UnpackError::TooManyEntries { .. })
                | ImageError::Copy(CopyError::TooLarge { .. } | CopyError::TooManyEntries { .. })
                | ImageError::Oci(crate::OciError::Layer {
                    source: UnpackError::TooLarge { .. } | UnpackError::TooManyEntries { .. },
                    ..
                })
        )
    }

    /// True when writing failed because the disk or a quota is full (ENOSPC, EDQUOT): the
    /// node's storage, answered 507 by the API.
    pub fn is_out_of_space(&self) -> bool {
        let os = |e: &io::Error| out_of_space(e);
        match self {
            ImageError::Io { source, .. } => os(source),
            ImageError::Unpack(UnpackError::Write { source, .. }) => os(source),
            ImageError::Copy(CopyError::Io { source, .. }) => os(source),
            ImageError::Oci(crate::OciError::Layer {
                source: UnpackError::Write { source, .. },
                ..
            }) => os(source),
            _ => false,
        }
    }
}

/// ENOSPC or EDQUOT in `e` or in an error it wraps: the tar crate wraps the OS error of a
/// failed entry write in its own error inside an `io::Error`, whose `source()` skips it, so
/// the chain is walked through `get_ref` as well.
fn out_of_space(e: &io::Error) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    // Bounded: error chains are short; a cycle cannot keep us here.
    for _ in 0..16 {
        let Some(err) = current else {
            return false;
        };
        if let Some(io) = err.downcast_ref::<io::Error>() {
            if matches!(io.raw_os_error(), Some(28 | 122)) {
                return true; // ENOSPC, EDQUOT
            }
            if let Some(inner) = io.get_ref() {
                current = Some(inner as &(dyn std::error::Error + 'static));
                continue;
            }
        }
        current = err.source();
    }
    false
}

/// Builds an [`ImageError::Io`] adder for `?`.
pub(crate) fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ImageError {
    let path = path.to_path_buf();
    move |source| ImageError::Io { what, path, source }
}

/// A directory of versioned images.
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
    limits: ImportLimits,
}

/// What a finished staging dir becomes: everything in `image.json` but the
/// name and version, which [`ImageStore::commit`] adds.
pub(crate) struct NewImage {
    pub(crate) kind: ImageKind,
    pub(crate) source: String,
    pub(crate) packages: Vec<String>,
    pub(crate) storage: Storage,
    pub(crate) size_bytes: u64,
    /// One per layer, lowest first.
    pub(crate) digests: Vec<hako_model::Digest>,
    /// An OCI or Docker image's run configuration.
    pub(crate) config: Option<crate::ImageConfig>,
}

impl ImageStore {
    /// Opens (creating if needed) the store at `root`, and deletes staging dirs
    /// that a killed process left behind.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, ImageError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(io_err("cannot create image store", &root))?;
        let root = root
            .canonicalize()
            .map_err(io_err("cannot resolve image store", &root))?;
        let store = Self {
            root,
            limits: ImportLimits::default(),
        };
        let _lock = store.lock()?;
        staging::sweep(&store.root).map_err(io_err("cannot clean staging dirs in", &store.root))?;
        Ok(store)
    }

    /// Replaces the limits applied to imports (tarballs and directories).
    pub fn with_import_limits(mut self, limits: ImportLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Imports `source` as the next version of `name`: a directory (copied
    /// faithfully, never following a symlink out of it) or a tar archive, plain
    /// or gzip-compressed (detected by content, not by file name). Hostile archives are
    /// refused and leave nothing behind. (Code releases are made this way too: a site's
    /// files are never taken for an image layout.)
    pub fn import(&self, name: &str, source: &Path) -> Result<Image, ImageError> {
        self.import_from(name, source, false, &|_| {})
    }

    /// [`ImageStore::import`] that also takes what container tools write: an OCI image
    /// layout (directory or tar) or a `docker save` tarball, its layers applied in order
    /// with their whiteouts, every blob verified against its digest, its run configuration
    /// kept ([`Image::config`]); telling `progress` what it is doing (each layer).
    pub fn import_image(
        &self,
        name: &str,
        source: &Path,
        progress: crate::Progress<'_>,
    ) -> Result<Image, ImageError> {
        self.import_from(name, source, true, progress)
    }

    fn import_from(
        &self,
        name: &str,
        source: &Path,
        images: bool,
        progress: crate::Progress<'_>,
    ) -> Result<Image, ImageError> {
        crate::validate_name(name)?;
        let meta =
            std::fs::metadata(source).map_err(io_err("cannot read import source", source))?;
        let staging = self.staging()?;
        let rootfs = staging.path().join(ROOTFS_DIR);
        let mut config = None;
        if images && meta.is_dir() && crate::oci::is_image_dir(source) {
            progress("reading the image layout");
            config = Some(crate::oci::import_dir(
                source,
                &rootfs,
                &self.limits,
                progress,
            )?);
        } else if meta.is_dir() {
            crate::copy::copy_tree(source, &rootfs, &self.limits)?;
        } else if meta.is_file() {
            if images && crate::oci::is_image_archive(self.open_archive(source)?)? {
                // Unpacked with every check first; its blobs are then read from inside it.
                progress("unpacking the image archive");
                let unpacked = staging.path().join("archive");
                crate::unpack::unpack_tar(self.open_archive(source)?, &unpacked, &self.limits)?;
                config = Some(crate::oci::import_dir(
                    &unpacked,
                    &rootfs,
                    &self.limits,
                    progress,
                )?);
                std::fs::remove_dir_all(&unpacked)
                    .map_err(io_err("cannot remove the unpacked archive", &unpacked))?;
            } else {
                let reader = self.open_archive(source)?;
                crate::unpack::unpack_tar(reader, &rootfs, &self.limits)?;
            }
        } else {
            return Err(ImageError::Source {
                path: source.to_path_buf(),
                reason: "it is neither a directory nor a regular file".into(),
            });
        }
        progress("computing the digest");
        let size_bytes =
            crate::usage::disk_usage(&rootfs).map_err(io_err("cannot measure", &rootfs))?;
        let digest = tree_digest(&rootfs)?;
        let abs = std::path::absolute(source).unwrap_or_else(|_| source.to_path_buf());
        self.commit(
            staging,
            name,
            NewImage {
                kind: ImageKind::Rootfs,
                source: abs.display().to_string(),
                packages: Vec::new(),
                storage: Storage::Local,
                size_bytes,
                digests: vec![digest],
                config,
            },
        )
    }

    /// Builds the next version of `name` with debootstrap (`--variant=minbase`,
    /// plus `packages`). Builds are cached by (suite, mirror, arch, variant,
    /// package set): a rebuild of the same set only writes a new `image.json`
    /// that refers to the cached root filesystem.
    pub fn build_debian(
        &self,
        name: &str,
        packages: &[String],
        opts: &DebianBuild,
    ) -> Result<Image, ImageError> {
        crate::validate_name(name)?;
        if let Some(add) = &opts.add
            && !add.is_dir()
        {
            return Err(ImageError::Source {
                path: add.clone(),
                reason: "files to add must be a directory (its tree lies over the image's /)"
                    .into(),
            });
        }
        let built = crate::debian::ensure_cached(self, packages, opts)?;
        let staging = self.staging()?;
        let mut added_bytes = 0;
        let mut digests = vec![built.digest.clone()];
        if let Some(add) = &opts.add {
            let layer = staging.path().join(ROOTFS_DIR);
            crate::copy::copy_tree(add, &layer, &ImportLimits::default())?;
            added_bytes =
                crate::usage::disk_usage(&layer).map_err(io_err("cannot measure", &layer))?;
            digests.push(tree_digest(&layer)?);
        }
        // `built` keeps the cache entry locked until the new version refers to it.
        let image = self.commit(
            staging,
            name,
            NewImage {
                kind: ImageKind::Rootfs,
                source: built.source.clone(),
                packages: built.packages.clone(),
                storage: Storage::DebianCache {
                    key: built.key.clone(),
                    added: opts.add.is_some(),
                },
                size_bytes: built.size_bytes + added_bytes,
                digests,
                config: None,
            },
        );
        drop(built);
        image
    }

    /// Makes the next version of `name` a host image. Instant: it writes a
    /// tiny skeleton (the host's top-level `bin`/`lib*`/`sbin` symlinks, and
    /// empty [`SKELETON_DIRS`](crate::SKELETON_DIRS) and mount points) and
    /// records read-only binds of the host's `/usr` (plus any of those top-level
    /// dirs that are real dirs) and of the [`ETC_BINDS`](crate::ETC_BINDS)
    /// entries the host has. Never shadow/gshadow/ssh keys; `hosts`,
    /// `hostname` and `resolv.conf` are the runtime's. Containers see host
    /// package updates as they cycle.
    pub fn host(&self, name: &str) -> Result<Image, ImageError> {
        crate::validate_name(name)?;
        let staging = self.staging()?;
        let skeleton = staging.path().join(ROOTFS_DIR);
        let binds = crate::host::build_skeleton(Path::new("/"), &skeleton)?;
        let digest = tree_digest(&skeleton)?;
        self.commit(
            staging,
            name,
            NewImage {
                kind: ImageKind::Host,
                source: "host".into(),
                packages: Vec::new(),
                storage: Storage::Host { binds },
                size_bytes: 0,
                digests: vec![digest],
                config: None,
            },
        )
    }

    /// Every version of every image, sorted by name then version.
    pub fn list(&self) -> Result<Vec<Image>, ImageError> {
        let mut images = Vec::new();
        for name in self.names()? {
            for version in self.versions(&name)? {
                match self.read_meta(&name, version) {
                    Ok(image) => images.push(image),
                    // Removed by another process since `versions` looked.
                    Err(ImageError::Io { source, .. })
                        if source.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(images)
    }

    /// One version of `name`; `None` means the latest.
    pub fn get(&self, name: &str, version: Option<u32>) -> Result<Image, ImageError> {
        crate::validate_name(name)?;
        let versions = self.versions(name)?;
        let found = match version {
            None => versions.last().copied(),
            Some(v) => versions.contains(&v).then_some(v),
        };
        let v = found.ok_or_else(|| ImageError::NotFound {
            name: name.to_owned(),
            version,
        })?;
        self.read_meta(name, v)
    }

    /// Removes one version of `name`, or with `None` every version and the name
    /// itself (its numbering then starts again at 1). A debootstrap cache is
    /// deleted once no image refers to it and no build is using it. Running
    /// containers on a removed image keep their mounts; don't start new ones.
    pub fn remove(&self, name: &str, version: Option<u32>) -> Result<(), ImageError> {
        crate::validate_name(name)?;
        let lock = self.lock()?;
        let versions = match version {
            Some(v) => vec![v],
            None => self.versions(name)?,
        };
        if versions.is_empty() || !self.root.join(name).join(versions[0].to_string()).is_dir() {
            return Err(ImageError::NotFound {
                name: name.to_owned(),
                version,
            });
        }
        let mut victims = Vec::new();
        for v in versions {
            match self.read_meta(name, v) {
                Ok(image) => victims.push(image),
                // A broken image.json must not make a version unremovable.
                Err(ImageError::Meta { path, source }) => {
                    tracing::warn!(path = %path.display(), %source, "removing image with unreadable metadata");
                }
                Err(e) => return Err(e),
            }
        }
        // Move the doomed dirs into a staging dir under the lock (atomic for
        // readers), delete them after releasing it.
        let trash = Staging::create(&self.root)
            .map_err(io_err("cannot create staging dir in", &self.root))?;
        let target = match version {
            Some(v) => self.root.join(name).join(v.to_string()),
            None => self.root.join(name),
        };
        std::fs::rename(&target, trash.path().join("victim"))
            .map_err(io_err("cannot remove image", &target))?;
        let unused_keys = crate::debian::unused_cache_keys(self, &victims)?;
        let mut doomed_caches = Vec::new();
        for key in unused_keys {
            if let Some(moved) = crate::debian::take_cache(self, &key, trash.path())? {
                doomed_caches.push(moved);
            }
        }
        drop(lock);
        tracing::info!(
            name,
            ?version,
            caches = doomed_caches.len(),
            "removed image"
        );
        drop(trash);
        Ok(())
    }

    // ---- internals shared with the builders ----

    /// Takes the store lock.
    pub(crate) fn lock(&self) -> Result<Flock, ImageError> {
        let path = self.root.join(LOCK_FILE);
        Flock::exclusive(&path).map_err(io_err("cannot lock image store", &path))
    }

    /// A new staging dir (created with the store lock held, see [`staging`]).
    pub(crate) fn staging(&self) -> Result<Staging, ImageError> {
        let _lock = self.lock()?;
        Staging::create(&self.root).map_err(io_err("cannot create staging dir in", &self.root))
    }

    /// Gives the finished staging dir the next version of `name` and renames it
    /// into place.
    pub(crate) fn commit(
        &self,
        staging: Staging,
        name: &str,
        new: NewImage,
    ) -> Result<Image, ImageError> {
        let created_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let _lock = self.lock()?;
        let name_dir = self.root.join(name);
        std::fs::create_dir_all(&name_dir).map_err(io_err("cannot create", &name_dir))?;
        let last_path = name_dir.join(LAST_FILE);
        let last = std::fs::read_to_string(&last_path)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(0);
        let newest = self.versions(name)?.last().copied().unwrap_or(0);
        let version = last.max(newest) + 1;
        let image = Image {
            name: name.to_owned(),
            version,
            kind: new.kind,
            created_unix,
            size_bytes: new.size_bytes,
            source: new.source,
            packages: new.packages,
            storage: new.storage,
            digests: new.digests,
            config: new.config,
            dir: name_dir.join(version.to_string()),
            store_root: self.root.clone(),
        };
        let meta_path = staging.path().join(META_FILE);
        let json = serde_json::to_vec_pretty(&image).map_err(|source| ImageError::Meta {
            path: meta_path.clone(),
            source,
        })?;
        std::fs::write(&meta_path, json).map_err(io_err("cannot write", &meta_path))?;
        std::fs::rename(staging.path(), &image.dir)
            .map_err(io_err("cannot rename into", &image.dir))?;
        staging.keep();
        let tmp_last = name_dir.join(".last.tmp");
        std::fs::write(&tmp_last, format!("{version}\n"))
            .and_then(|()| std::fs::rename(&tmp_last, &last_path))
            .map_err(io_err("cannot record version in", &last_path))?;
        tracing::info!(name, version, source = %image.source, "created image");
        Ok(image)
    }

    /// Image names (directories not starting with `.`), sorted.
    fn names(&self) -> Result<Vec<String>, ImageError> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.root).map_err(io_err("cannot read", &self.root))? {
            let entry = entry.map_err(io_err("cannot read", &self.root))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if crate::validate_name(&name).is_ok() && entry.path().is_dir() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Versions of `name` present on disk, ascending (empty if none).
    fn versions(&self, name: &str) -> Result<Vec<u32>, ImageError> {
        let dir = self.root.join(name);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("cannot read", &dir)(e)),
        };
        let mut versions = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err("cannot read", &dir))?;
            let file_name = entry.file_name();
            let Some(v) = file_name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if v.to_string().as_str() == file_name && entry.path().join(META_FILE).is_file() {
                versions.push(v);
            }
        }
        versions.sort_unstable();
        Ok(versions)
    }

    /// Reads `<root>/<name>/<version>/image.json`.
    fn read_meta(&self, name: &str, version: u32) -> Result<Image, ImageError> {
        let dir = self.root.join(name).join(version.to_string());
        let path = dir.join(META_FILE);
        let bytes = std::fs::read(&path).map_err(io_err("cannot read", &path))?;
        let mut image: Image =
            serde_json::from_slice(&bytes).map_err(|source| ImageError::Meta { path, source })?;
        image.dir = dir;
        image.store_root = self.root.clone();
        Ok(image)
    }

    /// Opens a tar archive, gunzipping it if it starts with the gzip magic.
    fn open_archive(&self, path: &Path) -> Result<Box<dyn Read>, ImageError> {
        let mut file = std::fs::File::open(path).map_err(io_err("cannot open", path))?;
        let mut head = [0u8; 512];
        let mut len = 0;
        while len < head.len() {
            match file.read(&mut head[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err("cannot read", path)(e)),
            }
        }
        let format = crate::unpack::sniff(&head[..len]).map_err(|reason| ImageError::Source {
            path: path.to_path_buf(),
            reason,
        })?;
        let file = std::fs::File::open(path).map_err(io_err("cannot open", path))?;
        let reader = io::BufReader::with_capacity(1 << 16, file);
        Ok(match format {
            crate::unpack::Format::Tar => Box::new(reader),
            crate::unpack::Format::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        })
    }
}

#[cfg(test)]
mod out_of_space_tests {
    use super::*;

    /// Like the tar crate's error: a message, the OS error as its source.
    #[derive(Debug)]
    struct Wrapped(io::Error);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("failed to unpack `big`")
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_full_disk_is_found_inside_a_wrapped_error() {
        assert!(out_of_space(&io::Error::from_raw_os_error(28)));
        assert!(out_of_space(&io::Error::from_raw_os_error(122)));
        let wrapped = io::Error::other(Wrapped(io::Error::from_raw_os_error(28)));
        assert!(out_of_space(&wrapped));
        let other = io::Error::other(Wrapped(io::Error::from_raw_os_error(13)));
        assert!(!out_of_space(&other));
        assert!(!out_of_space(&io::Error::other("no os error")));
    }
}
