//! One image version as stored on disk (`<root>/<name>/<version>/image.json`) and
//! what the container runtime needs to mount it ([`Rootfs`]).

use std::io;
use std::path::{Path, PathBuf};

use hako_model::{Digest, ImageRecord};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

/// What kind of root filesystem an image is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageKind {
    /// A complete root filesystem (imported or built by debootstrap).
    Rootfs,
    /// The host's own system directories, bound read-only over a small skeleton.
    Host,
}

/// Where an image's files live; recorded in `image.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Storage {
    /// `rootfs/` inside the version directory.
    Local,
    /// A cached debootstrap build shared by every version built from the same
    /// package set: `<root>/.cache/debian/<key>/rootfs`.
    DebianCache {
        /// The cache key (hash of suite, mirror, arch, variant and packages).
        key: String,
        /// Whether files added at build time (`hako image build --add DIR`) lie over the
        /// cached system as a top layer in `rootfs/` of the version directory.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        added: bool,
    },
    /// A skeleton in `rootfs/` of the version directory plus host bind mounts.
    Host {
        /// Read-only binds from the host, in mount order.
        binds: Vec<HostBind>,
    },
}

/// One read-only bind mount of a host path into a host image's container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostBind {
    /// Absolute path on the host (may be a symlink: mount(2) follows it).
    pub source: PathBuf,
    /// Absolute path inside the container; the skeleton holds its mount point.
    pub target: PathBuf,
    /// Whether the source is a directory (the mount point is an empty dir) or
    /// a file (the mount point is an empty file).
    pub is_dir: bool,
}

/// How the runtime mounts an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rootfs {
    /// Read-only layers, lowest first (overlayfs `lowerdir` lists them top first).
    Layers(Vec<PathBuf>),
    /// The host's own system dirs: `skeleton` is the overlay lower layer, and each
    /// bind is mounted read-only on top (source on the host → target inside the
    /// new root) before `pivot_root`.
    Host {
        /// A tiny directory with top-level symlinks and mount points.
        skeleton: PathBuf,
        /// Read-only binds whose source exists on the host now, in mount order.
        binds: Vec<HostBind>,
    },
}

/// One version of a named image; the contents of its `image.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// The image name (`[a-z0-9][a-z0-9_.-]{0,62}`).
    pub name: String,
    /// Its version: 1, 2, 3… per name.
    pub version: u32,
    /// Full root filesystem or host image.
    pub kind: ImageKind,
    /// When this version was created (seconds since the Unix epoch).
    pub created_unix: u64,
    /// Bytes of file data in its root filesystem (hard links counted once),
    /// computed once at creation.
    pub size_bytes: u64,
    /// Where it came from: the imported path, `debootstrap <suite> <mirror>`, or `host`.
    pub source: String,
    /// Packages asked for when built with debootstrap (sorted), else empty.
    #[serde(default)]
    pub packages: Vec<String>,
    /// Where its files live.
    pub storage: Storage,
    /// The digest of each layer of [`Image::rootfs`], lowest first (a host image: its
    /// skeleton), computed once when the version was made (a Debian build's system once per
    /// build, kept with the cache). Empty for versions made before hako recorded digests:
    /// those run on one host as before, but a node of a cluster runs only recorded versions,
    /// so make such an image again to use it there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub digests: Vec<Digest>,
    /// How the image means to be run (its command, environment, working directory, user,
    /// ports), for an imported OCI or Docker image; the defaults of an app made from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<crate::ImageConfig>,
    /// `<root>/<name>/<version>`; filled in when read, not stored.
    #[serde(skip)]
    pub(crate) dir: PathBuf,
    /// The store root; filled in when read, not stored.
    #[serde(skip)]
    pub(crate) store_root: PathBuf,
}

/// Name of the metadata file in a version directory.
pub(crate) const META_FILE: &str = "image.json";
/// Name of the root filesystem directory in a version directory.
pub(crate) const ROOTFS_DIR: &str = "rootfs";

impl Image {
    /// The version directory, `<root>/<name>/<version>`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What the cluster store records of this version (the trust anchor of its layers), or
    /// `None` when it was made before hako recorded digests.
    pub fn record(&self) -> Option<ImageRecord> {
        (!self.digests.is_empty()).then(|| ImageRecord {
            name: self.name.clone(),
            version: self.version,
            created_unix: self.created_unix,
            host: self.kind == ImageKind::Host,
            layers: self.digests.clone(),
        })
    }

    /// The digests of its layers as they are on disk now, computed (for a version made before
    /// hako recorded digests, when its owner vouches for its files as they are).
    pub fn compute_digests(&self) -> Result<Vec<Digest>, crate::DigestError> {
        match self.rootfs() {
            Rootfs::Layers(layers) => layers.iter().map(|l| crate::tree_digest(l)).collect(),
            Rootfs::Host { skeleton, .. } => Ok(vec![crate::tree_digest(&skeleton)?]),
        }
    }

    /// What the runtime mounts for this image.
    pub fn rootfs(&self) -> Rootfs {
        match &self.storage {
            Storage::Local => Rootfs::Layers(vec![self.dir.join(ROOTFS_DIR)]),
            Storage::DebianCache { key, added } => {
                let mut layers = vec![crate::debian::cache_rootfs(&self.store_root, key)];
                if *added {
                    layers.push(self.dir.join(ROOTFS_DIR));
                }
                Rootfs::Layers(layers)
            }
            Storage::Host { binds } => Rootfs::Host {
                skeleton: self.dir.join(ROOTFS_DIR),
                binds: binds
                    .iter()
                    .filter(|b| b.source.exists())
                    .cloned()
                    .collect(),
            },
        }
    }

    /// Where the `/etc/passwd` the container will see lives on the host. It may
    /// be a symlink inside the image: read it with [`Image::read_etc`].
    pub fn passwd_path(&self) -> PathBuf {
        self.etc_file("passwd")
    }

    /// The `/etc/group` the container will see, to resolve group names before start.
    pub fn group_path(&self) -> PathBuf {
        self.etc_file("group")
    }

    /// Reads `/etc/<file>` (e.g. `passwd`, `group`) as the container will see it,
    /// for resolving user and group names before start. Unlike opening
    /// [`Image::passwd_path`], it refuses to follow a symlink at `etc` or at
    /// the file: an image's `etc/passwd -> /etc/shadow` would otherwise make the
    /// host read its own file.
    pub fn read_etc(&self, file: &str) -> io::Result<String> {
        if file.is_empty() || file.contains('/') || file == "." || file == ".." {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{file:?} is not a file name in /etc"),
            ));
        }
        let layers = match self.rootfs() {
            Rootfs::Host { .. } => return std::fs::read_to_string(Path::new("/etc").join(file)),
            Rootfs::Layers(layers) => layers,
        };
        let nofollow = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        for layer in layers.iter().rev() {
            let opened = rustix::fs::open(layer, OFlags::DIRECTORY | nofollow, Mode::empty())
                .and_then(|root| {
                    rustix::fs::openat(&root, "etc", OFlags::DIRECTORY | nofollow, Mode::empty())
                })
                .and_then(|etc| rustix::fs::openat(&etc, file, nofollow, Mode::empty()));
            match opened {
                Ok(fd) => return io::read_to_string(std::fs::File::from(fd)),
                Err(Errno::NOENT) => continue,
                Err(Errno::LOOP) | Err(Errno::NOTDIR) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "/etc/{file} of image {} version {} is a symlink: refusing to follow it",
                            self.name, self.version
                        ),
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "image {} version {} has no /etc/{file}",
                self.name, self.version
            ),
        ))
    }

    fn etc_file(&self, file: &str) -> PathBuf {
        match self.rootfs() {
            Rootfs::Layers(layers) => layers
                .iter()
                .rev()
                .map(|l| l.join("etc").join(file))
                .find(|p| p.exists())
                .unwrap_or_else(|| {
                    layers
                        .last()
                        .cloned()
                        .unwrap_or_default()
                        .join("etc")
                        .join(file)
                }),
            Rootfs::Host { .. } => Path::new("/etc").join(file),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(storage: Storage) -> Image {
        Image {
            name: "web".into(),
            version: 3,
            kind: ImageKind::Rootfs,
            created_unix: 1_700_000_000,
            size_bytes: 42,
            source: "/src".into(),
            packages: vec![],
            storage,
            digests: vec![],
            config: None,
            dir: PathBuf::from("/store/web/3"),
            store_root: PathBuf::from("/store"),
        }
    }

    #[test]
    fn json_round_trip_keeps_stored_fields() {
        let img = sample(Storage::DebianCache {
            key: "abc".into(),
            added: false,
        });
        let json = serde_json::to_string(&img).unwrap();
        assert!(json.contains("\"type\":\"debian_cache\""), "{json}");
        assert!(!json.contains("/store/web/3"), "dir is not stored: {json}");
        let back: Image = serde_json::from_str(&json).unwrap();
        assert_eq!(back.storage, img.storage);
        assert_eq!(back.version, 3);
        assert_eq!(back.dir, PathBuf::new());
    }

    #[test]
    fn rootfs_paths_follow_storage() {
        assert_eq!(
            sample(Storage::Local).rootfs(),
            Rootfs::Layers(vec![PathBuf::from("/store/web/3/rootfs")])
        );
        assert_eq!(
            sample(Storage::DebianCache {
                key: "k1".into(),
                added: false
            })
            .rootfs(),
            Rootfs::Layers(vec![PathBuf::from("/store/.cache/debian/k1/rootfs")])
        );
        assert_eq!(
            sample(Storage::DebianCache {
                key: "k1".into(),
                added: true
            })
            .rootfs(),
            Rootfs::Layers(vec![
                PathBuf::from("/store/.cache/debian/k1/rootfs"),
                PathBuf::from("/store/web/3/rootfs")
            ]),
            "added files lie on top"
        );
        assert_eq!(
            sample(Storage::Local).passwd_path(),
            PathBuf::from("/store/web/3/rootfs/etc/passwd")
        );
    }

    #[test]
    fn read_etc_refuses_symlinks_out_of_the_image() {
        let tmp = tempfile::Builder::new()
            .prefix("hako-etc-")
            .tempdir()
            .unwrap();
        let mut img = sample(Storage::Local);
        img.dir = tmp.path().to_path_buf();
        let etc = tmp.path().join("rootfs/etc");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", etc.join("group")).unwrap();
        assert!(img.read_etc("passwd").unwrap().starts_with("root:"));
        let err = img.read_etc("group").unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
        assert_eq!(
            img.read_etc("shadow").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            img.read_etc("../x").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        // A symlinked etc/ is refused too.
        std::fs::rename(&etc, tmp.path().join("rootfs/real-etc")).unwrap();
        std::os::unix::fs::symlink("/etc", &etc).unwrap();
        assert!(
            img.read_etc("passwd")
                .unwrap_err()
                .to_string()
                .contains("symlink")
        );
    }

    #[test]
    fn host_rootfs_drops_binds_whose_source_vanished() {
        let binds = vec![
            HostBind {
                source: "/usr".into(),
                target: "/usr".into(),
                is_dir: true,
            },
            HostBind {
                source: "/hako-no-such-path".into(),
                target: "/etc/x".into(),
                is_dir: false,
            },
        ];
        let Rootfs::Host { skeleton, binds } = sample(Storage::Host { binds }).rootfs() else {
            panic!("host storage gives a host rootfs");
        };
        assert_eq!(skeleton, PathBuf::from("/store/web/3/rootfs"));
        assert_eq!(binds.len(), 1);
        assert_eq!(binds[0].source, PathBuf::from("/usr"));
    }
}
