//! Database and account names: `<prefix>_<app>`, with the app's `-` as `_`, cut to MariaDB's
//! 64-character limit with a hash suffix so that long names stay distinct.

/// MariaDB's longest database name (and the longest account name hako makes).
const MAX_LEN: usize = 64;

/// A prefix or app name that cannot become a database name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The prefix is not 1–16 lowercase letters and digits starting with a letter.
    #[error(
        "database prefix {0:?} must be 1–16 lowercase letters and digits, starting with a letter"
    )]
    Prefix(String),
    /// The app name is not an app name.
    #[error("{0:?} is not an app name")]
    App(String),
}

/// The database (and account) name of `app` under `prefix`: `hako_blog`, `hako_my_site`.
/// Names longer than 64 characters keep their first 55 and end with `_` and 8 hex digits of
/// a hash of the whole name.
pub fn database_name(prefix: &str, app: &str) -> Result<String, NameError> {
    let prefix_ok = (1..=16).contains(&prefix.len())
        && prefix.starts_with(|c: char| c.is_ascii_lowercase())
        && prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !prefix_ok {
        return Err(NameError::Prefix(prefix.into()));
    }
    if !hako_model::valid_name(app) {
        return Err(NameError::App(app.into()));
    }
    let full = format!("{prefix}_{}", app.replace('-', "_"));
    if full.len() <= MAX_LEN {
        return Ok(full);
    }
    Ok(format!(
        "{}_{:08x}",
        &full[..MAX_LEN - 9],
        fnv1a(&full) as u32
    ))
}

/// FNV-1a, 64 bits: a stable hash (the same on every machine and release).
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_read_naturally() {
        assert_eq!(database_name("hako", "blog").unwrap(), "hako_blog");
        assert_eq!(database_name("hako", "my-site").unwrap(), "hako_my_site");
        assert_eq!(database_name("hakot7", "a1").unwrap(), "hakot7_a1");
    }

    #[test]
    fn long_names_are_cut_and_stay_distinct() {
        let a = "a".repeat(61) + "-x";
        let b = "a".repeat(61) + "-y";
        let na = database_name("hako", &a).unwrap();
        let nb = database_name("hako", &b).unwrap();
        assert_eq!(na.len(), 64);
        assert_eq!(nb.len(), 64);
        assert_ne!(na, nb);
        assert!(na.starts_with("hako_aaaa"));
        assert_eq!(database_name("hako", &a).unwrap(), na, "stable");
    }

    #[test]
    fn refuses_what_could_inject() {
        for p in ["", "Hako", "1hako", "ha_ko", "ha`ko", "abcdefghijklmnopq"] {
            assert_eq!(
                database_name(p, "blog"),
                Err(NameError::Prefix(p.into())),
                "{p}"
            );
        }
        for a in ["", "Blog", "a'b", "a`b", "a b", "a_b", "-a"] {
            assert_eq!(
                database_name("hako", a),
                Err(NameError::App(a.into())),
                "{a}"
            );
        }
    }
}
