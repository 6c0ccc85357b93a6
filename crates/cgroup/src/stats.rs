//! Usage figures of one container and the parsers for the small cgroup files they come from.

use std::path::Path;

use crate::error::CgroupError;

/// What a container uses now and has used so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Memory charged to the container now, in bytes.
    pub memory_current: u64,
    /// The highest memory use seen, in bytes, when the kernel reports it.
    pub memory_peak: Option<u64>,
    /// CPU time used by all its processes, in nanoseconds.
    pub cpu_usage_ns: u64,
    /// Processes and threads in it now.
    pub pids_current: u64,
    /// Processes the kernel's OOM killer killed in it.
    pub oom_kills: u64,
}

/// Parses a file that holds one number, such as memory.current or pids.current.
pub(crate) fn parse_u64(path: &Path, text: &str) -> Result<u64, CgroupError> {
    text.trim().parse().map_err(|_| CgroupError::Parse {
        path: path.to_owned(),
        what: format!("expected a number, found {:?}", text.trim()),
    })
}

/// Finds `key`'s value in a flat keyed file ("key value" per line), such as cpu.stat,
/// memory.events, memory.oom_control or cgroup.events.
pub(crate) fn keyed_u64(path: &Path, text: &str, key: &str) -> Result<u64, CgroupError> {
    for line in text.lines() {
        let mut words = line.split_ascii_whitespace();
        if words.next() == Some(key) {
            return match words.next().map(str::parse::<u64>) {
                Some(Ok(v)) => Ok(v),
                _ => Err(CgroupError::Parse {
                    path: path.to_owned(),
                    what: format!("the {key} line {line:?} holds no number"),
                }),
            };
        }
    }
    Err(CgroupError::Parse {
        path: path.to_owned(),
        what: format!("no {key} line"),
    })
}

/// Parses cgroup.procs: one pid per line.
pub(crate) fn parse_pids(path: &Path, text: &str) -> Result<Vec<i32>, CgroupError> {
    text.split_ascii_whitespace()
        .map(|w| {
            w.parse().map_err(|_| CgroupError::Parse {
                path: path.to_owned(),
                what: format!("{w:?} is not a process id"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "/x";

    #[test]
    fn single_numbers() {
        assert_eq!(parse_u64(P.as_ref(), "4096\n").unwrap(), 4096);
        let e = parse_u64(P.as_ref(), "max\n").unwrap_err().to_string();
        assert!(e.contains("\"max\""), "{e}");
    }

    #[test]
    fn keyed_files() {
        let cpu_stat = "usage_usec 1234\nuser_usec 1000\nsystem_usec 234\n";
        assert_eq!(keyed_u64(P.as_ref(), cpu_stat, "usage_usec").unwrap(), 1234);
        assert_eq!(keyed_u64(P.as_ref(), cpu_stat, "system_usec").unwrap(), 234);
        let oom = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed_u64(P.as_ref(), oom, "oom_kill").unwrap(), 3);
        assert!(keyed_u64(P.as_ref(), oom, "oom").is_err());
        assert!(keyed_u64(P.as_ref(), "oom_kill x\n", "oom_kill").is_err());
    }

    #[test]
    fn procs_lists() {
        assert_eq!(parse_pids(P.as_ref(), "12\n345\n").unwrap(), vec![12, 345]);
        assert_eq!(parse_pids(P.as_ref(), "").unwrap(), Vec::<i32>::new());
        assert!(parse_pids(P.as_ref(), "12\nabc\n").is_err());
    }
}
