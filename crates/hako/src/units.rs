//! Human units on the command line and in config: sizes ("64MiB", "1.5G", "512k", plain
//! bytes) and durations ("30s", "20m", "1h30m", "250ms").
//!
//! Pure and self-contained (no IO, no other hako module), so it can move to a shared crate.
//!
//! Sizes: `k`, `K`, `Ki`, `KiB` (and the same for `M`, `G`, `T`, `P`, `E`) are powers of 1024;
//! `kB`/`KB`, `MB`, `GB`, `TB`, `PB`, `EB` are powers of 1000; `B` or no unit is bytes. Letters are
//! case-insensitive. A fraction ("1.5G") is allowed and rounded down to a whole byte.
//!
//! Durations: one or more `<number><unit>` parts with units `ms`, `s`, `m`, `h`, `d` (also
//! `us`, `ns`), e.g. "1h30m" or "1.5s". A bare number needs a unit, except `0`.

mod duration;
mod number;
mod size;

pub use duration::{format_duration, parse_duration};
pub use size::{format_size, parse_size};

/// Why a size or duration was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// Nothing was given.
    #[error("empty {what}: give a number with a unit, like {example}")]
    Empty {
        /// "size" or "duration".
        what: &'static str,
        /// An example of a valid value.
        example: &'static str,
    },
    /// The number part is not a plain decimal number.
    #[error("{input:?} is not a {what}: give a decimal number and a unit, like {example}")]
    BadNumber {
        /// The whole input.
        input: String,
        /// "size" or "duration".
        what: &'static str,
        /// An example of a valid value.
        example: &'static str,
    },
    /// The unit is not one of the known ones.
    #[error("unknown {what} unit {unit:?} in {input:?}: use one of {known}")]
    UnknownUnit {
        /// The whole input.
        input: String,
        /// The unit found.
        unit: String,
        /// "size" or "duration".
        what: &'static str,
        /// The units that are accepted.
        known: &'static str,
    },
    /// A duration number without a unit.
    #[error("duration {0:?} has no unit: add one, like {0}s or {0}ms")]
    MissingUnit(String),
    /// The value does not fit.
    #[error("{input:?} is too large a {what}")]
    Overflow {
        /// The whole input.
        input: String,
        /// "size" or "duration".
        what: &'static str,
    },
}
