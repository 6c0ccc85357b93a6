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
}
