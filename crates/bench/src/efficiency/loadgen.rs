//! A bounded open-loop load generator: requests leave at their scheduled times whatever the
//! server does (open loop: a slow answer does not delay the next request), from a fixed pool
//! of worker threads that each keep one HTTP/1.1 keep-alive connection to the proxy.
//!
//! Bounds, all hard: at most `concurrency` requests in flight (one per worker), at most `queue`
//! requests waiting for a free worker — a request that finds the queue full is dropped and
//! counted, never sent late without limit — at most `max_requests` in a run (a longer schedule
//! is refused before anything is sent), and every request gives up after `timeout`.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::request;

/// Limits and target of one run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The proxy.
    pub proxy: SocketAddr,
    /// Worker threads = most requests in flight.
    pub concurrency: usize,
    /// Most requests waiting for a worker; more are dropped.
    pub queue: usize,
    /// Most requests in one run.
    pub max_requests: usize,
    /// Per-request limit (connect, send, whole answer).
    pub timeout: Duration,
}

/// What happened to one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// The site.
    pub site: u32,
    /// When it was due, seconds from the start of the run.
    pub due: f64,
    /// How late it left (queueing for a worker), seconds.
    pub late: f32,
    /// From sending to the last byte of the answer, seconds.
    pub latency: f32,
    /// The HTTP status; 0 when no answer came (error or timeout).
    pub status: u16,
}

/// A run's outcomes.
#[derive(Debug, Default)]
pub struct Report {
    /// One per request sent, in no particular order.
    pub outcomes: Vec<Outcome>,
    /// Requests not sent because the queue was full.
    pub dropped: u64,
    /// The first few errors, for the log.
    pub errors: Vec<String>,
}

/// Sends `schedule` (seconds from `t0`, site) with `requests[site]` as the raw request bytes.
/// Stops early, without error, when `stop` is set.
pub fn run(
    config: &Config,
    schedule: &[(f64, u32)],
    requests: &[Vec<u8>],
    t0: Instant,
    stop: &AtomicBool,
) -> anyhow::Result<Report> {
    if schedule.len() > config.max_requests {
        bail!(
            "the schedule has {} requests, above the cap of {}: lower --sites or --speedup",
            schedule.len(),
            config.max_requests
        );
    }
    if config.concurrency == 0 || config.queue == 0 {
        bail!("the load generator needs at least one worker and a queue of one");
    }
    let (tx, rx) = sync_channel::<(f64, u32)>(config.queue);
    let rx = Arc::new(Mutex::new(rx));
    let mut dropped = 0u64;
    let results: Vec<(Vec<Outcome>, Vec<String>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..config.concurrency)
            .map(|_| {
                let rx = rx.clone();
                scope.spawn(move || worker(config, &rx, requests, t0))
            })
            .collect();
        for &(due, site) in schedule {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let at = t0 + Duration::from_secs_f64(due);
            let now = Instant::now();
            if at > now {
                // The schedule itself: open-loop pacing, not a readiness wait.
                std::thread::sleep(at - now);
            }
            match tx.try_send((due, site)) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => dropped += 1,
                Err(TrySendError::Disconnected(_)) => break,
            }
        }
        drop(tx);
        workers
            .into_iter()
            .map(|w| w.join().expect("load worker panicked"))
            .collect()
    });
    let mut report = Report {
        dropped,
        ..Report::default()
    };
    for (outcomes, errors) in results {
        report.outcomes.extend(outcomes);
        for e in errors {
            if report.errors.len() < 10 {
                report.errors.push(e);
            }
        }
    }
    Ok(report)
}

fn worker(
    config: &Config,
    rx: &Mutex<Receiver<(f64, u32)>>,
    requests: &[Vec<u8>],
    t0: Instant,
) -> (Vec<Outcome>, Vec<String>) {
    let mut conn = Conn::new(config.proxy, config.timeout);
    let mut outcomes = Vec::new();
    let mut errors = Vec::new();
    loop {
        let job = rx.lock().expect("queue lock").recv();
        let Ok((due, site)) = job else {
            return (outcomes, errors);
        };
        let sent = Instant::now();
        let late = sent.saturating_duration_since(t0 + Duration::from_secs_f64(due));
        let status = match conn.exchange(&requests[site as usize]) {
            Ok(s) => s,
            Err(e) => {
                if errors.len() < 10 {
                    errors.push(format!("site {site}: {e:#}"));
                }
                0
            }
        };
        outcomes.push(Outcome {
            site,
            due,
            late: late.as_secs_f32(),
            latency: sent.elapsed().as_secs_f32(),
            status,
        });
    }
}

/// One keep-alive connection, opened on demand and reopened when the server closed it.
struct Conn {
    addr: SocketAddr,
    timeout: Duration,
    stream: Option<TcpStream>,
}

impl Conn {
    fn new(addr: SocketAddr, timeout: Duration) -> Conn {
        Conn {
            addr,
            timeout,
            stream: None,
        }
    }

    /// Sends one request and reads its whole answer; returns the status. A reused connection
    /// that turns out closed before any answer byte is reopened once (the request never
    /// reached the server).
    fn exchange(&mut self, req: &[u8]) -> anyhow::Result<u16> {
        let reused = self.stream.is_some();
        match self.try_exchange(req) {
            Ok(Some(status)) => Ok(status),
            Ok(None) if reused => {
                self.stream = None;
                match self.try_exchange(req)? {
                    Some(status) => Ok(status),
                    None => bail!("the connection closed before an answer"),
                }
            }
            Ok(None) => bail!("the connection closed before an answer"),
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }

    /// `None`: the connection closed before the first byte of an answer.
    fn try_exchange(&mut self, req: &[u8]) -> anyhow::Result<Option<u16>> {
        if self.stream.is_none() {
            let s = TcpStream::connect_timeout(&self.addr, self.timeout)?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(self.timeout))?;
            s.set_write_timeout(Some(self.timeout))?;
            self.stream = Some(s);
        }
        let s = self.stream.as_mut().expect("just opened");
        if let Err(e) = s.write_all(req) {
            return match e.kind() {
                ErrorKind::BrokenPipe | ErrorKind::ConnectionReset => Ok(None),
                _ => Err(e.into()),
            };
        }
        let mut raw = Vec::with_capacity(512);
        let mut chunk = [0u8; 4096];
        loop {
            let n = match s.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::ConnectionReset && raw.is_empty() => {
                    return Ok(None);
                }
                Err(e) => return Err(e.into()),
            };
            if n == 0 && raw.is_empty() {
                return Ok(None);
            }
            raw.extend_from_slice(&chunk[..n]);
            if let Some(resp) = request::parse(&raw, n == 0)? {
                if n == 0 || closes(&raw) {
                    self.stream = None;
                }
                return Ok(Some(resp.status));
            }
            if n == 0 {
                bail!("the connection closed in the middle of an answer");
            }
        }
    }
}

/// Whether an answer's head says `Connection: close`.
fn closes(raw: &[u8]) -> bool {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end])
        .lines()
        .any(|l| l.to_ascii_lowercase().replace(' ', "") == "connection:close")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::atomic::AtomicUsize;

    /// A keep-alive server answering every request after `delay`, counting connections and
    /// the most requests it held at once.
    struct Server {
        addr: SocketAddr,
        connections: Arc<AtomicUsize>,
        peak: Arc<AtomicUsize>,
    }

    fn server(delay: Duration) -> Server {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let now = Arc::new(AtomicUsize::new(0));
        let (c, p) = (connections.clone(), peak.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                c.fetch_add(1, Ordering::SeqCst);
                let (p, now) = (p.clone(), now.clone());
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    loop {
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..end + 4);
                            let held = now.fetch_add(1, Ordering::SeqCst) + 1;
                            p.fetch_max(held, Ordering::SeqCst);
                            std::thread::sleep(delay);
                            now.fetch_sub(1, Ordering::SeqCst);
                            if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                                .is_err()
                            {
                                return;
                            }
                        }
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                });
            }
        });
        Server {
            addr,
            connections,
            peak,
        }
    }

    fn config(addr: SocketAddr, concurrency: usize, queue: usize) -> Config {
        Config {
            proxy: addr,
            concurrency,
            queue,
            max_requests: 1000,
            timeout: Duration::from_secs(5),
        }
    }

    fn requests() -> Vec<Vec<u8>> {
        vec![b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(); 2]
    }

    #[test]
    fn sends_on_schedule_over_kept_alive_connections() {
        let s = server(Duration::ZERO);
        let schedule: Vec<(f64, u32)> = (0..40).map(|i| (i as f64 * 0.005, i % 2)).collect();
        let stop = AtomicBool::new(false);
        let r = run(
            &config(s.addr, 2, 10),
            &schedule,
            &requests(),
            Instant::now(),
            &stop,
        )
        .unwrap();
        assert_eq!(r.outcomes.len(), 40);
        assert_eq!(r.dropped, 0);
        assert!(r.outcomes.iter().all(|o| o.status == 200), "{:?}", r.errors);
        // Two workers, each with one connection for all its requests.
        assert!(s.connections.load(Ordering::SeqCst) <= 2);
        let mut due: Vec<f64> = r.outcomes.iter().map(|o| o.due).collect();
        due.sort_by(f64::total_cmp);
        assert_eq!(due, schedule.iter().map(|s| s.0).collect::<Vec<_>>());
    }

    #[test]
    fn concurrency_and_queue_are_hard_bounds() {
        // 30 requests at once to a server that holds each for 100 ms: 3 in flight, 5 waiting,
        // the rest dropped at once rather than sent late.
        let s = server(Duration::from_millis(100));
        let schedule: Vec<(f64, u32)> = (0..30).map(|_| (0.0, 0)).collect();
        let stop = AtomicBool::new(false);
        let r = run(
            &config(s.addr, 3, 5),
            &schedule,
            &requests(),
            Instant::now(),
            &stop,
        )
        .unwrap();
        assert_eq!(r.outcomes.len() as u64 + r.dropped, 30);
        assert!(r.outcomes.len() <= 3 + 5 + 3, "{}", r.outcomes.len());
        assert!(r.dropped >= 30 - 11);
        assert!(s.peak.load(Ordering::SeqCst) <= 3);
        assert!(
            r.outcomes.iter().any(|o| o.late >= 0.09),
            "queued ones left late"
        );
    }

    #[test]
    fn refuses_schedules_above_the_cap_and_stops_on_request() {
        let s = server(Duration::ZERO);
        let mut c = config(s.addr, 1, 1);
        c.max_requests = 3;
        let stop = AtomicBool::new(false);
        let four = [(0.0, 0), (0.0, 0), (0.0, 0), (0.0, 0)];
        let e = run(&c, &four, &requests(), Instant::now(), &stop).unwrap_err();
        assert!(e.to_string().contains("cap of 3"), "{e}");
        stop.store(true, Ordering::Relaxed);
        let r = run(&c, &four[..3], &requests(), Instant::now(), &stop).unwrap();
        assert!(r.outcomes.is_empty());
    }

    #[test]
    fn a_dead_server_gives_errors_not_hangs() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let stop = AtomicBool::new(false);
        let r = run(
            &config(addr, 1, 4),
            &[(0.0, 0), (0.0, 1)],
            &requests(),
            Instant::now(),
            &stop,
        )
        .unwrap();
        assert_eq!(r.outcomes.len(), 2);
        assert!(r.outcomes.iter().all(|o| o.status == 0));
        assert!(!r.errors.is_empty());
    }

    #[test]
    fn reads_connection_close() {
        assert!(closes(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"));
        assert!(!closes(
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nConnection: close"
        ));
    }
}
