//! Reading an image layout down to its layers and configuration, every blob checked against
//! its digest: an OCI layout (`index.json` → manifest, through nested indexes by this host's
//! platform → config and layers, each `blobs/sha256/<hex>`) or a `docker save` directory
//! (`manifest.json` → config named by its digest, layers checked against the config's
//! `rootfs.diff_ids`).

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::config::ConfigBlob;
use super::{ImageConfig, Layer, OciError, Plan};
use crate::unpack::paths;

/// Largest JSON document of an image read (index, manifest, config).
const MAX_JSON: u64 = 8 << 20;
/// Deepest nesting of indexes followed.
const MAX_DEPTH: usize = 4;

/// A content descriptor (OCI image spec).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Debug, Deserialize)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

/// An index or a manifest: which one it is shows in which fields it has.
#[derive(Debug, Deserialize)]
struct Document {
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
}

/// One image of `docker save`'s `manifest.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerImage {
    config: String,
    #[serde(default)]
    layers: Vec<String>,
}

/// The layers and configuration of the image in `dir`.
pub(super) fn plan(dir: &Path) -> Result<Plan, OciError> {
    let root = dir.canonicalize().map_err(|source| OciError::Read {
        path: ".".into(),
        source,
    })?;
    if root.join("index.json").is_file() && root.join("oci-layout").is_file() {
        oci_plan(&root)
    } else {
        docker_plan(&root)
    }
}

fn oci_plan(root: &Path) -> Result<Plan, OciError> {
    let mut doc: Document = json(&read_small(root, "index.json")?, "index.json")?;
    for _ in 0..=MAX_DEPTH {
        if let Some(manifests) = doc.manifests.take() {
            let chosen = choose(manifests)?;
            let bytes = blob(root, &chosen, "manifest")?;
            doc = json(&bytes, &format!("manifest {}", chosen.digest))?;
            continue;
        }
        let (Some(config), Some(layers)) = (doc.config, doc.layers) else {
            return Err(OciError::Unsupported(
                "the image manifest has no config or no layers".into(),
            ));
        };
        let config_blob: ConfigBlob = json(&blob(root, &config, "image config")?, "image config")?;
        let mut planned = Vec::new();
        for l in layers {
            if l.media_type.contains("zstd") {
                return Err(OciError::Unsupported(format!(
                    "layer {} is zstd-compressed ({}): hako imports tar and tar+gzip layers; convert the image (e.g. skopeo copy --dest-compress-format gzip)",
                    l.digest, l.media_type
                )));
            }
            let path = blob_path(root, &l.digest, "layer")?;
            verify(&path, &l.digest, Some(l.size), false, "layer")?;
            planned.push(Layer {
                path,
                digest: l.digest,
                size: l.size,
            });
        }
        return Ok(Plan {
            layers: planned,
            config: run_config(config_blob),
        });
    }
    Err(OciError::Unsupported(format!(
        "the image's indexes nest deeper than {MAX_DEPTH}"
    )))
}

fn docker_plan(root: &Path) -> Result<Plan, OciError> {
    let images: Vec<DockerImage> = json(&read_small(root, "manifest.json")?, "manifest.json")?;
    let image = match <[DockerImage; 1]>::try_from(images) {
        Ok([one]) => one,
        Err(v) => {
            return Err(OciError::Unsupported(format!(
                "the archive holds {} images: save one image per archive (docker save IMAGE)",
                v.len()
            )));
        }
    };
    // The config is named by its digest: `<hex>.json` or `blobs/sha256/<hex>`.
    let config_path = inside(root, &image.config, "image config")?;
    let file_name = Path::new(&image.config)
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or("");
    let hex = file_name.strip_suffix(".json").unwrap_or(file_name);
    if !is_hex64(hex) {
        return Err(OciError::Blob {
            what: "image config".into(),
            path: image.config,
            reason: "it is not named by its digest, so it cannot be verified",
        });
    }
    verify(
        &config_path,
        &format!("sha256:{hex}"),
        None,
        false,
        "image config",
    )?;
    let config_blob: ConfigBlob =
        json(&read_bounded(&config_path, &image.config)?, "image config")?;
    let diff_ids = config_blob
        .rootfs
        .as_ref()
        .map(|r| r.diff_ids.clone())
        .unwrap_or_default();
    if diff_ids.len() != image.layers.len() {
        return Err(OciError::Unsupported(format!(
            "manifest.json lists {} layers but the image config has {} diff_ids: the archive is inconsistent",
            image.layers.len(),
            diff_ids.len()
        )));
    }
    let mut planned = Vec::new();
    for (rel, diff_id) in image.layers.iter().zip(diff_ids) {
        let path = inside(root, rel, "layer")?;
        // diff_ids name the uncompressed layer.
        verify(&path, &diff_id, None, true, "layer")?;
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        planned.push(Layer {
            path,
            digest: diff_id,
            size,
        });
    }
    Ok(Plan {
        layers: planned,
        config: run_config(config_blob),
    })
}

fn run_config(blob: ConfigBlob) -> ImageConfig {
    blob.config.map(|c| c.image_config()).unwrap_or_default()
}

/// The manifest for this host among an index's: one without a platform, or linux on this
/// architecture.
fn choose(manifests: Vec<Descriptor>) -> Result<Descriptor, OciError> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    let found = manifests.len();
    manifests
        .into_iter()
        .find(|d| {
            d.platform
                .as_ref()
                .is_none_or(|p| p.os == "linux" && p.architecture == arch)
        })
        .ok_or_else(|| {
            OciError::Unsupported(format!(
                "none of the image's {found} manifests is for linux/{arch}"
            ))
        })
}

/// A blob's bytes, checked against its descriptor.
fn blob(root: &Path, d: &Descriptor, what: &str) -> Result<Vec<u8>, OciError> {
    let path = blob_path(root, &d.digest, what)?;
    if d.size > MAX_JSON {
        return Err(OciError::Unsupported(format!(
            "the {what} {} is {} bytes: larger than hako reads",
            d.digest, d.size
        )));
    }
    verify(&path, &d.digest, Some(d.size), false, what)?;
    read_bounded(&path, &d.digest)
}

/// `blobs/sha256/<hex>` of a digest, inside the layout.
fn blob_path(root: &Path, digest: &str, what: &str) -> Result<PathBuf, OciError> {
    let Some(hex) = digest.strip_prefix("sha256:") else {
        return Err(OciError::Unsupported(format!(
            "the {what} digest {digest:?} is not sha256: hako verifies sha256 digests only"
        )));
    };
    if !is_hex64(hex) {
        return Err(OciError::Blob {
            what: what.into(),
            path: digest.into(),
            reason: "it is not a sha256 digest (64 hex digits)",
        });
    }
    inside(root, &format!("blobs/sha256/{hex}"), what)
}

/// `rel` under `root`, refused if it is absolute, climbs with `..`, leads out of `root`
/// through a symlink, or is not a regular file.
fn inside(root: &Path, rel: &str, what: &str) -> Result<PathBuf, OciError> {
    let refuse = |reason| OciError::Blob {
        what: what.into(),
        path: rel.into(),
        reason,
    };
    let normal = paths::normalize(Path::new(rel)).map_err(|_| refuse("it leaves the image"))?;
    let full = root
        .join(normal)
        .canonicalize()
        .map_err(|_| refuse("it is missing"))?;
    if !full.starts_with(root) {
        return Err(refuse("it leads out of the image through a symlink"));
    }
    if !full.is_file() {
        return Err(refuse("it is not a file"));
    }
    Ok(full)
}

/// Checks that the file's bytes (with `uncompressed`, its gunzipped bytes when it is gzip)
/// hash to `digest` and, if given, that it has `size` bytes.
fn verify(
    path: &Path,
    digest: &str,
    size: Option<u64>,
    uncompressed: bool,
    what: &str,
) -> Result<(), OciError> {
    let Some(expected) = digest.strip_prefix("sha256:") else {
        return Err(OciError::Unsupported(format!(
            "the {what} digest {digest:?} is not sha256: hako verifies sha256 digests only"
        )));
    };
    let read_err = |source| OciError::Read {
        path: digest.to_string(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read_err)?.len();
    if let Some(size) = size
        && size != len
    {
        return Err(OciError::Size {
            what: what.into(),
            digest: digest.into(),
            expected: size,
            actual: len,
        });
    }
    let file = BufReader::new(File::open(path).map_err(read_err)?);
    let mut reader: Box<dyn Read> = if uncompressed {
        decompressed(file, path).map_err(read_err)?
    } else {
        Box::new(file)
    };
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        hasher.update(&buf[..n]);
    }
    let actual: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if actual != expected {
        return Err(OciError::Digest {
            what: what.into(),
            expected: digest.into(),
            actual: format!("sha256:{actual}"),
        });
    }
    Ok(())
}

/// A layer's tar stream: gunzipped if it is gzip; zstd refused.
pub(super) fn open_layer(path: &Path, digest: &str) -> Result<Box<dyn Read>, OciError> {
    let read_err = |source| OciError::Read {
        path: digest.to_string(),
        source,
    };
    let file = BufReader::with_capacity(1 << 16, File::open(path).map_err(read_err)?);
    decompressed(file, path).map_err(|e| {
        if e.kind() == io::ErrorKind::Unsupported {
            OciError::Unsupported(format!("layer {digest}: {e}"))
        } else {
            read_err(e)
        }
    })
}

/// The file's bytes, gunzipped when they start with gzip's magic; zstd is refused.
fn decompressed(file: BufReader<File>, path: &Path) -> io::Result<Box<dyn Read>> {
    let mut head = [0u8; 4];
    let n = File::open(path)?.read(&mut head)?;
    let head = &head[..n];
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(file)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "zstd-compressed layers are not supported: convert the image to gzip layers",
        ))
    } else {
        Ok(Box::new(file))
    }
}

fn read_small(root: &Path, name: &str) -> Result<Vec<u8>, OciError> {
    read_bounded(&inside(root, name, name)?, name)
}

fn read_bounded(path: &Path, shown: &str) -> Result<Vec<u8>, OciError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|f| f.take(MAX_JSON + 1).read_to_end(&mut bytes))
        .map_err(|source| OciError::Read {
            path: shown.into(),
            source,
        })?;
    if bytes.len() as u64 > MAX_JSON {
        return Err(OciError::Unsupported(format!(
            "{shown} is larger than {MAX_JSON} bytes"
        )));
    }
    Ok(bytes)
}

fn json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, OciError> {
    serde_json::from_slice(bytes).map_err(|source| OciError::Json {
        what: what.into(),
        source,
    })
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
