//! Load balancing: least outstanding requests over an app's ready instances,
//! ties broken round robin (the scan starts at a rotating index).

use std::sync::Arc;

use crate::instance::{Instance, InstanceState};

/// The ready instance with the fewest in-flight requests, scanning from `start`
/// so that equally loaded instances take turns.
pub(crate) fn least_outstanding(ready: &[Arc<Instance>], start: usize) -> Option<&Arc<Instance>> {
    let n = ready.len();
    if n == 1 {
        return (ready[0].state() == InstanceState::Ready).then(|| &ready[0]);
    }
    let mut best: Option<(&Arc<Instance>, usize)> = None;
    for k in 0..n {
        let candidate = &ready[(start + k) % n];
        if candidate.state() != InstanceState::Ready {
            continue;
        }
        let load = candidate.in_flight();
        if best.is_none_or(|(_, best_load)| load < best_load) {
            best = Some((candidate, load));
            if load == 0 {
                break;
            }
        }
    }
    best.map(|(instance, _)| instance)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::InFlight;
    use tokio::time::Instant;

    fn instances(n: usize) -> Vec<Arc<Instance>> {
        let epoch = Instant::now();
        (0..n)
            .map(|i| {
                Arc::new(Instance::new(
                    format!("i{i}"),
                    "127.0.0.1:1".parse().unwrap(),
                    epoch,
                    1,
                ))
            })
            .collect()
    }

    #[test]
    fn picks_the_least_loaded() {
        let ready = instances(3);
        let _a = [
            InFlight::new(ready[0].clone(), hako_policy::wake::RequestClass::Visitor),
            InFlight::new(ready[0].clone(), hako_policy::wake::RequestClass::Visitor),
        ];
        let _b = InFlight::new(ready[2].clone(), hako_policy::wake::RequestClass::Visitor);
        for start in 0..6 {
            assert_eq!(least_outstanding(&ready, start).unwrap().id, "i1");
        }
    }

    #[test]
    fn ties_rotate() {
        let ready = instances(3);
        let picked: Vec<&str> = (0..3)
            .map(|s| least_outstanding(&ready, s).unwrap().id.as_str())
            .collect();
        assert_eq!(picked, ["i0", "i1", "i2"]);
    }

    #[test]
    fn skips_draining_and_handles_empty() {
        let ready = instances(2);
        ready[0].start_draining();
        assert_eq!(least_outstanding(&ready, 0).unwrap().id, "i1");
        ready[1].start_draining();
        assert!(least_outstanding(&ready, 0).is_none());
        assert!(least_outstanding(&[], 0).is_none());
    }
}
