//! Debian's `pebble` (Let's Encrypt's ACME test server) on loopback, for end-to-end ACME
//! tests: its own HTTPS listener certificate (from a [`TestCa`] whose root the ACME client is
//! given), validation of HTTP-01 against hako's real HTTP port (`httpPort`), and names resolved
//! by a DNS stub that answers every `A` query with 127.0.0.1.
//!
//! The stub is needed because pebble resolves challenge hosts itself (Go's resolver or its
//! `-dnsserver`): with the system resolver, test host names would have to be written into
//! the machine's `/etc/hosts`. Pebble's validation still connects to hako over real TCP and
//! checks the real answer — nothing is skipped (`PEBBLE_VA_ALWAYS_VALID` is not set).
//!
//! ```no_run
//! # fn main() -> Result<(), hako_testkit::Error> {
//! let setup = hako_testkit::pebble::Setup::new()?;
//! // … start hako serve with [acme] directory = setup.directory, ca_file = setup.ca_file …
//! let pebble = setup.start(8080, std::time::Duration::from_secs(3600))?;
//! let root = pebble.issuing_root()?;
//! # Ok(()) }
//! ```

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::pki::TestCa;
use crate::{Error, retry_until};

/// The pebble binary (Debian's `pebble` package).
pub const PEBBLE: &str = "/usr/bin/pebble";

/// Pebble's ports and listener certificate, chosen before hako starts (hako's `[acme]` config
/// names the directory and the root to trust).
pub struct Setup {
    /// The ACME directory URL.
    pub directory: String,
    /// The root of pebble's own HTTPS listener (PEM file), for the ACME client.
    pub ca_file: PathBuf,
    listen: SocketAddr,
    management: SocketAddr,
    dir: tempfile::TempDir,
}

/// A running pebble and its DNS stub; both stop when dropped.
pub struct Pebble {
    child: Child,
    management: SocketAddr,
    ca_pem: String,
    _dns: DnsStub,
    _dir: tempfile::TempDir,
}

impl Setup {
    /// Picks two free loopback ports and makes pebble's listener certificate (`localhost`,
    /// `127.0.0.1`).
    pub fn new() -> Result<Setup, Error> {
        if !std::path::Path::new(PEBBLE).exists() {
            return Err(Error::Https(format!(
                "{PEBBLE} is missing: install Debian's pebble (cargo xtask test does)"
            )));
        }
        let dir = tempfile::Builder::new()
            .prefix("hako-pebble-")
            .tempdir()
            .map_err(Error::io("cannot make a temp dir"))?;
        let ca = TestCa::new("pebble listener test CA");
        let leaf = ca.issue(&["localhost", "127.0.0.1"]);
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).map_err(Error::io(format!("cannot write {name}")))?;
            Ok::<_, Error>(path)
        };
        let ca_file = write("listener-ca.pem", &ca.pem)?;
        write("listener.pem", &leaf.chain_pem)?;
        write("listener-key.pem", &leaf.key_pem)?;
        let (listen, management) = (free_port()?, free_port()?);
        Ok(Setup {
            directory: format!("https://{listen}/dir"),
            ca_file,
            listen,
            management,
            dir,
        })
    }

    /// Starts pebble, validating HTTP-01 on `http_port` of 127.0.0.1 and issuing certificates
    /// valid for `validity`, and waits until it serves its directory.
    pub fn start(self, http_port: u16, validity: Duration) -> Result<Pebble, Error> {
        let dns = DnsStub::start()?;
        let config = serde_json::json!({
            "pebble": {
                "listenAddress": self.listen.to_string(),
                "managementListenAddress": self.management.to_string(),
                "certificate": self.dir.path().join("listener.pem"),
                "privateKey": self.dir.path().join("listener-key.pem"),
                "httpPort": http_port,
                "tlsPort": 5001,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false,
                "certificateValidityPeriod": validity.as_secs(),
            }
        });
        let config_file = self.dir.path().join("pebble-config.json");
        std::fs::write(&config_file, config.to_string())
            .map_err(Error::io("cannot write pebble's config"))?;
        let log = std::fs::File::create(self.dir.path().join("pebble.log"))
            .map_err(Error::io("cannot make pebble's log"))?;
        let child = Command::new(PEBBLE)
            .arg("-config")
            .arg(&config_file)
            .args(["-dnsserver", &dns.addr.to_string()])
            // No random validation delays, no nonces rejected on purpose: the test is about
            // hako, not about retrying pebble's chaos.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(Stdio::from(log.try_clone().map_err(Error::io("log"))?))
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|source| Error::Spawn {
                program: PEBBLE.into(),
                source,
            })?;
        let ca_pem = std::fs::read_to_string(&self.ca_file)
            .map_err(Error::io("cannot read the listener CA"))?;
        let pebble = Pebble {
            child,
            management: self.management,
            ca_pem,
            _dns: dns,
            _dir: self.dir,
        };
        let listen = self.listen;
        retry_until::<_, Error>(
            "pebble to listen",
            Duration::from_secs(20),
            Duration::from_millis(20),
            || Ok(std::net::TcpStream::connect(listen).ok().map(drop)),
        )?;
        Ok(pebble)
    }
}

impl Pebble {
    /// The root certificate pebble issues under (PEM): what a client of the hosted sites must
    /// trust. Pebble makes a new one at each start.
    pub fn issuing_root(&self) -> Result<String, Error> {
        let reply = crate::https::get(
            self.management,
            "localhost",
            "/roots/0",
            &self.ca_pem,
            crate::https::Protocol::Http1,
        )?;
        if reply.status != 200 || !reply.body.contains("BEGIN CERTIFICATE") {
            return Err(Error::Https(format!(
                "pebble's /roots/0 answered {}: {}",
                reply.status, reply.body
            )));
        }
        Ok(reply.body)
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<SocketAddr, Error> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(Error::io("find a free port"))?;
    l.local_addr().map_err(Error::io("find a free port"))
}

/// A DNS server on a loopback UDP port that answers every `A` question with 127.0.0.1 and
/// every other question (AAAA, CAA…) with no record.
pub struct DnsStub {
    /// Where it answers.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DnsStub {
    /// Starts it on a free port.
    pub fn start() -> Result<DnsStub, Error> {
        let socket = UdpSocket::bind("127.0.0.1:0").map_err(Error::io("bind the DNS stub"))?;
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(Error::io("DNS stub timeout"))?;
        let addr = socket.local_addr().map_err(Error::io("DNS stub address"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !stopping.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if let Some(answer) = dns_answer(&buf[..n]) {
                    let _ = socket.send_to(&answer, from);
                }
            }
        });
        Ok(DnsStub {
            addr,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for DnsStub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The answer to one DNS query (RFC 1035 §4.1): the question echoed, and for type A class IN
/// one record 127.0.0.1 (TTL 60); `None` for what is not a one-question query.
pub fn dns_answer(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 || u16::from_be_bytes([query[4], query[5]]) != 1 {
        return None;
    }
    // The question: labels up to the root label, then type and class.
    let mut end = 12;
    loop {
        let len = *query.get(end)? as usize;
        if len & 0xc0 != 0 {
            return None;
        }
        end += 1 + len;
        if len == 0 {
            break;
        }
    }
    let qtype = u16::from_be_bytes([*query.get(end)?, *query.get(end + 1)?]);
    let qclass = u16::from_be_bytes([*query.get(end + 2)?, *query.get(end + 3)?]);
    end += 4;
    let a = qtype == 1 && qclass == 1;
    let mut out = Vec::with_capacity(end + 16);
    out.extend_from_slice(&query[..2]); // id
    // QR, the query's opcode and RD, RA; NOERROR.
    out.push(0x80 | (query[2] & 0x79));
    out.push(0x80);
    out.extend_from_slice(&[0, 1, 0, u8::from(a), 0, 0, 0, 0]);
    out.extend_from_slice(&query[12..end]);
    if a {
        // A pointer to the question's name, A, IN, TTL 60, 4 bytes: 127.0.0.1.
        out.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `name` of `qtype` (id 0x1234, RD), with an EDNS OPT record after it as Go's
    /// resolver sends.
    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        q.extend_from_slice(&[0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0]);
        q
    }

    #[test]
    fn a_queries_get_loopback_and_others_get_nothing() {
        let q = query("site.test", 1);
        let a = dns_answer(&q).unwrap();
        assert_eq!(&a[..2], &[0x12, 0x34]);
        assert_eq!(a[2] & 0x80, 0x80, "a response");
        assert_eq!(&a[6..8], &[0, 1], "one answer");
        assert_eq!(&a[a.len() - 4..], &[127, 0, 0, 1]);
        let aaaa = dns_answer(&query("site.test", 28)).unwrap();
        assert_eq!(&aaaa[6..8], &[0, 0], "no answer");
        assert!(dns_answer(&a).is_none(), "responses are not answered");
        assert!(dns_answer(&q[..14]).is_none(), "cut short");
    }

    #[test]
    fn the_stub_answers_over_udp() {
        let stub = DnsStub::start().unwrap();
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.send_to(&query("a.b.test", 1), stub.addr).unwrap();
        let mut buf = [0u8; 512];
        let (n, _) = s.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[n - 4..n], &[127, 0, 0, 1]);
    }
}
