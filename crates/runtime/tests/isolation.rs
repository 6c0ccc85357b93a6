//! Isolation, checked from inside real containers.

mod common;

use common::TestRuntime;
use hako_runtime::ExitStatus;

#[tokio::test]
async fn runs_as_pid_1_with_its_hostname_and_exit_code() {
    let t = TestRuntime::new();
    let mut spec = t.sh("echo pid=$$; hostname; id -u; exit 7");
    spec.hostname = "blog-1".into();
    let (status, out) = t.run(&spec).await;
    assert_eq!(status, ExitStatus::Exited(7), "{out}");
    assert_eq!(out, "pid=1\nblog-1\n65534\n");
    assert!(t.leftovers().is_empty(), "{:?}", t.leftovers());
}
