//! Which keep-alive decides when an app's idle instances stop: the fixed idle timeout, or the
//! predictive keep-alive that learns the app's idle periods (`hako_policy::predict`,
//! docs/predictor.md).

/// An app's keep-alive (`--keep-alive`, `"keep_alive"` in its JSON).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum KeepAliveMode {
    /// An instance stops `idle_timeout` after its last request.
    #[default]
    Fixed,
    /// The hybrid idle-time histogram policy: per app, a histogram of the idle periods
    /// between visits; a periodic site is unloaded after each visit and pre-warmed just before
    /// the next; while the history is thin or too spread, the idle timeout decides as `fixed`.
    Predictive,
}

impl std::str::FromStr for KeepAliveMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fixed" => Ok(KeepAliveMode::Fixed),
            "predictive" => Ok(KeepAliveMode::Predictive),
            _ => Err(format!("keep-alive {s:?} is not one of fixed, predictive")),
        }
    }
}

impl std::fmt::Display for KeepAliveMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeepAliveMode::Fixed => "fixed",
            KeepAliveMode::Predictive => "predictive",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_shows_and_defaults_to_fixed() {
        assert_eq!(KeepAliveMode::default(), KeepAliveMode::Fixed);
        assert_eq!(
            "Predictive".parse::<KeepAliveMode>().unwrap(),
            KeepAliveMode::Predictive
        );
        assert!("smart".parse::<KeepAliveMode>().is_err());
        assert_eq!(
            serde_json::to_value(KeepAliveMode::Predictive).unwrap(),
            "predictive"
        );
        assert_eq!(KeepAliveMode::Fixed.to_string(), "fixed");
    }
}
