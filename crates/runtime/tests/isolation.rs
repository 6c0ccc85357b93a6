//! Isolation, checked from inside real containers.

mod common;

use common::TestRuntime;
use hako_runtime::{BindMount, ExitStatus, RootfsSpec, User};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn runs_as_pid_1_with_its_hostname_and_exit_code() {
    let t = TestRuntime::new();
    let mut spec = t.sh("echo pid=$$; hostname; id -u; exit 7");
    spec.hostname = "blog-1".into();
    let (status, out) = t.run(&spec).await;
    assert_eq!(status, ExitStatus::Exited(7), "{out}");
    assert_eq!(out, "pid=1\nblog-1\n65534\n");
    assert!(t.leftovers().is_empty(), "{:?}", t.leftovers());
}

#[tokio::test]
async fn host_processes_are_invisible() {
    let t = TestRuntime::new();
    // The host certainly has our own test process; the container must see only itself.
    let host_pids = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .count();
    assert!(host_pids > 10);
    let (status, out) = t.run(&t.sh("ls /proc | grep -c '^[0-9]'")).await;
    assert!(status.success(), "{out}");
    let seen: usize = out.trim().parse().unwrap();
    assert!(seen <= 3, "container sees {seen} processes: {out}");
    // The test's own pid is not visible inside.
    let me = std::process::id();
    let (_, out) = t
        .run(&t.sh(&format!(
            "test -e /proc/{me}/cmdline && echo visible || echo hidden"
        )))
        .await;
    // Our pid might coincidentally exist as a small number inside; compare cmdline instead.
    assert!(out.contains("hidden") || me < 5, "{out}");
}

#[tokio::test]
async fn image_is_never_modified_and_root_writes_are_thrown_away() {
    let t = TestRuntime::new();
    let RootfsSpec::Layers(layers) = &t.image else {
        unreachable!()
    };
    let layer = layers[0].clone();
    let mut spec =
        t.sh("echo changed > /etc/passwd && echo new > /etc/extra && rm /bin/ls && cat /etc/extra");
    spec.user = User::Id { uid: 0, gid: 0 };
    let (status, out) = t.run(&spec).await;
    assert!(status.success(), "{out}");
    assert_eq!(out, "new\n");
    assert!(
        std::fs::read_to_string(layer.join("etc/passwd"))
            .unwrap()
            .starts_with("root:")
    );
    assert!(!layer.join("etc/extra").exists());
    assert!(layer.join("bin/ls").symlink_metadata().is_ok());
    // A second container sees the pristine image.
    let (_, out) = t
        .run(&t.sh("test -e /etc/extra && echo leaked || echo clean"))
        .await;
    assert_eq!(out, "clean\n");
}

#[tokio::test]
async fn app_code_is_read_only_and_data_persists() {
    let t = TestRuntime::new();
    let code = t.path("code");
    let data = t.path("data");
    std::fs::create_dir_all(&code).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(code.join("index.html"), "hello\n").unwrap();
    // Data owned by the container's user.
    std::os::unix::fs::chown(&data, Some(65534), Some(65534)).unwrap();
    let mounts = vec![BindMount::app_code(&code), BindMount::data(&data)];

    let mut spec = t.sh("cat /app/index.html; echo x > /app/new && echo app-writable; echo kept > /data/note; echo done");
    spec.mounts = mounts.clone();
    let (status, out) = t.run(&spec).await;
    assert!(status.success(), "{out}");
    assert_eq!(
        out,
        "hello\n/bin/sh: can't create /app/new: Read-only file system\ndone\n"
    );
    assert!(!code.join("new").exists());
    assert_eq!(
        std::fs::read_to_string(data.join("note")).unwrap(),
        "kept\n"
    );

    let mut spec = t.sh("cat /data/note");
    spec.mounts = mounts;
    let (_, out) = t.run(&spec).await;
    assert_eq!(out, "kept\n");
}

#[tokio::test]
async fn root_in_the_container_has_no_sys_admin() {
    let t = TestRuntime::new();
    let mut spec = t.sh("grep -E '^Cap(Eff|Bnd)' /proc/self/status; mount -t tmpfs x /tmp 2>/dev/null && echo mounted; echo 1 > /proc/sys/kernel/panic 2>/dev/null && echo sysctl-written; echo end");
    spec.user = User::Id { uid: 0, gid: 0 };
    let (_, out) = t.run(&spec).await;
    for line in out.lines().filter(|l| l.starts_with("Cap")) {
        let hex = line.split_whitespace().nth(1).unwrap();
        let caps = u64::from_str_radix(hex, 16).unwrap();
        assert_eq!(caps & (1 << 21), 0, "CAP_SYS_ADMIN present: {line}");
        assert_eq!(caps & (1 << 12), 0, "CAP_NET_ADMIN present: {line}");
    }
    assert!(!out.contains("mounted"), "{out}");
    assert!(!out.contains("sysctl-written"), "{out}");
    assert!(out.ends_with("end\n"));
}

#[tokio::test]
async fn no_new_privileges_and_non_root_has_no_capabilities() {
    let t = TestRuntime::new();
    let (_, out) = t
        .run(&t.sh("grep -E '^(CapEff|NoNewPrivs)' /proc/self/status"))
        .await;
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
}

#[tokio::test]
async fn minimal_dev_and_tmpfs_dirs() {
    let t = TestRuntime::new();
    let (status, out) = t.run(&t.sh(
        "ls /dev | sort | tr '\\n' ' '; echo; head -c 4 /dev/urandom | wc -c; echo hi > /tmp/t && cat /tmp/t; grep -c ' /run ' /proc/mounts",
    ))
    .await;
    assert!(status.success(), "{out}");
    let mut lines = out.lines();
    let devs = lines.next().unwrap();
    for d in [
        "full", "null", "ptmx", "pts", "random", "shm", "tty", "urandom", "zero",
    ] {
        assert!(devs.split(' ').any(|x| x == d), "missing /dev/{d}: {devs}");
    }
    assert!(
        !devs.contains("sda") && !devs.contains("vda") && !devs.contains("mem "),
        "{devs}"
    );
    assert_eq!(lines.next(), Some("4"));
    assert_eq!(lines.next(), Some("hi"));
    assert_eq!(lines.next(), Some("1"));
}

#[tokio::test]
async fn host_image_binds_the_hosts_usr_read_only() {
    let t = TestRuntime::new();
    let skel = t.path("skeleton");
    for d in ["usr", "etc", "proc", "dev", "tmp", "run"] {
        std::fs::create_dir_all(skel.join(d)).unwrap();
    }
    for (l, target) in [
        ("bin", "usr/bin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
        ("sbin", "usr/sbin"),
    ] {
        std::os::unix::fs::symlink(target, skel.join(l)).unwrap();
    }
    let mut binds = vec![("/usr".into(), "/usr".into())];
    for f in ["/etc/passwd", "/etc/group", "/etc/ld.so.cache"] {
        binds.push((f.into(), f.into()));
    }
    let mut spec = hako_runtime::ContainerSpec::new(
        RootfsSpec::Host {
            skeleton: skel,
            binds,
        },
        "sh",
    );
    spec.args = vec![
        "-c".into(),
        "touch /usr/hako-probe 2>/dev/null && echo writable; /usr/bin/env true && echo ran".into(),
    ];
    spec.log = hako_runtime::LogSpec::File {
        path: t.path("host.log"),
        max_bytes: 65536,
    };
    let (status, out) = t.run(&spec).await;
    assert!(status.success(), "{out}");
    assert_eq!(out, "ran\n");
    assert!(!std::path::Path::new("/usr/hako-probe").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signalling_its_process_group_reaches_no_other_container() {
    // Apache's parent stops its children with kill(0, SIGTERM): with a shared process group
    // that also stopped every other container (and could reach the runtime itself).
    let t = TestRuntime::new();
    let data = t.path("data");
    std::fs::create_dir_all(&data).unwrap();
    std::os::unix::fs::chown(&data, Some(65534), Some(65534)).unwrap();
    let mut watcher = t.sh(
        "trap 'echo usr2 >> /data/log' USR2; trap 'echo probe >> /data/log' USR1; \
         echo ready > /data/ready; while true; do sleep 0.05; done",
    );
    watcher.mounts = vec![BindMount::data(&data)];
    let a = t.rt.run(&watcher).unwrap();
    let log = data.join("log");
    let wait_for = |what: &str, n: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if what == "ready" && data.join("ready").exists()
                || text.lines().filter(|l| *l == what).count() >= n
            {
                return text;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "waiting for {what}: {text:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    };
    wait_for("ready", 1);

    let (status, out) = t.run(&t.sh("kill -USR2 0 && echo sent")).await;
    assert!(status.success() && out.contains("sent"), "{out}");
    // Two probes after the group signal: a USR2 that had arrived would be handled by then.
    a.signal(libc::SIGUSR1).unwrap();
    wait_for("probe", 1);
    a.signal(libc::SIGUSR1).unwrap();
    let text = wait_for("probe", 2);
    assert!(
        !text.contains("usr2"),
        "another container's group signal arrived: {text:?}"
    );
    a.remove().unwrap();
}
