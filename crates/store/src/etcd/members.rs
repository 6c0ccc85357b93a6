//! Fail-over between the members of an etcd cluster. etcd-client's balanced channel keeps
//! sending some requests to a member that is gone (etcdv3/etcd-client#39), so the store talks
//! to one member at a time — the *current* one, through a client of its own — and moves on:
//!
//! - a monitor asks every member's `/health` (a read through the raft quorum) every
//!   [`PROBE_EVERY`]: when the current member is not healthy and another is, that one becomes
//!   current;
//! - a call that fails as unavailable marks its member failed, which moves the store to the
//!   next member at once, and is tried there if [`Retry`] allows it: reads always, writes only
//!   when the failed attempt surely never reached a member; a read still waiting on a member
//!   the store moved away from is abandoned and tried on the new one (so a lease renewal sent
//!   to a member whose cable was just cut does not wait out the request timeout);
//! - watches follow the current member ([`Members::switches`]): on a switch they resume on the
//!   new member from the revision after the last one they delivered;
//! - lease renewals go to every member at once ([`Members::first_ok`]): the first that renews
//!   answers, so a lease never lapses for one member's loss, whatever the failover takes.
//!
//! Without a quorum no member is healthy: the current one stays and calls fail as unavailable
//! within the request timeout, until the quorum is back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use etcd_client as ec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::StoreError;

/// How often every member's health is asked: a member cut off is left within about twice
/// this, well inside the shortest lease etcd grants (2 s).
pub(crate) const PROBE_EVERY: Duration = Duration::from_millis(500);
/// How long one health probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(450);
/// A call is tried again on another member only while it has taken less than this: an
/// attempt that timed out already cost the caller its patience.
const RETRY_WITHIN: Duration = Duration::from_secs(3);
/// How soon [`Members::first_ok`] asks a member again that refused.
const AGAIN_AFTER: Duration = Duration::from_millis(100);
/// How long one attempt of [`Members::first_ok`] may take before it is made again.
const ATTEMPT: Duration = Duration::from_secs(1);

/// Which failed attempts a call may repeat on another member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Reads and idempotent requests (a compaction): any unavailable error.
    Always,
    /// Writes: only when the attempt never reached a member (connection refused or failed, or
    /// the member refused it for want of a leader), never when it may have been applied.
    Unreached,
}

/// Whether an unavailable error's text says the request reached no member that could apply
/// it: the connection failed, or the member had no leader and refused it up front.
pub(crate) fn unreached(text: &str) -> bool {
    [
        "tcp connect error",
        "Connection refused",
        "error trying to connect",
        "connection error",
        "no leader",
    ]
    .iter()
    .any(|s| text.contains(s))
}

struct Member {
    url: String,
    /// `host:port`, for the health probe.
    authority: String,
    client: ec::Client,
}

/// The cluster's members, the current one, and the monitor that moves it.
pub(crate) struct Members {
    members: Vec<Member>,
    current: AtomicUsize,
    switched: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for Members {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Members")
            .field(
                "urls",
                &self.members.iter().map(|m| &m.url).collect::<Vec<_>>(),
            )
            .field("current", &self.current.load(Ordering::Relaxed))
            .finish()
    }
}

impl Members {
    /// A client per member of `urls` (no connection is made yet) and the health monitor,
    /// which runs while the returned value lives.
    pub(crate) async fn connect(
        urls: &[String],
        options: ec::ConnectOptions,
    ) -> Result<Arc<Members>, StoreError> {
        if urls.is_empty() {
            return Err(StoreError::Backend(
                "no etcd endpoint given: write etcd://host:port[,host:port…]".into(),
            ));
        }
        let mut members = Vec::new();
        for url in urls {
            let client = ec::Client::connect([url.as_str()], Some(options.clone()))
                .await
                .map_err(|e| {
                    StoreError::Backend(format!(
                        "cannot use etcd endpoint {url}: {e}; check the endpoints"
                    ))
                })?;
            let authority = url
                .split_once("://")
                .map_or(url.as_str(), |(_, rest)| rest)
                .trim_end_matches('/')
                .to_string();
            members.push(Member {
                url: url.clone(),
                authority,
                client,
            });
        }
        let (switched, _) = tokio::sync::watch::channel(0);
        let members = Arc::new(Members {
            members,
            current: AtomicUsize::new(0),
            switched,
        });
        if members.members.len() > 1 {
            tokio::spawn(monitor(Arc::downgrade(&members)));
        }
        Ok(members)
    }

    /// The current member's index and client.
    pub(crate) fn current(&self) -> (usize, ec::Client) {
        let i = self.current.load(Ordering::Acquire) % self.members.len();
        (i, self.members[i].client.clone())
    }

    /// Bumped at every switch of the current member.
    pub(crate) fn switches(&self) -> tokio::sync::watch::Receiver<u64> {
        self.switched.subscribe()
    }

    /// A call to member `i` failed as unavailable: if it is still the current one, the next
    /// member becomes current.
    pub(crate) fn failed(&self, i: usize, why: &str) {
        self.switch(i, (i + 1) % self.members.len(), why);
    }

    fn switch(&self, from: usize, to: usize, why: &str) {
        if from == to {
            return;
        }
        let moved = self
            .current
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if moved {
            tracing::warn!(
                from = %self.members[from].url,
                to = %self.members[to].url,
                reason = why,
                "etcd: moving to another member"
            );
            self.switched.send_modify(|n| *n += 1);
        }
    }

    /// Asks every member's health; moves off an unhealthy current member to a healthy one.
    async fn check(&self) {
        let health =
            futures::future::join_all(self.members.iter().map(|m| healthy(&m.authority))).await;
        let (cur, _) = self.current();
        if health[cur] {
            return;
        }
        let n = self.members.len();
        if let Some(next) = (1..n).map(|k| (cur + k) % n).find(|&i| health[i]) {
            self.switch(cur, next, "its /health is not ok");
        }
    }

    /// Runs `f` on the current member's client; on an unavailable error, marks that member
    /// failed and — as `retry` allows, on each other member at most once, while the call is
    /// young — runs it again on the next.
    pub(crate) async fn call<T, F, Fut>(&self, retry: Retry, f: F) -> Result<T, StoreError>
    where
        F: Fn(ec::Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let started = Instant::now();
        let mut attempts = 0;
        let mut switches = self.switches();
        loop {
            switches.borrow_and_update();
            let (i, client) = self.current();
            let attempt = f(client);
            let result = match retry {
                Retry::Always => tokio::select! {
                    r = attempt => r,
                    Ok(()) = switches.changed() => Err(StoreError::Unavailable(format!(
                        "etcd member {} was left while it had the request",
                        self.members[i].url
                    ))),
                },
                Retry::Unreached => attempt.await,
            };
            match result {
                Err(StoreError::Unavailable(text)) => {
                    self.failed(i, &text);
                    attempts += 1;
                    let may = match retry {
                        Retry::Always => true,
                        Retry::Unreached => unreached(&text),
                    };
                    if !(may && attempts < self.members.len() && started.elapsed() < RETRY_WITHIN) {
                        return Err(StoreError::Unavailable(text));
                    }
                }
                other => return other,
            }
        }
    }
}

impl Members {
    /// Runs `f` on every member at once; the first success is the answer. A member that
    /// answers unavailable (an election going on: "leader changed", "no leader") is asked
    /// again after [`AGAIN_AFTER`], one that takes longer than [`ATTEMPT`] (forwarding to a
    /// leader that is gone) at once, while the call is young. A definite no
    /// ([`StoreError::LeaseNotFound`]) is the answer at once; without a success or one, the
    /// first error that came back. For requests that are safe to send many times (a lease renewal).
    pub(crate) async fn first_ok<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: Fn(ec::Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        use futures::StreamExt;
        let started = Instant::now();
        let f = &f;
        let mut all: futures::stream::FuturesUnordered<_> = self
            .members
            .iter()
            .map(|m| async move {
                loop {
                    let attempt = tokio::time::timeout(ATTEMPT, f(m.client.clone())).await;
                    let young = started.elapsed() + AGAIN_AFTER < RETRY_WITHIN;
                    match attempt {
                        // A member still forwarding to a leader that is gone: ask again.
                        Err(_) if young => {}
                        Err(_) => {
                            return Err(StoreError::Unavailable(format!(
                                "etcd member {} did not answer in {ATTEMPT:?}",
                                m.url
                            )));
                        }
                        Ok(Err(StoreError::Unavailable(_))) if young => {
                            tokio::time::sleep(AGAIN_AFTER).await;
                        }
                        Ok(r) => return r,
                    }
                }
            })
            .collect();
        let mut error = None;
        while let Some(r) = all.next().await {
            match r {
                Ok(v) => return Ok(v),
                // The cluster's leader no longer knows the lease: no other member will.
                Err(e @ StoreError::LeaseNotFound(_)) => return Err(e),
                Err(e) => {
                    error.get_or_insert(e);
                }
            }
        }
        Err(error.unwrap_or_else(|| StoreError::Unavailable("no etcd member".into())))
    }
}

/// Probes the members while `members` lives.
async fn monitor(members: Weak<Members>) {
    loop {
        let Some(m) = members.upgrade() else { return };
        m.check().await;
        drop(m);
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

/// Whether the member at `authority` answers its `/health` with `"health":"true"` (it has a
/// leader and a quorum read went through) within [`PROBE_TIMEOUT`].
async fn healthy(authority: &str) -> bool {
    let probe = async {
        let mut s = tokio::net::TcpStream::connect(authority).await.ok()?;
        let request = format!("GET /health HTTP/1.0\r\nHost: {authority}\r\n\r\n");
        s.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).await.ok()?;
        Some(String::from_utf8_lossy(&answer).contains("\"health\":\"true\""))
    };
    tokio::time::timeout(PROBE_TIMEOUT, probe)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_before_a_member_took_the_request_are_unreached() {
        for text in [
            "grpc request error: status: Unavailable, message: \"tcp connect error\"",
            "transport error: error trying to connect: Connection refused (os error 111)",
            "etcdserver: no leader",
        ] {
            assert!(unreached(text), "{text}");
        }
        for text in [
            "grpc request error: code: 'The operation was cancelled', message: \"Timeout expired\"",
            "etcdserver: request timed out",
            "etcdserver: leader changed",
        ] {
            assert!(!unreached(text), "{text}");
        }
    }

    #[tokio::test]
    async fn a_call_moves_to_the_next_member_and_writes_repeat_only_when_unreached() {
        let urls: Vec<String> = [
            "http://127.0.0.1:1",
            "http://127.0.0.1:2",
            "http://127.0.0.1:3",
        ]
        .map(String::from)
        .to_vec();
        let m = Members::connect(&urls, ec::ConnectOptions::new())
            .await
            .unwrap();
        let mut switches = m.switches();
        let tried = std::sync::Mutex::new(Vec::new());
        let fail = |text: &'static str| {
            let m = &m;
            let tried = &tried;
            move |_c: ec::Client| {
                let (i, _) = m.current();
                tried.lock().unwrap().push(i);
                async move { Err::<(), _>(StoreError::Unavailable(text.into())) }
            }
        };
        // A read goes round every member once, then gives up.
        let r = m.call(Retry::Always, fail("Timeout expired")).await;
        assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
        assert_eq!(*tried.lock().unwrap(), [0, 1, 2]);
        assert!(switches.has_changed().unwrap());
        switches.borrow_and_update();
        // A write that may have been applied is not repeated (but the store moves on).
        tried.lock().unwrap().clear();
        let _ = m.call(Retry::Unreached, fail("Timeout expired")).await;
        assert_eq!(*tried.lock().unwrap(), [0]);
        assert_eq!(m.current().0, 1);
        // One that reached no member is.
        tried.lock().unwrap().clear();
        let _ = m.call(Retry::Unreached, fail("tcp connect error")).await;
        assert_eq!(*tried.lock().unwrap(), [1, 2, 0]);
        // Other errors end the call at once.
        tried.lock().unwrap().clear();
        let r = m
            .call(Retry::Always, |_c| {
                tried.lock().unwrap().push(9);
                async { Err::<(), _>(StoreError::Backend("etcd: bad".into())) }
            })
            .await;
        assert!(matches!(r, Err(StoreError::Backend(_))));
        assert_eq!(*tried.lock().unwrap(), [9]);
    }

    #[tokio::test]
    async fn a_renewal_goes_to_every_member_and_the_first_success_or_a_definite_no_answers() {
        let urls: Vec<String> = [
            "http://127.0.0.1:1",
            "http://127.0.0.1:2",
            "http://127.0.0.1:3",
        ]
        .map(String::from)
        .to_vec();
        let m = Members::connect(&urls, ec::ConnectOptions::new())
            .await
            .unwrap();
        let n = AtomicUsize::new(0);
        // One member of three renews: that is the answer.
        let r = m
            .first_ok(|_c| {
                let k = n.fetch_add(1, Ordering::SeqCst);
                async move {
                    match k {
                        2 => Ok(k),
                        _ => Err(StoreError::Unavailable("tcp connect error".into())),
                    }
                }
            })
            .await;
        assert_eq!(r.unwrap(), 2);
        assert_eq!(n.load(Ordering::SeqCst), 3, "not every member was asked");
        // One knows the lease is gone: that is the answer.
        n.store(0, Ordering::SeqCst);
        let r = m
            .first_ok(|_c| {
                let k = n.fetch_add(1, Ordering::SeqCst);
                async move {
                    Err::<(), _>(match k {
                        1 => StoreError::LeaseNotFound(7),
                        _ => StoreError::Unavailable("no leader".into()),
                    })
                }
            })
            .await;
        assert!(matches!(r, Err(StoreError::LeaseNotFound(7))), "{r:?}");
    }
}
