//! The host's neighbour (ARP) table limits, raised for the experiment's thousand instances and
//! put back afterwards.

use anyhow::Context;

/// The host's IPv4 neighbour (ARP) table limits, raised for the run and put back when
/// dropped. Every isolated instance is a neighbour of hako's bridge; past the kernel's default
/// hard limit of 1,024 entries new ones fail ("neighbour table overflow", and the proxy gets
/// "No route to host"), so a thousand instances need more.
pub struct NeighbourLimits {
    old: Vec<(std::path::PathBuf, String)>,
}

impl NeighbourLimits {
    const FILES: [(&'static str, u32); 3] = [
        ("/proc/sys/net/ipv4/neigh/default/gc_thresh1", 4096),
        ("/proc/sys/net/ipv4/neigh/default/gc_thresh2", 8192),
        ("/proc/sys/net/ipv4/neigh/default/gc_thresh3", 16384),
    ];

    /// Raises each limit to at least the value above.
    pub fn raise() -> anyhow::Result<NeighbourLimits> {
        let mut guard = NeighbourLimits { old: Vec::new() };
        // thresh3 first when raising, so thresh1 ≤ thresh2 ≤ thresh3 holds at every step.
        for (file, want) in Self::FILES.iter().rev() {
            let path = std::path::PathBuf::from(file);
            let old = std::fs::read_to_string(&path)
                .with_context(|| format!("read {file}"))?
                .trim()
                .to_string();
            if old.parse::<u32>().is_ok_and(|v| v >= *want) {
                continue;
            }
            std::fs::write(&path, want.to_string()).with_context(|| format!("write {file}"))?;
            guard.old.push((path, old));
        }
        Ok(guard)
    }
}

impl Drop for NeighbourLimits {
    fn drop(&mut self) {
        // Lowered in the reverse order of raising: thresh1 first.
        for (path, old) in self.old.iter().rev() {
            if let Err(e) = std::fs::write(path, old) {
                eprintln!("experiment: cannot restore {}: {e}", path.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbour_limits_are_raised_and_restored() {
        let read = |f: &str| -> u32 { std::fs::read_to_string(f).unwrap().trim().parse().unwrap() };
        let before: Vec<u32> = NeighbourLimits::FILES
            .iter()
            .map(|(f, _)| read(f))
            .collect();
        {
            let _g = NeighbourLimits::raise().unwrap();
            for (f, want) in NeighbourLimits::FILES {
                assert!(read(f) >= want, "{f}");
            }
        }
        let after: Vec<u32> = NeighbourLimits::FILES
            .iter()
            .map(|(f, _)| read(f))
            .collect();
        assert_eq!(before, after);
    }
}
