//! The [`Runtime`]: owns a prefix, its cgroup scope, bridge and state directory, and makes
//! containers.
//!
//! Making a container ([`Runtime::create`]) clones a child into new namespaces and, while the
//! child builds its root filesystem, the parent joins it to its cgroup (v1; on v2 the child is
//! born in it) and plugs its veth into the bridge. The call returns once the child is fully
//! prepared and parked just before exec; [`Container::start`] releases it.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hako_cgroup::{Cgroup, CgroupManager, Version};

use crate::child::channel::{self, ChildEnds};
use crate::child::message::ParentMessage;
use crate::child::{self, ChildPlan};
use crate::config::{RuntimeConfig, base36};
use crate::container::{Container, Timings};
use crate::error::RuntimeError;
use crate::leftovers;
use crate::mounts::{self, MountInputs};
use crate::network::{Attachment, Network};
use crate::seccomp::Seccomp;
use crate::spawner::Spawner;
use crate::spec::{ContainerSpec, LogSpec, NetworkMode};
use crate::sys;
use crate::user;

mod slot;

pub use slot::Slot;

/// Makes and owns containers under one prefix.
#[derive(Debug)]
pub struct Runtime {
    pub(crate) config: RuntimeConfig,
    pub(crate) cgroups: Box<dyn CgroupManager>,
    network: Mutex<Option<Arc<Network>>>,
    counter: AtomicU64,
    pub(crate) resolv_conf: Option<String>,
    spawner: Spawner,
    /// The thread CRIU runs from, started on first use (see `checkpoint/worker.rs`).
    criu_worker: std::sync::OnceLock<crate::checkpoint::Worker>,
    /// The host's network namespace (host-network containers join it).
    host_netns: File,
    /// flock on `<state_root>/<prefix>.lock`, held for the runtime's lifetime.
    _lock: File,
}

impl Runtime {
    /// Sets up a runtime: checks privileges, takes the prefix's lock, detects cgroups and
    /// removes whatever an earlier, dead runtime of any prefix under the same state root left.
    pub fn new(config: RuntimeConfig) -> Result<Arc<Runtime>, RuntimeError> {
        if !sys::is_root() {
            return Err(RuntimeError::NotRoot);
        }
        config.validate().map_err(RuntimeError::Config)?;
        let io = |what: &str, path: &PathBuf| {
            let what = what.to_string();
            let path = path.clone();
            move |source| RuntimeError::Io { what, path, source }
        };
        std::fs::create_dir_all(&config.state_root).map_err(io("create", &config.state_root))?;
        let lock = leftovers::lock(&config.state_root, &config.prefix)?
            .ok_or_else(|| RuntimeError::Busy(config.prefix.clone()))?;
        leftovers::sweep(&config.state_root, Some(&config.prefix));
        let state_dir = config.state_dir();
        let cgroups = hako_cgroup::detect(&config.prefix)?;
        // What our own dead predecessor with this prefix left behind.
        leftovers::remove_prefix(&config.state_root, &config.prefix, cgroups.as_ref(), false);
        std::fs::create_dir_all(&state_dir).map_err(io("create", &state_dir))?;
        if config.favor_dynmods {
            crate::tune::favor_dynmods(cgroups.version());
        }
        let resolv_conf = std::fs::read_to_string("/etc/resolv.conf")
            .ok()
            .filter(|r| {
                !r.lines()
                    .any(|l| l.trim_start().starts_with("nameserver 127."))
            });
        Ok(Arc::new(Runtime {
            config,
            cgroups,
            network: Mutex::new(None),
            counter: AtomicU64::new(0),
            resolv_conf,
            host_netns: File::open("/proc/thread-self/ns/net")
                .map_err(RuntimeError::sys("open the host network namespace"))?,
            spawner: Spawner::start().map_err(RuntimeError::sys("start the spawner thread"))?,
            criu_worker: std::sync::OnceLock::new(),
            _lock: lock,
        }))
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// The cgroup version in use on this host.
    pub fn cgroup_version(&self) -> Version {
        self.cgroups.version()
    }

    /// A new container id, unique within this runtime.
    pub(crate) fn next_id(&self) -> String {
        base36(self.counter.fetch_add(1, Ordering::Relaxed))
    }

    /// The CRIU thread, started on first use.
    pub(crate) fn criu_worker(&self) -> Result<&crate::checkpoint::Worker, RuntimeError> {
        if let Some(w) = self.criu_worker.get() {
            return Ok(w);
        }
        let w = crate::checkpoint::Worker::start()
            .map_err(RuntimeError::sys("start the CRIU thread"))?;
        Ok(self.criu_worker.get_or_init(|| w))
    }

    /// The bridge network, set up on first use.
    pub(crate) fn network(&self) -> Result<Arc<Network>, RuntimeError> {
        let mut n = self.network.lock().expect("network lock");
        if let Some(net) = n.as_ref() {
            return Ok(net.clone());
        }
        let net = Arc::new(Network::setup(
            &self.config.prefix,
            self.config.subnet,
            self.config.nat,
            &self.config.cluster_cidrs,
        )?);
        *n = Some(net.clone());
        Ok(net)
    }

    /// Prepares a container and parks it just before exec; [`Container::start`] releases it.
    ///
    /// Blocking (a few milliseconds): from async code call it in `spawn_blocking`.
    pub fn create(self: &Arc<Self>, spec: &ContainerSpec) -> Result<Container, RuntimeError> {
        self.create_with(spec, None)
    }

    /// Like [`Runtime::create`], in a [`Slot`] of the shared pool (made earlier by
    /// [`Runtime::make_slot`]): its cgroup (given `spec`'s limits now) and its network
    /// namespace, already on the bridge with its address, are the container's; only the
    /// mount, pid, uts and ipc namespaces, the root filesystem and the mounts are made now.
    /// `spec` must use the isolated network.
    pub fn create_in(
        self: &Arc<Self>,
        spec: &ContainerSpec,
        slot: Slot,
    ) -> Result<Container, RuntimeError> {
        if spec.network != NetworkMode::Isolated {
            return Err(RuntimeError::Config(
                "a slot of the shared pool holds an isolated network: the spec must use it".into(),
            ));
        }
        self.create_with(spec, Some(slot))
    }

    fn create_with(
        self: &Arc<Self>,
        spec: &ContainerSpec,
        slot: Option<Slot>,
    ) -> Result<Container, RuntimeError> {
        let t0 = Instant::now();
        spec.validate()?;
        let creds = user::resolve(&spec.user, &spec.rootfs)?;
        let (id, slot) = match slot {
            Some(s) => {
                let (id, parts) = s.take();
                (id, Some(parts))
            }
            None => (self.next_id(), None),
        };
        let dir = self.config.state_dir().join(&id);
        std::fs::create_dir(&dir).map_err(|source| RuntimeError::Io {
            what: "create".into(),
            path: dir.clone(),
            source,
        })?;
        let mut undo = Undo {
            dir: Some(dir.clone()),
            cgroup: None,
            net: None,
            child: None,
        };
        let (cgroup, network, attachment, net_cfg, slot_netns) = match slot {
            Some(parts) => {
                undo.cgroup = Some(parts.cgroup.clone());
                undo.net = Some((parts.net.clone(), parts.att.clone()));
                parts.cgroup.set_limits(&spec.limits)?;
                // Configured already: the child joins it and leaves it as it is.
                (
                    parts.cgroup,
                    Some(parts.net),
                    Some(parts.att),
                    None,
                    Some(parts.netns),
                )
            }
            None => {
                let cgroup: Arc<dyn Cgroup> = Arc::from(self.cgroups.create(&id, &spec.limits)?);
                undo.cgroup = Some(cgroup.clone());
                let (network, attachment, net_cfg) = match spec.network {
                    NetworkMode::Isolated => {
                        let net = self.network()?;
                        let (att, cfg) = net.reserve()?;
                        undo.net = Some((net.clone(), att.clone()));
                        (Some(net), Some(att), Some(cfg))
                    }
                    _ => (None, None, None),
                };
                (cgroup, network, attachment, net_cfg, None)
            }
        };
        let (chan, child_ends) = channel::channel().map_err(RuntimeError::sys("pipe"))?;
        let stdio = Stdio::new(&spec.log, creds.uid, creds.gid)?;
        let hosts = hosts_file(&spec.hostname, attachment.as_ref());
        let ops = mounts::plan(&MountInputs {
            dir: &dir,
            rootfs: &spec.rootfs,
            mounts: &spec.mounts,
            scratch_bytes: spec.scratch_bytes,
            hostname: &spec.hostname,
            hosts,
            resolv_conf: match spec.network {
                NetworkMode::None => None,
                _ => self.resolv_conf.clone(),
            },
            instance: spec.instance.as_deref(),
        });
        let nofile = self.config.nofile.min(hard_nofile());
        let mut plan = build_plan(spec, &creds, ops, net_cfg, &stdio, &child_ends, nofile);
        if spec.network == NetworkMode::Host {
            plan.host_netns_fd = self.host_netns.as_raw_fd();
        }
        if let Some(ns) = &slot_netns {
            plan.host_netns_fd = ns.as_raw_fd();
            plan.lo_up = false;
        }
        plan.seccomp = match spec.seccomp {
            Seccomp::Default => Some(crate::seccomp::default_filters()?),
            Seccomp::Unconfined => None,
        };

        let mut flags =
            (libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC)
                as u64;
        if spec.network != NetworkMode::Host {
            flags |= libc::CLONE_NEWNET as u64;
        }
        let cgroup_fd = cgroup.clone_into_fd().map(|fd| fd.as_raw_fd());
        if cgroup_fd.is_some() {
            flags |= libc::CLONE_NEWCGROUP as u64;
        }
        // The clone happens on the spawner thread (see spawner.rs for why).
        let (pid, pidfd) = self
            .spawner
            .clone(&plan, flags, cgroup_fd)
            .map_err(RuntimeError::sys("clone3"))?;
        let t_cloned = Instant::now();
        undo.child = Some(pidfd);
        // The child's ends belong to the child now.
        drop(child_ends);
        let log_reader = stdio.into_parent_side();

        if self.cgroups.version() == Version::V1 {
            cgroup.add_pid(pid)?;
        }
        let slotted = slot_netns.is_some();
        if let (Some(net), Some(att), false) = (&network, &attachment, slotted) {
            net.attach(att, pid)?;
        }
        chan.send(ParentMessage::Go)
            .map_err(RuntimeError::sys("signal the container"))?;
        chan.wait_parked(&plan, &spec.log)?;
        drop(slot_netns);
        if let (Some(net), Some(att), false) = (&network, &attachment, slotted) {
            net.wait_forwarding(att);
        }
        let t_parked = Instant::now();
        let pidfd = undo.child.take().expect("set above");
        let net = undo.net.take();
        let dir = undo.dir.take().expect("set above");
        undo.cgroup = None;
        let log_done = match (log_reader, &spec.log) {
            (Some(reader), LogSpec::File { path, max_bytes }) => {
                Some(spawn_pump(reader, path.clone(), *max_bytes))
            }
            _ => None,
        };
        Ok(Container::new(
            self.clone(),
            id,
            pid,
            pidfd,
            cgroup,
            net,
            dir,
            chan,
            plan,
            spec.log.clone(),
            log_done,
            Timings {
                clone: t_cloned - t0,
                prepare: t_parked - t0,
                release: None,
            },
        ))
    }

    /// Creates a container and starts it at once.
    pub fn run(self: &Arc<Self>, spec: &ContainerSpec) -> Result<Container, RuntimeError> {
        let c = self.create(spec)?;
        c.start()?;
        Ok(c)
    }

    /// Removes the bridge, firewall tables, cgroup scope and state directory. Containers must
    /// have been removed first (any left are killed and removed here too).
    pub fn shutdown(&self) {
        let net = self.network.lock().expect("network lock").take();
        leftovers::remove_prefix(
            &self.config.state_root,
            &self.config.prefix,
            self.cgroups.as_ref(),
            true,
        );
        if let Some(net) = net {
            net.teardown();
        }
        let _ = std::fs::remove_file(
            self.config
                .state_root
                .join(format!("{}.lock", self.config.prefix)),
        );
    }
}

/// Undoes a half-made container when `create` fails part-way.
struct Undo {
    dir: Option<PathBuf>,
    cgroup: Option<Arc<dyn Cgroup>>,
    net: Option<(Arc<Network>, Attachment)>,
    child: Option<OwnedFd>,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(pidfd) = self.child.take() {
            let _ = sys::pidfd_send_signal(&pidfd, libc::SIGKILL);
            let _ = sys::waitid_pidfd(&pidfd, true);
        }
        if let Some(cg) = self.cgroup.take()
            && let Err(e) = cg.destroy()
        {
            tracing::warn!(error = %e, "could not remove the cgroup of a failed container");
        }
        if let Some((net, att)) = self.net.take() {
            net.release(&att);
        }
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// stdin/stdout/stderr for the child and, for a log file, the parent's reading end.
struct Stdio {
    fds: [Option<OwnedFd>; 3],
    reader: Option<OwnedFd>,
}

impl Stdio {
    /// The log pipe belongs to the container's user, so that a server which reopens
    /// `/dev/stdout` or `/dev/stderr` by path (Apache's `ErrorLog /dev/stderr`) may.
    fn new(log: &LogSpec, uid: u32, gid: u32) -> Result<Stdio, RuntimeError> {
        let null = |write: bool| -> Result<OwnedFd, RuntimeError> {
            let f = std::fs::OpenOptions::new()
                .read(!write)
                .write(write)
                .open("/dev/null")
                .map_err(RuntimeError::sys("open /dev/null"))?;
            Ok(OwnedFd::from(f))
        };
        Ok(match log {
            LogSpec::Inherit => Stdio {
                fds: [None, None, None],
                reader: None,
            },
            LogSpec::Null => Stdio {
                fds: [Some(null(false)?), Some(null(true)?), Some(null(true)?)],
                reader: None,
            },
            LogSpec::File { .. } => {
                let (r, w) = sys::pipe().map_err(RuntimeError::sys("pipe"))?;
                sys::fchown(&w, uid, gid).map_err(RuntimeError::sys("chown the log pipe"))?;
                let w2 = w.try_clone().map_err(RuntimeError::sys("dup"))?;
                Stdio {
                    fds: [Some(null(false)?), Some(w), Some(w2)],
                    reader: Some(r),
                }
            }
        })
    }

    fn raw(&self) -> [i32; 3] {
        let f = |o: &Option<OwnedFd>| o.as_ref().map_or(-1, |fd| fd.as_raw_fd());
        [f(&self.fds[0]), f(&self.fds[1]), f(&self.fds[2])]
    }

    /// Closes the child's ends, keeping the log reader.
    fn into_parent_side(self) -> Option<OwnedFd> {
        self.reader
    }
}

/// Starts copying the container's output; the receiver fires when all of it is written.
pub(crate) fn spawn_pump(
    reader: OwnedFd,
    path: PathBuf,
    max_bytes: u64,
) -> tokio::sync::oneshot::Receiver<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job = async move {
        crate::log::pump(reader, path, max_bytes).await;
        let _ = tx.send(());
    };
    match tokio::runtime::Handle::try_current() {
        Ok(h) => {
            h.spawn(job);
        }
        Err(_) => {
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(job);
                }
            });
        }
    }
    rx
}

#[allow(clippy::too_many_arguments)]
fn build_plan(
    spec: &ContainerSpec,
    creds: &user::Credentials,
    ops: Vec<child::Op>,
    net: Option<child::NetConfig>,
    stdio: &Stdio,
    child_ends: &ChildEnds,
    nofile: u64,
) -> ChildPlan {
    let cstr = |s: &str| std::ffi::CString::new(s).expect("validated: no NUL");
    let mut env = spec.env.clone();
    env.entry("PATH".into())
        .or_insert_with(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    env.entry("HOME".into())
        .or_insert_with(|| creds.home.clone());
    env.entry("HOSTNAME".into())
        .or_insert_with(|| spec.hostname.clone());
    let exec_candidates = if spec.command.contains('/') {
        vec![cstr(&spec.command)]
    } else {
        env["PATH"]
            .split(':')
            .filter(|d| d.starts_with('/'))
            .map(|d| cstr(&format!("{}/{}", d.trim_end_matches('/'), spec.command)))
            .collect()
    };
    let mut strings = Vec::new();
    strings.push(cstr(&spec.command));
    strings.extend(spec.args.iter().map(|a| cstr(a)));
    let argc = strings.len();
    strings.extend(env.iter().map(|(k, v)| cstr(&format!("{k}={v}"))));
    let mut argv: Vec<*const libc::c_char> = strings[..argc].iter().map(|s| s.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = strings[argc..].iter().map(|s| s.as_ptr()).collect();
    envp.push(std::ptr::null());
    ChildPlan {
        ops,
        hostname: cstr(&spec.hostname),
        lo_up: spec.network != NetworkMode::Host,
        net,
        uid: creds.uid,
        gid: creds.gid,
        groups: creds.groups.clone(),
        keep_caps: child::caps::WEB_SERVER,
        workdir: cstr(&spec.workdir.to_string_lossy()),
        exec_candidates,
        argv,
        envp,
        _strings: strings,
        stdio: stdio.raw(),
        sync_fd: child_ends.sync_r.as_raw_fd(),
        report_fd: child_ends.report_w.as_raw_fd(),
        nofile,
        host_netns_fd: -1,
        seccomp: None,
    }
}

/// Our own hard RLIMIT_NOFILE: containers cannot get more without CAP_SYS_RESOURCE.
fn hard_nofile() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit into a valid struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == -1 {
        return 1024;
    }
    r.rlim_max
}

pub(crate) fn hosts_file(hostname: &str, att: Option<&Attachment>) -> String {
    let mut s = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    match att {
        Some(a) => s += &format!("{}\t{hostname}\n", a.addr),
        None => s += &format!("127.0.1.1\t{hostname}\n"),
    }
    s
}
