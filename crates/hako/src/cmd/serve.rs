//! `hako serve`: the proxy, the API and the node agent on one host, with the embedded store in
//! the data dir (or an etcd cluster with `--store etcd://…`). Runs until SIGINT or SIGTERM,
//! then stops every instance and cleans up.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use hako_model::HumanDuration;

use super::{Exit, Failure, OrExit};

/// Options of `hako serve` (each can also come from `--config FILE`, a TOML file with the
/// same names: `listen`, `api`, `store`, `prefix`, `subnet`, `state_root`, `stop_grace`,
/// `trusted_proxies` (a list), `release_max_size`, `release_max_files`, `data_quota` (a size
/// or "none"), `https`, `checkpoint_max_size` (the disk bound of this node's checkpoints),
/// `criu_dir` (where `hako criu install` put CRIU, default `<data-dir>/criu`), `shared_pool`
/// (slots of the node's shared warm pool, default 0), a `[database]` table: `socket`, `prefix`,
/// `defaults_file`, `max_user_connections`, and an `[acme]` table: `directory`, `email`,
/// `ca_file`).
#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// Where the proxy listens for site traffic.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Where the proxy serves HTTPS, e.g. 0.0.0.0:443 (certificates per site: uploaded with
    /// `hako app cert`, or from ACME with `[acme]` in the config) [default: no HTTPS].
    #[arg(long, value_name = "ADDR")]
    pub https: Option<SocketAddr>,
    /// Where the API listens (keep it on loopback or a private network).
    #[arg(long, value_name = "ADDR")]
    pub api: Option<SocketAddr>,
    /// Where apps, releases and events are kept: `etcd://HOST:PORT[,HOST:PORT…]` for an etcd
    /// cluster [default: the embedded store in the data dir].
    #[arg(long, value_name = "STORE")]
    pub store: Option<String>,
    /// A TOML file with settings; command-line options win over it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Name prefix of every kernel object hako makes ("hako" + up to 5 characters).
    #[arg(long)]
    pub prefix: Option<String>,
    /// Subnet of isolated instances, e.g. 10.88.0.0/16.
    #[arg(long)]
    pub subnet: Option<String>,
    /// How long a stopping instance gets between SIGTERM and SIGKILL, e.g. 10s.
    #[arg(long, value_name = "DURATION")]
    pub stop_grace: Option<HumanDuration>,
    /// The MariaDB socket apps with --database get their database through
    /// [default: /run/mysqld/mysqld.sock].
    #[arg(long, value_name = "PATH")]
    pub database_socket: Option<PathBuf>,
    /// Front proxies (addresses or CIDRs, comma-separated or repeated) whose X-Forwarded-* and
    /// Forwarded headers apps may believe; from any other client hako replaces them
    /// [default: none].
    #[arg(long = "trusted-proxy", value_name = "CIDR", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// In a cluster (--store etcd://…): be a front only, run no instances on this host.
    #[arg(long)]
    pub no_node: bool,
}

/// Options of a host in a cluster (`hako serve --store etcd://…` and `hako agent`); in the
/// config file `node`, `advertise`, `shared_dir`, `lease`, `cache_max_size`, `cluster_cidrs`
/// (a list).
#[derive(Debug, Default, clap::Args)]
pub struct ClusterArgs {
    /// This host's node name in the cluster [default: the host name].
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// The address other hosts of the cluster reach this one at [default: 127.0.0.1].
    #[arg(long, value_name = "IP")]
    pub advertise: Option<String>,
    /// Storage every node shares (an NFS or CephFS mount): images, code releases and apps'
    /// /data live there.
    #[arg(long, value_name = "DIR")]
    pub shared_dir: Option<PathBuf>,
    /// How long this host's lease lives without renewal: a lost host is noticed this long after
    /// it went quiet [default: 5s].
    #[arg(long, value_name = "DURATION")]
    pub lease: Option<HumanDuration>,
    /// The cluster's networks (comma-separated or repeated), e.g. the hosts' network and the
    /// instance networks, 10.0.0.0/24,10.77.0.0/16: this host's instances may open no
    /// connection to them (replies to the proxies pass) [default: none].
    #[arg(long = "cluster-cidr", value_name = "CIDR", value_delimiter = ',')]
    pub cluster_cidrs: Vec<String>,
    /// The disk bound of this node's verified cache of code releases and image layers
    /// (<data-dir>/cache, with --shared-dir only); the least recently used go first
    /// [default: 16GiB].
    #[arg(long, value_name = "SIZE")]
    pub cache_max_size: Option<hako_model::ByteSize>,
}

impl ClusterArgs {
    /// The parsed `--cluster-cidr`s (or `file`'s when none is given), or a usage error naming
    /// the bad one.
    pub fn cidrs(&self, file: Option<&[String]>) -> Result<Vec<hako_runtime::Ipv4Net>, Failure> {
        let given = if self.cluster_cidrs.is_empty() {
            file.unwrap_or_default()
        } else {
            &self.cluster_cidrs
        };
        given
            .iter()
            .map(|c| {
                c.trim().parse::<hako_runtime::Ipv4Net>().map_err(|e| {
                    Failure::new(
                        Exit::Usage,
                        anyhow::anyhow!(
                            "cluster CIDR {c:?} is not an IPv4 network ({e}): give e.g. 10.77.0.0/16"
                        ),
                    )
                })
            })
            .collect()
    }
}

/// Most slots of the shared warm pool a node keeps (each holds a cgroup, a network namespace
/// and a veth, no process).
const MAX_SHARED_POOL: usize = 256;

/// The config file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    https: Option<SocketAddr>,
    api: Option<SocketAddr>,
    store: Option<String>,
    prefix: Option<String>,
    subnet: Option<String>,
    state_root: Option<PathBuf>,
    stop_grace: Option<HumanDuration>,
    trusted_proxies: Option<Vec<String>>,
    release_max_size: Option<String>,
    release_max_files: Option<u64>,
    data_quota: Option<String>,
    node: Option<String>,
    advertise: Option<String>,
    shared_dir: Option<PathBuf>,
    lease: Option<HumanDuration>,
    cluster_cidrs: Option<Vec<String>>,
    cache_max_size: Option<String>,
    checkpoint_max_size: Option<String>,
    criu_dir: Option<PathBuf>,
    shared_pool: Option<usize>,
    database: Option<DatabaseFileConfig>,
    acme: Option<AcmeFileConfig>,
}

/// `[acme]` in the config file: ACME is on when it is there.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AcmeFileConfig {
    /// The directory URL [default: Let's Encrypt's production directory].
    directory: Option<String>,
    /// The account's contact address.
    email: Option<String>,
    /// A PEM root to trust for the directory's HTTPS (a test CA such as pebble's).
    ca_file: Option<PathBuf>,
}

/// `[database]` in the config file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DatabaseFileConfig {
    socket: Option<PathBuf>,
    prefix: Option<String>,
    defaults_file: Option<PathBuf>,
    max_user_connections: Option<u32>,
}

pub async fn execute(args: ServeArgs, data_dir: &Path) -> Result<u8, Failure> {
    let text = match &args.config {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read config file {}", p.display()))
                .or_exit(Exit::Usage)?,
        ),
        None => None,
    };
    let config = settings(args, text.as_deref(), data_dir)?;
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel::<hako_control::Bound>();
    let data = data_dir.display().to_string();
    tokio::spawn(async move {
        if let Ok(b) = bound_rx.await {
            let https = b
                .https
                .map(|a| format!(" and https://{a}"))
                .unwrap_or_default();
            eprintln!(
                "hako: serving sites on http://{}{https} (API http://{}, data {data})",
                b.proxy, b.api
            );
        }
    });
    hako_control::serve(config, bound_tx, shutdown_signal())
        .await
        .context("hako serve failed")
        .or_exit(Exit::Failure)?;
    Ok(0)
}

/// The daemon's settings from its options and the text of its config file (options win).
/// Anything wrong in either is a usage error naming the setting.
fn settings(
    args: ServeArgs,
    file_text: Option<&str>,
    data_dir: &Path,
) -> Result<hako_control::ServeConfig, Failure> {
    let file: FileConfig = match file_text {
        Some(text) => {
            let shown = args.config.as_deref().unwrap_or(Path::new("-")).display();
            toml::from_str(text)
                .with_context(|| format!("config file {shown} is not valid"))
                .or_exit(Exit::Usage)?
        }
        None => FileConfig::default(),
    };
    let mut config = hako_control::ServeConfig::new(data_dir);
    if let Some(a) = args.listen.or(file.listen) {
        config.listen = a;
    }
    if let Some(a) = args.api.or(file.api) {
        config.api = a;
    }
    config.https = args.https.or(file.https);
    if let Some(acme) = file.acme {
        let directory = acme
            .directory
            .unwrap_or_else(|| hako_tls::acme::LETS_ENCRYPT.to_string());
        if !directory.starts_with("https://") {
            return Err(Failure::new(
                Exit::Usage,
                anyhow::anyhow!(
                    "config setting acme.directory {directory:?} must be an https:// URL (Let's Encrypt's is {})",
                    hako_tls::acme::LETS_ENCRYPT
                ),
            ));
        }
        if config.https.is_none() {
            return Err(Failure::new(
                Exit::Usage,
                anyhow::anyhow!(
                    "[acme] needs an HTTPS listener to serve the certificates: add --https ADDR or https = \"0.0.0.0:443\""
                ),
            ));
        }
        config.acme = Some(hako_tls::AcmeConfig {
            directory,
            email: acme.email,
            ca_file: acme.ca_file,
        });
    }
    if let Some(s) = args.store.or(file.store) {
        config.store = s.parse().or_exit(Exit::Usage)?;
    }
    if let Some(p) = args.prefix.or(file.prefix) {
        config.runtime.prefix = p;
    }
    if let Some(s) = args.subnet.or(file.subnet) {
        config.runtime.subnet = s
            .parse()
            .map_err(|e: String| anyhow::anyhow!(e))
            .or_exit(Exit::Usage)?;
    }
    if let Some(r) = file.state_root {
        config.runtime.state_root = r;
    }
    if let Some(g) = args.stop_grace.or(file.stop_grace) {
        config.stop_grace = g.0;
    }
    let trusted = if args.trusted_proxies.is_empty() {
        file.trusted_proxies.unwrap_or_default()
    } else {
        args.trusted_proxies
    };
    config.proxy.trusted_proxies = hako_proxy::TrustedProxies::parse(&trusted)
        .map_err(anyhow::Error::from)
        .or_exit(Exit::Usage)?;
    if let Some(s) = &file.release_max_size {
        config.storage.release_max_bytes = size("release_max_size", s)?;
    }
    if let Some(n) = file.release_max_files {
        config.storage.release_max_files = n;
    }
    if let Some(s) = &file.data_quota {
        config.storage.data_quota = match s.as_str() {
            "none" => None,
            s => Some(size("data_quota", s)?),
        };
    }
    config.runtime.cluster_cidrs = args.cluster.cidrs(file.cluster_cidrs.as_deref())?;
    config.node = args.cluster.node.or(file.node);
    config.advertise = args.cluster.advertise.or(file.advertise);
    config.shared_dir = args.cluster.shared_dir.or(file.shared_dir);
    if let Some(l) = args.cluster.lease.or(file.lease) {
        config.lease_ttl = l.0;
    }
    config.run_node = !args.no_node;
    if config.shared_dir.is_some() && !matches!(config.store, hako_store::StoreSpec::Etcd { .. }) {
        return Err(anyhow::anyhow!(
            "--shared-dir is for a cluster: give --store etcd://… too"
        ))
        .or_exit(Exit::Usage);
    }
    if let Some(s) = &file.checkpoint_max_size {
        config.checkpoint_max_bytes = size("checkpoint_max_size", s)?;
    }
    if let Some(s) = args.cluster.cache_max_size {
        config.blob_cache_max_bytes = s.0;
    } else if let Some(s) = &file.cache_max_size {
        config.blob_cache_max_bytes = size("cache_max_size", s)?;
    }
    config.criu_dir = file.criu_dir;
    if let Some(n) = file.shared_pool {
        if n > MAX_SHARED_POOL {
            return Err(Failure::new(
                Exit::Usage,
                anyhow::anyhow!("shared_pool = {n} is too many: give at most {MAX_SHARED_POOL}"),
            ));
        }
        config.shared_pool = n;
    }
    let db = file.database.unwrap_or_default();
    if let Some(s) = args.database_socket.or(db.socket) {
        config.database.socket = s;
    }
    config.database.prefix = db.prefix;
    config.database.defaults_file = db.defaults_file;
    if let Some(n) = db.max_user_connections {
        config.database.max_user_connections = n;
    }
    Ok(config)
}

/// A size from the config file ("1GiB"), or a usage error naming the setting.
fn size(setting: &str, value: &str) -> Result<u64, Failure> {
    let n: hako_model::ByteSize = value
        .parse()
        .with_context(|| format!("config setting {setting}"))
        .or_exit(Exit::Usage)?;
    Ok(n.0)
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("hako: stopping (instances get their grace period)");
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_config_file_reads_durations_like_everything_else() {
        let c: FileConfig = toml::from_str("stop_grace = \"1m30s\"").unwrap();
        assert_eq!(c.stop_grace.map(|d| d.0), Some(Duration::from_secs(90)));
        let err = toml::from_str::<FileConfig>("stop_grace = \"45\"").unwrap_err();
        assert!(err.to_string().contains("add one, like 45s"), "{err}");
        let err = toml::from_str::<FileConfig>("stop_grace = 45").unwrap_err();
        assert!(err.to_string().contains("add one, like 45s"), "{err}");
    }

    #[test]
    fn the_node_cache_bound_comes_from_the_flag_or_the_file() {
        let dir = Path::new("/tmp/hako-test-none");
        let c = settings(ServeArgs::default(), None, dir).unwrap();
        assert_eq!(c.blob_cache_max_bytes, 16 << 30);
        let c = settings(
            ServeArgs::default(),
            Some("cache_max_size = \"2GiB\"\n"),
            dir,
        )
        .unwrap();
        assert_eq!(c.blob_cache_max_bytes, 2 << 30);
        let mut args = ServeArgs::default();
        args.cluster.cache_max_size = Some("1GB".parse().unwrap());
        let c = settings(args, Some("cache_max_size = \"2GiB\"\n"), dir).unwrap();
        assert_eq!(c.blob_cache_max_bytes, 1_000_000_000, "the flag wins");
        let err = settings(
            ServeArgs::default(),
            Some("cache_max_size = \"lots\"\n"),
            dir,
        )
        .unwrap_err();
        assert!(format!("{err:?}").contains("cache_max_size"), "{err:?}");
    }

    #[test]
    fn acme_is_off_by_default_and_needs_https() {
        let dir = Path::new("/tmp/hako-test-none");
        let c = settings(ServeArgs::default(), None, dir).unwrap();
        assert!(c.acme.is_none() && c.https.is_none());
        let text = "https = \"127.0.0.1:8443\"\n[acme]\nemail = \"ops@example.com\"\n";
        let c = settings(ServeArgs::default(), Some(text), dir).unwrap();
        let acme = c.acme.unwrap();
        assert_eq!(acme.directory, hako_tls::acme::LETS_ENCRYPT);
        assert_eq!(acme.email.as_deref(), Some("ops@example.com"));
        assert_eq!(c.https, Some("127.0.0.1:8443".parse().unwrap()));
        let err = settings(ServeArgs::default(), Some("[acme]\n"), dir).unwrap_err();
        assert!(format!("{err:?}").contains("--https"), "{err:?}");
        let plain = "https = \"127.0.0.1:8443\"\n[acme]\ndirectory = \"http://x/dir\"\n";
        let err = settings(ServeArgs::default(), Some(plain), dir).unwrap_err();
        assert!(format!("{err:?}").contains("https:// URL"), "{err:?}");
        assert!(toml::from_str::<FileConfig>("[acme]\ndirectry = \"x\"\n").is_err());
    }

    /// The config file the Debian package installs as /etc/hako/hako.toml.
    const SHIPPED: &str = include_str!("../../debian/hako.toml");

    /// `text` with its commented-out settings switched on: a line `# key = value` or
    /// `# [table]` loses its `# ` (prose comments stay).
    fn uncommented(text: &str) -> String {
        let setting = |l: &str| {
            let key = l.split(" = ").next().unwrap_or_default();
            let is_key = !key.is_empty()
                && key.len() < l.len()
                && key.bytes().all(|c| c.is_ascii_lowercase() || c == b'_');
            let is_table = l.starts_with('[')
                && l.ends_with(']')
                && l[1..l.len() - 1]
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c == b'_');
            is_key || is_table
        };
        text.lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if setting(rest) => rest,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_packaged_config_serves_on_the_embedded_store_in_var_lib_hako() {
        let data = Path::new("/var/lib/hako");
        let args = ServeArgs {
            config: Some("/etc/hako/hako.toml".into()),
            ..ServeArgs::default()
        };
        let c = settings(args, Some(SHIPPED), data).unwrap();
        assert_eq!(c.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(c.api, "127.0.0.1:7070".parse().unwrap());
        assert_eq!(c.store, hako_store::StoreSpec::in_data_dir(data));
        assert_eq!(c.data_dir, data);
        assert!(c.https.is_none() && c.acme.is_none());
        assert_eq!(c.runtime.prefix, "hako");
    }

    #[test]
    fn every_setting_the_packaged_config_shows_is_valid_and_its_defaults_are_true() {
        let data = Path::new("/var/lib/hako");
        let all = uncommented(SHIPPED);
        assert!(
            all.contains("\n[acme]\n") && all.contains("\nhttps = "),
            "{all}"
        );
        let on = settings(ServeArgs::default(), Some(&all), data)
            .unwrap_or_else(|e| panic!("{:?}\n{all}", e.error));
        assert!(on.acme.is_some() && on.https.is_some());
        assert!(matches!(on.store, hako_store::StoreSpec::Etcd { .. }));
        // The lines that say "at its default" must say the daemon's defaults.
        let off = settings(ServeArgs::default(), None, data).unwrap();
        assert_eq!(on.stop_grace, off.stop_grace);
        assert_eq!(on.runtime.subnet, off.runtime.subnet);
        assert_eq!(on.storage.release_max_bytes, off.storage.release_max_bytes);
        assert_eq!(on.storage.release_max_files, off.storage.release_max_files);
        assert_eq!(on.storage.data_quota, off.storage.data_quota);
        assert_eq!(on.checkpoint_max_bytes, off.checkpoint_max_bytes);
        assert_eq!(on.shared_pool, off.shared_pool);
        assert_eq!(on.database.socket, off.database.socket);
        assert_eq!(
            on.database.max_user_connections,
            off.database.max_user_connections
        );
    }

    #[test]
    fn cluster_cidrs_come_from_the_options_or_the_file_and_must_be_ipv4_networks() {
        let dir = Path::new("/tmp/hako-test-none");
        let c = settings(ServeArgs::default(), None, dir).unwrap();
        assert!(c.runtime.cluster_cidrs.is_empty());
        let file = "cluster_cidrs = [\"10.99.0.0/24\", \"10.77.0.0/16\"]\n";
        let c = settings(ServeArgs::default(), Some(file), dir).unwrap();
        let cidrs: Vec<String> = c
            .runtime
            .cluster_cidrs
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(cidrs, ["10.99.0.0/24", "10.77.0.0/16"]);
        let mut args = ServeArgs::default();
        args.cluster.cluster_cidrs = vec!["10.0.0.0/8".into()];
        let c = settings(args, Some(file), dir).unwrap();
        assert_eq!(
            c.runtime.cluster_cidrs.len(),
            1,
            "the option wins over the file"
        );
        let mut args = ServeArgs::default();
        args.cluster.cluster_cidrs = vec!["10.77.0.0/33".into()];
        let err = settings(args, None, dir).unwrap_err();
        assert_eq!(err.exit.code(), Exit::Usage.code());
        assert!(format!("{err:?}").contains("10.77.0.0/33"), "{err:?}");
    }
}

#[cfg(test)]
#[path = "../../fuzz/serve_config.rs"]
mod fuzz;
