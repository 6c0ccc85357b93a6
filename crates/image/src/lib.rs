//! hako's image store: versioned read-only root filesystems.
//!
//! An image is a named, versioned root filesystem under hako's data dir; the
//! container runtime mounts it as the read-only lower layer of an overlayfs.
//! Images come from three places:
//! - [`ImageStore::import`]: a directory or a rootfs tarball (`.tar`, `.tar.gz`), with
//!   hostile archives refused; [`ImageStore::import_image`] also takes an OCI image layout
//!   (directory or tar) or a `docker save` tarball, its layers applied with their whiteouts
//!   and digests verified ([`ImageConfig`] keeps its run settings);
//! - [`ImageStore::build_debian`]: debootstrap, cached per package set;
//! - [`ImageStore::host`]: the host's own `/usr` and some `/etc` entries bound
//!   read-only over a tiny skeleton.
//!
//! Every layer of a new version is named by its content ([`tree_digest`], `sha256:<hex>`),
//! computed once when the version is made and kept in its `image.json`
//! ([`Image::digests`]); nodes of a cluster verify their copies against it.
//!
//! ```no_run
//! use hako_image::{ImageStore, Rootfs};
//! let store = ImageStore::open("/var/lib/hako/images")?;
//! let image = store.import("site", std::path::Path::new("rootfs.tar.gz"))?;
//! match image.rootfs() {
//!     Rootfs::Layers(layers) => println!("overlay lowerdir layers: {layers:?}"),
//!     Rootfs::Host { skeleton, binds } => println!("{skeleton:?} + {} binds", binds.len()),
//! }
//! # Ok::<(), hako_image::ImageError>(())
//! ```
#![forbid(unsafe_code)]

mod copy;
mod debian;
mod digest;
mod host;
mod image;
mod oci;
mod store;
mod unpack;
mod usage;

pub use copy::{CopyError, copy_tree};
pub use debian::{
    DEFAULT_MIRROR, DebianBuild, DebianError, DebianUpdate, PackageChange, packages_built_unix,
};
pub use digest::{DigestError, tree_digest};
pub use host::{ETC_BINDS, HostError, SKELETON_DIRS, bind_allowed};
pub use image::{HostBind, Image, ImageKind, Rootfs, Storage};
// Image names are part of hako's vocabulary (an app's image reference names one).
pub use hako_model::image_name::{
    ImageNameError as NameError, MAX_IMAGE_NAME_LEN as MAX_NAME_LEN,
    validate_image_name as validate_name,
};
pub use oci::{ImageConfig, OciError, Progress};
pub use store::{ImageError, ImageStore};
pub use unpack::{ImportLimits, UnpackError};
pub use usage::disk_usage;
