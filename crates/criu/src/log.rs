//! Reading CRIU's log: the lines that say why it failed.

use std::path::Path;

/// The error lines of a CRIU log (at most `max`, the last ones), without the ones CRIU
/// prints on every run of an unprivileged-looking root (rlimit of itself), joined by " / ".
pub fn errors(log: &Path, max: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Error (") && !l.contains("Can't setup RLIMIT_NOFILE for self"))
        .map(|l| match l.find("Error (") {
            Some(i) => l[i..].trim(),
            None => l.trim(),
        })
        .collect();
    let start = lines.len().saturating_sub(max);
    lines[start..].join(" / ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_errors_only() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.log");
        std::fs::write(
            &p,
            "(00.001) Error (criu/util.c:1534): rlimit: Can't setup RLIMIT_NOFILE for self: x\n\
             (00.002) info\n\
             (00.003) Error (criu/files-reg.c:1790): Can't lookup mount=24 for fd=0\n\
             (00.004) Error (criu/cr-dump.c:1975): Dumping FAILED.\n",
        )
        .unwrap();
        assert_eq!(
            errors(&p, 5),
            "Error (criu/files-reg.c:1790): Can't lookup mount=24 for fd=0 / Error (criu/cr-dump.c:1975): Dumping FAILED."
        );
        assert_eq!(
            errors(&p, 1),
            "Error (criu/cr-dump.c:1975): Dumping FAILED."
        );
        assert_eq!(errors(&d.path().join("none"), 3), "");
    }
}
