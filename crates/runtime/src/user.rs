//! Resolving a [`User`] to numeric ids from the image's own `/etc/passwd` and `/etc/group`.

use std::path::{Path, PathBuf};

use crate::spec::{RootfsSpec, SpecError, User};

/// Numeric credentials the container's process takes before exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    /// From the passwd entry, for `HOME` when the spec does not set it.
    pub home: String,
}

/// Looks the user up in the image (top layer first); numeric ids need no lookup.
pub fn resolve(user: &User, rootfs: &RootfsSpec) -> Result<Credentials, SpecError> {
    match user {
        User::Id { uid, gid } => Ok(Credentials {
            uid: *uid,
            gid: *gid,
            groups: vec![*gid],
            home: "/".into(),
        }),
        User::Name(name) => {
            let passwd = first_existing(rootfs.passwd_candidates())
                .ok_or_else(|| SpecError::UnknownUser(name.clone()))?;
            let text = std::fs::read_to_string(&passwd)
                .map_err(|_| SpecError::UnknownUser(name.clone()))?;
            let (uid, gid, home) =
                lookup_passwd(&text, name).ok_or_else(|| SpecError::UnknownUser(name.clone()))?;
            let group_file = passwd.with_file_name("group");
            let mut groups = vec![gid];
            if let Ok(gtext) = std::fs::read_to_string(group_file) {
                for g in supplementary_groups(&gtext, name) {
                    if !groups.contains(&g) {
                        groups.push(g);
                    }
                }
            }
            Ok(Credentials {
                uid,
                gid,
                groups,
                home,
            })
        }
    }
}

fn first_existing(paths: Vec<PathBuf>) -> Option<PathBuf> {
    paths.into_iter().find(|p| Path::new(p).is_file())
}

/// `name:x:uid:gid:gecos:home:shell` → (uid, gid, home).
fn lookup_passwd(text: &str, name: &str) -> Option<(u32, u32, String)> {
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 6 || f[0] != name {
            return None;
        }
        Some((f[2].parse().ok()?, f[3].parse().ok()?, f[5].to_string()))
    })
}

/// `group:x:gid:member,member` lines naming `user`.
fn supplementary_groups(text: &str, user: &str) -> Vec<u32> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            if f[3].split(',').any(|m| m == user) {
                f[2].parse().ok()
            } else {
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_users_in_image() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www:/var/www:/usr/sbin/nologin\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etc/group"),
            "www-data:x:33:\nweb:x:500:www-data,other\n",
        )
        .unwrap();
        let rootfs = RootfsSpec::Layers(vec![dir.path().to_path_buf()]);
        let c = resolve(&User::Name("www-data".into()), &rootfs).unwrap();
        assert_eq!((c.uid, c.gid), (33, 33));
        assert_eq!(c.groups, vec![33, 500]);
        assert_eq!(c.home, "/var/www");
        let err = resolve(&User::Name("mallory".into()), &rootfs).unwrap_err();
        assert!(err.to_string().contains("mallory"), "{err}");
    }
}
