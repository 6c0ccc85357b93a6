//! Running the host's tools (`ip`, `nft`) with errors that say which command failed and why.

use std::process::{Command, Stdio};

use crate::{Result, TestbedError};

/// The Debian package of each tool the bed runs.
fn package(program: &str) -> &'static str {
    match program {
        "ip" => "iproute2",
        "nft" => "nftables",
        "etcd" => "etcd-server",
        "nsenter" | "unshare" => "util-linux",
        _ => "that provides it",
    }
}

/// Runs `cmd` to its end; its stdout on success, its output in the error otherwise.
pub(crate) fn run(cmd: &mut Command) -> Result<String> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| TestbedError::Missing {
            package: package(&program),
            program: program.clone(),
            source,
        })?;
    if !out.status.success() {
        let mut output = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if output.is_empty() {
            output = format!("{}", out.status);
        }
        return Err(TestbedError::Command {
            command: describe(cmd),
            output,
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip ARGS…`.
pub(crate) fn ip(args: &[&str]) -> Result<String> {
    run(Command::new("ip").args(args))
}

/// `nft ARGS…`.
pub(crate) fn nft(args: &[&str]) -> Result<String> {
    run(Command::new("nft").args(args))
}

/// The command line of `cmd`, for messages.
pub(crate) fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
