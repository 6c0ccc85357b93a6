//! `hako run` through the real binary: output and exit codes passed through, hako's own
//! failures (125/127), options reaching the container, signals stopping it, nothing left.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Env, assert_clean};

#[test]
fn output_and_exit_code_pass_through() {
    let env = Env::new();
    env.busybox_image("bb");
    let out = env.run(&[
        "-v",
        "run",
        "--image",
        "bb",
        "--",
        "sh",
        "-c",
        "echo hi; echo oops >&2; exit 3",
    ]);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(out.stdout, "hi\n");
    assert!(out.stderr.contains("oops"), "{out:?}");
    assert_clean(&out.stderr);

    // Killed by a signal (here the OOM killer, as the memory limit is applied): 128 + its
    // number, like a shell.
    let out = env.run(&[
        "-v",
        "run",
        "--image",
        "bb:1",
        "--memory",
        "16MiB",
        "--",
        "tail",
        "/dev/zero",
    ]);
    assert_eq!(out.code, 128 + 9, "{out:?}");
    assert_clean(&out.stderr);
}

#[test]
fn options_reach_the_container() {
    let env = Env::new();
    env.busybox_image("bb");
    let shared = env.path("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("note"), "from the host\n").unwrap();
    let data = env.path("data-dir");
    std::fs::create_dir_all(&data).unwrap();
    let mount = format!("{}:/shared:ro", shared.display());
    let script = "echo $GREETING $FROM_HAKO; hostname; id -u; pwd; cat /shared/note; \
                  touch /shared/x 2>/dev/null || echo read-only; echo kept > /data/out";
    let out = env
        .hako(&[
            "-v",
            "run",
            "--image",
            "bb",
            "--env",
            "GREETING=hello",
            "--env",
            "FROM_HAKO",
            "--hostname",
            "blog-1",
            "--user",
            "0",
            "--workdir",
            "/tmp",
            "--mount",
            &mount,
            "--data",
            data.to_str().unwrap(),
            "--memory",
            "64MiB",
            "--cpu",
            "0.5",
            "--pids",
            "64",
            "--",
            "sh",
            "-c",
            script,
        ])
        .env("FROM_HAKO", "world")
        .output()
        .unwrap();
    let out = common::Outcome::from(out);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout, "hello world\nblog-1\n0\n/tmp\nfrom the host\nread-only\n",
        "{out:?}"
    );
    assert_eq!(std::fs::read_to_string(data.join("out")).unwrap(), "kept\n");
    assert_clean(&out.stderr);
}

#[test]
fn host_network_gets_a_free_port() {
    let env = Env::new();
    env.busybox_image("bb");
    let out = env.run(&[
        "-v",
        "run",
        "--image",
        "bb",
        "--net",
        "host",
        "--",
        "sh",
        "-c",
        "echo $PORT",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let port: u16 = out
        .stdout
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{out:?}"));
    assert!(port > 0);
    let out = env.run(&[
        "run",
        "--image",
        "bb",
        "--net",
        "host",
        "--env",
        "PORT=8123",
        "--",
        "sh",
        "-c",
        "echo $PORT",
    ]);
    assert_eq!(out.stdout, "8123\n", "{out:?}");
}

#[test]
fn setup_failures_exit_125_and_missing_commands_127() {
    let env = Env::new();
    env.busybox_image("bb");

    let out = env.run(&["-v", "run", "--image", "bb", "--memory", "1", "--", "true"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr.contains("memory limit of 1 bytes is too small"),
        "{out:?}"
    );
    assert!(
        common::logged_prefix(&out.stderr).is_none(),
        "a runtime was made: {out:?}"
    );

    // A limit this host can never give: refused with the API's words, before a runtime.
    let cpus = hako_agent::node_capacity().cpus;
    let over = (cpus + 1).to_string();
    let out = env.run(&["-v", "run", "--image", "bb", "--cpu", &over, "--", "true"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "cpu limit of {over} cores is more than this node has ({cpus} cores): give at most {cpus}"
        )),
        "{out:?}"
    );
    assert!(
        common::logged_prefix(&out.stderr).is_none(),
        "a runtime was made: {out:?}"
    );
    let out = env.run(&[
        "run",
        "--image",
        "bb",
        "--pids",
        "99999999999",
        "--",
        "true",
    ]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.contains("more than this node allows"), "{out:?}");
    // Values that are no limit at all are usage errors.
    let out = env.run(&["run", "--image", "bb", "--cpu", "inf", "--", "true"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("cpu limit \"inf\" is not valid"),
        "{out:?}"
    );

    let out = env.run(&["run", "--image", "nope", "--", "true"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.contains("image nope not found"), "{out:?}");

    let out = env.run(&["run", "--image", "bb:7", "--", "true"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr.contains("image bb version 7 not found"),
        "{out:?}"
    );

    // Found only when the container is made: the runtime made for it is removed.
    let out = env.run(&[
        "-v", "run", "--image", "bb", "--user", "ghost", "--", "true",
    ]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.contains("unknown user \"ghost\""), "{out:?}");
    assert_clean(&out.stderr);

    let out = env.run(&["-v", "run", "--image", "bb", "--", "no-such-command", "x"]);
    assert_eq!(out.code, 127, "{out:?}");
    assert!(
        out.stderr.contains("cannot execute \"no-such-command\""),
        "{out:?}"
    );
    assert_clean(&out.stderr);

    // A file that is not executable: found but cannot be invoked.
    let out = env.run(&["run", "--image", "bb", "--", "/etc/passwd"]);
    assert_eq!(out.code, 126, "{out:?}");

    // Bad syntax is a usage error, before anything is made.
    let out = env.run(&["run", "--image", "bb", "--memory", "lots", "--", "true"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("--memory"), "{out:?}");
    let out = env.run(&["run", "--image", "bb"]);
    assert_eq!(out.code, 2, "{out:?}");
}

/// A `hako -v run` in the background with its output piped.
fn spawn(env: &Env, args: &[&str]) -> Child {
    let mut all = vec!["-v", "run", "--image", "bb"];
    all.extend_from_slice(args);
    env.hako(&all)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads `child`'s stdout until a line equal to `want`.
fn wait_for_line(child: &mut Child, want: &str) -> BufReader<std::process::ChildStdout> {
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "stdout ended before {want:?}"
        );
        if line.trim_end() == want {
            return reader;
        }
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// Waits for `child` to end, at most `limit`; returns its code and stderr.
fn finish(mut child: Child, limit: Duration) -> (i32, String, Duration) {
    let t0 = Instant::now();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let status = child.wait().unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
        let _ = tx.send((status.code().unwrap_or(-1), text));
    });
    let (code, err) = rx
        .recv_timeout(limit)
        .unwrap_or_else(|_| panic!("hako run did not end within {limit:?}"));
    (code, err, t0.elapsed())
}

#[test]
fn sigterm_ends_sleep_promptly_and_removes_everything() {
    let env = Env::new();
    env.busybox_image("bb");
    // `sleep` as the container's init has no SIGTERM handler; with the default 10s grace
    // period the container still ends promptly.
    let mut child = spawn(&env, &["--", "sh", "-c", "echo ready; exec sleep 1000"]);
    let _out = wait_for_line(&mut child, "ready");
    signal(&child, "TERM");
    let (code, stderr, took) = finish(child, Duration::from_secs(15));
    assert_eq!(code, 128 + 9, "{stderr}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(stderr.contains("stopping the container"), "{stderr}");
    assert_clean(&stderr);
}

#[test]
fn an_init_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let env = Env::new();
    env.busybox_image("bb");
    // An ignored signal stays ignored across exec.
    let mut child = spawn(
        &env,
        &[
            "--stop-timeout",
            "300ms",
            "--",
            "sh",
            "-c",
            "trap '' TERM; echo ready; exec sleep 1000",
        ],
    );
    let _out = wait_for_line(&mut child, "ready");
    signal(&child, "TERM");
    let (code, stderr, took) = finish(child, Duration::from_secs(10));
    assert_eq!(code, 128 + 9, "{stderr}");
    assert!(took >= Duration::from_millis(300), "took {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_clean(&stderr);
}

#[test]
fn sigterm_is_forwarded_for_a_graceful_exit() {
    let env = Env::new();
    env.busybox_image("bb");
    let mut child = spawn(
        &env,
        &[
            "--",
            "sh",
            "-c",
            "trap 'echo bye; exit 0' TERM; echo ready; sleep 1000 & wait",
        ],
    );
    let mut out = wait_for_line(&mut child, "ready");
    signal(&child, "TERM");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let (code, stderr, _) = finish(child, Duration::from_secs(10));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(rest, "bye\n");
    assert_clean(&stderr);
}

#[test]
fn a_second_signal_kills_at_once() {
    let env = Env::new();
    env.busybox_image("bb");
    let mut child = spawn(
        &env,
        &[
            "--stop-timeout",
            "1h",
            "--",
            "sh",
            "-c",
            "trap '' TERM; echo ready; exec sleep 1000",
        ],
    );
    let _out = wait_for_line(&mut child, "ready");
    signal(&child, "INT");
    // Wait until hako has acted on the first signal before sending the second.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "stderr ended: {seen}"
        );
        seen.push_str(&line);
        if line.contains("stopping the container") {
            break;
        }
    }
    signal(&child, "HUP");
    let t0 = Instant::now();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let status = child.wait().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
        let _ = tx.send((status.code().unwrap_or(-1), rest));
    });
    let (code, rest) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("hako run ended");
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(code, 128 + 9, "{seen}{rest}");
    assert!(rest.contains("second signal"), "{rest}");
    assert_clean(&format!("{seen}{rest}"));
}

#[test]
fn without_limit_options_a_container_still_has_the_default_limits() {
    // 600 background processes: more than the default 512 pids, so some forks must fail.
    // (Memory has the same default, 256MiB; its enforcement is the runtime's limits test.)
    let env = Env::new();
    env.busybox_image("bb");
    let out = env.run(&[
        "-v",
        "run",
        "--image",
        "bb",
        "--",
        "sh",
        "-c",
        "for i in $(seq 600); do sleep 30 & done; echo started",
    ]);
    assert!(
        out.stderr.contains("can't fork") || out.stderr.contains("Resource temporarily"),
        "600 processes were allowed: {out:?}"
    );
    assert_clean(&out.stderr);
}

#[test]
fn seccomp_is_on_by_default_and_can_be_turned_off() {
    let env = Env::new();
    env.busybox_image("bb");
    let probe = [
        "sh",
        "-c",
        "grep ^Seccomp: /proc/self/status; unshare -U -r true && echo userns",
    ];
    let mut args = vec!["-v", "run", "--image", "bb", "--"];
    args.extend(probe);
    let out = env.run(&args);
    assert!(
        out.stdout.contains("Seccomp:\t2") && !out.stdout.contains("userns"),
        "{out:?}"
    );
    assert!(out.stderr.contains("Operation not permitted"), "{out:?}");
    assert_clean(&out.stderr);
    let mut args = vec![
        "-v",
        "run",
        "--image",
        "bb",
        "--seccomp",
        "unconfined",
        "--",
    ];
    args.extend(probe);
    let out = env.run(&args);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("Seccomp:\t0") && out.stdout.contains("userns"),
        "{out:?}"
    );
    assert_clean(&out.stderr);
    let out = env.run(&["run", "--image", "bb", "--seccomp", "strict", "--", "true"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("default or unconfined"), "{out:?}");
}
