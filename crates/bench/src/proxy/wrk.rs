//! Runs wrk (bounded: fixed threads, connections and duration) and reads its figures:
//! requests per second and the latency percentiles of `--latency`.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

/// Threads of wrk.
pub const THREADS: u32 = 2;
/// Open connections of wrk.
pub const CONNECTIONS: u32 = 64;

/// What one wrk run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub requests: u64,
}

/// `wrk -t2 -c64 -dS --latency -H 'Host: HOST' http://ADDR/`; fails on errors wrk reports
/// (non-2xx answers, socket errors other than none).
pub fn run(addr: SocketAddr, host: &str, duration: Duration) -> anyhow::Result<Figures> {
    run_with(addr, host, duration, CONNECTIONS, Duration::from_secs(5))
}

/// Like [`run`] with `connections` open connections and a per-request `timeout` (for slow
/// pages such as WordPress's, where 64 connections only measure queueing).
pub fn run_with(
    addr: SocketAddr,
    host: &str,
    duration: Duration,
    connections: u32,
    timeout: Duration,
) -> anyhow::Result<Figures> {
    let out = Command::new("wrk")
        .arg(format!("-t{THREADS}"))
        .arg(format!("-c{}", connections.max(THREADS)))
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .args(["--latency", "--timeout"])
        .arg(format!("{}s", timeout.as_secs().max(1)))
        .arg("-H")
        .arg(format!("Host: {host}"))
        .arg(format!("http://{addr}/"))
        .output()
        .context("cannot run wrk: install it (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "wrk failed ({}): {}{}",
            out.status,
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse(&text).with_context(|| format!("wrk's output:\n{text}"))
}

/// Reads wrk's `--latency` output.
pub fn parse(text: &str) -> anyhow::Result<Figures> {
    let mut rps = None;
    let mut p50 = None;
    let mut p99 = None;
    let mut requests = None;
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", v] => rps = Some(v.parse::<f64>().context("Requests/sec")?),
            ["50%", v] => p50 = Some(duration_ms(v)?),
            ["99%", v] => p99 = Some(duration_ms(v)?),
            [n, "requests", "in", ..] => requests = Some(n.parse::<u64>().context("requests")?),
            ["Non-2xx", "or", "3xx", "responses:", n] => {
                bail!("{n} answers were not 2xx/3xx: the proxy or backend is failing")
            }
            ["Socket", "errors:", rest @ ..] => {
                // "connect 0, read 0, write 0, timeout 0": timeouts and connect errors
                // mean lost requests.
                let joined = rest.join(" ");
                for part in joined.split(',') {
                    let mut kv = part.split_whitespace();
                    if let (Some(kind @ ("connect" | "timeout")), Some(n)) = (kv.next(), kv.next())
                        && n != "0"
                    {
                        bail!("wrk saw {n} socket {kind} errors");
                    }
                }
            }
            _ => {}
        }
    }
    Ok(Figures {
        rps: rps.context("no Requests/sec line")?,
        p50_ms: p50.context("no 50% latency line (was --latency given?)")?,
        p99_ms: p99.context("no 99% latency line (was --latency given?)")?,
        requests: requests.context("no 'N requests in' line")?,
    })
}

/// A wrk duration such as `635.00us`, `2.22ms`, `1.01s` or `1.50m`, in milliseconds.
fn duration_ms(v: &str) -> anyhow::Result<f64> {
    let split = v
        .find(|c: char| c.is_ascii_alphabetic())
        .with_context(|| format!("duration {v:?} has no unit"))?;
    let (num, unit) = v.split_at(split);
    let n: f64 = num
        .parse()
        .with_context(|| format!("duration {v:?} is not a number"))?;
    let scale = match unit {
        "us" => 1e-3,
        "ms" => 1.0,
        "s" => 1e3,
        "m" => 60e3,
        "h" => 3600e3,
        other => bail!("duration {v:?}: unknown unit {other:?}"),
    };
    Ok(n * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "Running 10s test @ http://127.0.0.1:8080/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.02ms  512.00us  20.01ms   90.00%
    Req/Sec    31.00k     2.00k   35.00k    70.00%
  Latency Distribution
     50%  900.00us
     75%    1.10ms
     90%    1.40ms
     99%    2.22ms
  617000 requests in 10.00s, 50.00MB read
Requests/sec:  61700.50
Transfer/sec:      5.00MB
";

    #[test]
    fn reads_rps_and_percentiles() {
        let f = parse(OUTPUT).unwrap();
        assert_eq!(f.rps, 61700.5);
        assert!((f.p50_ms - 0.9).abs() < 1e-9, "{}", f.p50_ms);
        assert!((f.p99_ms - 2.22).abs() < 1e-9, "{}", f.p99_ms);
        assert_eq!(f.requests, 617000);
    }

    #[test]
    fn refuses_failed_runs() {
        let bad = OUTPUT.replace(
            "Requests/sec:",
            "  Non-2xx or 3xx responses: 12\nRequests/sec:",
        );
        assert!(parse(&bad).unwrap_err().to_string().contains("12 answers"));
        let timeouts = OUTPUT.replace(
            "Requests/sec:",
            "  Socket errors: connect 0, read 3, write 0, timeout 7\nRequests/sec:",
        );
        assert!(
            parse(&timeouts)
                .unwrap_err()
                .to_string()
                .contains("7 socket timeout")
        );
        let reads_only = OUTPUT.replace(
            "Requests/sec:",
            "  Socket errors: connect 0, read 3, write 0, timeout 0\nRequests/sec:",
        );
        assert!(parse(&reads_only).is_ok());
        assert!(parse("nothing").is_err());
    }

    #[test]
    fn converts_units() {
        assert_eq!(duration_ms("2.00s").unwrap(), 2000.0);
        assert_eq!(duration_ms("1.50m").unwrap(), 90000.0);
        assert!((duration_ms("250.00us").unwrap() - 0.25).abs() < 1e-12);
        assert!(duration_ms("3").is_err());
        assert!(duration_ms("3.0xs").is_err());
    }
}
