//! `hako-bench`: hako's benchmarks and experiments, one subcommand each. Every benchmark
//! measures hako and a peer (crun, nginx, Apache) side by side in the same run and ends with
//! one `NAME: key=value …` line (times in ms); the experiment writes a report.
//!
//! Run through `cargo xtask bench NAME …` and `cargo xtask experiment NAME …`, which install
//! the Debian packages a benchmark needs and build hako (release) first; this binary expects
//! `hako` beside it (or `HAKO_BIN`).
//!
//! ```text
//! hako-bench runtime [--runs N] [--spacing-ms MS] [--only NAME,…] [--verbose]
//! hako-bench cold-start [--runs N] [--spacing-ms MS] [--verbose]
//! hako-bench proxy [--seconds S] [--rounds N]
//! hako-bench wordpress [--runs N] [--seconds S]
//! hako-bench restore [--runs N] [--spacing-ms MS]
//! hako-bench digest [--runs N] [--images DIR]
//! hako-bench autoscaler [--sim-only]
//! hako-bench cycling
//! hako-bench chaos [--only CASE,…] [--hog-max-mib N]
//! hako-bench mitigation [--runs N] [--trace-seconds S] [--no-wordpress] [--only first|trace|shared]
//! hako-bench density [--quick] [--sites N] [--php-share F] [--idle-timeout D] [--window D]
//! hako-bench efficiency [--quick] [--sim-only] [--sites N] [--duration D] …
//! hako-bench cluster [--quick] [--runs N] [--drain-sites N] [--loss-sites N] [--apps N] [--changes N]
//! ```
// The crun worker's thread enters its own mount namespace (one `unsafe` call, with its
// SAFETY comment); nothing else here needs unsafe.
#![deny(unsafe_code)]

mod autoscaler;
mod chaos;
mod cluster;
mod cold_start;
mod cycling;
mod daemon;
mod density;
mod digest;
mod efficiency;
mod http;
mod mitigation;
mod options;
mod paths;
mod phases;
mod proxy;
mod request;
mod restore;
mod runtime;
mod samples;
mod tools;
mod wordpress;

use std::process::ExitCode;

const USAGE: &str =
    "usage: hako-bench runtime [--runs N] [--spacing-ms MS] [--only NAME,…] [--verbose]
       hako-bench cold-start [--runs N] [--spacing-ms MS] [--verbose]
       hako-bench proxy [--seconds S] [--rounds N]
       hako-bench wordpress [--runs N] [--seconds S]
       hako-bench restore [--runs N] [--spacing-ms MS]
       hako-bench digest [--runs N] [--images DIR]
       hako-bench autoscaler [--sim-only]
       hako-bench cycling
       hako-bench chaos [--only CASE,…] [--hog-max-mib N]
       hako-bench mitigation [--runs N] [--trace-seconds S] [--no-wordpress] [--only first|trace|shared]
       hako-bench density [--quick] [--sites N] [--php-share F] [--idle-timeout D]
             [--window D] [--concurrency N]
       hako-bench efficiency [--quick] [--sim-only] [--sites N] [--duration D]
             [--warmup D] [--speedup K] [--seed S] [--php-share F] [--idle-timeout D]
             [--predict-idle-timeout D] [--lead D] [--sim-sites N] [--sim-duration D]
             [--concurrency N] [--max-requests N] [--out DIR]
       hako-bench cluster [--quick] [--runs N] [--drain-sites N] [--loss-sites N]
             [--apps N] [--changes N]
  --runs N         samples per measure (default 50; cold-start 100, wordpress 15)
  --spacing-ms MS  minimum time between two container starts (default 200)
  --only NAME,…    run only these measures (names in the table's first column)
  --verbose        print every sample as it is taken
  chaos: kill -9 of an app, of hako serve, of MariaDB, of an etcd member; the data dir
  full; memory pressure — failed requests, lost writes, time to recover per case
  efficiency: always-on vs cycling vs cycling + prediction with 1,000 real sites
  (12 min measured per mode, workload compressed 4x) and 10,000 simulated sites x 24 h;
  report in docs/experiments/efficiency.md (--quick: 40 sites, 1 min, report under target/)
  density: 10,000 static and PHP sites registered and each driven with one cold request
  in 9 minutes with cycling on (--quick: 200 sites in 20 s)
  cluster: on a 3-host test bed it brings up: remote vs single-host cold start, a drain of
  50 sites under load, a lost node, route propagation with 10,000 apps (--quick: smaller)
Run it through `cargo xtask bench NAME` / `cargo xtask experiment efficiency`: they install
what a benchmark needs and build hako first.";

/// Exit code of a wrong command line.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["runtime", rest @ ..] => options::Options::parse(rest).and_then(|o| runtime::run(&o)),
        ["cold-start", rest @ ..] => cold_start::main(rest),
        ["proxy", rest @ ..] => proxy::main(rest),
        ["wordpress", rest @ ..] => wordpress::main(rest),
        ["efficiency", rest @ ..] => efficiency::main(rest),
        ["density", rest @ ..] => density::main(rest),
        ["restore", rest @ ..] => restore::main(rest),
        ["digest", rest @ ..] => digest::main(rest),
        ["autoscaler", rest @ ..] => autoscaler::main(rest),
        ["cycling", rest @ ..] => cycling::main(rest),
        ["chaos", rest @ ..] => chaos::main(rest),
        // The chaos benchmark's memory hog, run by it as a child in its own cgroup.
        ["chaos-hog", rest @ ..] => chaos::hog::child(rest),
        ["mitigation", rest @ ..] => mitigation::main(rest),
        ["cluster", rest @ ..] => cluster::main(rest),
        ["help" | "--help" | "-h"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        [other, ..] => {
            eprintln!("hako-bench: unknown benchmark {other:?}\n{USAGE}");
            return ExitCode::from(EXIT_USAGE);
        }
        [] => {
            eprintln!("hako-bench: name a benchmark\n{USAGE}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hako-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
