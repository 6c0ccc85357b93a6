//! Which instances to drain when an app scales down: the daemon's choice, made by this pure
//! helper so the simulator and the tests make the same one.
//!
//! Candidates are live (not draining), ready instances. An instance with an open upgraded
//! connection (a WebSocket) is never chosen unless it is past the app's max lifetime — draining
//! it would cut the connection at the drain timeout, and it is due for a recycle anyway then.
//! Among the candidates: fewest requests in flight first (least work to finish, least added
//! wait), then the oldest (closest to its own recycle), then the lowest index.

use std::time::Duration;

use crate::keepalive::InstanceView;
use crate::time::Time;

/// Up to `n` instances to drain, best first (indices into `instances`); fewer when fewer may go.
pub fn pick_drain(
    now: Time,
    instances: &[InstanceView],
    n: usize,
    max_lifetime: Option<Duration>,
) -> Vec<usize> {
    let mut candidates: Vec<usize> = (0..instances.len())
        .filter(|&i| {
            let inst = &instances[i];
            let past_lifetime = max_lifetime.is_some_and(|l| now - inst.started_at >= l);
            inst.draining_since.is_none()
                && inst.ready_at.is_some()
                && (inst.upgraded == 0 || past_lifetime)
        })
        .collect();
    candidates.sort_by_key(|&i| (instances[i].in_flight, instances[i].started_at, i));
    candidates.truncate(n);
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> Time {
        Time::from_secs(secs)
    }

    fn inst(started: u64, in_flight: u32, upgraded: u32) -> InstanceView {
        let mut v = InstanceView::ready(at(started), at(started + 1));
        v.in_flight = in_flight;
        v.upgraded = upgraded;
        v
    }

    #[test]
    fn fewest_in_flight_then_oldest_and_never_a_websocket_before_its_lifetime() {
        let mut draining = inst(0, 0, 0);
        draining.draining_since = Some(at(50));
        let instances = [
            inst(10, 3, 0),                 // 0: busy
            inst(20, 1, 0),                 // 1
            inst(5, 1, 0),                  // 2: as busy as 1, older
            inst(1, 0, 1),                  // 3: idle but holds a WebSocket
            draining,                       // 4: already draining
            InstanceView::starting(at(99)), // 5: not ready
        ];
        let now = at(100);
        assert_eq!(pick_drain(now, &instances, 2, None), vec![2, 1]);
        assert_eq!(pick_drain(now, &instances, 9, None), vec![2, 1, 0]);
        // Past its max lifetime the WebSocket instance may go, and goes first (nothing in flight).
        let life = Some(Duration::from_secs(90));
        assert_eq!(pick_drain(now, &instances, 1, life), vec![3]);
        assert!(pick_drain(now, &instances, 0, life).is_empty());
    }
}
