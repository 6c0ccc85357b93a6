//! `hako app deploy`: new code for an app — and, when the code carries a manifest
//! (`hako.toml`), the app itself: created if missing, its settings made the file's.

use std::path::Path;

use anyhow::Context;
use hako_api::Client;
use hako_model::units::format_size;
use hako_model::{MANIFEST_FILE, Manifest};

use crate::cmd::{Exit, Failure, OrExit, api, out};

/// `hako app deploy [NAME] --code DIR|TARBALL [--tenant T]`: with a `hako.toml` at the top of
/// a code directory, the app is created if missing or its settings made the file's (validated
/// here as a create is, then by the API with the node's limits), then the code deployed.
/// Without one, NAME is needed and only the code changes.
pub(super) fn with_manifest(
    client: &Client,
    name: Option<&str>,
    code: &Path,
    tenant: Option<&str>,
    data_dir: &Path,
) -> Result<u8, Failure> {
    let usage = |e: anyhow::Error| Failure::new(Exit::Usage, e);
    let path = code.join(MANIFEST_FILE);
    if !code.is_dir() || !path.is_file() {
        let Some(name) = name else {
            return Err(usage(anyhow::anyhow!(
                "give the app's name (hako app deploy NAME --code {}), or put a {MANIFEST_FILE} with name = \"NAME\" in the code directory",
                code.display()
            )));
        };
        if tenant.is_some() {
            return Err(usage(anyhow::anyhow!(
                "--tenant only names the owner of an app a {MANIFEST_FILE} creates, and {} has none",
                code.display()
            )));
        }
        deploy(client, name, code)?;
        return Ok(0);
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))
        .or_exit(Exit::Usage)?;
    let in_file = |e: hako_model::ManifestError| usage(anyhow::anyhow!("{}: {e}", path.display()));
    let manifest = Manifest::parse(&text).map_err(in_file)?;
    let name = manifest.app_name(name).map_err(in_file)?;
    let mut settings = manifest.settings.clone();
    super::settings::image_defaults(&mut settings, data_dir);
    let spec = Manifest {
        name: Some(name.clone()),
        settings,
    }
    .spec(&name)
    .map_err(in_file)?;
    super::settings::check_schedules(&spec)
        .map_err(|e| usage(anyhow::anyhow!("{}: {e}", path.display())))?;
    match client.app(&name) {
        Ok(_) => {
            super::update(client, &name, &hako_model::manifest::full_patch(&spec))?;
            deploy(client, &name, code)?;
        }
        Err(e) if e.status() == Some(404) => {
            super::create_with_code(client, &spec, tenant, code)?;
        }
        Err(e) => return Err(crate::cmd::api_failure(e)),
    }
    Ok(0)
}

/// Deploys a directory or an archive file. A directory goes by its path only with the admin
/// token to an API on this machine (the server reads it in place); otherwise — a tenant's
/// token, a remote API — it is packed into a tar.gz and uploaded.
pub(super) fn deploy(client: &Client, name: &str, code: &Path) -> Result<(), Failure> {
    let code = std::fs::canonicalize(code)
        .with_context(|| format!("code {} does not exist", code.display()))
        .or_exit(Exit::Usage)?;
    let progress = crate::cmd::progress::Progress::stderr();
    let release = if !code.is_dir() {
        progress.line(&format!("uploading {}", code.display()));
        api(client.deploy_archive_file(name, &code))?
    } else if client.uses_tenant_token() || !api_is_local(&client.base_url) {
        progress.line(&format!("packing and uploading {}", code.display()));
        api(client.deploy_dir_upload(name, &code))?
    } else {
        progress.line(&format!("copying {} into a new release", code.display()));
        api(client.deploy_dir(name, &code))?
    };
    out(&format!(
        "deployed release {} of {name} ({})\n",
        release.number,
        format_size(release.size_bytes)
    ));
    Ok(())
}

/// Follows a rollout until every instance of `name` runs `generation` (or none runs: the
/// next start gets it), with progress on a terminal; an error after `timeout`.
pub(super) fn wait_for_rollout(
    client: &Client,
    name: &str,
    generation: u64,
    timeout: hako_model::HumanDuration,
) -> Result<(), Failure> {
    let progress = crate::cmd::progress::Progress::stderr();
    let deadline = std::time::Instant::now() + timeout.0;
    let mut shown = None;
    loop {
        let instances = api(client.instances(Some(name)))?;
        let old = instances
            .iter()
            .filter(|i| i.generation < generation)
            .count();
        let new = instances.len() - old;
        if shown != Some((old, new)) {
            progress.line(&format!(
                "{new} instances on generation {generation}, {old} older ones left"
            ));
            shown = Some((old, new));
        }
        if old == 0 {
            out(&format!(
                "rolled out {name}: {new} instances on generation {generation}\n"
            ));
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(anyhow::anyhow!(
                "{old} instances of {name} still run an older generation after {timeout}; the rollout goes on (see hako app show {name})"
            ))
            .or_exit(Exit::Failure);
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// True when the API's URL names this machine (loopback or `localhost`).
fn api_is_local(base_url: &str) -> bool {
    let rest = base_url
        .split_once("://")
        .map_or(base_url, |(_, r)| r)
        .split('/')
        .next()
        .unwrap_or("");
    let host = match rest.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => rest.rsplit_once(':').map_or(rest, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_apis_take_a_directory_by_path() {
        for local in [
            "http://127.0.0.1:7070",
            "http://localhost:7070/",
            "http://[::1]:7070",
            "127.0.0.1:7070",
        ] {
            assert!(api_is_local(local), "{local}");
        }
        for remote in [
            "http://10.0.0.5:7070",
            "https://hako.example",
            "http://[2001:db8::1]:7070",
            "http://localhost.evil.example",
        ] {
            assert!(!api_is_local(remote), "{remote}");
        }
    }
}
