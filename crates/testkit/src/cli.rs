//! Running the `hako` binary as a user would: a [`Command`] with the data dir given and the
//! caller's hako settings (`RUST_LOG`, `HAKO_*`) removed, and the [`Outcome`] it left.

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `HAKO --data-dir DATA` with stdin closed and `RUST_LOG`, `HAKO_DATA_DIR`, `HAKO_API` and
/// `HAKO_TOKEN` removed, so the caller's environment does not leak into a test. Add the
/// arguments (and `HAKO_API`) and run it.
pub fn hako_command(hako: &Path, data_dir: &Path) -> Command {
    let mut cmd = Command::new(hako);
    cmd.arg("--data-dir")
        .arg(data_dir)
        .env_remove("RUST_LOG")
        .env_remove("HAKO_DATA_DIR")
        .env_remove("HAKO_API")
        .env_remove("HAKO_TOKEN")
        .stdin(Stdio::null());
    cmd
}

/// What a finished process left: its exit code (-1 when a signal ended it) and its output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Whether it exited with code 0.
    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// stdout and stderr, one after the other (for messages).
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl From<Output> for Outcome {
    fn from(o: Output) -> Outcome {
        Outcome {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_data_dir_and_drops_the_callers_settings() {
        let cmd = hako_command(Path::new("/bin/hako"), Path::new("/tmp/d"));
        assert_eq!(cmd.get_program(), "/bin/hako");
        let args: Vec<_> = cmd.get_args().collect();
        assert_eq!(args, ["--data-dir", "/tmp/d"]);
        for var in ["RUST_LOG", "HAKO_DATA_DIR", "HAKO_API", "HAKO_TOKEN"] {
            assert!(
                cmd.get_envs().any(|(k, v)| k == var && v.is_none()),
                "{var} is not removed"
            );
        }
    }

    #[test]
    fn outcomes_keep_code_and_output() {
        let out = Outcome::from(
            Command::new("sh")
                .args(["-c", "echo out; echo err >&2; exit 3"])
                .output()
                .unwrap(),
        );
        assert_eq!((out.code, out.success()), (3, false));
        assert_eq!(out.text(), "out\nerr\n");
    }
}
