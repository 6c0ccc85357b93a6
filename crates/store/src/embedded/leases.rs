//! Lease deadlines of the embedded store, kept in memory on the worker thread.
//!
//! Only the TTL is stored on disk; when the store is opened every lease gets a
//! full TTL again (as etcd does after a leader change), so a restart never
//! expires a lease whose holder is still alive.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The live leases and when each ends.
#[derive(Debug, Default)]
pub(crate) struct Leases {
    by_id: HashMap<i64, (Duration, Instant)>,
}

impl Leases {
    /// Adds (or replaces) a lease ending `ttl` after `now`.
    pub(crate) fn insert(&mut self, id: i64, ttl: Duration, now: Instant) {
        self.by_id.insert(id, (ttl, now + ttl));
    }

    /// True if the lease is live.
    pub(crate) fn contains(&self, id: i64) -> bool {
        self.by_id.contains_key(&id)
    }

    /// Pushes the lease's end to a full TTL after `now`; false if unknown.
    pub(crate) fn renew(&mut self, id: i64, now: Instant) -> bool {
        match self.by_id.get_mut(&id) {
            Some((ttl, deadline)) => {
                *deadline = now + *ttl;
                true
            }
            None => false,
        }
    }

    /// Moves an overdue lease's end to `until` (used when revoking it failed).
    pub(crate) fn postpone(&mut self, id: i64, until: Instant) {
        if let Some((_, deadline)) = self.by_id.get_mut(&id) {
            *deadline = until.max(*deadline);
        }
    }

    /// Forgets a lease.
    pub(crate) fn remove(&mut self, id: i64) {
        self.by_id.remove(&id);
    }

    /// Leases whose end is at or before `now`, oldest first.
    pub(crate) fn expired(&self, now: Instant) -> Vec<i64> {
        let mut due: Vec<(Instant, i64)> = self
            .by_id
            .iter()
            .filter(|(_, (_, deadline))| *deadline <= now)
            .map(|(id, (_, deadline))| (*deadline, *id))
            .collect();
        due.sort_unstable();
        due.into_iter().map(|(_, id)| id).collect()
    }

    /// The earliest lease end, if any lease is live.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.by_id.values().map(|(_, deadline)| *deadline).min()
    }

    /// Replaces the set of leases with `stored` (id, ttl), keeping the
    /// deadlines of leases already known.
    pub(crate) fn reload(&mut self, stored: &[(i64, Duration)], now: Instant) {
        let mut by_id = HashMap::with_capacity(stored.len());
        for (id, ttl) in stored {
            let deadline = self.by_id.get(id).map_or(now + *ttl, |(_, d)| *d);
            by_id.insert(*id, (*ttl, deadline));
        }
        self.by_id = by_id;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_renew_and_expire_in_order() {
        let t0 = Instant::now();
        let mut leases = Leases::default();
        leases.insert(1, Duration::from_secs(10), t0);
        leases.insert(2, Duration::from_secs(5), t0);
        assert_eq!(leases.next_deadline(), Some(t0 + Duration::from_secs(5)));
        assert!(leases.expired(t0 + Duration::from_secs(4)).is_empty());
        assert!(leases.renew(2, t0 + Duration::from_secs(4)));
        assert!(!leases.renew(3, t0));
        assert_eq!(leases.expired(t0 + Duration::from_millis(9500)), vec![2]);
        assert_eq!(leases.expired(t0 + Duration::from_secs(11)), vec![2, 1]);
        leases.postpone(1, t0 + Duration::from_secs(20));
        assert_eq!(leases.expired(t0 + Duration::from_secs(11)), vec![2]);
        leases.remove(2);
        assert!(!leases.contains(2));
        leases.reload(
            &[(1, Duration::from_secs(10)), (7, Duration::from_secs(3))],
            t0,
        );
        assert!(leases.contains(7) && leases.contains(1));
        assert_eq!(leases.next_deadline(), Some(t0 + Duration::from_secs(3)));
    }
}
