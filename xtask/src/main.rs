//! `cargo xtask`: set-up, demo, tests, and the entry to the benchmarks.
//!
//! ```text
//! cargo xtask demo [LISTEN]       install what is missing, build, serve three demo sites
//! cargo xtask test [NEXTEST ARGS] install what is missing, run every test (not the bench crate's)
//! cargo xtask bench NAME [ARGS]   install what NAME needs, build hako in release, run hako-bench NAME
//! cargo xtask bench check         the bench crate's own tests
//! cargo xtask experiment NAME …   like bench, for the experiments (efficiency, density)
//! cargo xtask package             the Debian package (cargo-deb, release build) into target/debian/
//! cargo xtask testbed up|down|status  a hako cluster on this machine (network namespaces)
//! ```
//!
//! The benchmarks and experiments themselves live in `crates/bench` (`hako-bench`).
#![forbid(unsafe_code)]

mod bench;
mod demo;
mod package;
mod setup;
mod test;
mod testbed;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask demo [LISTEN]        (default 0.0.0.0:8080)
       cargo xtask test [NEXTEST ARGS…]
       cargo xtask bench runtime [--runs N] [--spacing-ms MS] [--only NAME,…] [--verbose]
       cargo xtask bench cold-start [--runs N] [--spacing-ms MS] [--verbose]
       cargo xtask bench proxy [--seconds S] [--rounds N]
       cargo xtask bench wordpress [--runs N] [--seconds S]
       cargo xtask bench check [NEXTEST ARGS…]   (the bench crate's own tests)
       cargo xtask experiment efficiency [--quick] [--sim-only] [--sites N] [--duration D]
             [--warmup D] [--speedup K] [--seed S] [--php-share F] [--idle-timeout D]
             [--predict-idle-timeout D] [--lead D] [--sim-sites N] [--sim-duration D]
             [--concurrency N] [--max-requests N] [--out DIR]
       cargo xtask experiment density [--quick] [--sites N] [--php-share F] [--idle-timeout D]
             [--window D] [--concurrency N]
  --runs N         samples per measure (default 50)
  --spacing-ms MS  minimum time between two container starts (default 200)
  --only NAME,…    run only these measures (names in the table's first column)
  --verbose        print every sample as it is taken
  experiment efficiency: always-on vs cycling vs cycling + prediction with 1,000 real sites
  (12 min measured per mode, workload compressed 4x) and 10,000 simulated sites x 24 h;
  report in docs/experiments/efficiency.md (--quick: 40 sites, 1 min, report under target/)
  experiment density: 10,000 static and PHP sites on one host, each driven with one cold
  request within 9 minutes with cycling on; peaks of instances, memory and kernel objects,
  and nothing left after (--quick: 200 sites in 20 s)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["bench", rest @ ..] => bench::bench(rest),
        ["test", rest @ ..] => test::main(rest),
        ["demo", rest @ ..] => demo::main(rest),
        ["experiment", rest @ ..] => bench::experiment(rest),
        ["testbed", rest @ ..] => testbed::main(rest),
        ["package", rest @ ..] => package::main(rest),
        ["help" | "--help" | "-h"] | [] => {
            println!(
                "{USAGE}\n       {}\n       {}",
                testbed::USAGE,
                package::USAGE
            );
            return ExitCode::SUCCESS;
        }
        _ => Err(anyhow::anyhow!(
            "unknown command\n{USAGE}\n       {}\n       {}",
            testbed::USAGE,
            package::USAGE
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask lives one level below it).
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}
