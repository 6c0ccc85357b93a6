//! `hako image update NAME [--rollout]`: a Debian-package image rebuilt against its archive
//! as it is now, the packages that changed, and the apps that move to it; and, for `hako
//! image list`, how many running instances still use an older version of each image.

use std::collections::BTreeMap;
use std::path::Path;

use hako_image::{DebianBuild, Image, ImageStore};

use super::{failure, out};
use crate::cmd::{Exit, Failure};

/// Runs the update; with `rollout`, rolls out (successor first) every app tracking `name`.
pub fn run(
    store: &ImageStore,
    data_dir: &Path,
    name: &str,
    rollout: bool,
    mirror: Option<String>,
) -> Result<u8, Failure> {
    let progress = crate::cmd::progress::Progress::stderr();
    progress.line(&format!(
        "updating {name}: rebuilding its packages against the archive as it is now (debootstrap; minutes)"
    ));
    let opts = DebianBuild {
        mirror,
        ..DebianBuild::default()
    };
    let done = store
        .update_debian(name, &opts)
        .map_err(|e| failure(e, &format!("cannot update image {name}")))?;
    progress.line("rebuilt");
    let prev = format!("{}:{}", done.previous.name, done.previous.version);
    let Some(image) = &done.image else {
        out(&format!(
            "no package changed: {prev} is current, no new version made\n"
        ));
        return Ok(0);
    };
    let mut s = format!(
        "{}:{} made from {prev}: {} packages changed\n",
        image.name,
        image.version,
        done.changes.len()
    );
    for c in &done.changes {
        s += &format!("  {c}\n");
    }
    out(&s);
    let Ok(client) = hako_api::Client::from_env(data_dir) else {
        out("no hako serve answered: apps on it get the new version as their instances start\n");
        return Ok(0);
    };
    let apps = match client.list_apps() {
        Ok(a) => a,
        Err(e) => {
            out(&format!(
                "cannot list apps ({e}): apps on {name} get the new version as their instances start\n"
            ));
            return Ok(0);
        }
    };
    let (tracking, pinned): (Vec<_>, Vec<_>) = apps
        .iter()
        .filter(|a| a.spec.image.name == name)
        .partition(|a| a.spec.image.version.is_none());
    for a in &pinned {
        out(&format!(
            "{} stays on {} (pinned to a version)\n",
            a.spec.name, a.spec.image
        ));
    }
    for a in &tracking {
        if rollout {
            client.rollout(&a.spec.name).map_err(|e| {
                Failure::new(
                    Exit::Failure,
                    anyhow::anyhow!("cannot roll out {}: {e}", a.spec.name),
                )
            })?;
            out(&format!(
                "{}: rolling out to {}:{} (each instance replaced successor first)\n",
                a.spec.name, image.name, image.version
            ));
        } else {
            out(&format!(
                "{}: moves to {}:{} as its instances cycle (or now: hako app rollout {})\n",
                a.spec.name, image.name, image.version, a.spec.name
            ));
        }
    }
    Ok(0)
}

/// Per image name, the running instances on a version older than its latest; `None` when
/// no `hako serve` answers.
pub fn older_instances(data_dir: &Path, images: &[Image]) -> Option<BTreeMap<String, usize>> {
    let client = hako_api::Client::from_env(data_dir).ok()?;
    let instances = client.instances(None).ok()?;
    let mut latest: BTreeMap<&str, u32> = BTreeMap::new();
    for i in images {
        let v = latest.entry(i.name.as_str()).or_insert(0);
        *v = (*v).max(i.version);
    }
    let mut older = BTreeMap::new();
    for i in instances {
        let Some((name, version)) = i.image.rsplit_once(':') else {
            continue;
        };
        let (Some(newest), Ok(v)) = (latest.get(name), version.parse::<u32>()) else {
            continue;
        };
        if v < *newest {
            *older.entry(name.to_string()).or_insert(0) += 1;
        }
    }
    Some(older)
}
