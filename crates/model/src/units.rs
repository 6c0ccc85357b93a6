//! Human units, with one meaning everywhere: on the command line (`hako run`, `hako app`,
//! `hako slo`, `hako sim`), in the API's JSON and query strings, in config files and in the
//! policies. Every size, duration and CPU amount a user types goes through the one parser of
//! its kind here; nothing else in hako parses units.
//!
//! **Sizes** ([`parse_size`], [`ByteSize`]): a decimal number and a unit.
//! - `k`, `K`, `Ki`, `KiB` (and the same with `M`, `G`, `T`, `P`, `E`) are powers of **1024**:
//!   `64M` = `64MiB` = 67,108,864 bytes (single letters mean what they mean to `docker -m`);
//! - `kB`, `KB`, `MB`, `GB`, `TB`, `PB`, `EB` are powers of **1000**: `100MB` = 100,000,000;
//! - `B` or no unit is bytes: `4096` = 4096 bytes (a fraction of a byte is refused).
//!
//! Letters are case-insensitive (`64mib` = `64MiB`; `b` is always bytes, never bits). A
//! fraction is allowed with a unit (`1.5GiB`) and rounded down to a whole byte. Sizes are
//! written back exactly: `256MiB`, `100MB`, or a number of bytes (`1572865B`).
//!
//! **Durations** ([`parse_duration`], [`HumanDuration`]): one or more `<number><unit>` parts,
//! summed: `250ms`, `30s`, `20m`, `1h30m`, `1.5h`, `2d`, with units `ns`, `us` (`µs`), `ms`,
//! `s`, `m`, `h`, `d`. A bare number is **refused** (its unit would be a guess: `45` could be
//! seconds or minutes), except `0`; in JSON too, a number is read as that text. At most
//! 36500 days.
//!
//! **CPU** ([`parse_cpu`]): a positive decimal number of cores, `0.5` or `2`; no sign, no
//! exponent, no `inf` or `nan`. What a node can actually give is checked against its
//! capacity ([`crate::NodeCapacity`]).

mod cpu;
mod duration;
mod number;
mod size;

pub use cpu::parse_cpu;
pub use duration::{
    HumanDuration, MAX_DURATION, format_duration, parse_duration, serde_duration,
    serde_duration_opt,
};
pub use size::{ByteSize, format_size, parse_size};

/// Why a size, duration or CPU amount was not understood.
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
    /// A size below one byte's resolution without a unit ("1.5").
    #[error("size {0:?} is a fraction of a byte: give whole bytes or a unit, like {0}KiB")]
    FractionalBytes(String),
    /// The value does not fit.
    #[error("{input:?} is too large a {what}: give at most {max}")]
    Overflow {
        /// The whole input.
        input: String,
        /// "size" or "duration".
        what: &'static str,
        /// The largest accepted value, written as a user would.
        max: &'static str,
    },
    /// Not a positive decimal number of cores.
    #[error("cpu limit {0:?} is not valid: give a positive number of cores such as 0.5 or 2")]
    Cpu(String),
}
