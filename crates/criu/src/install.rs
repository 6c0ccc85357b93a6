//! Installing the pinned CRIU from Debian forky without a chroot.
//!
//! A private apt configuration (its own sources list, state, cache and lists under a work
//! directory; `Acquire::Check-Valid-Until=false`) reads forky's package index, `apt-get
//! download` fetches exactly [`PACKAGES`], `dpkg-deb -x` unpacks each into a fresh directory,
//! and that directory is renamed into place once `criu --version` works from it. The host's
//! own apt state and packages are never touched; the work directory (about 60 MiB of index)
//! is removed at the end. On this 2-core VM it took about 3 s and leaves about 21 MiB.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::{Criu, CriuError, VERSION};

/// The apt source CRIU comes from.
pub const APT_SOURCE: &str = "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian forky main";

/// CRIU and every library it loads (the closure of its `Depends`, without documentation-only
/// packages), with the exact versions hako was tested with.
pub const PACKAGES: &[(&str, &str)] = &[
    ("criu", "4.2.1-1"),
    ("libcompel1", "4.2.1-1"),
    ("libc6", "2.43-7"),
    ("libgcc-s1", "16.2.0-3"),
    ("libbsd0", "0.12.2-3"),
    ("libmd0", "1.3.0-1"),
    ("libgnutls30t64", "3.8.13-1"),
    ("libgmp10", "2:6.3.0+dfsg-5+b2"),
    ("libhogweed6t64", "3.10.2-1+b1"),
    ("libnettle8t64", "3.10.2-1+b1"),
    ("libidn2-0", "2.3.8-5"),
    ("libunistring5", "1.4.2-1"),
    ("libp11-kit0", "0.26.5-1"),
    ("libffi8", "3.8.0-2"),
    ("libtasn1-6", "4.21.0-2+b1"),
    ("libnet9", "1.3+dfsg-3+b2"),
    ("libnftables1", "1.1.7-3"),
    ("libnftnl11", "1.3.2-1"),
    ("libmnl0", "1.0.5-3+b2"),
    ("libjansson4", "2.15.1-1"),
    ("libxtables12", "1.8.13-1"),
    ("libnl-3-200", "3.12.0-2+b1"),
    ("libprotobuf-c1", "1.5.1-1+b2"),
    ("libuuid1", "2.42.4-1"),
];

/// The marker written last: its presence means the installation is complete. It lists the
/// packages and versions installed, one `name=version` a line.
pub(crate) const DONE: &str = "hako-criu-packages";

/// What [`install`] did.
#[derive(Debug, Clone)]
pub struct Installed {
    pub criu: Criu,
    /// It was there already: nothing was downloaded.
    pub already: bool,
    /// Every package is at its pinned version (false when forky no longer carries one of
    /// the libraries at its pin and the current one was taken instead).
    pub pinned: bool,
    pub packages: Vec<(String, String)>,
    pub seconds: f64,
    pub bytes: u64,
}

/// Installs the pinned CRIU into `dir/<VERSION>` unless a complete installation is there.
/// Needs root (apt-get, dpkg-deb) and the Debian mirror. Two installs at once are serialised
/// by a lock file in `dir`.
pub fn install(dir: &Path) -> Result<Installed, CriuError> {
    let t0 = Instant::now();
    let fail = |step: &str, detail: String| CriuError::Install {
        step: step.to_string(),
        detail,
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| fail(&format!("create {}", dir.display()), e.to_string()))?;
    let lock = std::fs::File::create(dir.join(".install.lock"))
        .map_err(|e| fail("create the lock file", e.to_string()))?;
    lock.lock()
        .map_err(|e| fail("take the lock", e.to_string()))?;
    if let Ok(criu) = Criu::open(dir)
        && criu.version().is_ok()
    {
        let packages = read_marker(criu.root());
        return Ok(Installed {
            pinned: packages
                .iter()
                .all(|(n, v)| PACKAGES.contains(&(n.as_str(), v.as_str()))),
            bytes: criu.disk_bytes(),
            criu,
            already: true,
            packages,
            seconds: t0.elapsed().as_secs_f64(),
        });
    }
    let work = dir.join(format!(".install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let result = install_in(dir, &work);
    let _ = std::fs::remove_dir_all(&work);
    let (criu, packages) = result?;
    Ok(Installed {
        pinned: packages
            .iter()
            .all(|(n, v)| PACKAGES.contains(&(n.as_str(), v.as_str()))),
        bytes: criu.disk_bytes(),
        criu,
        already: false,
        packages,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

fn install_in(dir: &Path, work: &Path) -> Result<(Criu, Vec<(String, String)>), CriuError> {
    let fail = |step: &str, detail: String| CriuError::Install {
        step: step.to_string(),
        detail,
    };
    let apt = work.join("apt");
    for d in [
        "state/lists/partial",
        "cache/archives/partial",
        "etc",
        "debs",
    ] {
        let p = if d == "debs" {
            work.join(d)
        } else {
            apt.join(d)
        };
        std::fs::create_dir_all(&p)
            .map_err(|e| fail("create the work directory", e.to_string()))?;
    }
    let write = |p: PathBuf, s: String| {
        std::fs::write(&p, s).map_err(|e| fail(&format!("write {}", p.display()), e.to_string()))
    };
    write(apt.join("state/status"), String::new())?;
    write(apt.join("etc/sources.list"), format!("{APT_SOURCE}\n"))?;
    let conf = apt.join("etc/apt.conf");
    write(conf.clone(), apt_conf(&apt))?;

    run(
        apt_get(&conf).args(["update", "-q"]),
        "apt-get update (Debian forky's index)",
    )?;
    let debs = work.join("debs");
    let pinned: Vec<String> = PACKAGES.iter().map(|(n, v)| format!("{n}={v}")).collect();
    let mut packages: Vec<(String, String)> = PACKAGES
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    if let Err(e) = run(
        apt_get(&conf)
            .current_dir(&debs)
            .arg("download")
            .args(&pinned),
        "apt-get download (pinned versions)",
    ) {
        // forky moves on: keep CRIU itself pinned, take the libraries' current versions.
        tracing::warn!(error = %e, "a pinned package is gone from Debian forky; taking the current versions of the libraries");
        eprintln!(
            "hako: a pinned package is gone from Debian forky; taking the current versions of CRIU's libraries"
        );
        let _ = std::fs::remove_dir_all(&debs);
        std::fs::create_dir_all(&debs)
            .map_err(|e| fail("create the work directory", e.to_string()))?;
        let mut loose = vec![pinned[0].clone(), pinned[1].clone()];
        loose.extend(PACKAGES[2..].iter().map(|(n, _)| n.to_string()));
        run(
            apt_get(&conf)
                .current_dir(&debs)
                .arg("download")
                .args(&loose),
            "apt-get download (CRIU 4.2.1-1 must still be in Debian forky)",
        )?;
        packages = downloaded(&debs);
    }
    let staging = work.join("root");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&debs)
        .map_err(|e| fail("list the downloads", e.to_string()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    entries.sort();
    if entries.len() != PACKAGES.len() {
        return Err(fail(
            "apt-get download",
            format!(
                "got {} packages, expected {}",
                entries.len(),
                PACKAGES.len()
            ),
        ));
    }
    for deb in &entries {
        run(
            Command::new("dpkg-deb").arg("-x").arg(deb).arg(&staging),
            &format!("dpkg-deb -x {}", deb.display()),
        )?;
    }
    let marker: String = packages.iter().map(|(n, v)| format!("{n}={v}\n")).collect();
    write(staging.join(DONE), marker)?;
    let candidate = Criu {
        root: staging.clone(),
    };
    let version = candidate.version()?;
    if version != VERSION {
        return Err(fail(
            "checking the unpacked CRIU",
            format!("it says version {version}, expected {VERSION}"),
        ));
    }
    let target = dir.join(VERSION);
    let _ = std::fs::remove_dir_all(&target);
    std::fs::rename(&staging, &target)
        .map_err(|e| fail(&format!("move into {}", target.display()), e.to_string()))?;
    Ok((Criu { root: target }, packages))
}

/// The private apt configuration: own state, cache, lists and sources; no host parts.
fn apt_conf(apt: &Path) -> String {
    let a = apt.display();
    format!(
        "Dir::State \"{a}/state\";
Dir::State::status \"{a}/state/status\";
Dir::Cache \"{a}/cache\";
Dir::Etc::SourceList \"{a}/etc/sources.list\";
Dir::Etc::SourceParts \"/nonexistent\";
Dir::Etc::Parts \"/nonexistent\";
Dir::Etc::Preferences \"/nonexistent\";
Dir::Etc::PreferencesParts \"/nonexistent\";
Acquire::Check-Valid-Until \"false\";
Acquire::Languages \"none\";
APT::Architecture \"amd64\";
APT::Architectures {{ \"amd64\"; }};
APT::Sandbox::User \"root\";
"
    )
}

fn apt_get(conf: &Path) -> Command {
    let mut c = Command::new("apt-get");
    c.env("APT_CONFIG", conf)
        .env("DEBIAN_FRONTEND", "noninteractive");
    c
}

fn run(cmd: &mut Command, step: &str) -> Result<(), CriuError> {
    let out = cmd.output().map_err(|e| CriuError::Install {
        step: step.to_string(),
        detail: format!("cannot run {:?}: {e}", cmd.get_program()),
    })?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = err.lines().rev().take(4).collect();
    Err(CriuError::Install {
        step: step.to_string(),
        detail: format!(
            "{}: {}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
        ),
    })
}

/// `name=version` of the downloaded files (`name_version_arch.deb`, `:` as `%3a`).
fn downloaded(debs: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir(debs)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().replace("%3a", ":");
            let mut parts = name.strip_suffix(".deb")?.split('_');
            Some((parts.next()?.to_string(), parts.next()?.to_string()))
        })
        .collect();
    v.sort();
    v
}

fn read_marker(root: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(root.join(DONE))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// Bytes of the regular files under `dir`.
pub(crate) fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map(|m| m.len()).unwrap_or(0),
                _ => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_apt_configuration_is_private() {
        let c = apt_conf(Path::new("/w/apt"));
        assert!(c.contains("Dir::State \"/w/apt/state\";"));
        assert!(c.contains("Dir::Etc::SourceParts \"/nonexistent\";"));
        assert!(c.contains("Check-Valid-Until \"false\""));
        assert!(!c.contains("/etc/apt"));
    }

    #[test]
    fn downloads_name_their_versions() {
        let d = tempfile::tempdir().unwrap();
        for f in [
            "libgmp10_2%3a6.3.0+dfsg-5+b2_amd64.deb",
            "criu_4.2.1-1_amd64.deb",
            "x.txt",
        ] {
            std::fs::write(d.path().join(f), "").unwrap();
        }
        assert_eq!(
            downloaded(d.path()),
            vec![
                ("criu".to_string(), "4.2.1-1".to_string()),
                ("libgmp10".to_string(), "2:6.3.0+dfsg-5+b2".to_string()),
            ]
        );
    }

    #[test]
    fn criu_is_pinned_first() {
        assert_eq!(PACKAGES[0], ("criu", VERSION_DEB));
        assert!(PACKAGES.iter().any(|(n, _)| *n == "libc6"));
    }

    const VERSION_DEB: &str = "4.2.1-1";
}
