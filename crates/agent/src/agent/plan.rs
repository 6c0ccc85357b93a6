//! Planning a new instance of an app: its id, its container's spec (image layers, code
//! release at `/app`, data at `/data`, the database socket, environment, user, limits,
//! network, log), decided before anything is made in the kernel, so that a cold start, a
//! warm-pool container and a restore from a checkpoint all get the very same container.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use hako_image::Rootfs;
use hako_model::{App, AppNetwork};
use hako_runtime::{
    BindMount, Container, ContainerSpec, Limits, LogSpec, NetworkMode, RootfsSpec, User,
};

use super::{Agent, ImageStamp, LaunchError, Prepared, free_port};

/// A new instance of an app, decided but not made yet.
#[derive(Debug)]
pub(super) struct Plan {
    pub(super) id: String,
    pub(super) spec: ContainerSpec,
    port: u16,
    network: NetworkMode,
    pub(super) log: PathBuf,
    image: ImageStamp,
    fingerprint: u64,
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
            container,
            addr: SocketAddr::from((ip, self.port)),
            port: self.port,
            log: self.log,
            image: self.image,
            fingerprint: self.fingerprint,
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
        let rootfs = match image.rootfs() {
            Rootfs::Layers(l) => RootfsSpec::Layers(l),
            Rootfs::Host { skeleton, binds } => RootfsSpec::Host {
                skeleton,
                binds: binds.into_iter().map(|b| (b.source, b.target)).collect(),
            },
        };
        let user: User = match &spec.user {
            Some(u) => u
                .parse()
                .map_err(|e: hako_runtime::SpecError| LaunchError::new(e.to_string()))?,
            None => User::default(),
        };
        let creds = hako_runtime::resolve_user(&user, &rootfs)
            .map_err(|e| LaunchError::new(e.to_string()))?;
        let code = match app.release {
            Some(n) => self.releases.path(&spec.name, n).ok_or_else(|| {
                LaunchError::new(format!(
                    "release {n} of {} is missing on this node",
                    spec.name
                ))
            })?,
            None => self.empty_dir(&spec.name)?,
        };
        let data = self.data_dir_for(&spec.name, creds.uid, creds.gid)?;
        let (port, network) = match spec.network {
            AppNetwork::Isolated => (spec.port, NetworkMode::Isolated),
            AppNetwork::Host => (
                free_port().map_err(|e| LaunchError::new(format!("no free port: {e}")))?,
                NetworkMode::Host,
            ),
        };
        let argv = spec
            .command(port)
            .map_err(|e| LaunchError::new(e.to_string()))?;
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{n:x}", spec.name);
        let logs = self.logs_dir(&spec.name);
        std::fs::create_dir_all(&logs)
            .map_err(|e| LaunchError::new(format!("cannot create {}: {e}", logs.display())))?;
        let log = logs.join(format!("{id}.log"));

        let mut mounts = vec![BindMount::app_code(code), BindMount::data(data)];
        if spec.database {
            let (Some(_), Some(socket_dir)) =
                (&app.database_grant, &self.config.database_socket_dir)
            else {
                return Err(LaunchError::new(if app.database_grant.is_none() {
                    "the app asks for a database but none was made for it: update it with --database again".to_string()
                } else {
                    "the app uses a database but this node has no database service: set [database] in hako serve's config".to_string()
                }));
            };
            if !socket_dir.is_dir() {
                return Err(LaunchError::new(format!(
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
        cs.limits = Limits {
            memory_max: Some(spec.memory.0),
            cpu_cores: spec.cpu,
            pids_max: Some(spec.pids),
        };
        cs.network = network;
        cs.mounts = mounts;
        cs.log = LogSpec::File {
            path: log.clone(),
            max_bytes: self.config.log_max_bytes,
        };

        Ok(Plan {
            id,
            spec: cs,
            port,
            network,
            log,
            image: stamp,
            fingerprint: app.fingerprint(),
        })
    }
}
