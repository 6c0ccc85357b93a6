//! What a start on a node of a cluster mounts: the app's code release and its image's layers
//! as verified copies in the node's cache ([`crate::blobs`]), never the trees on shared
//! storage themselves. The digests they must have come from the cluster store, through the
//! assignment: [`App::release_digest`] (set by the deploy) and [`App::image_record`] (set by
//! the leader from `/images/<name>/<version>`). Anything missing or different fails the start
//! with [`StartFailure::Verification`] before a container exists. On one host (no shared
//! storage) nothing here runs: the stores' own trees are mounted, as always.

use std::path::PathBuf;

use hako_image::{Image, Rootfs};
use hako_model::{App, StartFailure};

use super::{Agent, LaunchError};
use crate::blobs::{BlobError, BlobUse};

impl Agent {
    /// The image's root filesystem as a start mounts it, with the cache entries it uses.
    pub(super) fn verified_rootfs(
        &self,
        app: &App,
        image: &Image,
    ) -> Result<(Rootfs, Vec<BlobUse>), LaunchError> {
        let Some(blobs) = &self.blobs else {
            return Ok((image.rootfs(), Vec::new()));
        };
        let what = format!(
            "image {}:{} of {}",
            image.name, image.version, app.spec.name
        );
        let record = app.image_record.as_ref().ok_or_else(|| {
            verification(format!(
                "{what} has no digests in the cluster store, so this node will not run it: make the image again with `hako image … --store etcd://…` (or record this version with `hako image record {}:{} --store etcd://…`)",
                image.name, image.version
            ))
        })?;
        if (&record.name, record.version, record.created_unix)
            != (&image.name, image.version, image.created_unix)
        {
            return Err(verification(format!(
                "{what} on shared storage is not the version the cluster store records ({}, made at {}; shared storage has one made at {}): record it again or restore the image",
                record.reference(),
                record.created_unix,
                image.created_unix
            )));
        }
        let fetch = |i: usize, layer: &PathBuf| -> Result<BlobUse, LaunchError> {
            let digest = &record.layers[i];
            blobs.fetch(digest, layer).map_err(|e| {
                let layer = if record.layers.len() > 1 {
                    format!(" (layer {} of {})", i + 1, record.layers.len())
                } else {
                    String::new()
                };
                blob_failure(&format!("{what}{layer}"), StartFailure::Image, e)
            })
        };
        match image.rootfs() {
            Rootfs::Layers(layers) if !record.host && layers.len() == record.layers.len() => {
                let uses = layers
                    .iter()
                    .enumerate()
                    .map(|(i, l)| fetch(i, l))
                    .collect::<Result<Vec<_>, _>>()?;
                let paths = uses.iter().map(|u| u.path().to_path_buf()).collect();
                Ok((Rootfs::Layers(paths), uses))
            }
            Rootfs::Host { skeleton, binds } if record.host && record.layers.len() == 1 => {
                // The skeleton is verified by digest; the binds (the node's own system
                // directories, from the image.json on shared storage) by rule.
                if let Some(b) = binds.iter().find(|b| !hako_image::bind_allowed(b)) {
                    return Err(verification(format!(
                        "{what} failed verification: its image.json on shared storage binds {} at {}, which no host image does",
                        b.source.display(),
                        b.target.display()
                    )));
                }
                let used = fetch(0, &skeleton)?;
                let skeleton = used.path().to_path_buf();
                Ok((Rootfs::Host { skeleton, binds }, vec![used]))
            }
            _ => Err(verification(format!(
                "{what} failed verification: shared storage describes other layers than the {} the cluster store records",
                record.layers.len()
            ))),
        }
    }

    /// The code release `n` of `app` as a start mounts it (at `path` in the release store),
    /// with the cache entry it uses, if any.
    pub(super) fn verified_release(
        &self,
        app: &App,
        n: u64,
        path: PathBuf,
    ) -> Result<(PathBuf, Option<BlobUse>), LaunchError> {
        let Some(blobs) = &self.blobs else {
            return Ok((path, None));
        };
        let what = format!("release {n} of {}", app.spec.name);
        let digest = app.release_digest.as_ref().ok_or_else(|| {
            verification(format!(
                "{what} has no digest recorded (it was made before hako recorded them), so this node will not run it: deploy the app's code again"
            ))
        })?;
        let used = blobs
            .fetch(digest, &path)
            .map_err(|e| blob_failure(&what, StartFailure::Spec, e))?;
        Ok((used.path().to_path_buf(), Some(used)))
    }
}

fn verification(reason: String) -> LaunchError {
    LaunchError::new(StartFailure::Verification, reason)
}

/// A failed fetch as a start failure: other bytes than the recorded ones are a verification
/// failure; a tree missing on shared storage is `missing` (the kind of a missing release or
/// image); the node's own disk is the node's.
fn blob_failure(what: &str, missing: StartFailure, e: BlobError) -> LaunchError {
    match e {
        BlobError::Mismatch { expected, got } => verification(format!(
            "{what} failed verification: expected {expected}, got {got}; nothing of it ran (shared storage holds other bytes than were recorded)"
        )),
        BlobError::Refused(reason) => verification(format!(
            "{what} failed verification: {reason}; nothing of it ran"
        )),
        e @ BlobError::Source { .. } => {
            LaunchError::new(missing, format!("{what} is missing on shared storage: {e}"))
        }
        e @ BlobError::Cache { .. } => LaunchError::new(
            StartFailure::Node,
            format!("cannot fetch {what} into the node's cache: {e}"),
        ),
    }
}
