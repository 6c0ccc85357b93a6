//! Fuzz target for the trace CSV (`hako sim --trace FILE`): any text either parses into a
//! consistent trace, which then simulates, or is refused with a line number.
//!
//! `cargo test` replays `fuzz/__fuzz__/trace_csv/{corpus,crashes}/` and then runs random
//! inputs for under a second. Long runs: README, "Fuzzing".

use std::time::Duration;

use hako_policy::KeepAlive;
use hako_policy::prewarm::Prewarm;
use hako_policy::slo::StartTime;
use hako_sim::{SimConfig, Trace, TraceError, Workload, run};

#[test]
fn trace_csv() {
    bolero::check!(name = "trace_csv")
        .with_test_time(Duration::from_millis(700))
        .for_each(|input: &[u8]| {
            let text = String::from_utf8_lossy(input);
            let trace = match Trace::parse(&text) {
                Ok(t) => t,
                Err(TraceError::Malformed { line, .. }) => {
                    assert!(line >= 1 && line <= text.lines().count(), "line {line}");
                    return;
                }
                Err(TraceError::Empty) => return,
                Err(e) => panic!("reading text cannot fail with {e}"),
            };
            // One list of sorted, finite, non-negative times per distinct, non-empty site.
            assert_eq!(trace.sites.len(), trace.arrivals.len());
            let mut names = trace.sites.clone();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), trace.sites.len(), "duplicate sites");
            assert!(
                trace
                    .sites
                    .iter()
                    .all(|s| !s.is_empty() && !s.contains(','))
            );
            let mut latest = 0.0f64;
            for times in &trace.arrivals {
                assert!(!times.is_empty());
                assert!(times.windows(2).all(|w| w[0] <= w[1]), "unsorted");
                assert!(times.iter().all(|t| t.is_finite() && *t >= 0.0));
                latest = latest.max(*times.last().expect("non-empty"));
            }
            assert_eq!(trace.end, latest);
            // It simulates (a short horizon: times past it are cut).
            let requests = trace.requests() as u64;
            let config = SimConfig {
                seed: 1,
                duration: Duration::from_secs(600),
                workload: Workload::Trace(trace),
                start_time: StartTime::samples_secs([0.05, 0.2]).expect("valid samples"),
                service_time: Duration::from_millis(10),
                keep_alive: KeepAlive::default(),
                prewarm: Prewarm::None,
                predictor: None,
                memory_per_instance_mib: 64.0,
            };
            let report = run(&config).expect("a parsed trace simulates");
            assert!(report.requests <= requests && report.cold_requests <= report.requests);
        });
}
