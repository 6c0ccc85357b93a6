//! Ignored clients: requests from uptime checkers, health probes and bots that an app wants
//! answered but that must not keep it awake. A request is ignored when its User-Agent contains
//! one of `user_agents` (case-insensitive) or its path (without the query) is one of `paths`
//! (a trailing `*` matches any rest). The decision is `hako_policy::wake::classify`.

/// Most patterns of each kind.
pub const MAX_IGNORED_PATTERNS: usize = 64;
/// Longest pattern, in bytes.
pub const MAX_IGNORED_PATTERN_LEN: usize = 256;

/// An app's list of clients whose requests do not keep it awake.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct IgnoredClients {
    /// Substrings of the User-Agent header, matched case-insensitively.
    pub user_agents: Vec<String>,
    /// Paths (without the query); a trailing `*` matches any rest, e.g. `/health*`.
    pub paths: Vec<String>,
}

/// An ignored-clients list that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IgnoredClientsError {
    /// Too many patterns.
    #[error("at most {MAX_IGNORED_PATTERNS} ignored {0} patterns")]
    TooMany(&'static str),
    /// An empty, over-long or multi-line pattern.
    #[error(
        "ignored-client pattern {0:?} must be 1–{MAX_IGNORED_PATTERN_LEN} bytes on one line (paths start with '/')"
    )]
    BadPattern(String),
}

impl IgnoredClients {
    /// Common uptime checkers and load-balancer probes, by User-Agent.
    pub fn uptime_checkers() -> IgnoredClients {
        IgnoredClients {
            user_agents: [
                "UptimeRobot",
                "Pingdom",
                "StatusCake",
                "Site24x7",
                "BetterStack",
                "Better Uptime",
                "Uptime-Kuma",
                "kube-probe",
                "GoogleHC",
                "ELB-HealthChecker",
            ]
            .map(String::from)
            .to_vec(),
            paths: Vec::new(),
        }
    }

    /// Nothing is ignored.
    pub fn is_empty(&self) -> bool {
        self.user_agents.is_empty() && self.paths.is_empty()
    }

    /// Check the limits; the error names the pattern to fix.
    pub fn validate(&self) -> Result<(), IgnoredClientsError> {
        for (kind, list) in [("user-agent", &self.user_agents), ("path", &self.paths)] {
            if list.len() > MAX_IGNORED_PATTERNS {
                return Err(IgnoredClientsError::TooMany(kind));
            }
            for p in list {
                let bad = p.is_empty()
                    || p.len() > MAX_IGNORED_PATTERN_LEN
                    || p.chars().any(char::is_control)
                    || (kind == "path" && !p.starts_with('/'));
                if bad {
                    return Err(IgnoredClientsError::BadPattern(p.clone()));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_bad_pattern() {
        assert!(IgnoredClients::uptime_checkers().validate().is_ok());
        assert!(IgnoredClients::default().is_empty());
        let bad = IgnoredClients {
            paths: vec!["health".into()],
            ..IgnoredClients::default()
        };
        assert_eq!(
            bad.validate(),
            Err(IgnoredClientsError::BadPattern("health".into()))
        );
        let many = IgnoredClients {
            user_agents: vec!["x".into(); 65],
            ..IgnoredClients::default()
        };
        assert_eq!(
            many.validate(),
            Err(IgnoredClientsError::TooMany("user-agent"))
        );
        let json: IgnoredClients = serde_json::from_str(r#"{"paths":["/ping"]}"#).unwrap();
        assert_eq!(json.paths, vec!["/ping".to_string()]);
        assert!(json.user_agents.is_empty());
    }
}
