//! What an OCI or Docker image says about running it (`config` of its configuration blob:
//! `Env`, `Cmd`, `Entrypoint`, `WorkingDir`, `User`, `ExposedPorts`), kept with the imported
//! version and used as the defaults of an app made from it.

use std::collections::BTreeMap;

use hako_model::AppPatch;
use serde::{Deserialize, Serialize};

/// How an image means to be run, from its configuration; empty fields were not set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// `NAME=VALUE` pairs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// The program and its first arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entrypoint: Vec<String>,
    /// The arguments (or, without an entrypoint, the command).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cmd: Vec<String>,
    /// Working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// `user`, `uid` or `uid:gid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// TCP ports the image says it listens on, ascending.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<u16>,
}

/// The image configuration blob, as far as hako reads it.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ConfigBlob {
    #[serde(default)]
    pub(crate) config: Option<RunConfig>,
    #[serde(default)]
    pub(crate) rootfs: Option<RootfsConfig>,
}

/// `rootfs` of the configuration: the digests of the uncompressed layers.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RootfsConfig {
    #[serde(default)]
    pub(crate) diff_ids: Vec<String>,
}

/// `config` of the configuration blob (Docker's field names, which OCI kept).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RunConfig {
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
}

impl RunConfig {
    /// What hako keeps of it.
    pub(crate) fn image_config(self) -> ImageConfig {
        let nonempty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
        let mut ports: Vec<u16> = self
            .exposed_ports
            .unwrap_or_default()
            .keys()
            .filter_map(|k| {
                let (port, proto) = k.split_once('/').unwrap_or((k, "tcp"));
                (proto == "tcp").then(|| port.parse().ok()).flatten()
            })
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ImageConfig {
            env: self.env.unwrap_or_default(),
            entrypoint: self.entrypoint.unwrap_or_default(),
            cmd: self.cmd.unwrap_or_default(),
            workdir: nonempty(self.working_dir),
            user: nonempty(self.user),
            ports,
        }
    }
}

impl ImageConfig {
    /// Fills what a new app's settings leave unset from the image: the command
    /// (`Entrypoint` + `Cmd`, each word quoted so hako's splitting gives them back as they
    /// are: literally, with no `$` expansion, as Docker runs them), the environment (the image's variables under the app's own), the working
    /// directory, the user and the port (the lowest exposed TCP port).
    pub fn app_defaults(&self, patch: &mut AppPatch) {
        if patch.cmd.is_none() {
            let words: Vec<String> = self
                .entrypoint
                .iter()
                .chain(&self.cmd)
                .map(|w| quote(w))
                .collect();
            if !words.is_empty() {
                patch.cmd = Some(words.join(" "));
            }
        }
        let image_env: BTreeMap<String, String> = self
            .env
            .iter()
            .filter_map(|pair| pair.split_once('='))
            .filter(|(k, _)| *k != "PORT")
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if !image_env.is_empty() {
            let mut env = image_env;
            env.extend(patch.env.take().unwrap_or_default());
            patch.env = Some(env);
        }
        if patch.workdir.is_none() {
            patch.workdir = self.workdir.clone();
        }
        if patch.user.is_none()
            && let Some(u) = &self.user
        {
            patch.user = Some(Some(u.clone()));
        }
        if patch.port.is_none() {
            patch.port = self.ports.first().copied();
        }
    }
}

/// A word in single quotes when it needs them (hako's command splitting treats single
/// quotes as a shell does: everything literal).
fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,+@%".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ImageConfig {
        let blob: ConfigBlob = serde_json::from_value(serde_json::json!({
            "architecture": "amd64",
            "config": {
                "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "GREETING=hi there", "PORT=1"],
                "Entrypoint": ["/bin/busybox"],
                "Cmd": ["httpd", "-f", "-p", "$PORT", "-h", "/srv/www it's"],
                "WorkingDir": "/srv",
                "User": "1000:1000",
                "ExposedPorts": {"8000/tcp": {}, "53/udp": {}, "80/tcp": {}}
            },
            "rootfs": {"type": "layers", "diff_ids": []}
        }))
        .unwrap();
        blob.config.unwrap().image_config()
    }

    #[test]
    fn the_images_settings_fill_what_the_app_leaves_unset() {
        let c = config();
        assert_eq!(c.ports, [80, 8000], "tcp only, ascending");
        let mut patch = AppPatch {
            hosts: Some(vec!["a.example".into()]),
            image: Some("img".parse().unwrap()),
            ..AppPatch::default()
        };
        c.app_defaults(&mut patch);
        let spec = patch.create("a").unwrap();
        assert_eq!(
            spec.command(80).unwrap(),
            [
                "/bin/busybox",
                "httpd",
                "-f",
                "-p",
                "$PORT",
                "-h",
                "/srv/www it's"
            ],
            "words survive hako's splitting literally, as Docker runs an exec-form command"
        );
        assert_eq!(spec.env["PATH"], "/usr/local/bin:/usr/bin:/bin");
        assert_eq!(spec.env["GREETING"], "hi there");
        assert!(!spec.env.contains_key("PORT"), "PORT is hako's to give");
        assert_eq!(spec.workdir, "/srv");
        assert_eq!(spec.user.as_deref(), Some("1000:1000"));
        assert_eq!(spec.port, 80);
    }

    #[test]
    fn the_apps_own_settings_win() {
        let mut env = BTreeMap::new();
        env.insert("GREETING".to_string(), "hello".to_string());
        let mut patch = AppPatch {
            cmd: Some("mine".into()),
            env: Some(env),
            workdir: Some("/app".into()),
            user: Some(None),
            port: Some(9000),
            ..AppPatch::default()
        };
        config().app_defaults(&mut patch);
        assert_eq!(patch.cmd.as_deref(), Some("mine"));
        let env = patch.env.unwrap();
        assert_eq!(env["GREETING"], "hello");
        assert!(env.contains_key("PATH"), "the image's others are added");
        assert_eq!(patch.workdir.as_deref(), Some("/app"));
        assert_eq!(patch.user, Some(None));
        assert_eq!(patch.port, Some(9000));
        // An image without a run config changes nothing.
        let mut empty = AppPatch::default();
        ImageConfig::default().app_defaults(&mut empty);
        assert!(empty.is_empty());
    }
}
