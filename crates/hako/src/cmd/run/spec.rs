//! `hako run`'s options turned into a container spec: the image's root filesystem, bind
//! mounts, environment (with `PORT` in host networking), user, limits — and the limits
//! checked against what the host can give, as the API checks an app's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use hako_image::{Image, Rootfs};
use hako_model::{LimitError, NodeCapacity};
use hako_runtime::{BindMount, ContainerSpec, LogSpec, NetworkMode, RootfsSpec};

use super::RunArgs;

/// `hako run`'s memory limit when `--memory` is not given (an app's default too).
pub const DEFAULT_MEMORY: u64 = 256 << 20;
/// `hako run`'s CPU limit in cores when `--cpu` is not given.
pub const DEFAULT_CPU: f64 = 1.0;
/// `hako run`'s process limit when `--pids` is not given (an app's default too).
pub const DEFAULT_PIDS: u64 = 512;

/// Why `hako run`'s options cannot make a spec.
#[derive(Debug, thiserror::Error)]
pub enum RunSpecError {
    /// `--env NAME` without a value names a variable hako itself does not have.
    #[error(
        "--env {0}: {0} is not set in hako's environment; give it a value with --env {0}=VALUE"
    )]
    UnsetEnv(String),
    /// A host path could not be made absolute.
    #[error("cannot resolve the path {}: {source}", .path.display())]
    Path {
        /// The path given.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// No free port for `PORT` in host networking.
    #[error("cannot find a free port for PORT ({0}): pass one with --env PORT=N")]
    NoPort(std::io::Error),
}

/// `--env NAME=VALUE`, or `--env NAME` to pass hako's own value on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvArg {
    /// The variable's name.
    pub name: String,
    /// Its value; `None` takes hako's own.
    pub value: Option<String>,
}

impl FromStr for EnvArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, value) = match s.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (s, None),
        };
        if name.is_empty() {
            return Err(format!("{s:?} has no variable name: use NAME=VALUE"));
        }
        Ok(EnvArg {
            name: name.to_string(),
            value,
        })
    }
}

/// `--mount SRC:DST[:ro|rw]`: a host path visible inside the container (read-write unless `ro`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountArg {
    /// The host path.
    pub source: PathBuf,
    /// The absolute path inside the container.
    pub target: PathBuf,
    /// Read-only.
    pub read_only: bool,
}

impl FromStr for MountArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let (src, dst, read_only) = match parts.as_slice() {
            [src, dst] => (*src, *dst, false),
            [src, dst, "ro"] => (*src, *dst, true),
            [src, dst, "rw"] => (*src, *dst, false),
            [_, _, mode] => {
                return Err(format!("mount mode {mode:?} is not ro or rw"));
            }
            _ => return Err(format!("{s:?} is not SRC:DST or SRC:DST:ro")),
        };
        if src.is_empty() || dst.is_empty() {
            return Err(format!("{s:?} needs both a host path and a container path"));
        }
        if !dst.starts_with('/') {
            return Err(format!(
                "container path {dst:?} must be absolute (start with /)"
            ));
        }
        Ok(MountArg {
            source: src.into(),
            target: dst.into(),
            read_only,
        })
    }
}

/// Refuses limits the host can never give (more cores or memory than it has, more processes
/// than its kernel allows). The lower bounds are the runtime's (`ContainerSpec::validate`).
pub fn check_capacity(args: &RunArgs, capacity: &NodeCapacity) -> Result<(), LimitError> {
    capacity.check(args.memory, args.cpu, args.pids)
}

/// How the runtime mounts an image from the store.
pub fn rootfs_spec(image: &Image) -> RootfsSpec {
    match image.rootfs() {
        Rootfs::Layers(layers) => RootfsSpec::Layers(layers),
        Rootfs::Host { skeleton, binds } => RootfsSpec::Host {
            skeleton,
            binds: binds.into_iter().map(|b| (b.source, b.target)).collect(),
        },
    }
}

/// Builds the spec (not yet validated: the runtime's `validate` says what is wrong).
/// `host_env` reads hako's own environment (for `--env NAME`).
pub fn build(
    args: &RunArgs,
    image: &Image,
    host_env: impl Fn(&str) -> Option<String>,
) -> Result<ContainerSpec, RunSpecError> {
    let (command, rest) = args
        .command
        .split_first()
        .map(|(c, r)| (c.clone(), r.to_vec()))
        .unwrap_or_default();
    let mut spec = ContainerSpec::new(rootfs_spec(image), command);
    spec.args = rest;
    spec.log = LogSpec::Inherit;
    spec.network = args.net;
    spec.seccomp = args.seccomp;
    spec.limits.memory_max = Some(args.memory.unwrap_or(DEFAULT_MEMORY));
    spec.limits.cpu_cores = Some(args.cpu.unwrap_or(DEFAULT_CPU));
    spec.limits.pids_max = Some(args.pids.unwrap_or(DEFAULT_PIDS));
    if let Some(bytes) = args.scratch {
        spec.scratch_bytes = bytes;
    }
    if let Some(user) = &args.user {
        spec.user = user.clone();
    }
    if let Some(h) = &args.hostname {
        spec.hostname = h.clone();
    }
    if let Some(app) = &args.app {
        spec.mounts.push(BindMount::app_code(absolute(app)?));
        spec.workdir = "/app".into();
    }
    if let Some(data) = &args.data {
        spec.mounts.push(BindMount::data(absolute(data)?));
    }
    for m in &args.mounts {
        spec.mounts.push(BindMount {
            source: absolute(&m.source)?,
            target: m.target.clone(),
            read_only: m.read_only,
        });
    }
    if let Some(w) = &args.workdir {
        spec.workdir = w.clone();
    }
    spec.env = environment(&args.env, host_env)?;
    if spec.network == NetworkMode::Host && !spec.env.contains_key("PORT") {
        spec.env.insert("PORT".into(), free_port()?.to_string());
    }
    Ok(spec)
}

/// The container's environment from the `--env` options, later ones winning.
fn environment(
    env: &[EnvArg],
    host_env: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>, RunSpecError> {
    let mut out = BTreeMap::new();
    for e in env {
        let value = match &e.value {
            Some(v) => v.clone(),
            None => host_env(&e.name).ok_or_else(|| RunSpecError::UnsetEnv(e.name.clone()))?,
        };
        out.insert(e.name.clone(), value);
    }
    Ok(out)
}

fn absolute(p: &Path) -> Result<PathBuf, RunSpecError> {
    std::path::absolute(p).map_err(|source| RunSpecError::Path {
        path: p.to_path_buf(),
        source,
    })
}

/// A port that is free on the host right now (the kernel picks it).
fn free_port() -> Result<u16, RunSpecError> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(RunSpecError::NoPort)?;
    Ok(listener.local_addr().map_err(RunSpecError::NoPort)?.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// `hako run`'s options alone, parsed as on the command line.
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: RunArgs,
    }

    fn args(argv: &[&str]) -> RunArgs {
        let mut all = vec!["run"];
        all.extend_from_slice(argv);
        Cli::try_parse_from(all).unwrap().args
    }

    fn image(storage: &str) -> Image {
        serde_json::from_str(&format!(
            r#"{{"name":"bb","version":1,"kind":"rootfs","created_unix":0,"size_bytes":0,
                "source":"x","storage":{storage}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn options_become_the_spec() {
        let a = args(&[
            "--image",
            "bb",
            "--memory",
            "64MiB",
            "--cpu",
            "0.5",
            "--pids",
            "64",
            "--user",
            "33:44",
            "--hostname",
            "h1",
            "--env",
            "A=1",
            "--app",
            "/srv/app",
            "--data",
            "/srv/data",
            "--mount",
            "/etc/hosts:/h:ro",
            "--scratch",
            "8MiB",
            "--",
            "sh",
            "-c",
            "exit 3",
        ]);
        let spec = build(&a, &image(r#"{"type":"local"}"#), |_| None).unwrap();
        assert_eq!(spec.command, "sh");
        assert_eq!(spec.args, ["-c", "exit 3"]);
        assert_eq!(spec.limits.memory_max, Some(64 << 20));
        assert_eq!(spec.limits.cpu_cores, Some(0.5));
        assert_eq!(spec.limits.pids_max, Some(64));
        assert_eq!(spec.user, hako_runtime::User::Id { uid: 33, gid: 44 });
        assert_eq!(spec.hostname, "h1");
        assert_eq!(spec.scratch_bytes, 8 << 20);
        assert_eq!(spec.log, LogSpec::Inherit);
        assert_eq!(spec.network, NetworkMode::Isolated);
        assert_eq!(spec.env.get("A").map(String::as_str), Some("1"));
        assert!(!spec.env.contains_key("PORT"));
        assert_eq!(spec.workdir, PathBuf::from("/app"));
        let mounts: Vec<(&str, &str, bool)> = spec
            .mounts
            .iter()
            .map(|m| {
                (
                    m.source.to_str().unwrap(),
                    m.target.to_str().unwrap(),
                    m.read_only,
                )
            })
            .collect();
        assert_eq!(
            mounts,
            [
                ("/srv/app", "/app", true),
                ("/srv/data", "/data", false),
                ("/etc/hosts", "/h", true)
            ]
        );
        assert_eq!(spec.rootfs, RootfsSpec::Layers(vec!["rootfs".into()]));
    }

    #[test]
    fn defaults_and_host_network() {
        let a = args(&[
            "--image",
            "bb",
            "--net",
            "host",
            "--workdir",
            "/tmp",
            "true",
        ]);
        let spec = build(&a, &image(r#"{"type":"local"}"#), |_| None).unwrap();
        assert_eq!(spec.network, NetworkMode::Host);
        let port: u16 = spec.env["PORT"].parse().unwrap();
        assert!(port > 0);
        assert_eq!(spec.workdir, PathBuf::from("/tmp"));
        assert_eq!(spec.user, hako_runtime::User::default());
        // Never unlimited: a container gets the documented defaults.
        assert_eq!(spec.limits.memory_max, Some(256 << 20));
        assert_eq!(spec.limits.cpu_cores, Some(1.0));
        assert_eq!(spec.limits.pids_max, Some(512));
        assert_eq!(a.stop_timeout, std::time::Duration::from_secs(10));

        let a = args(&["--image", "bb", "--net", "host", "-e", "PORT=9000", "true"]);
        let spec = build(&a, &image(r#"{"type":"local"}"#), |_| None).unwrap();
        assert_eq!(spec.env["PORT"], "9000");
    }

    #[test]
    fn relative_host_paths_become_absolute() {
        let a = args(&[
            "--image", "bb", "--data", "state", "--mount", "m:/m", "true",
        ]);
        let spec = build(&a, &image(r#"{"type":"local"}"#), |_| None).unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(spec.mounts[0].source, cwd.join("state"));
        assert_eq!(spec.mounts[1].source, cwd.join("m"));
    }

    #[test]
    fn host_images_become_host_rootfs_specs() {
        let img = image(
            r#"{"type":"host","binds":[{"source":"/usr","target":"/usr","is_dir":true},
                {"source":"/nonexistent-hako-src","target":"/x","is_dir":true}]}"#,
        );
        match rootfs_spec(&img) {
            RootfsSpec::Host { skeleton, binds } => {
                assert_eq!(skeleton, PathBuf::from("rootfs"));
                // Binds whose source is gone on the host are left out by the image store.
                assert_eq!(binds, vec![(PathBuf::from("/usr"), PathBuf::from("/usr"))]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_env_args() {
        let e: EnvArg = "A=b=c".parse().unwrap();
        assert_eq!((e.name.as_str(), e.value.as_deref()), ("A", Some("b=c")));
        let e: EnvArg = "HOME".parse().unwrap();
        assert_eq!(e.value, None);
        let e: EnvArg = "EMPTY=".parse().unwrap();
        assert_eq!(e.value.as_deref(), Some(""));
        assert!("=x".parse::<EnvArg>().is_err());
    }

    #[test]
    fn parses_mount_args() {
        let m: MountArg = "/srv/x:/x:ro".parse().unwrap();
        assert_eq!(
            m,
            MountArg {
                source: "/srv/x".into(),
                target: "/x".into(),
                read_only: true
            }
        );
        let m: MountArg = "rel/dir:/d".parse().unwrap();
        assert!(!m.read_only);
        assert!(!"rel/dir:/d:rw".parse::<MountArg>().unwrap().read_only);
        for bad in ["/a", "/a:b", "/a:/b:rx", ":/b", "/a:/b:ro:x"] {
            assert!(bad.parse::<MountArg>().is_err(), "{bad}");
        }
    }

    #[test]
    fn env_takes_hako_values_and_later_options_win() {
        let args: Vec<EnvArg> = ["A=1", "B", "A=2"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let env = environment(&args, |n| (n == "B").then(|| "from-host".to_string())).unwrap();
        assert_eq!(env["A"], "2");
        assert_eq!(env["B"], "from-host");
        let err = environment(&["NOPE".parse().unwrap()], |_| None).unwrap_err();
        assert!(err.to_string().contains("--env NOPE=VALUE"), "{err}");
    }

    #[test]
    fn free_ports_are_real_ports() {
        let p = free_port().unwrap();
        assert!(p > 0);
        // It was free: binding it again works.
        std::net::TcpListener::bind(("127.0.0.1", p)).unwrap();
    }

    /// A 2-core host with 4 GiB and the default pid_max.
    const HOST: NodeCapacity = NodeCapacity {
        cpus: 2,
        memory_bytes: 4 << 30,
        max_pids: 32768,
    };

    fn capacity_error(argv: &[&str]) -> String {
        check_capacity(&args(argv), &HOST).unwrap_err().to_string()
    }

    #[test]
    fn limits_beyond_the_host_are_refused_with_the_apis_words() {
        assert_eq!(
            capacity_error(&["--image", "bb", "--cpu", "64", "true"]),
            "cpu limit of 64 cores is more than this node has (2 cores): give at most 2"
        );
        assert_eq!(
            capacity_error(&["--image", "bb", "--pids", "99999999999", "true"]),
            "pids limit of 99999999999 is more than this node allows (32768): give at most 32768"
        );
        assert_eq!(
            capacity_error(&["--image", "bb", "--memory", "5GiB", "true"]),
            "memory limit of 5GiB is more than this node has (4GiB): give a smaller limit"
        );
        let fits = args(&[
            "--image", "bb", "--cpu", "2", "--memory", "4GiB", "--pids", "32768", "true",
        ]);
        assert_eq!(check_capacity(&fits, &HOST), Ok(()));
        assert_eq!(
            check_capacity(&args(&["--image", "bb", "true"]), &HOST),
            Ok(())
        );
    }

    #[test]
    fn cpu_values_that_are_no_limit_are_usage_errors() {
        for cpu in ["inf", "nan", "NaN", "-1", "0", "1e3"] {
            let err = Cli::try_parse_from(["run", "--image", "bb", "--cpu", cpu, "true"])
                .err()
                .unwrap_or_else(|| panic!("--cpu {cpu} accepted"));
            assert_eq!(err.exit_code(), 2, "{cpu}");
            assert!(
                err.to_string().contains("give a positive number of cores"),
                "{err}"
            );
        }
    }

    /// Whatever a user types for `hako run --memory/--cpu/--pids`, what gets past the
    /// options parser and [`check_capacity`] is a limit the runtime's own check (run before
    /// every start) accepts or refuses only for being too small — never one that is
    /// unlimited or beyond the host.
    #[test]
    fn no_limit_typed_for_hako_run_is_unlimited_or_beyond_the_host() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        // Each option absent, plausible for its kind, or anything at all.
        let option = |plausible: &'static str| {
            prop::option::of(prop_oneof![
                3 => proptest::string::string_regex(plausible).unwrap(),
                1 => any::<String>(),
                1 => "[ +-]?[0-9]{0,22}(\\.[0-9]{0,6})?([eE][+-]?[0-9]{1,3})?(|k|M|MB|MiB|G|GiB|T|inf)",
                1 => prop::sample::select(vec!["inf", "nan", "-0", "1e309", "99999999999", "0"])
                    .prop_map(String::from),
            ])
        };
        let inputs = (
            option("[0-9]{1,4}(\\.[0-9]{1,2})?(|B|k|KiB|M|MB|MiB|G|GB|GiB)"),
            option("[0-2](\\.[0-9]{1,3})?|[0-9]{1,3}"),
            option("[0-9]{1,6}"),
        );
        let accepted = std::cell::Cell::new(0u32);
        TestRunner::new(Config {
            cases: 2000,
            failure_persistence: None,
            ..Config::default()
        })
        .run(&inputs, |(memory, cpu, pids)| {
            let mut argv = vec!["run".to_string(), "--image".into(), "bb".into()];
            for (flag, value) in [("--memory", memory), ("--cpu", cpu), ("--pids", pids)] {
                if let Some(v) = value {
                    argv.extend([flag.to_string(), v]);
                }
            }
            argv.push("true".into());
            let Ok(cli) = Cli::try_parse_from(&argv) else {
                return Ok(());
            };
            if check_capacity(&cli.args, &HOST).is_err() {
                return Ok(());
            }
            accepted.set(accepted.get() + 1);
            let spec = build(&cli.args, &image(r#"{"type":"local"}"#), |_| None).unwrap();
            let l = spec.limits;
            prop_assert!(l.memory_max.is_none_or(|m| m <= HOST.memory_bytes));
            prop_assert!(l.pids_max.is_none_or(|p| p <= HOST.max_pids));
            prop_assert!(
                l.cpu_cores
                    .is_none_or(|c| c.is_finite() && c > 0.0 && c <= f64::from(HOST.cpus))
            );
            match l.validate_for_cores(HOST.cpus as usize) {
                Ok(()) => prop_assert!(
                    l.cpu_cores.is_none() || l.cpu_quota_us().is_some_and(|q| q >= 1000)
                ),
                Err(e) => prop_assert!(
                    matches!(
                        e,
                        hako_runtime::LimitsError::MemoryTooSmall(_)
                            | hako_runtime::LimitsError::CpuTooSmall(_)
                            | hako_runtime::LimitsError::PidsZero
                    ),
                    "{e}"
                ),
            }
            Ok(())
        })
        .unwrap();
        assert!(
            accepted.get() >= 200,
            "only {} inputs got through: the property is nearly vacuous",
            accepted.get()
        );
    }
}
