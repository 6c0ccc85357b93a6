//! `cargo xtask experiment NAME`: experiments that answer a question with real runs and the
//! simulator, and write a report under docs/experiments/.

mod efficiency;

use anyhow::bail;

/// Runs `cargo xtask experiment ARGS…`.
pub fn main(args: &[&str]) -> anyhow::Result<()> {
    match args {
        ["efficiency", rest @ ..] => efficiency::main(rest),
        [other, ..] => bail!("unknown experiment {other:?}; known: efficiency"),
        [] => bail!("name an experiment: efficiency"),
    }
}
