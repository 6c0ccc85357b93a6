//! The system-call filter an app's instances run under, as the user names it (the runtime
//! compiles and installs it).

/// The system-call filter of an app's instances.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum SeccompProfile {
    /// hako's default profile: calls a web app never needs (kexec, modules, bpf, keys,
    /// mounts, new user namespaces, …) fail with EPERM.
    #[default]
    Default,
    /// No filter; needs [`AppSpec::seccomp_reason`].
    Unconfined,
}

impl std::str::FromStr for SeccompProfile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "default" => Ok(SeccompProfile::Default),
            "unconfined" => Ok(SeccompProfile::Unconfined),
            other => Err(format!(
                "seccomp profile {other:?} is unknown: use default or unconfined"
            )),
        }
    }
}

/// Longest [`AppSpec::seccomp_reason`] accepted.
pub const MAX_SECCOMP_REASON: usize = 500;

/// Checks and tidies the reason for `profile`: `unconfined` needs one (trimmed, at most
/// [`MAX_SECCOMP_REASON`] characters, no control characters); `default` drops it.
pub(crate) fn check_reason(profile: SeccompProfile, reason: &mut Option<String>) -> bool {
    match profile {
        SeccompProfile::Default => {
            *reason = None;
            true
        }
        SeccompProfile::Unconfined => {
            let r = reason.as_deref().map(str::trim).unwrap_or("");
            if r.is_empty()
                || r.chars().count() > MAX_SECCOMP_REASON
                || r.chars().any(char::is_control)
            {
                return false;
            }
            *reason = Some(r.to_string());
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AppError, AppSpec};

    fn spec() -> AppSpec {
        serde_json::from_value(serde_json::json!({
            "name": "blog", "hosts": ["blog.example"], "image": "php",
            "cmd": "php -S 0.0.0.0:$PORT -t /app"
        }))
        .unwrap()
    }

    #[test]
    fn seccomp_defaults_to_the_profile_and_unconfined_needs_a_reason() {
        let mut s = spec();
        s.validate().unwrap();
        assert_eq!(s.seccomp, SeccompProfile::Default);
        assert!(
            !serde_json::to_value(&s)
                .unwrap()
                .as_object()
                .unwrap()
                .contains_key("seccomp_reason")
        );
        s.seccomp = SeccompProfile::Unconfined;
        assert_eq!(s.validate(), Err(AppError::SeccompReason));
        for bad in ["", "   ", "line\nbreak"] {
            s.seccomp_reason = Some(bad.into());
            assert_eq!(s.validate(), Err(AppError::SeccompReason), "{bad:?}");
        }
        s.seccomp_reason = Some("x".repeat(MAX_SECCOMP_REASON + 1));
        assert_eq!(s.validate(), Err(AppError::SeccompReason));
        s.seccomp_reason = Some("  the app runs its own sandbox with user namespaces ".into());
        s.validate().unwrap();
        assert_eq!(
            s.seccomp_reason.as_deref(),
            Some("the app runs its own sandbox with user namespaces")
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["seccomp"], "unconfined");
        // Back to the profile: the reason goes.
        s.seccomp = SeccompProfile::Default;
        s.validate().unwrap();
        assert_eq!(s.seccomp_reason, None);
        assert!("strict".parse::<SeccompProfile>().is_err());
    }
}
