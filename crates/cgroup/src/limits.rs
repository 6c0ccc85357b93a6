//! Resource limits of one container and their validation.
//!
//! `Limits::validate` runs before anything touches the kernel, so a nonsense value never
//! leaves a half-configured cgroup behind.

/// The smallest memory limit hako accepts: below this not even a shell starts.
pub const MEMORY_FLOOR: u64 = 1 << 20;
/// The largest memory limit hako accepts (the kernel parses the value as a signed 64-bit number).
pub const MEMORY_CEILING: u64 = i64::MAX as u64;
/// The smallest CPU share: the kernel's minimum quota of 1 ms per 100 ms period.
pub const CPU_FLOOR: f64 = 0.01;
/// The CFS period hako writes, in microseconds (the kernel default).
pub const CPU_PERIOD_US: u64 = 100_000;
/// The largest pids limit (the kernel's PID_MAX_LIMIT).
pub const PIDS_CEILING: u64 = 4 * 1024 * 1024;

/// Limits of one container; `None` means "no limit" (also when changing limits live:
/// a `None` removes a limit that was set before).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    /// Memory in bytes (v1 memory.limit_in_bytes, v2 memory.max); swap is not allowed beyond it.
    pub memory_max: Option<u64>,
    /// CPU time as a number of cores, e.g. 0.5 for half a core.
    pub cpu_cores: Option<f64>,
    /// Maximum number of processes and threads.
    pub pids_max: Option<u64>,
}

/// A limit that makes no sense.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LimitsError {
    /// Memory limit below the floor.
    #[error("memory limit of {0} bytes is too small; give at least 1MiB ({MEMORY_FLOOR} bytes)")]
    MemoryTooSmall(u64),
    /// Memory limit beyond what the kernel can represent.
    #[error(
        "memory limit of {0} bytes is too large; give at most {MEMORY_CEILING} bytes or no limit"
    )]
    MemoryTooLarge(u64),
    /// CPU limit that is zero, negative, NaN or below the floor.
    #[error("cpu limit of {0} cores is too small; give at least {CPU_FLOOR} cores")]
    CpuTooSmall(f64),
    /// CPU limit above the host's cores.
    #[error(
        "cpu limit of {requested} cores exceeds the {host} cores of this host; give at most {host}"
    )]
    CpuTooLarge {
        /// The limit asked for.
        requested: f64,
        /// The cores of the host.
        host: usize,
    },
    /// A pids limit of zero.
    #[error("pids limit of 0 would not even allow the container's first process; give at least 1")]
    PidsZero,
    /// A pids limit beyond the kernel's maximum.
    #[error(
        "pids limit of {0} exceeds the kernel maximum of {PIDS_CEILING}; give a smaller limit or none"
    )]
    PidsTooLarge(u64),
}

impl Limits {
    /// Checks every limit against sane bounds, the CPU against this host's cores.
    pub fn validate(&self) -> Result<(), LimitsError> {
        self.validate_for_cores(host_cores())
    }

    /// Checks every limit, the CPU against a host with `cores` cores.
    pub fn validate_for_cores(&self, cores: usize) -> Result<(), LimitsError> {
        if let Some(m) = self.memory_max {
            if m < MEMORY_FLOOR {
                return Err(LimitsError::MemoryTooSmall(m));
            }
            if m > MEMORY_CEILING {
                return Err(LimitsError::MemoryTooLarge(m));
            }
        }
        if let Some(c) = self.cpu_cores {
            if c.is_nan() || c < CPU_FLOOR {
                return Err(LimitsError::CpuTooSmall(c));
            }
            if c > cores as f64 {
                return Err(LimitsError::CpuTooLarge {
                    requested: c,
                    host: cores,
                });
            }
        }
        match self.pids_max {
            Some(0) => return Err(LimitsError::PidsZero),
            Some(p) if p > PIDS_CEILING => return Err(LimitsError::PidsTooLarge(p)),
            _ => {}
        }
        Ok(())
    }

    /// The CFS quota in microseconds per [`CPU_PERIOD_US`] for the CPU limit, if any.
    pub fn cpu_quota_us(&self) -> Option<u64> {
        self.cpu_cores
            .map(|c| ((c * CPU_PERIOD_US as f64).round() as u64).max(1000))
    }
}

/// The number of CPUs of this host (all online CPUs, not this process's share).
pub fn host_cores() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| count_cpu_list(s.trim()))
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
}

/// Counts the CPUs in a kernel CPU list such as "0-3,8,10-11".
fn count_cpu_list(list: &str) -> Option<usize> {
    let mut n = 0;
    for part in list.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                n += b.checked_sub(a)? + 1;
            }
            None => {
                part.parse::<usize>().ok()?;
                n += 1;
            }
        }
    }
    (n > 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem(m: u64) -> Limits {
        Limits {
            memory_max: Some(m),
            ..Limits::default()
        }
    }

    fn cpu(c: f64) -> Limits {
        Limits {
            cpu_cores: Some(c),
            ..Limits::default()
        }
    }

    #[test]
    fn no_limits_are_valid() {
        assert_eq!(Limits::default().validate_for_cores(2), Ok(()));
    }

    #[test]
    fn memory_bounds() {
        assert_eq!(
            mem(0).validate_for_cores(2),
            Err(LimitsError::MemoryTooSmall(0))
        );
        assert_eq!(
            mem(MEMORY_FLOOR - 1).validate_for_cores(2),
            Err(LimitsError::MemoryTooSmall(MEMORY_FLOOR - 1))
        );
        assert_eq!(mem(MEMORY_FLOOR).validate_for_cores(2), Ok(()));
        assert_eq!(
            mem(u64::MAX).validate_for_cores(2),
            Err(LimitsError::MemoryTooLarge(u64::MAX))
        );
    }

    #[test]
    fn cpu_bounds() {
        assert!(matches!(
            cpu(0.0).validate_for_cores(2),
            Err(LimitsError::CpuTooSmall(_))
        ));
        assert!(matches!(
            cpu(-1.0).validate_for_cores(2),
            Err(LimitsError::CpuTooSmall(_))
        ));
        assert!(matches!(
            cpu(f64::NAN).validate_for_cores(2),
            Err(LimitsError::CpuTooSmall(_))
        ));
        assert_eq!(cpu(2.0).validate_for_cores(2), Ok(()));
        assert_eq!(
            cpu(2.5).validate_for_cores(2),
            Err(LimitsError::CpuTooLarge {
                requested: 2.5,
                host: 2
            })
        );
        let msg = cpu(2.5).validate_for_cores(2).unwrap_err().to_string();
        assert!(msg.contains("give at most 2"), "{msg}");
    }

    #[test]
    fn pids_bounds() {
        let p = |n| Limits {
            pids_max: Some(n),
            ..Limits::default()
        };
        assert_eq!(p(0).validate_for_cores(1), Err(LimitsError::PidsZero));
        assert_eq!(p(1).validate_for_cores(1), Ok(()));
        assert_eq!(
            p(PIDS_CEILING + 1).validate_for_cores(1),
            Err(LimitsError::PidsTooLarge(PIDS_CEILING + 1))
        );
    }

    #[test]
    fn quota_is_cores_times_period() {
        assert_eq!(cpu(0.5).cpu_quota_us(), Some(50_000));
        assert_eq!(cpu(1.5).cpu_quota_us(), Some(150_000));
        assert_eq!(cpu(0.01).cpu_quota_us(), Some(1_000));
        assert_eq!(Limits::default().cpu_quota_us(), None);
    }

    #[test]
    fn cpu_lists_are_counted() {
        assert_eq!(count_cpu_list("0-1"), Some(2));
        assert_eq!(count_cpu_list("0-3,8,10-11"), Some(7));
        assert_eq!(count_cpu_list("0"), Some(1));
        assert_eq!(count_cpu_list("x"), None);
        assert!(host_cores() >= 1);
    }
}
