//! The root check: hako's tests make real namespaces, mounts, cgroups and veths, so without
//! root they fail at once with a message saying so, instead of passing silently or failing
//! somewhere deep inside.

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Panics with a clear message unless this process runs as root.
///
/// Call it first in every test that makes kernel objects.
#[track_caller]
pub fn require_root() {
    assert!(
        is_root(),
        "this test makes real namespaces, mounts and cgroups: run the tests as root \
         (sudo cargo xtask test)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_the_kernel() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let euid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|r| r.split_whitespace().nth(1))
            .unwrap()
            .to_string();
        assert_eq!(is_root(), euid == "0");
        if !is_root() {
            let err = std::panic::catch_unwind(require_root).unwrap_err();
            let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
            assert!(msg.contains("run the tests as root"), "{msg}");
        }
    }
}
