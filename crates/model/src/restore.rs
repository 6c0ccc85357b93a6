//! Checkpoint/restore in the vocabulary: when an app's instances may start from a checkpoint
//! ([`RestoreMode`]), how an instance did start ([`StartPath`]), and the key a checkpoint is
//! filed under ([`App::version_key`]).

use crate::App;

/// Whether an app's instances may start from a checkpoint (a CRIU image of a ready, warmed
/// instance of the same app version) instead of from scratch.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum RestoreMode {
    /// hako decides per app, from its measured cold start against its measured restore.
    #[default]
    Auto,
    /// Restore whenever a checkpoint of the current version exists (checkpoint as soon as
    /// one can be made).
    Always,
    /// Never: every start runs the app's command.
    Never,
}

impl std::str::FromStr for RestoreMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(RestoreMode::Auto),
            "always" => Ok(RestoreMode::Always),
            "never" => Ok(RestoreMode::Never),
            _ => Err(format!(
                "restore mode {s:?} is not one of auto, always, never"
            )),
        }
    }
}

/// How an instance started.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum StartPath {
    /// A container made for this start; the app's command ran from the beginning.
    #[default]
    Cold,
    /// A container of the warm pool, prepared before; the app's command ran from the beginning.
    Pool,
    /// Restored from a checkpoint: the app resumed where the checkpointed instance was.
    Restore,
    /// A slot of the node's shared warm pool (a cgroup and a network made before, for any
    /// app); its root, mounts and the app's command were made and ran for this start.
    Shared,
}

impl std::fmt::Display for StartPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StartPath::Cold => "cold",
            StartPath::Pool => "pool",
            StartPath::Restore => "restore",
            StartPath::Shared => "shared",
        })
    }
}

impl App {
    /// The app version a checkpoint belongs to, stable across builds of hako and restarts (it
    /// names checkpoint directories on disk): a hex hash of what [`App::fingerprint`] covers
    /// (release, rollout generation, image reference, command, environment with the
    /// database's credentials, user, working directory, port, limits, network). The image
    /// reference is as the user wrote it; the agent adds the resolved image version.
    pub fn version_key(&self) -> String {
        let s = &self.spec;
        // An array, not a map: its order is fixed whatever serde_json's map features are.
        let shape = serde_json::json!([
            self.release,
            self.generation,
            s.name,
            s.image,
            s.cmd,
            s.env.iter().collect::<Vec<_>>(),
            s.port,
            s.user,
            s.workdir,
            s.database,
            self.database_grant
                .as_ref()
                .map(|g| (&g.database, &g.password)),
            s.memory.0,
            s.cpu,
            s.pids,
            s.network,
        ]);
        format!("{:016x}", fnv1a(shape.to_string().as_bytes()))
    }
}

/// FNV-1a, 64 bits: small, fixed forever (unlike std's hasher).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> App {
        serde_json::from_value(serde_json::json!({
            "name": "blog", "hosts": ["blog.example"], "image": "php",
            "cmd": "php -S 0.0.0.0:$PORT -t /app", "release": 3,
            "created_unix": 1, "updated_unix": 2
        }))
        .unwrap()
    }

    #[test]
    fn the_version_key_is_fixed_and_follows_the_fingerprint() {
        let a = app();
        // Pinned: a change here orphans every checkpoint on disk; do it on purpose only.
        assert_eq!(a.version_key(), "7e70ca50099d5a0c");
        assert_eq!(a.version_key().len(), 16);
        let mut steer = a.clone();
        steer.spec.min = 1;
        steer.spec.restore = RestoreMode::Never;
        steer.spec.warm_pool = 2;
        assert_eq!(steer.version_key(), a.version_key());
        for change in [
            |a: &mut App| a.release = Some(4),
            |a: &mut App| a.generation = 1,
            |a: &mut App| a.spec.image = "php:2".parse().unwrap(),
            |a: &mut App| {
                a.spec.env.insert("X".into(), "1".into());
            },
            |a: &mut App| a.spec.memory.0 *= 2,
        ] {
            let mut b = a.clone();
            change(&mut b);
            assert_ne!(b.version_key(), a.version_key());
        }
    }

    #[test]
    fn modes_parse_and_default_to_auto() {
        assert_eq!(app().spec.restore, RestoreMode::Auto);
        assert_eq!("Never".parse::<RestoreMode>().unwrap(), RestoreMode::Never);
        assert!("sometimes".parse::<RestoreMode>().is_err());
        assert_eq!(serde_json::to_value(StartPath::Restore).unwrap(), "restore");
        assert_eq!(StartPath::default().to_string(), "cold");
    }
}
