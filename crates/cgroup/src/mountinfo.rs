//! Parsing of /proc/self/mountinfo, keeping the cgroup mounts.
//!
//! A line looks like
//! `35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory`:
//! id, parent, device, root, mount point, mount options, optional fields up to `-`,
//! then filesystem type, source and super options (where cgroup v1 names its controllers).

use std::path::PathBuf;

/// A line of mountinfo that could not be parsed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MountinfoError {
    /// The line has too few fields or no `-` separator.
    #[error("mountinfo line {line} is malformed ({text:?}); is /proc mounted correctly?")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// The line itself.
        text: String,
    },
}

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupMount {
    /// A cgroup v1 hierarchy with its controllers (named hierarchies such as `name=systemd`
    /// appear with that name).
    V1 {
        /// Where it is mounted.
        mount_point: PathBuf,
        /// Its controllers, e.g. `["cpu", "cpuacct"]`.
        controllers: Vec<String>,
    },
    /// The cgroup v2 unified hierarchy.
    V2 {
        /// Where it is mounted.
        mount_point: PathBuf,
    },
}

/// The super options that are mount flags, not controllers.
const NOT_CONTROLLERS: &[&str] = &[
    "rw",
    "ro",
    "noprefix",
    "clone_children",
    "xattr",
    "cpuset_v2_mode",
    "favordynmods",
];

/// Returns the cgroup mounts of a mountinfo text, in order.
pub fn parse(text: &str) -> Result<Vec<CgroupMount>, MountinfoError> {
    let mut mounts = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let malformed = || MountinfoError::Malformed {
            line: i + 1,
            text: line.to_owned(),
        };
        let (head, tail) = line.split_once(" - ").ok_or_else(malformed)?;
        let head: Vec<&str> = head.split(' ').collect();
        if head.len() < 6 {
            return Err(malformed());
        }
        let mut tail = tail.split(' ');
        let fs_type = tail.next().ok_or_else(malformed)?;
        let _source = tail.next().ok_or_else(malformed)?;
        let super_options = tail.next().unwrap_or("");
        let mount_point = PathBuf::from(unescape(head[4]));
        match fs_type {
            "cgroup2" => mounts.push(CgroupMount::V2 { mount_point }),
            "cgroup" => {
                let controllers = super_options
                    .split(',')
                    .filter(|o| {
                        !o.is_empty()
                            && !NOT_CONTROLLERS.contains(o)
                            && !o.starts_with("release_agent=")
                    })
                    .map(str::to_owned)
                    .collect();
                mounts.push(CgroupMount::V1 {
                    mount_point,
                    controllers,
                });
            }
            _ => {}
        }
    }
    Ok(mounts)
}

/// Undoes the kernel's octal escaping of space, tab, newline and backslash in paths.
fn unescape(field: &str) -> String {
    if !field.contains('\\') {
        return field.to_owned();
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4);
        if bytes[i] == b'\\'
            && let Some(d) = octal
            && d.iter().all(|b| (b'0'..=b'7').contains(b))
            && let Ok(v) = u8::try_from(d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0')))
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine's layout: separate v1 mounts plus an empty cgroup2 at unified.
    pub(crate) const HYBRID: &str = "\
22 27 0:20 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_lists_every_cgroup_mount() {
        let m = parse(HYBRID).unwrap();
        assert_eq!(m.len(), 7);
        assert_eq!(
            m[0],
            CgroupMount::V1 {
                mount_point: "/sys/fs/cgroup/cpu".into(),
                controllers: vec!["cpu".into()]
            }
        );
        assert_eq!(
            m[6],
            CgroupMount::V2 {
                mount_point: "/sys/fs/cgroup/unified".into()
            }
        );
    }

    #[test]
    fn co_mounted_controllers_and_optional_fields() {
        let text = "30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:12 master:3 - cgroup cgroup rw,xattr,cpu,cpuacct\n";
        assert_eq!(
            parse(text).unwrap(),
            vec![CgroupMount::V1 {
                mount_point: "/sys/fs/cgroup/cpu,cpuacct".into(),
                controllers: vec!["cpu".into(), "cpuacct".into()]
            }]
        );
    }

    #[test]
    fn escaped_mount_points() {
        let text = "30 25 0:26 / /mnt/my\\040cgroups rw - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            parse(text).unwrap(),
            vec![CgroupMount::V2 {
                mount_point: "/mnt/my cgroups".into()
            }]
        );
    }

    #[test]
    fn arbitrary_text_never_panics() {
        // A cheap deterministic fuzz: random lines from the pieces mountinfo is made of.
        let pieces = [
            " ",
            " - ",
            "\\",
            "\\040",
            "\\7",
            "\\377",
            "\\400",
            "cgroup",
            "cgroup2",
            "rw,memory",
            ",",
            "/",
            "é",
            "0:1",
            "\n",
            "x",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            let mut line = String::new();
            for _ in 0..(state % 24) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                line.push_str(pieces[(state % pieces.len() as u64) as usize]);
            }
            let _ = parse(&line);
        }
        assert_eq!(
            unescape("a\\400b\\7"),
            "a\\400b\\7",
            "invalid escapes are kept as they are"
        );
    }

    #[test]
    fn malformed_lines_are_reported() {
        let e = parse("1 2 3\n").unwrap_err();
        assert_eq!(
            e,
            MountinfoError::Malformed {
                line: 1,
                text: "1 2 3".into()
            }
        );
        assert!(parse("1 2 0:1 / /x rw - cgroup2\n").is_err());
    }
}
