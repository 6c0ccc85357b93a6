//! Schedules: an app's own timed work, which a sleeping site would otherwise miss (WordPress's
//! wp-cron only runs when a visitor comes). One entry is a cron expression and what to do:
//!
//! - `*/15 * * * * GET /wp-cron.php` — an HTTP request to the app (woken if asleep);
//! - `0 3 * * * php /app/bin/cleanup.php` — a command run in a fresh instance of the app.
//!
//! The expression has the five classic fields (minute hour day-of-month month day-of-week, in
//! UTC) or is one of `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`. The rest is an HTTP
//! request when it is exactly an upper-case method (GET, HEAD, POST, PUT, PATCH, DELETE,
//! OPTIONS) and a path starting with `/`; anything else is a command line, split like `--cmd`.
//! Here the entry's shape is checked; the expression's fields are checked, and its fire times
//! computed, by `hako_policy::schedule`.

use std::fmt;
use std::str::FromStr;

/// Longest schedule entry accepted, in bytes.
pub const MAX_SCHEDULE_LEN: usize = 1024;

/// HTTP methods a scheduled request may use.
pub const SCHEDULE_METHODS: [&str; 7] =
    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// One schedule of an app. In JSON and on the command line it is its text form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScheduleEntry {
    /// The cron expression, fields separated by single spaces (e.g. `*/15 * * * *`).
    pub cron: String,
    /// What runs at each fire time.
    pub action: ScheduleAction,
}

/// What a schedule runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ScheduleAction {
    /// A request to the app, through its normal routing.
    Http {
        /// Upper-case method, e.g. `GET`.
        method: String,
        /// Path and query, starting with `/`.
        path: String,
    },
    /// A command line run inside a fresh instance of the app (split like the app's `--cmd`).
    Command {
        /// The command line as written.
        command: String,
    },
}

/// A schedule entry that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Nothing given.
    #[error("empty schedule: write e.g. '*/15 * * * * GET /wp-cron.php'")]
    Empty,
    /// Longer than [`MAX_SCHEDULE_LEN`].
    #[error("schedule is longer than {MAX_SCHEDULE_LEN} bytes")]
    TooLong,
    /// Fewer than five cron fields.
    #[error(
        "schedule {0:?} needs five cron fields (minute hour day month weekday) or @hourly/@daily/…, then what to run"
    )]
    TooFewFields(String),
    /// Nothing to run after the expression.
    #[error("schedule {0:?} says when but not what: add e.g. 'GET /wp-cron.php' or a command")]
    NoAction(String),
    /// A control character (newline, tab…) in the entry.
    #[error("schedule contains a control character: write it on one line")]
    ControlCharacter,
    /// The command line cannot be split.
    #[error("schedule command: {0}")]
    Command(#[from] crate::CommandError),
    /// A cron field that the policy rejected (filled in by `hako_policy::schedule`).
    #[error("cron expression {expr:?}: {why}")]
    Cron {
        /// The expression.
        expr: String,
        /// What is wrong.
        why: String,
    },
}

impl FromStr for ScheduleEntry {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Self, ScheduleError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(ScheduleError::Empty);
        }
        if t.len() > MAX_SCHEDULE_LEN {
            return Err(ScheduleError::TooLong);
        }
        let spaced = t.replace('\t', " ");
        let t = spaced.as_str();
        if t.chars().any(char::is_control) {
            return Err(ScheduleError::ControlCharacter);
        }
        let fields = if t.starts_with('@') { 1 } else { 5 };
        // Byte offsets of the first `fields` words, and where the rest starts.
        let mut words = Vec::with_capacity(fields);
        let mut rest = t;
        for _ in 0..fields {
            let r = rest.trim_start();
            if r.is_empty() {
                return Err(ScheduleError::TooFewFields(t.to_owned()));
            }
            let end = r.find(' ').unwrap_or(r.len());
            words.push(&r[..end]);
            rest = &r[end..];
        }
        let cron = words.join(" ");
        let action_text = rest.trim();
        if action_text.is_empty() {
            return Err(ScheduleError::NoAction(t.to_owned()));
        }
        let parts: Vec<&str> = action_text.split(' ').filter(|w| !w.is_empty()).collect();
        let action = match parts.as_slice() {
            [method, path] if SCHEDULE_METHODS.contains(method) && path.starts_with('/') => {
                ScheduleAction::Http {
                    method: (*method).to_owned(),
                    path: (*path).to_owned(),
                }
            }
            _ => {
                // Checked now, split again (with the instance's environment) when it runs.
                crate::command::split(action_text, &|_| None)?;
                ScheduleAction::Command {
                    command: action_text.to_owned(),
                }
            }
        };
        Ok(ScheduleEntry { cron, action })
    }
}

impl fmt::Display for ScheduleEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.action {
            ScheduleAction::Http { method, path } => write!(f, "{} {method} {path}", self.cron),
            ScheduleAction::Command { command } => write!(f, "{} {command}", self.cron),
        }
    }
}

impl serde::Serialize for ScheduleEntry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ScheduleEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_http_and_command_entries() {
        let e: ScheduleEntry = "*/15 * * * * GET /wp-cron.php".parse().unwrap();
        assert_eq!(e.cron, "*/15 * * * *");
        assert_eq!(
            e.action,
            ScheduleAction::Http {
                method: "GET".into(),
                path: "/wp-cron.php".into()
            }
        );
        assert_eq!(e.to_string(), "*/15 * * * * GET /wp-cron.php");
        let e: ScheduleEntry = "  0   3 * * 1-5   php /app/bin/cleanup.php --days 'a b'"
            .parse()
            .unwrap();
        assert_eq!(e.cron, "0 3 * * 1-5");
        assert_eq!(
            e.action,
            ScheduleAction::Command {
                command: "php /app/bin/cleanup.php --days 'a b'".into()
            }
        );
        let e: ScheduleEntry = "@hourly POST /hooks/tick?x=1".parse().unwrap();
        assert_eq!(e.cron, "@hourly");
        assert!(matches!(e.action, ScheduleAction::Http { .. }));
        // A lower-case method or a relative path is a command, not a request.
        let e: ScheduleEntry = "* * * * * get /x".parse().unwrap();
        assert!(matches!(e.action, ScheduleAction::Command { .. }));
    }

    #[test]
    fn bad_entries_say_what_to_write() {
        let err = |s: &str| s.parse::<ScheduleEntry>().unwrap_err();
        assert_eq!(err("  "), ScheduleError::Empty);
        assert!(matches!(err("*/5 * *"), ScheduleError::TooFewFields(_)));
        assert!(matches!(err("*/5 * * * *"), ScheduleError::NoAction(_)));
        assert!(matches!(err("@daily"), ScheduleError::NoAction(_)));
        assert!(matches!(
            err("* * * * * echo 'open"),
            ScheduleError::Command(_)
        ));
        assert_eq!(
            err("* * * * * GET /a\nGET /b"),
            ScheduleError::ControlCharacter
        );
        assert_eq!(err(&"x".repeat(5000)), ScheduleError::TooLong);
        assert!(err("1 2").to_string().contains("five cron fields"));
    }

    #[test]
    fn json_is_the_text_form() {
        let e: ScheduleEntry = "*/15 * * * * GET /wp-cron.php".parse().unwrap();
        let json = serde_json::to_string(&vec![e.clone()]).unwrap();
        assert_eq!(json, r#"["*/15 * * * * GET /wp-cron.php"]"#);
        let back: Vec<ScheduleEntry> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, vec![e]);
        assert!(serde_json::from_str::<ScheduleEntry>(r#""* *""#).is_err());
    }
}
