//! A fresh Debian root to install the package in, in a mount namespace of its own.
//!
//! The root is an overlay: the cached Debian system (read-only, shared between runs) under a
//! throw-away upper layer, so every run starts from a fresh system in no time and all it
//! changes (the installed package, hako's data) lands in the upper layer. Inside the root:
//! `/proc`, the host's `/sys` (with its cgroup hierarchies) and `/dev`, and a tmpfs on `/run`
//! (as on any systemd host; hako puts its instances' upper layers under `/run/hako`, and an
//! overlay's upper layer cannot be on an overlay).
//!
//! The mounts are made by a holder process (`unshare --mount --propagation private`, then a
//! `cat` reading a pipe this test holds) and exist only in its namespace: commands enter it
//! with `nsenter` and `chroot` into the root. When the holder ends (the pipe is closed by
//! [`Root`]'s drop, or by the kernel if the test dies) and no process is left inside, the
//! namespace and every mount in it are gone; nothing is ever mounted on the host.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::Outcome;

/// The mounts of the root, made in the new namespace: `$1` root, `$2` base system, `$3` the
/// run's dir (upper and work layers), `$4` the source name of each mount (the run's prefix).
const MOUNTS: &str = r#"set -e
mount -t overlay "$4" -o "lowerdir=$2,upperdir=$3/upper,workdir=$3/work" "$1"
mount -t proc "$4" "$1/proc"
mount --rbind /sys "$1/sys"
mount --rbind /dev "$1/dev"
mount -t tmpfs -o mode=0755 "$4" "$1/run"
echo ready
exec cat >/dev/null
"#;

/// `PATH` inside the root (Debian's for root).
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How long the holder gets to end once its pipe is closed.
const END_WAIT: Duration = Duration::from_secs(10);

/// The root and the holder of its namespace; dropping it ends the holder.
pub struct Root {
    holder: Child,
    /// Closing it ends the holder's `cat`.
    pipe: Option<ChildStdin>,
    /// Where the root is mounted (inside the namespace).
    dir: PathBuf,
}

impl Root {
    /// Mounts `base` with the upper layer in `run_dir` at `<run_dir>/root`, naming the mounts
    /// `name`.
    #[track_caller]
    pub fn mount(base: &Path, run_dir: &Path, name: &str) -> Root {
        let dir = run_dir.join("root");
        for d in ["upper", "work", "root"] {
            std::fs::create_dir_all(run_dir.join(d)).expect("make the root's dirs");
        }
        let mut holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(MOUNTS)
            .arg("sh")
            .args([&dir, base, run_dir])
            .arg(name)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run unshare (util-linux)");
        let pipe = holder.stdin.take();
        let mut out = BufReader::new(holder.stdout.take().expect("piped"));
        let mut line = String::new();
        let _ = out.read_line(&mut line);
        let mut root = Root { holder, pipe, dir };
        if line.trim() != "ready" {
            let status = root.end();
            let mut err = String::new();
            if let Some(mut e) = root.holder.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("cannot mount the fresh root ({status}): {err}");
        }
        root
    }

    /// The path of `rel` inside the root as the test sees it from the host (through the
    /// holder's `/proc/<pid>/root`, which resolves in its namespace).
    pub fn path(&self, rel: &str) -> PathBuf {
        Path::new(&format!("/proc/{}/root", self.holder.id()))
            .join(self.dir.strip_prefix("/").expect("an absolute dir"))
            .join(rel.trim_start_matches('/'))
    }

    /// `args` run inside the root, in its namespace, with a clean environment (`PATH` and
    /// `env`).
    pub fn command(&self, args: &[&str], env: &[(String, String)]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--target={}", self.holder.id()))
            .args(["--mount", "--", "chroot"])
            .arg(&self.dir)
            .args(args)
            .env_clear()
            .env("PATH", PATH)
            .env("LANG", "C.UTF-8")
            .env("HOME", "/root")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `args` inside the root to its end.
    #[track_caller]
    pub fn run(&self, args: &[&str], env: &[(String, String)]) -> Outcome {
        Outcome::from(
            self.command(args, env)
                .output()
                .expect("run nsenter (util-linux)"),
        )
    }

    /// Runs `args` inside the root; panics with its output unless it succeeds. Returns its
    /// stdout and stderr.
    #[track_caller]
    pub fn ok(&self, args: &[&str], env: &[(String, String)]) -> String {
        let out = self.run(args, env);
        assert!(out.success(), "{args:?} in the fresh root: {out:?}");
        out.text()
    }

    /// Ends the holder and waits for it (killed after [`END_WAIT`]); says how it ended.
    fn end(&mut self) -> String {
        drop(self.pipe.take());
        let deadline = Instant::now() + END_WAIT;
        loop {
            match self.holder.try_wait() {
                Ok(Some(status)) => return status.to_string(),
                Ok(None) if Instant::now() < deadline => {
                    // Waiting for a process to exit: nothing to block on but the poll.
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ => {
                    let _ = self.holder.kill();
                    let _ = self.holder.wait();
                    return "killed".into();
                }
            }
        }
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        self.end();
    }
}
