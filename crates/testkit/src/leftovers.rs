//! What a runtime prefix left on the host: cgroup dirs (in every hierarchy), its state dir and
//! lock under /run/hako, and network links named after it. Empty after a clean stop.

use std::path::Path;
use std::process::Command;

/// Everything of runtime `prefix` still on the host, one description per object.
///
/// Panics on a prefix that is not a test's own (`hako` and at least two more characters), so
/// a typo never inspects the host's real `hako` objects.
pub fn leftovers(prefix: &str) -> Vec<String> {
    assert!(
        prefix.starts_with("hako") && prefix.len() > 5,
        "{prefix:?} is not a test's own runtime prefix"
    );
    let mut found = Vec::new();
    for ctrl in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let dir = ctrl.path().join(prefix);
        if dir.exists() {
            found.push(format!("cgroup {}", dir.display()));
        }
    }
    for p in [
        format!("/run/hako/{prefix}"),
        format!("/run/hako/{prefix}.lock"),
    ] {
        if Path::new(&p).exists() {
            found.push(format!("state {p}"));
        }
    }
    let links = Command::new("ip")
        .args(["-o", "link"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    for l in links.lines().filter(|l| l.contains(prefix)) {
        found.push(format!("link {l}"));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_prefix_left_nothing() {
        let n = crate::Names::unique('l');
        assert_eq!(leftovers(&n.prefix), Vec::<String>::new());
    }

    #[test]
    fn state_dirs_are_found() {
        crate::require_root();
        let n = crate::Names::unique('l');
        let dir = Path::new("/run/hako").join(&n.prefix);
        std::fs::create_dir_all(&dir).unwrap();
        let found = leftovers(&n.prefix);
        std::fs::remove_dir(&dir).unwrap();
        assert_eq!(found, vec![format!("state {}", dir.display())]);
    }

    #[test]
    #[should_panic(expected = "not a test's own")]
    fn refuses_the_default_prefix() {
        leftovers("hako");
    }
}
