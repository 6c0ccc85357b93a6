//! The chaos benchmark's bounded load: one thread per kind of probe at a fixed rate — pages of
//! the static site, rows written through the database site, apps created through the API —
//! each recording its outcome. The daemon's addresses can change (a restart after kill -9), so
//! every probe reads the current [`Target`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::report::{Kind, Outcome};

/// Time one probe may take.
const TIMEOUT: Duration = Duration::from_secs(5);
/// No thread sends more than this many probes, however long a run takes.
const MAX_PER_THREAD: usize = 20_000;

/// Where the probes go now.
#[derive(Debug, Clone)]
pub struct Target {
    pub proxy: SocketAddr,
    pub client: hako_api::Client,
}

/// What the probes hit, and how often.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Host of the static site.
    pub page_host: String,
    /// Host of the database site, if this daemon has one.
    pub db_host: Option<String>,
    pub page_every: Duration,
    pub db_every: Duration,
    pub api_every: Duration,
}

impl Plan {
    /// The bench's load: 50 pages/s of `page_host`, 10 database writes/s to `db_host` (if
    /// any), 4 app creates/s through the API.
    pub fn new(page_host: String, db_host: Option<String>) -> Plan {
        Plan {
            page_host,
            db_host,
            page_every: Duration::from_millis(20),
            db_every: Duration::from_millis(100),
            api_every: Duration::from_millis(250),
        }
    }
}

/// The running probes; [`Probes::stop`] ends them.
pub struct Probes {
    t0: Instant,
    pub target: Arc<RwLock<Target>>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// Ids of database rows and API-created apps, unique across a run.
static NEXT_WRITE: AtomicU64 = AtomicU64::new(1);

impl Probes {
    /// Starts the probes of `plan` against `target`; times count from `t0`.
    pub fn start(t0: Instant, target: Target, plan: &Plan) -> Probes {
        let mut p = Probes {
            t0,
            target: Arc::new(RwLock::new(target)),
            outcomes: Arc::default(),
            stop: Arc::default(),
            threads: Vec::new(),
        };
        let host = plan.page_host.clone();
        p.spawn(plan.page_every, move |t| page(t, &host));
        if let Some(db) = plan.db_host.clone() {
            p.spawn(plan.db_every, move |t| db_write(t, &db));
        }
        p.spawn(plan.api_every, api_write);
        p
    }

    fn spawn(&mut self, every: Duration, probe: impl Fn(&Target) -> Probed + Send + 'static) {
        let (t0, target, outcomes, stop) = (
            self.t0,
            self.target.clone(),
            self.outcomes.clone(),
            self.stop.clone(),
        );
        self.threads.push(std::thread::spawn(move || {
            let mut next = Instant::now();
            for _ in 0..MAX_PER_THREAD {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let current = target.read().expect("target lock").clone();
                let sent = t0.elapsed().as_secs_f64();
                let r = probe(&current);
                let done = t0.elapsed().as_secs_f64();
                outcomes.lock().expect("outcomes lock").push(Outcome {
                    kind: r.kind,
                    sent,
                    done,
                    ok: r.status.is_some_and(|s| (200..300).contains(&s)),
                    status: r.status,
                    write: r.write,
                });
                // The load's pacing (a fixed rate), not a readiness wait.
                next += every;
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                } else {
                    next = now;
                }
            }
        }));
    }

    /// Seconds since the run began.
    pub fn now(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    /// The outcomes so far.
    pub fn outcomes(&self) -> Vec<Outcome> {
        self.outcomes.lock().expect("outcomes lock").clone()
    }

    /// One API write now (beside the paced ones), recorded like theirs; its status.
    pub fn api_write_now(&self) -> Option<u16> {
        let current = self.target.read().expect("target lock").clone();
        let sent = self.now();
        let r = api_write(&current);
        let status = r.status;
        self.outcomes.lock().expect("outcomes lock").push(Outcome {
            kind: r.kind,
            sent,
            done: self.now(),
            ok: status.is_some_and(|s| (200..300).contains(&s)),
            status,
            write: r.write,
        });
        status
    }

    /// Points the probes at a restarted daemon.
    pub fn retarget(&self, target: Target) {
        *self.target.write().expect("target lock") = target;
    }

    /// Ends the probes and waits for their threads.
    pub fn stop(mut self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.outcomes()
    }
}

impl Drop for Probes {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One probe's answer.
struct Probed {
    kind: Kind,
    status: Option<u16>,
    write: Option<String>,
}

fn page(t: &Target, host: &str) -> Probed {
    let status = crate::request::get(t.proxy, host, "/index.html", &[], TIMEOUT)
        .ok()
        .map(|(r, _)| r.status);
    Probed {
        kind: Kind::Page,
        status,
        write: None,
    }
}

fn db_write(t: &Target, host: &str) -> Probed {
    let id = NEXT_WRITE.fetch_add(1, Ordering::Relaxed);
    let status = crate::request::get(t.proxy, host, &format!("/cgi-bin/w?{id}"), &[], TIMEOUT)
        .ok()
        .map(|(r, _)| r.status);
    Probed {
        kind: Kind::DbWrite,
        status,
        write: Some(id.to_string()),
    }
}

/// The name of the app the API write `id` creates.
pub fn api_app(id: u64) -> String {
    format!("w{id}")
}

fn api_write(t: &Target) -> Probed {
    let name = api_app(NEXT_WRITE.fetch_add(1, Ordering::Relaxed));
    let spec = serde_json::json!({
        "name": name, "hosts": [format!("{name}.chaos")], "image": "base",
        "cmd": "busybox httpd -f -p $PORT -h /app",
    });
    let status = match serde_json::from_value(spec) {
        Ok(spec) => match t.client.create_app(&spec) {
            Ok(_) => Some(201),
            Err(e) => e.status(),
        },
        Err(_) => None,
    };
    Probed {
        kind: Kind::ApiWrite,
        status,
        write: Some(name),
    }
}
