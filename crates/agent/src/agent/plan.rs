//! Planning a new instance of an app: its id, its container's spec (image layers, code
//! release at `/app`, data at `/data`, the database socket, environment, user, limits,
//! network, log), decided before anything is made in the kernel, so that a cold start, a
//! warm-pool container and a restore from a checkpoint all get the very same container.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use hako_image::Rootfs;
use hako_model::{App, AppNetwork};
use hako_runtime::{BindMount, Container, ContainerSpec, LogSpec, NetworkMode, RootfsSpec, User};

use super::{Agent, ImageStamp, LaunchError, Prepared, free_port};

/// A new instance of an app, decided but not made yet.
#[derive(Debug)]
pub(super) struct Plan {
    pub(super) id: String,
    /// The [`App::storage_key`] of the app.
    key: String,
    pub(super) spec: ContainerSpec,
    port: u16,
    network: NetworkMode,
    pub(super) log: PathBuf,
    image: ImageStamp,
    fingerprint: u64,
    /// The node's cached copies of the release and image layers it mounts (a cluster node).
    blobs: Vec<crate::blobs::BlobUse>,
    /// Time spent getting those (copying and verifying on a first use).
    fetched: std::time::Duration,
}

impl Plan {
    /// The instance, with the container made from this plan.
    pub(super) fn with(self, container: Container) -> Prepared {
        let ip = match self.network {
            NetworkMode::Host => std::net::Ipv4Addr::LOCALHOST,
            _ => container.address().unwrap_or(std::net::Ipv4Addr::LOCALHOST),
        };
        Prepared {
            id: self.id,
            key: self.key,
            container,
            addr: SocketAddr::from((ip, self.port)),
            port: self.port,
            log: self.log,
            image: self.image,
            fingerprint: self.fingerprint,
            limits: self.spec.limits,
            blobs: self.blobs,
            fetched: self.fetched,
        }
    }
}

impl Agent {
    /// Decides everything about a new instance of `app` but makes nothing in the kernel:
    /// its id, its container's spec, its port and log. Blocking (image lookup, directories).
    pub(super) fn plan(&self, app: &App) -> Result<Plan, LaunchError> {
        let spec = &app.spec;
        let image = self.resolve_image(app)?;
        let stamp = ImageStamp::of(&image);
        let fetching = std::time::Instant::now();
        let (image_rootfs, mut blobs) = self.verified_rootfs(app, &image)?;
        let mut fetched = fetching.elapsed();
        let rootfs = match image_rootfs {
            Rootfs::Layers(l) => RootfsSpec::Layers(l),
            Rootfs::Host { skeleton, binds } => RootfsSpec::Host {
                skeleton,
                binds: binds.into_iter().map(|b| (b.source, b.target)).collect(),
            },
        };
        let user: User = match &spec.user {
            Some(u) => u
                .parse()
                .map_err(|e: hako_runtime::SpecError| LaunchError::spec(e.to_string()))?,
            None => User::default(),
        };
        let creds = hako_runtime::resolve_user(&user, &rootfs)
            .map_err(|e| LaunchError::spec(e.to_string()))?;
        let key = app.storage_key();
        let code = match app.release {
            Some(n) => {
                let path = self.releases.path(&key, n).ok_or_else(|| {
                    LaunchError::spec(format!(
                        "release {n} of {} is missing on this node",
                        spec.name
                    ))
                })?;
                let fetching = std::time::Instant::now();
                let (path, used) = self.verified_release(app, n, path)?;
                fetched += fetching.elapsed();
                blobs.extend(used);
                path
            }
            None => self.empty_dir(&key)?,
        };
        let data = self.data_dir_for(&key, creds.uid, creds.gid)?;
        let (port, network) = match spec.network {
            AppNetwork::Isolated => (spec.port, NetworkMode::Isolated),
            AppNetwork::Host => (
                free_port().map_err(|e| LaunchError::node(format!("no free port: {e}")))?,
                NetworkMode::Host,
            ),
        };
        let argv = spec
            .command(port)
            .map_err(|e| LaunchError::spec(e.to_string()))?;
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{n:x}", spec.name);
        let logs = self.logs_dir(&key);
        std::fs::create_dir_all(&logs)
            .map_err(|e| LaunchError::node(format!("cannot create {}: {e}", logs.display())))?;
        let log = logs.join(format!("{id}.log"));

        let mut data = BindMount::data(data);
        data.read_only = self
            .data_usage
            .over_quota(&key, &data.source, &self.config.storage);
        let mut mounts = vec![BindMount::app_code(code), data];
        if spec.database {
            let (Some(_), Some(socket_dir)) =
                (&app.database_grant, &self.config.database_socket_dir)
            else {
                return Err(LaunchError::spec(if app.database_grant.is_none() {
                    "the app asks for a database but none was made for it: update it with --database again".to_string()
                } else {
                    "the app uses a database but this node has no database service: set [database] in hako serve's config".to_string()
                }));
            };
            if !socket_dir.is_dir() {
                return Err(LaunchError::node(format!(
                    "the database server's socket directory {} does not exist: is MariaDB running?",
                    socket_dir.display()
                )));
            }
            mounts.push(BindMount {
                source: socket_dir.clone(),
                target: hako_model::database::SOCKET_DIR_IN_CONTAINER.into(),
                read_only: true,
            });
        }

        let mut cs = ContainerSpec::new(rootfs, argv[0].clone());
        cs.args = argv[1..].to_vec();
        cs.env = app.environment(port);
        cs.env.insert("HAKO_APP".into(), spec.name.clone());
        cs.env.insert("HAKO_INSTANCE".into(), id.clone());
        // Which image version runs: caches kept on /data (compiled PHP) key on it.
        cs.env.insert(
            "HAKO_IMAGE".into(),
            format!("{}:{}", image.name, image.version),
        );
        cs.workdir = spec.workdir.clone().into();
        cs.user = user;
        cs.hostname = spec.name.clone();
        cs.limits = crate::limits::container_limits(spec);
        cs.network = network;
        cs.seccomp = match spec.seccomp {
            hako_model::SeccompProfile::Default => hako_runtime::Seccomp::Default,
            hako_model::SeccompProfile::Unconfined => hako_runtime::Seccomp::Unconfined,
        };
        cs.mounts = mounts;
        cs.instance = Some(id.clone());
        cs.log = LogSpec::File {
            path: log.clone(),
            max_bytes: self.config.log_max_bytes,
        };

        Ok(Plan {
            id,
            key,
            spec: cs,
            port,
            network,
            log,
            image: stamp,
            fingerprint: app.fingerprint(),
            blobs,
            fetched,
        })
    }
}
