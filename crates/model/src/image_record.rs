//! What the cluster store holds of an image version (`/images/<name>/<version>`): the digests
//! of its layers, written by whoever made the version (`hako image … --store etcd://…`). It
//! is the trust anchor of images in a cluster: the leader puts the record of the version an
//! instance runs into its assignment ([`crate::App::image_record`]), and a node runs the
//! version's layers only once their bytes, copied from shared storage into its own cache,
//! hash to these digests. The image's files on shared storage (and their `image.json`) are
//! never trusted for that.

use crate::Digest;

/// One image version as the cluster store records it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageRecord {
    pub name: String,
    pub version: u32,
    /// When the version was made (seconds since the Unix epoch), as in its `image.json`: a
    /// version removed and made again under the same number differs by it.
    pub created_unix: u64,
    /// Whether it is a host image (a skeleton plus read-only binds of the node's own system
    /// directories) rather than a complete root filesystem.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub host: bool,
    /// The digest of each layer, lowest first (a host image: its skeleton).
    pub layers: Vec<Digest>,
}

impl ImageRecord {
    /// `name:version`, as users write it.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.name, self.version)
    }
}
