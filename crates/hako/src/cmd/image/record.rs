//! `hako image … --store etcd://…`: the cluster store's records of image versions
//! (`/images/<name>/<version>`: the digests of their layers). A node of a cluster runs an image
//! version only once its copies of the layers hash to the recorded digests, so the records are
//! written by whoever makes the version (import, build, host) and dropped with it (remove);
//! `hako image record` records a version made without `--store` (its owner vouches for its
//! files as they are now). See docs/cluster.md, "Images and code".

use anyhow::Context;
use hako_image::Image;
use hako_model::ImageRecord;
use hako_store::{Store, StoreExt, StoreSpec, keys};

use crate::cmd::{Exit, Failure, OrExit};

/// The cluster store given with `--store` (etcd only: one host has no records).
pub(super) async fn open(store: &str) -> Result<std::sync::Arc<dyn Store>, Failure> {
    let spec: StoreSpec = store.parse().or_exit(Exit::Usage)?;
    if !matches!(spec, StoreSpec::Etcd { .. }) {
        return Err(anyhow::anyhow!(
            "--store records image versions for a cluster: give etcd://HOST:PORT[,…] (one host needs no records)"
        ))
        .or_exit(Exit::Usage);
    }
    hako_store::open(&spec)
        .await
        .context("cannot reach the cluster's etcd")
        .or_exit(Exit::Failure)
}

/// Records `image` (made just now, or vouched for now: digests computed if it has none).
pub(super) async fn put(store: &dyn Store, image: &Image) -> Result<ImageRecord, Failure> {
    let record = match image.record() {
        Some(r) => r,
        None => {
            let mut i = image.clone();
            i.digests = image
                .compute_digests()
                .with_context(|| format!("cannot digest {}:{}", image.name, image.version))
                .or_exit(Exit::Failure)?;
            i.record().expect("digests computed")
        }
    };
    store
        .put_json(
            &keys::image(&record.name, &record.version.to_string()),
            &record,
        )
        .await
        .context("cannot record the image version in the cluster store")
        .or_exit(Exit::Failure)?;
    Ok(record)
}

/// Drops the records of `name` (one version, or all).
pub(super) async fn remove(
    store: &dyn Store,
    name: &str,
    version: Option<u32>,
) -> Result<(), Failure> {
    let done = match version {
        Some(v) => store
            .delete(&keys::image(name, &v.to_string()))
            .await
            .map(|_| ()),
        None => store
            .delete_prefix(&keys::image_versions(name))
            .await
            .map(|_| ()),
    };
    done.context("cannot drop the image's records from the cluster store")
        .or_exit(Exit::Failure)
}

/// `name:version, layers sha256:…` for the success lines.
pub(super) fn describe(r: &ImageRecord) -> String {
    let layers: Vec<String> = r.layers.iter().map(ToString::to_string).collect();
    format!(
        "recorded {} in the cluster store: {}",
        r.reference(),
        layers.join(", ")
    )
}
