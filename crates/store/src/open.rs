//! Choosing and opening a backend from one string, for the daemon's
//! `--store` setting: a data dir (embedded, the default) or
//! `etcd://host:port[,host:port…]` (a cluster).

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use crate::{EmbeddedConfig, EmbeddedStore, Store, StoreError};

/// Which backend to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// The embedded SQLite store.
    Embedded(EmbeddedConfig),
    /// An etcd cluster, by client URLs (`http://host:port`).
    Etcd {
        /// The client URLs.
        endpoints: Vec<String>,
    },
}

/// A `--store` value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreSpecError {
    /// The value is empty.
    #[error("the store setting is empty: give a data dir or etcd://host:port[,host:port…]")]
    Empty,
    /// An etcd URL without endpoints or with a malformed one.
    #[error("bad etcd endpoint {0:?}: write etcd://host:port[,host:port…]")]
    BadEndpoint(String),
}

impl StoreSpec {
    /// The embedded store in `data_dir` with default settings.
    pub fn in_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        StoreSpec::Embedded(EmbeddedConfig::in_data_dir(data_dir.into()))
    }
}

impl FromStr for StoreSpec {
    type Err = StoreSpecError;

    /// `etcd://h1:2379,h2:2379` → etcd; anything else is a data dir.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(StoreSpecError::Empty);
        }
        let Some(hosts) = s.strip_prefix("etcd://") else {
            return Ok(StoreSpec::in_data_dir(s));
        };
        let endpoints = hosts
            .split(',')
            .map(|h| {
                let h = h.trim().trim_end_matches('/');
                let valid = h
                    .rsplit_once(':')
                    .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
                if valid {
                    Ok(format!("http://{h}"))
                } else {
                    Err(StoreSpecError::BadEndpoint(h.to_owned()))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(StoreSpec::Etcd { endpoints })
    }
}

/// Opens the backend `spec` names, ready to share.
pub async fn open(spec: &StoreSpec) -> Result<Arc<dyn Store>, StoreError> {
    match spec {
        StoreSpec::Embedded(config) => Ok(Arc::new(EmbeddedStore::open(config.clone()).await?)),
        #[cfg(feature = "etcd")]
        StoreSpec::Etcd { endpoints } => Ok(Arc::new(crate::EtcdStore::connect(endpoints).await?)),
        #[cfg(not(feature = "etcd"))]
        StoreSpec::Etcd { .. } => Err(StoreError::Backend(
            "this hako was built without etcd support; rebuild with the `etcd` feature".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_data_dirs_and_etcd_urls() {
        assert_eq!(
            "/var/lib/hako".parse(),
            Ok(StoreSpec::in_data_dir("/var/lib/hako"))
        );
        assert_eq!(
            "etcd://10.0.0.1:2379, node2:2379/".parse(),
            Ok(StoreSpec::Etcd {
                endpoints: vec!["http://10.0.0.1:2379".into(), "http://node2:2379".into()]
            })
        );
        assert_eq!("  ".parse::<StoreSpec>(), Err(StoreSpecError::Empty));
        for bad in [
            "etcd://",
            "etcd://host",
            "etcd://host:notaport",
            "etcd://:2379",
        ] {
            assert!(
                matches!(
                    bad.parse::<StoreSpec>(),
                    Err(StoreSpecError::BadEndpoint(_))
                ),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn opens_the_embedded_store() {
        let dir = tempfile::Builder::new()
            .prefix("hako-store-open")
            .tempdir()
            .unwrap();
        let store = open(&StoreSpec::in_data_dir(dir.path())).await.unwrap();
        let rev = store.put("/k", b"v".to_vec()).await.unwrap();
        assert_eq!(store.revision().await.unwrap(), rev);
        assert!(dir.path().join(crate::embedded::DB_FILE).exists());
    }
}
