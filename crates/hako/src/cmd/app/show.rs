//! `hako app list`, `show` and `cert`: what an app is and what it runs.

use std::path::{Path, PathBuf};

use anyhow::Context;
use hako_api::Client;
use hako_model::App;
use hako_model::units::format_size;

use crate::cmd::{Exit, Failure, OrExit, api, out};

/// `hako app list [--json]`.
pub(super) fn list(client: &Client, json: bool) -> Result<u8, Failure> {
    let apps = api(client.list_apps())?;
    if json {
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&apps).expect("serializable")
        ));
    } else {
        // A tenant's apps are all its own: the column is the admin's.
        out(&table(&apps, !client.uses_tenant_token()));
    }
    Ok(0)
}

/// `hako app releases NAME [--json]`: newest first.
pub(super) fn releases(client: &Client, name: &str, json: bool) -> Result<u8, Failure> {
    let mut releases = api(client.releases(name))?;
    releases.sort_by_key(|r| std::cmp::Reverse(r.number));
    if json {
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&releases).expect("serializable")
        ));
        return Ok(0);
    }
    let current = api(client.app(name))?.release;
    let mut s = format!(
        "{:<8} {:<20} {:>10} {:>8}  {}\n",
        "RELEASE", "CREATED", "SIZE", "FILES", "SOURCE"
    );
    for r in &releases {
        s += &format!(
            "{:<8} {:<20} {:>10} {:>8}  {}{}\n",
            r.number,
            crate::cmd::format_time_ms(r.created_unix * 1000),
            format_size(r.size_bytes),
            r.files,
            r.source,
            if current == Some(r.number) {
                "  (current)"
            } else {
                ""
            }
        );
    }
    out(&s);
    Ok(0)
}

/// `hako app show NAME [--json]`.
pub(super) fn show(client: &Client, name: String, json: bool) -> Result<u8, Failure> {
    let app = api(client.app(&name))?;
    let instances = api(client.instances(Some(&name)))?;
    // Whether starts restore a checkpoint, and why (absent from an older daemon).
    let checkpoint = client.checkpoint(&name).ok();
    if json {
        let cert = api(client.cert(&name))?;
        let v = serde_json::json!({
            "app": app,
            "instances": instances,
            "certificate": cert,
            "checkpoint": checkpoint,
        });
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&v).expect("serializable")
        ));
    } else {
        let mut s = serde_json::to_string_pretty(&app).expect("serializable");
        s.push('\n');
        s += &cert_line(api(client.cert(&name))?.as_ref(), app.spec.acme);
        if let Some(c) = &checkpoint {
            s += &checkpoint_lines(c);
        }
        s += &format!("instances: {}\n", instances.len());
        for i in instances {
            s += &format!(
                "  {} {} {:?} ready in {:.1} ms{}, image {}, release {}\n",
                i.id,
                i.addr,
                i.state,
                i.ready_ms.unwrap_or(0.0),
                match i.start_path {
                    hako_model::StartPath::Pool => " (from the warm pool)",
                    hako_model::StartPath::Restore => " (restored from a checkpoint)",
                    hako_model::StartPath::Shared => " (from the shared warm pool)",
                    hako_model::StartPath::Cold => "",
                },
                i.image,
                i.release.map_or("-".into(), |r| r.to_string())
            );
        }
        out(&s);
    }
    Ok(0)
}

/// `hako app cert NAME [--cert F --key F | --remove] [--json]`.
pub(super) fn cert(
    client: &Client,
    name: String,
    files: Option<(PathBuf, PathBuf)>,
    remove: bool,
    json: bool,
) -> Result<u8, Failure> {
    if remove {
        api(client.remove_cert(&name))?;
        out(&format!("removed the certificate of {name}\n"));
        return Ok(0);
    }
    let info = match files {
        Some((cert, key)) => {
            let read = |p: &Path| {
                std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read {}", p.display()))
                    .or_exit(Exit::Usage)
            };
            Some(api(client.set_cert(&name, &read(&cert)?, &read(&key)?))?)
        }
        _ => api(client.cert(&name))?,
    };
    if json {
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&info).expect("serializable")
        ));
    } else {
        let acme = api(client.app(&name))?.spec.acme;
        out(&cert_line(info.as_ref(), acme));
    }
    Ok(0)
}

/// One line about an app's certificate: source, issuer, names and expiry (never the key).
fn cert_line(info: Option<&hako_tls::CertInfo>, acme: bool) -> String {
    let Some(c) = info else {
        return if acme {
            "certificate: none yet (ACME is ordering one; see 'hako app events')\n".into()
        } else {
            "certificate: none (HTTPS refused; 'hako app cert NAME --cert F --key F' or --acme)\n"
                .into()
        };
    };
    let now = hako_model::now_unix() as i64;
    format!(
        "certificate: {} by {} for {}, not after {} ({})\n",
        match c.source {
            hako_tls::CertSource::Uploaded => "uploaded",
            hako_tls::CertSource::Acme => "ACME",
        },
        c.issuer,
        c.names.join(", "),
        crate::cmd::format_time_ms(c.not_after_unix.max(0) as u64 * 1000),
        match c.not_after_unix - now {
            left if left <= 0 => "expired".to_string(),
            left => format!("in {}", hako_tls::schedule::in_words(left)),
        }
    )
}

/// `hako app show`'s lines on checkpoint/restore: which start path and why, the checkpoint's
/// size, the node's checkpoint disk use against its bound.
fn checkpoint_lines(c: &serde_json::Value) -> String {
    let mut s = format!(
        "restore: {} — {}\n",
        c["restore"].as_str().unwrap_or("auto"),
        c["reason"].as_str().unwrap_or("")
    );
    if let Some(bytes) = c["checkpoint"]["bytes"].as_u64() {
        s += &format!("  checkpoint: {}", format_size(bytes));
        if let Some(image) = c["checkpoint"]["image"].as_str() {
            s += &format!(" of image {image}");
        }
        s.push('\n');
    }
    if let (Some(used), Some(bound)) = (
        c["node_checkpoint_bytes"].as_u64(),
        c["node_checkpoint_max_bytes"].as_u64(),
    ) {
        s += &format!(
            "  node's checkpoints: {} of {}\n",
            format_size(used),
            format_size(bound)
        );
    }
    s
}

/// The app list; with `tenants`, a TENANT column (`-` for the admin's own apps).
fn table(apps: &[App], tenants: bool) -> String {
    let tenant_col = |t: &str| {
        if tenants {
            format!("{t:<14} ")
        } else {
            String::new()
        }
    };
    let mut s = format!(
        "{:<20} {}{:<30} {:<12} {:<8} {:<8} {}\n",
        "NAME",
        tenant_col("TENANT"),
        "HOSTS",
        "IMAGE",
        "RELEASE",
        "MEMORY",
        "IDLE"
    );
    for a in apps {
        s += &format!(
            "{:<20} {}{:<30} {:<12} {:<8} {:<8} {}\n",
            a.spec.name,
            tenant_col(a.tenant.as_deref().unwrap_or("-")),
            a.spec.hosts.join(","),
            a.spec.image,
            a.release.map_or("-".into(), |r| r.to_string()),
            a.spec.memory.to_string(),
            a.spec.idle_timeout
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tenant_column_is_the_admins() {
        let mut app: App = serde_json::from_value(serde_json::json!({
            "name": "blog", "hosts": ["blog.example"], "image": "php", "cmd": "x",
            "created_unix": 0, "updated_unix": 0, "tenant": "acme"
        }))
        .unwrap();
        let admin = table(std::slice::from_ref(&app), true);
        assert!(admin.lines().next().unwrap().contains("TENANT"), "{admin}");
        assert!(admin.lines().nth(1).unwrap().contains("acme"), "{admin}");
        let tenant = table(std::slice::from_ref(&app), false);
        assert!(!tenant.contains("TENANT"), "{tenant}");
        app.tenant = None;
        let own = table(std::slice::from_ref(&app), true);
        assert!(own.lines().nth(1).unwrap().contains(" - "), "{own}");
    }
}
