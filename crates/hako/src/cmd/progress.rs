//! Progress of long CLI work (image imports and builds, rollouts, drains): plain lines on
//! stderr, each with the time since the work began, when stderr is a terminal — so that
//! stdout stays the result and scripts see no chatter. `HAKO_PROGRESS=always` or `never`
//! overrides the terminal check (e.g. to keep progress in a CI log).

use std::io::IsTerminal;
use std::time::Instant;

/// Where progress goes for one piece of work.
#[derive(Debug)]
pub struct Progress {
    shown: bool,
    started: Instant,
}

impl Progress {
    /// Progress on stderr, if it is a terminal (or `HAKO_PROGRESS` says so).
    pub fn stderr() -> Progress {
        Progress {
            shown: shown(
                std::env::var("HAKO_PROGRESS").ok().as_deref(),
                std::io::stderr().is_terminal(),
            ),
            started: Instant::now(),
        }
    }

    /// One line of progress.
    pub fn line(&self, what: &str) {
        if self.shown {
            eprintln!("[{:>6.1}s] {what}", self.started.elapsed().as_secs_f64());
        }
    }
}

/// Whether progress is shown: `always`, `never`, or (unset, `auto`) on a terminal.
fn shown(setting: Option<&str>, terminal: bool) -> bool {
    match setting.map(str::trim) {
        Some("always" | "1" | "yes") => true,
        Some("never" | "0" | "no") => false,
        _ => terminal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_overrides_the_terminal_check() {
        assert!(shown(None, true));
        assert!(!shown(None, false));
        assert!(shown(Some("always"), false));
        assert!(!shown(Some("never"), true));
        assert!(shown(Some("auto"), true));
        assert!(!shown(Some("auto"), false));
    }
}
