//! The commands of the `hako` binary, one file each, and what they share: how a command
//! fails ([`Failure`]) and which exit code that gives ([`Exit`]).
//!
//! A command returns `Ok(code)` with the process exit code (for `hako run`, the
//! container's), or a [`Failure`] that `main` prints with its cause chain.

pub mod agent;
pub mod app;
pub mod criu;
pub mod image;
pub mod instance;
pub mod node;
pub mod progress;
pub mod run;
pub mod serve;
pub mod sim;
pub mod slo;
pub mod tenant;
#[cfg(test)]
mod vocabulary;

/// Exit codes of hako's own failures; each means one thing, so scripts can tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Something failed that is not the user's input (IO, a build step).
    Failure,
    /// Bad input: a usage error, an unknown or invalid image name, a refused tarball.
    Usage,
    /// The API refused the token: missing, wrong or revoked (401), or a tenant's token asking
    /// what only the admin may (403).
    Denied,
    /// The change would take a tenant's apps past its quota (422).
    Quota,
    /// `hako run`: the container could not be made (bad spec, missing image, runtime
    /// error), as with `docker run`.
    RunSetup,
    /// `hako run`: the command exists but could not be executed (permission, format).
    CannotInvoke,
    /// `hako run`: the command was not found in the container.
    CommandNotFound,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::Denied => 3,
            Exit::Quota => 4,
            Exit::RunSetup => 125,
            Exit::CannotInvoke => 126,
            Exit::CommandNotFound => 127,
        }
    }
}

/// A failed command: the error to print and how the process exits.
#[derive(Debug)]
pub struct Failure {
    /// Why it failed (printed with its causes).
    pub error: anyhow::Error,
    /// The exit code it gives.
    pub exit: Exit,
}

impl Failure {
    /// A failure with this error and exit code.
    pub fn new(exit: Exit, error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            error: error.into(),
            exit,
        }
    }

    /// The error and its causes as lines, leaving out a cause whose text the message
    /// before it already shows (many errors print their source inline).
    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = Vec::new();
        for cause in self.error.chain() {
            let text = cause.to_string();
            if lines.last().is_some_and(|prev| prev.contains(&text)) {
                continue;
            }
            lines.push(text);
        }
        lines
    }
}

/// Writes a command's result to stdout. A closed pipe (`hako image list | head -1`) is not
/// an error worth a panic: the reader has what it wanted.
pub fn out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

/// A failed API call as a [`Failure`]: the server's message, and an exit code by its status —
/// 401/403 [`Exit::Denied`], 422 [`Exit::Quota`], any other 4xx [`Exit::Usage`], the rest
/// [`Exit::Failure`].
pub fn api_failure(e: hako_api::ClientError) -> Failure {
    let exit = match e.status() {
        Some(401 | 403) => Exit::Denied,
        Some(422) => Exit::Quota,
        Some(400..=499) => Exit::Usage,
        _ => Exit::Failure,
    };
    Failure::new(exit, anyhow::anyhow!("{e}"))
}

/// Turns any error into a [`Failure`] with a given exit code: `result.or_exit(Exit::Usage)?`.
pub trait OrExit<T> {
    /// Maps the error to a [`Failure`] with `exit`.
    fn or_exit(self, exit: Exit) -> Result<T, Failure>;
}

impl<T, E: Into<anyhow::Error>> OrExit<T> for Result<T, E> {
    fn or_exit(self, exit: Exit) -> Result<T, Failure> {
        self.map_err(|e| Failure::new(exit, e))
    }
}

/// A Unix time in milliseconds as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn format_time_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86400, secs % 86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// A client answer as the CLI's result, with the exit code of [`api_failure`].
pub(crate) fn api<T>(r: Result<T, hako_api::ClientError>) -> Result<T, Failure> {
    r.map_err(api_failure)
}

/// The API client of this host's hako (`HAKO_API`, `HAKO_TOKEN` or the data dir's token).
pub(crate) fn client(data_dir: &std::path::Path) -> Result<hako_api::Client, Failure> {
    use anyhow::Context;
    hako_api::Client::from_env(data_dir)
        .context("cannot find hako's API (is `hako serve` running?)")
        .or_exit(Exit::Failure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn exit_codes_are_distinct() {
        let all = [
            Exit::Failure,
            Exit::Usage,
            Exit::Denied,
            Exit::Quota,
            Exit::RunSetup,
            Exit::CannotInvoke,
            Exit::CommandNotFound,
        ];
        let mut codes: Vec<u8> = all.iter().map(|e| e.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        assert!(codes.iter().all(|&c| c != 0));
    }

    #[test]
    fn api_statuses_give_their_exit_codes() {
        let failed = |status| {
            api_failure(hako_api::ClientError::Api {
                status,
                message: "m".into(),
            })
            .exit
        };
        assert_eq!(failed(401), Exit::Denied);
        assert_eq!(failed(403), Exit::Denied);
        assert_eq!(failed(422), Exit::Quota);
        assert_eq!(failed(404), Exit::Usage);
        assert_eq!(failed(409), Exit::Usage);
        assert_eq!(failed(500), Exit::Failure);
        let unreachable = hako_api::ClientError::Invalid("x".into());
        assert_eq!(api_failure(unreachable).exit, Exit::Failure);
    }

    #[test]
    fn lines_skip_causes_already_shown() {
        let io = std::io::Error::other("disk on fire");
        let inline = anyhow::Error::new(io).context("cannot write x: disk on fire");
        let f = Failure::new(Exit::Failure, inline);
        assert_eq!(f.lines(), vec!["cannot write x: disk on fire".to_string()]);

        let r: Result<(), _> = Err(std::io::Error::other("no space"));
        let f = r
            .context("cannot import bb")
            .or_exit(Exit::Usage)
            .unwrap_err();
        assert_eq!(f.exit, Exit::Usage);
        assert_eq!(f.lines(), vec!["cannot import bb", "no space"]);
    }
}
