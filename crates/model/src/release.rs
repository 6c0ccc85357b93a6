//! A code release: an immutable, versioned copy of an app's code, mounted read-only at /app.

/// One release of an app's code.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Release {
    pub app: String,
    /// 1, 2, 3… per app.
    pub number: u64,
    pub created_unix: u64,
    pub size_bytes: u64,
    pub files: u64,
    /// Where it came from ("dir /srv/site", "upload").
    pub source: String,
    /// The digest of the release's tree (see `hako_image::tree_digest`), computed when it was
    /// made; `None` for releases made before hako recorded digests. In a cluster it is the
    /// anchor a node verifies the release's bytes against ([`crate::App::release_digest`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<crate::Digest>,
}
