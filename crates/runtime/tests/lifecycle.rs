//! Lifecycle: parked containers, bad specs, exec failures, and removal in every state.

mod common;

use std::time::Duration;

use common::TestRuntime;
use hako_runtime::{ContainerSpec, ExitStatus, Limits, RootfsSpec, RuntimeError, SpecError, User};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_container_does_nothing_until_released() {
    let t = TestRuntime::new();
    let data = t.path("data");
    std::fs::create_dir_all(&data).unwrap();
    std::os::unix::fs::chown(&data, Some(65534), Some(65534)).unwrap();
    let mut spec = t.sh("echo ran > /data/mark");
    spec.mounts.push(hako_runtime::BindMount::data(&data));
    let c = t.rt.create(&spec).unwrap();
    assert!(c.is_parked());
    // Fully prepared: in its cgroup, with its network, its init waiting just before exec.
    assert_eq!(c.pids().unwrap(), vec![c.pid()]);
    assert!(c.address().is_some());
    assert!(c.try_wait().unwrap().is_none());
    assert!(!data.join("mark").exists());
    c.start().unwrap();
    assert!(!c.is_parked());
    assert_eq!(c.wait().await.unwrap(), ExitStatus::Exited(0));
    assert_eq!(std::fs::read_to_string(data.join("mark")).unwrap(), "ran\n");
    assert!(c.timings().release.is_some());
    assert!(matches!(c.start(), Err(RuntimeError::NotParked(_))));
    c.remove().unwrap();
}

#[tokio::test]
async fn removing_a_parked_or_running_container_cleans_everything() {
    let t = TestRuntime::new();
    let parked = t.rt.create(&t.sh("sleep 1000")).unwrap();
    let running = t.rt.run(&t.sh("sleep 1000 & sleep 1000")).unwrap();
    parked.remove().unwrap();
    running.remove().unwrap();
    // Dropping without remove cleans up too.
    drop(t.rt.run(&t.sh("sleep 1000")).unwrap());
    assert!(t.leftovers().is_empty(), "{:?}", t.leftovers());
}

#[tokio::test]
async fn a_missing_command_fails_at_start_with_a_clear_error() {
    let t = TestRuntime::new();
    let mut spec = t.sh("");
    spec.command = "no-such-program".into();
    spec.args.clear();
    let c = t.rt.create(&spec).unwrap();
    let err = c.start().unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("no-such-program") && msg.contains("No such file"),
        "{msg}"
    );
    assert_eq!(c.wait().await.unwrap(), ExitStatus::Exited(127));
    c.remove().unwrap();
    assert!(t.leftovers().is_empty(), "{:?}", t.leftovers());
}

#[tokio::test]
async fn bad_specs_are_rejected_and_leave_nothing() {
    let t = TestRuntime::new();
    let base = t.sh("true");

    let mut s = base.clone();
    s.rootfs = RootfsSpec::Layers(vec![t.path("no-such-image")]);
    let e = t.rt.create(&s).unwrap_err();
    assert!(
        matches!(e, RuntimeError::Spec(SpecError::MissingLayer(_))),
        "{e}"
    );
    assert!(e.to_string().contains("import or build the image"), "{e}");

    let mut s = base.clone();
    s.command = "".into();
    assert!(matches!(
        t.rt.create(&s),
        Err(RuntimeError::Spec(SpecError::EmptyCommand))
    ));

    for limits in [
        Limits {
            memory_max: Some(0),
            ..Limits::default()
        },
        Limits {
            cpu_cores: Some(-1.0),
            ..Limits::default()
        },
        Limits {
            cpu_cores: Some(f64::NAN),
            ..Limits::default()
        },
        Limits {
            pids_max: Some(0),
            ..Limits::default()
        },
    ] {
        let mut s = base.clone();
        s.limits = limits;
        let e = t.rt.create(&s).unwrap_err();
        assert!(
            matches!(e, RuntimeError::Spec(SpecError::Limits(_))),
            "{limits:?}: {e}"
        );
    }

    let mut s = base.clone();
    s.user = User::Name("mallory".into());
    let e = t.rt.create(&s).unwrap_err();
    assert!(e.to_string().contains("unknown user \"mallory\""), "{e}");

    let mut s = base.clone();
    s.user = User::Name("www-data".into());
    let c = t.rt.run(&s).unwrap();
    assert_eq!(c.wait().await.unwrap(), ExitStatus::Exited(0));
    c.remove().unwrap();

    let mut s = ContainerSpec::new(t.image.clone(), "/bin/true");
    s.workdir = "relative".into();
    assert!(t.rt.create(&s).is_err());

    assert!(t.leftovers().is_empty(), "{:?}", t.leftovers());
}

#[tokio::test]
async fn a_workdir_that_does_not_exist_fails_clearly() {
    let t = TestRuntime::new();
    let mut s = t.sh("true");
    s.workdir = "/nope".into();
    let c = t.rt.create(&s).unwrap();
    let e = c.start().unwrap_err();
    assert!(e.to_string().contains("working directory"), "{e}");
    c.remove().unwrap();
}

#[tokio::test]
async fn stop_is_graceful_for_apps_that_handle_sigterm() {
    let t = TestRuntime::new();
    let c =
        t.rt.run(&t.sh("trap 'echo bye; exit 0' TERM; while true; do sleep 0.05; done"))
            .unwrap();
    // Bounded wait until the trap is installed: the shell is running its loop (a child exists).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while c.pids().unwrap().len() < 2 {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let status = c.stop(Duration::from_secs(10)).await.unwrap();
    assert_eq!(status, ExitStatus::Exited(0));
    c.logs_flushed().await;
    assert_eq!(
        std::fs::read_to_string(c.log_path().unwrap()).unwrap(),
        "bye\n"
    );
    c.remove().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_outlives_the_thread_that_created_it() {
    // PDEATHSIG follows the creating *thread*; the runtime clones on its own long-lived thread,
    // so a container made from a short-lived worker thread keeps running.
    let t = TestRuntime::new();
    let rt = t.rt.clone();
    let spec = t.sh("exec sleep 1000");
    let c = std::thread::spawn(move || rt.run(&spec).unwrap())
        .join()
        .unwrap();
    let alive = tokio::time::timeout(Duration::from_millis(500), c.wait()).await;
    assert!(
        alive.is_err(),
        "the container died with its creating thread: {alive:?}"
    );
    c.remove().unwrap();
}

#[tokio::test]
async fn a_non_root_app_may_reopen_its_stdout_and_stderr_by_path() {
    // Apache's `ErrorLog /dev/stderr` opens the path again; the log pipe must let it.
    let t = TestRuntime::new();
    let spec = t.sh("echo to-out > /dev/stdout && echo to-err > /dev/stderr && id -u");
    let (status, out) = t.run(&spec).await;
    assert_eq!(status, ExitStatus::Exited(0), "{out}");
    assert!(out.contains("to-out") && out.contains("to-err"), "{out}");
    assert!(out.contains("65534"), "runs as nobody: {out}");
}
