//! Validation of keys and prefixes, and the byte range a prefix covers.
//!
//! Keys are non-empty UTF-8 strings starting with `/`, without control
//! characters, at most [`MAX_KEY_LEN`] bytes. A prefix follows the same rules
//! (`/` alone selects every key). Prefix matching is plain string prefix
//! matching: `/apps/blog` also matches `/apps/blog2`; end a prefix with `/` to
//! select only the children of a key.

use crate::StoreError;

/// Longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 4096;
/// Largest value accepted, in bytes (etcd's default request limit is 1.5 MiB).
pub const MAX_VALUE_LEN: usize = 1024 * 1024;

/// Checks that `key` is a valid store key.
pub fn validate_key(key: &str) -> Result<(), StoreError> {
    check(key)
}

/// Checks that `prefix` is a valid prefix (same rules as a key).
pub fn validate_prefix(prefix: &str) -> Result<(), StoreError> {
    check(prefix)
}

/// Checks that `value` for `key` is within [`MAX_VALUE_LEN`].
pub fn validate_value(key: &str, value: &[u8]) -> Result<(), StoreError> {
    if value.len() > MAX_VALUE_LEN {
        return Err(StoreError::ValueTooLarge {
            key: key.to_owned(),
            size: value.len(),
            limit: MAX_VALUE_LEN,
        });
    }
    Ok(())
}

fn check(key: &str) -> Result<(), StoreError> {
    let reason = if key.is_empty() {
        Some("it is empty")
    } else if !key.starts_with('/') {
        Some("it does not start with '/'")
    } else if key.len() > MAX_KEY_LEN {
        Some("it is longer than 4096 bytes")
    } else if key.chars().any(char::is_control) {
        Some("it contains a control character")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(StoreError::InvalidKey {
            key: key.chars().take(200).collect(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The exclusive upper bound of the byte range holding every key that starts
/// with `prefix`: the prefix followed by 0xFF, a byte that never occurs in UTF-8.
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = Vec::with_capacity(prefix.len() + 1);
    end.extend_from_slice(prefix.as_bytes());
    end.push(0xFF);
    end
}

/// True if `key` is selected by `prefix`.
pub fn matches(prefix: &str, key: &str) -> bool {
    key.starts_with(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_keys() {
        for k in [
            "/",
            "/apps/blog",
            "/events/blog/00000000000000000012",
            "/ü/日本",
        ] {
            assert_eq!(validate_key(k), Ok(()), "{k}");
        }
    }

    #[test]
    fn refuses_bad_keys_with_a_reason() {
        let cases = [
            ("", "it is empty"),
            ("apps/blog", "it does not start with '/'"),
            ("/a\0b", "it contains a control character"),
            ("/a\nb", "it contains a control character"),
        ];
        for (k, want) in cases {
            match validate_key(k) {
                Err(StoreError::InvalidKey { reason, .. }) => assert_eq!(reason, want, "{k:?}"),
                other => panic!("{k:?}: {other:?}"),
            }
        }
        let long = format!("/{}", "x".repeat(MAX_KEY_LEN));
        assert!(validate_key(&long).is_err());
        assert!(validate_prefix("nope").is_err());
    }

    #[test]
    fn value_limit() {
        assert!(validate_value("/a", &vec![0; MAX_VALUE_LEN]).is_ok());
        let err = validate_value("/a", &vec![0; MAX_VALUE_LEN + 1]).unwrap_err();
        assert!(matches!(err, StoreError::ValueTooLarge { size, .. } if size == MAX_VALUE_LEN + 1));
    }

    #[test]
    fn prefix_range_covers_exactly_the_prefixed_keys() {
        let end = prefix_end("/apps/");
        let inside = ["/apps/", "/apps/a", "/apps/\u{10FFFF}zz"];
        let outside = ["/apps", "/appt", "/apps0", "/b"];
        for k in inside {
            assert!(
                k.as_bytes() >= "/apps/".as_bytes() && k.as_bytes() < end.as_slice(),
                "{k}"
            );
            assert!(matches("/apps/", k));
        }
        for k in outside {
            let in_range = k.as_bytes() >= "/apps/".as_bytes() && k.as_bytes() < end.as_slice();
            assert!(!in_range, "{k}");
            assert!(!matches("/apps/", k));
        }
    }
}
