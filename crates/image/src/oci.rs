//! Importing OCI and Docker images: an OCI image layout (a directory with `oci-layout` and
//! `index.json`, or a tar of one) and a `docker save` tarball (`manifest.json` and its layer
//! tars, the legacy and the OCI-based form). The layers are unpacked lowest first into one
//! root filesystem with the checks of every hako import (no `..`, no absolute paths, nothing
//! written through a symlink, no devices) and their whiteouts applied; every blob is checked
//! against its digest before it is read; the image's run configuration (command, environment,
//! working directory, user, ports) is kept ([`ImageConfig`]).
//!
//! A tarball is first unpacked, with the same checks, into the staging dir; its blobs are
//! read only from inside that directory (a symlink leading out of it is refused).

mod config;
mod layout;

use std::io::{self, Read};
use std::path::{Path, PathBuf};

pub use config::ImageConfig;

use crate::unpack::{ImportLimits, Tree, UnpackError, Whiteouts};

/// Why an OCI or Docker image cannot be imported.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// A file of the image could not be read.
    #[error("cannot read {path} of the image: {source}")]
    Read {
        /// The file, relative to the image's top directory.
        path: String,
        /// The OS error.
        source: io::Error,
    },
    /// A JSON document of the image is malformed.
    #[error("{what} of the image is not valid ({source}): is the image complete?")]
    Json {
        /// Which document.
        what: String,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A blob's bytes do not hash to the digest that names it.
    #[error(
        "{what} does not match its digest {expected} (its content hashes to {actual}): the image is corrupt or was altered"
    )]
    Digest {
        /// Which blob.
        what: String,
        /// The digest the image names it by.
        expected: String,
        /// What its bytes hash to.
        actual: String,
    },
    /// A blob whose size is not the one its descriptor gives.
    #[error(
        "{what} {digest} has {actual} bytes where the image says {expected}: the image is corrupt or was altered"
    )]
    Size {
        /// Which blob.
        what: String,
        /// Its digest.
        digest: String,
        /// The size the descriptor gives.
        expected: u64,
        /// The size of the file.
        actual: u64,
    },
    /// A blob named by a path that leaves the image, is missing or is not a file.
    #[error("{what} {path:?} is refused: {reason}")]
    Blob {
        /// Which blob.
        what: String,
        /// Its path as the image gives it.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Something hako does not import (another digest algorithm, zstd layers, several images).
    #[error("{0}")]
    Unsupported(String),
    /// A layer was refused or could not be unpacked.
    #[error("layer {index} ({digest}): {source}")]
    Layer {
        /// 1 for the lowest layer.
        index: usize,
        /// Its digest.
        digest: String,
        /// Why.
        source: UnpackError,
    },
}

/// What an import reports as it goes (`hako image import` shows it on a terminal).
pub type Progress<'a> = &'a dyn Fn(&str);

/// Whether `dir` is an image layout (OCI `index.json` + `oci-layout`, or Docker's
/// `manifest.json`) rather than a root filesystem.
pub(crate) fn is_image_dir(dir: &Path) -> bool {
    if dir.join("oci-layout").is_file() && dir.join("index.json").is_file() {
        return true;
    }
    // Docker's manifest.json is a JSON array; a root filesystem's own manifest.json (rare)
    // is not taken for one unless it is.
    let mut head = [0u8; 64];
    let n = std::fs::File::open(dir.join("manifest.json"))
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    head[..n]
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'[')
}

/// Whether a tar stream is an image archive (`docker save`, a tar of an OCI layout) rather
/// than a root filesystem: read until its first entry that only a root filesystem has, so a
/// rootfs tarball costs a few headers.
pub(crate) fn is_image_archive(reader: impl Read) -> Result<bool, UnpackError> {
    let mut archive = tar::Archive::new(reader);
    let (mut manifest, mut index, mut layout) = (false, false, false);
    for entry in archive
        .entries()
        .map_err(|source| UnpackError::Read { source })?
    {
        let entry = entry.map_err(|source| UnpackError::Read { source })?;
        let path = entry
            .path()
            .map_err(|source| UnpackError::Read { source })?
            .into_owned();
        let Some(top) = path
            .components()
            .find(|c| !matches!(c, std::path::Component::CurDir))
            .and_then(|c| c.as_os_str().to_str().map(str::to_owned))
        else {
            continue;
        };
        let hex = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
        match top.as_str() {
            "manifest.json" => manifest = true,
            "index.json" => index = true,
            "oci-layout" => layout = true,
            "blobs" | "repositories" => {}
            t if hex(t) || t.strip_suffix(".json").is_some_and(hex) => {}
            _ => return Ok(false),
        }
    }
    Ok(manifest || (index && layout))
}

/// Unpacks the image in `dir` (an OCI layout or an unpacked `docker save`) into `rootfs`
/// (which must not exist); returns its run configuration.
pub(crate) fn import_dir(
    dir: &Path,
    rootfs: &Path,
    limits: &ImportLimits,
    progress: Progress<'_>,
) -> Result<ImageConfig, crate::ImageError> {
    let plan = layout::plan(dir)?;
    let mut tree = Tree::new(rootfs, limits)?;
    let total = plan.layers.len();
    for (i, layer) in plan.layers.iter().enumerate() {
        progress(&format!(
            "layer {}/{total} {} ({})",
            i + 1,
            short(&layer.digest),
            hako_model::units::format_size(layer.size)
        ));
        let fail = |source| OciError::Layer {
            index: i + 1,
            digest: layer.digest.clone(),
            source,
        };
        let reader = layout::open_layer(&layer.path, &layer.digest)?;
        tree.apply(reader, Whiteouts::Apply).map_err(fail)?;
    }
    tree.finish()?;
    Ok(plan.config)
}

/// `sha256:0123456789ab` of a long digest.
fn short(digest: &str) -> &str {
    &digest[..digest.len().min("sha256:".len() + 12)]
}

/// A layer to unpack: its verified file and its digest.
pub(crate) struct Layer {
    pub(crate) path: PathBuf,
    pub(crate) digest: String,
    pub(crate) size: u64,
}

/// What an image layout resolves to.
pub(crate) struct Plan {
    pub(crate) layers: Vec<Layer>,
    pub(crate) config: ImageConfig,
}
