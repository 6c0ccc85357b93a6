//! The system-call filter, checked from inside real containers: installed by default (two
//! filters), user namespaces and mounts refused with EPERM to root and non-root alike, and
//! everything back with `Seccomp::Unconfined`.

mod common;

use common::TestRuntime;
use hako_runtime::{Seccomp, User};

/// What a container sees: its seccomp status, and whether a new user namespace (then a mount
/// inside it, as `unshare -Ur` allows) works.
const PROBE: &str = "grep -E '^Seccomp(_filters)?:' /proc/self/status; \
    if unshare -U -r id -u >/tmp/id 2>/tmp/err; then echo userns-ok; cat /tmp/id; \
    else echo userns-refused; cat /tmp/err; fi; \
    unshare -U -r -m sh -c 'mkdir -p /tmp/m && mount -t tmpfs none /tmp/m && echo mounted-in-userns' 2>&1; true";

#[tokio::test]
async fn the_default_filter_refuses_user_namespaces_to_root_and_non_root() {
    let t = TestRuntime::new();
    for user in [User::default(), User::Id { uid: 0, gid: 0 }] {
        let mut spec = t.sh(PROBE);
        spec.user = user.clone();
        let (status, out) = t.run(&spec).await;
        assert!(status.success(), "{out}");
        assert!(out.contains("Seccomp:\t2"), "filter mode: {out}");
        assert!(out.contains("Seccomp_filters:\t2"), "{out}");
        assert!(!out.contains("userns-ok"), "as {user:?}: {out}");
        assert!(
            out.contains("userns-refused") && out.contains("Operation not permitted"),
            "as {user:?}: {out}"
        );
        assert!(!out.contains("mounted-in-userns"), "{out}");
    }
}

#[tokio::test]
async fn unconfined_containers_have_no_filter() {
    let t = TestRuntime::new();
    let mut spec = t.sh(PROBE);
    spec.seccomp = Seccomp::Unconfined;
    let (status, out) = t.run(&spec).await;
    assert!(status.success(), "{out}");
    assert!(out.contains("Seccomp:\t0"), "{out}");
    // What the filter closes: a new user namespace, root in it, and a mount there.
    assert!(
        out.contains("mounted-in-userns") && out.contains("userns-ok"),
        "{out}"
    );
}

#[tokio::test]
async fn threads_and_processes_still_work_under_the_filter() {
    // clone3 answers ENOSYS so libc falls back to clone: forks, pipes and a server work.
    let t = TestRuntime::new();
    let (status, out) = t
        .run(&t.sh(
            "mkdir -p /tmp/w && echo served > /tmp/w/i && (httpd -f -p 8080 -h /tmp/w &) && \
             for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O - http://127.0.0.1:8080/i && break; sleep 0.1; done | tr a-z A-Z",
        ))
        .await;
    assert!(status.success(), "{out}");
    assert!(out.contains("SERVED"), "{out}");
}
