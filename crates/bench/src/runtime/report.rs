//! The runtime benchmark's output: tables of p50/p95, fairness notes, the summary line.

use std::time::Duration;

use super::limits;
use super::measure::Results;
use crate::samples::{ms, print_table};

/// Prints the tables, the fairness notes and the summary line.
pub fn print(r: &Results) {
    print_table(
        "start → exit of /bin/true",
        &[
            ("hako-true          net none", &r.none_exit),
            ("hako-true          net none, then removed", &r.none_removed),
            ("hako-true-isolated net isolated", &r.iso_exit),
            (
                "hako-true-host     host net (no network namespace)",
                &r.host_exit,
            ),
            (
                "crun-true          crun run, own netns (loopback)",
                &r.crun_exit,
            ),
        ],
    );
    print_table(
        "start → exec of /bin/true",
        &[
            ("hako-true          create+start, net none", &r.none_exec),
            ("hako-true            clone returned", &r.none_clone),
            ("hako-true            prepared (parked)", &r.none_prepare),
            ("hako-true            release → exec", &r.none_release),
            ("hako-true-isolated create+start, net isolated", &r.iso_exec),
            ("hako-true-isolated   prepared (parked)", &r.iso_prepare),
            (
                "hako-true-host       clone returned (no netns)",
                &r.host_clone,
            ),
            (
                "hako-parked        parked container: start → exec",
                &r.parked,
            ),
            (
                "crun-created       created container: crun start",
                &r.crun_created,
            ),
        ],
    );
    print_table(
        "start → first HTTP 200",
        &[
            ("hako-httpd         busybox httpd, isolated", &r.hako_httpd),
            (
                "hako-httpd-host    busybox httpd, host net",
                &r.hako_httpd_host,
            ),
            ("crun-httpd         busybox httpd, host net", &r.crun_httpd),
            ("hako-php           php -S, isolated", &r.hako_php),
            ("crun-php           php -S, host net", &r.crun_php),
        ],
    );
    println!();
    let l = limits();
    println!("Fairness notes:");
    for note in [
        format!(
            "same rootfs (hako's host image: skeleton + read-only binds of /usr and /etc files) \
             and limits (memory {} MiB, cpu {} core, pids {}) for both",
            l.memory_max.unwrap_or(0) >> 20,
            l.cpu_cores.unwrap_or(0.0),
            l.pids_max.unwrap_or(0)
        ),
        "crun uses the skeleton directory as its root; hako also mounts an overlay with a \
         throw-away upper layer per container (in hako's time only)"
            .into(),
        "crun runs from one private mount namespace (cgroup2 unmounted) made once by a worker \
         thread of this process: no unshare/nsenter/sh process in crun's time"
            .into(),
        "crun's HTTP servers share the host network (no network set-up at all); hako's \
         `isolated` ones get a veth on a bridge each, hako's `host net` one is like-for-like"
            .into(),
        "hako's runtime turns on the kernel-wide cgroup favordynmods lock mode at start, so \
         crun's cgroup moves are just as cheap during the run"
            .into(),
    ] {
        println!("- {note}");
    }
    let slow = Duration::from_millis(900);
    let (iso, n) = [&r.hako_httpd, &r.hako_php]
        .iter()
        .fold((0, 0), |(k, n), s| {
            (k + s.count_at_least(slow), n + s.len())
        });
    if iso > 0 {
        println!(
            "- note: {iso} of {n} hako `isolated` HTTP starts took over 0.9 s. Seen here: the \
             new veth was not yet operationally up when start() returned, the host's first \
             ARP request got no answer and the kernel retried it 1 s later (a runtime issue, \
             not the probe's)"
        );
    }
    let ratio = match (r.none_exit.p50(), r.crun_exit.p50()) {
        (Some(h), Some(c)) if c > 0.0 => format!("{:.2}", h / c),
        _ => "-".into(),
    };
    println!(
        "runtime: hako_exit_p50_ms={} crun_exit_p50_ms={} ratio={ratio} \
         hako_httpd_ready_p50_ms={} crun_httpd_ready_p50_ms={} \
         hako_exec_p50_ms={} hako_parked_release_p50_ms={} hako_exit_isolated_p50_ms={} \
         hako_httpd_host_ready_p50_ms={} hako_php_ready_p50_ms={} crun_php_ready_p50_ms={} \
         hako_exit_removed_p50_ms={} crun_created_start_p50_ms={} \
         hako_exit_p95_ms={} crun_exit_p95_ms={}",
        ms(r.none_exit.p50()),
        ms(r.crun_exit.p50()),
        ms(r.hako_httpd.p50()),
        ms(r.crun_httpd.p50()),
        ms(r.none_exec.p50()),
        ms(r.parked.p50()),
        ms(r.iso_exit.p50()),
        ms(r.hako_httpd_host.p50()),
        ms(r.hako_php.p50()),
        ms(r.crun_php.p50()),
        ms(r.none_removed.p50()),
        ms(r.crun_created.p50()),
        ms(r.none_exit.p95()),
        ms(r.crun_exit.p95()),
    );
}
