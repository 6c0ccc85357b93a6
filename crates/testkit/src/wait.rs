//! Polling a condition with a deadline: the way tests and benchmarks wait for something to
//! happen (a daemon to serve, an instance to stop, a pool to refill). The interval is the
//! poll's, not a guess at how long readiness takes.

use std::time::{Duration, Instant};

/// The poll interval of [`wait_until`].
pub const POLL: Duration = Duration::from_millis(20);

/// A condition that did not hold in time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timed out after {limit:?} waiting for {what}")]
pub struct TimedOut {
    /// What was awaited.
    pub what: String,
    /// How long it was given.
    pub limit: Duration,
}

/// Polls `ok` every 20 ms until it holds; panics naming `what` after `limit`.
#[track_caller]
pub fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(POLL);
    }
}

/// Calls `f` every `every` until it returns `Ok(Some(value))`, and returns that value; an
/// `Err` from `f` ends the wait at once. After `limit` it fails with [`TimedOut`] (converted
/// into the caller's error type).
pub fn retry_until<T, E: From<TimedOut>>(
    what: &str,
    limit: Duration,
    every: Duration,
    mut f: impl FnMut() -> Result<Option<T>, E>,
) -> Result<T, E> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f()? {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(TimedOut {
                what: what.to_string(),
                limit,
            }
            .into());
        }
        std::thread::sleep(every);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum E {
        Late(TimedOut),
        Broken,
    }

    impl From<TimedOut> for E {
        fn from(t: TimedOut) -> E {
            E::Late(t)
        }
    }

    #[test]
    fn returns_the_first_value() {
        let mut n = 0;
        let v: Result<u32, E> =
            retry_until("three calls", Duration::from_secs(5), POLL / 4, || {
                n += 1;
                Ok((n == 3).then_some(n))
            });
        assert_eq!(v, Ok(3));
    }

    #[test]
    fn errors_end_the_wait_and_deadlines_hold() {
        let r: Result<(), E> = retry_until("x", Duration::from_secs(5), POLL, || Err(E::Broken));
        assert_eq!(r, Err(E::Broken));
        let t = Instant::now();
        let r: Result<(), E> =
            retry_until("never", Duration::from_millis(30), POLL / 4, || Ok(None));
        assert!(t.elapsed() >= Duration::from_millis(30));
        let Err(E::Late(late)) = r else {
            panic!("{r:?}")
        };
        assert_eq!(late.to_string(), "timed out after 30ms waiting for never");
    }

    #[test]
    fn wait_until_panics_with_what_it_waited_for() {
        let mut n = 0;
        wait_until("a counter", Duration::from_secs(5), || {
            n += 1;
            n > 2
        });
        let err = std::panic::catch_unwind(|| {
            wait_until("the moon", Duration::from_millis(10), || false)
        })
        .unwrap_err();
        let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert_eq!(msg, "timed out waiting for the moon");
    }
}
