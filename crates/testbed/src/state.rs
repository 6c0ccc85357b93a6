//! The bed's state file (`<state dir>/bed.json`): what `down` needs to remove a bed that
//! another process brought up — its processes (pid and start time), the runtime prefixes of
//! its nodes, where its front listens.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::process::ProcRecord;
use crate::{Result, TestbedError};

/// The file's name in the state dir.
pub const FILE: &str = "bed.json";

/// How to reach the bed's front.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrontInfo {
    /// `http://IP:7070`.
    pub api: String,
    /// The admin token.
    pub token: String,
    /// `IP:8080`.
    pub proxy: String,
}

/// Everything a later `down` (or `status`) needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BedState {
    pub name: String,
    pub state_dir: PathBuf,
    pub lan: String,
    pub nodes: usize,
    /// The etcd store option (`etcd://…`).
    pub store: String,
    /// Runtime prefixes of the nodes' (and the front's) hako processes.
    pub prefixes: Vec<String>,
    /// Every process the bed started that may still run.
    pub processes: Vec<ProcRecord>,
    pub front: Option<FrontInfo>,
}

impl BedState {
    /// Writes the file (atomically: a temp file renamed over it).
    pub fn save(&self) -> Result<()> {
        let path = self.state_dir.join(FILE);
        let tmp = self.state_dir.join(format!("{FILE}.tmp"));
        let text = serde_json::to_string_pretty(self).expect("the state serialises");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(TestbedError::io(format!("cannot write {}", path.display())))
    }

    /// Reads the state file of the bed in `state_dir`, if there is one.
    pub fn load(state_dir: &Path) -> Result<Option<BedState>> {
        let path = state_dir.join(FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| TestbedError::Io {
                    what: format!("{} is not a test bed's state", path.display()),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(TestbedError::io(format!("cannot read {}", path.display()))(
                e,
            )),
        }
    }

    /// The shell lines that point hako's CLI (and curl) at this bed.
    pub fn exports(&self) -> String {
        let mut s = format!(
            "export HAKO_TESTBED={}\nexport HAKO_STORE={}\n",
            self.name, self.store
        );
        if let Some(f) = &self.front {
            s += &format!(
                "export HAKO_API={}\nexport HAKO_TOKEN={}\nexport HAKO_PROXY={}\n",
                f.api, f.token, f.proxy
            );
        }
        s
    }
}
