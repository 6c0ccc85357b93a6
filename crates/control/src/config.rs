//! Settings of `hako serve`: listeners, the store, the runtime, the proxy, the database service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hako_proxy::ProxyConfig;
use hako_runtime::RuntimeConfig;
use hako_store::StoreSpec;

/// Settings of `hako serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    /// Where the proxy listens.
    pub listen: SocketAddr,
    /// Where the proxy serves HTTPS, if anywhere (`--https`).
    pub https: Option<SocketAddr>,
    /// Where the API listens.
    pub api: SocketAddr,
    /// Where apps, releases, instances and events are kept: the embedded store in the data
    /// dir (the default) or an etcd cluster (`etcd://host:port[,…]`).
    pub store: StoreSpec,
    pub runtime: RuntimeConfig,
    pub proxy: ProxyConfig,
    /// SIGTERM-to-kill grace of a stopping instance.
    pub stop_grace: Duration,
    /// The shared database service apps with `database` get their database on.
    pub database: DatabaseConfig,
    /// Bounds on each app's releases and `/data`.
    pub storage: hako_agent::StorageLimits,
    /// `[acme]`: where apps with `acme` get their certificates; `None` (the default): ACME is off.
    pub acme: Option<hako_tls::AcmeConfig>,
    /// The disk bound of this node's checkpoints together (least recently used go first).
    pub checkpoint_max_bytes: u64,
    /// Where CRIU is installed; `None`: `HAKO_CRIU_DIR`, else `<data-dir>/criu`.
    pub criu_dir: Option<PathBuf>,
    /// Slots of the node's shared warm pool (a cgroup and a network each, for any app's
    /// start); 0: none.
    pub shared_pool: usize,
    /// Storage every node of a cluster shares (images, code releases, apps' `/data`).
    pub shared_dir: Option<PathBuf>,
    /// In a cluster: this host's node (and front) name; default the host name.
    pub node: Option<String>,
    /// In a cluster: run instances here too (an in-process agent), not only the front.
    pub run_node: bool,
    /// In a cluster: the address other hosts reach this one at.
    pub advertise: Option<String>,
    /// In a cluster: how long a node's or front's lease lives without renewal.
    pub lease_ttl: Duration,
}

/// The shared database service (MariaDB on this host), `[database]` in the config file.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseConfig {
    /// The server's Unix socket; its directory is bound into instances at /run/mysqld.
    pub socket: PathBuf,
    /// Databases and accounts are named `<prefix>_<app>`; `None`: the runtime's prefix.
    pub prefix: Option<String>,
    /// A client defaults file with admin credentials, where root has no socket login.
    pub defaults_file: Option<PathBuf>,
    /// Connections each app's account may hold at once.
    pub max_user_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            socket: hako_database::DEFAULT_SOCKET.into(),
            prefix: None,
            defaults_file: None,
            max_user_connections: hako_database::DEFAULT_MAX_USER_CONNECTIONS,
        }
    }
}

impl ServeConfig {
    /// Defaults: proxy on 0.0.0.0:8080, API on 127.0.0.1:7070, the embedded store in
    /// `data_dir`, 10 s stop grace.
    pub fn new(data_dir: impl Into<PathBuf>) -> ServeConfig {
        let data_dir = data_dir.into();
        ServeConfig {
            store: StoreSpec::in_data_dir(&data_dir),
            data_dir,
            listen: "0.0.0.0:8080".parse().expect("valid"),
            https: None,
            api: "127.0.0.1:7070".parse().expect("valid"),
            runtime: RuntimeConfig::default(),
            proxy: ProxyConfig::default(),
            stop_grace: Duration::from_secs(10),
            database: DatabaseConfig::default(),
            storage: hako_agent::StorageLimits::default(),
            acme: None,
            checkpoint_max_bytes: 4 << 30,
            criu_dir: None,
            shared_pool: 0,
            shared_dir: None,
            node: None,
            run_node: true,
            advertise: None,
            lease_ttl: Duration::from_secs(5),
        }
    }

    /// The database server as configured.
    pub(crate) fn database_server(&self) -> hako_database::MariaDb {
        let d = &self.database;
        let mut server = hako_database::MariaDb::new(&d.socket)
            .with_prefix(
                d.prefix
                    .clone()
                    .unwrap_or_else(|| self.runtime.prefix.clone()),
            )
            .with_max_user_connections(d.max_user_connections);
        if let Some(f) = &d.defaults_file {
            server = server.with_defaults_file(f);
        }
        server
    }
}
