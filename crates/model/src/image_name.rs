//! Image names: what an [`crate::ImageRef`] names and what the image store (`hako-image`)
//! accepts as a directory name under its root.
//!
//! A name is `[a-z0-9][a-z0-9_.-]{0,62}`: it is a single path component, never
//! starts with `.` (so it can't clash with the store's own `.lock`, `.tmp-*` and
//! `.cache` entries) and is safe to print and to use in file names.

/// Why a string is not a valid image name.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ImageNameError {
    /// The name is empty.
    #[error("image name is empty: use lowercase letters, digits, '_', '.' or '-'")]
    Empty,
    /// The name is longer than 63 bytes.
    #[error("image name {0:?} is longer than 63 characters: choose a shorter one")]
    TooLong(String),
    /// The first character is not a lowercase letter or digit.
    #[error("image name {0:?} must start with a lowercase letter or a digit")]
    BadStart(String),
    /// A character outside `[a-z0-9_.-]`.
    #[error(
        "image name {name:?} contains {ch:?}: use only lowercase letters, digits, '_', '.' or '-'"
    )]
    BadChar {
        /// The whole name.
        name: String,
        /// The first character that is not allowed.
        ch: char,
    },
}

/// Longest accepted name, in bytes.
pub const MAX_IMAGE_NAME_LEN: usize = 63;

/// Checks that `name` is a valid image name.
pub fn validate_image_name(name: &str) -> Result<(), ImageNameError> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err(ImageNameError::Empty);
    };
    if name.len() > MAX_IMAGE_NAME_LEN {
        return Err(ImageNameError::TooLong(name.to_owned()));
    }
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err(ImageNameError::BadStart(name.to_owned()));
    }
    if let Some(ch) = chars
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-')))
    {
        return Err(ImageNameError::BadChar {
            name: name.to_owned(),
            ch,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_typical_names() {
        for name in ["php", "debian-12", "wp_6.4", "0", &"a".repeat(63)] {
            assert_eq!(validate_image_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn rejects_bad_names() {
        assert_eq!(validate_image_name(""), Err(ImageNameError::Empty));
        assert!(matches!(
            validate_image_name(&"a".repeat(64)),
            Err(ImageNameError::TooLong(_))
        ));
        for name in [".hidden", "-x", "_x", "Upper"] {
            assert!(
                matches!(validate_image_name(name), Err(ImageNameError::BadStart(_))),
                "{name}"
            );
        }
        for (name, ch) in [
            ("a/b", '/'),
            ("a..b/", '/'),
            ("aB", 'B'),
            ("a b", ' '),
            ("é", 'é'),
        ] {
            match validate_image_name(name) {
                Err(ImageNameError::BadChar { ch: got, .. }) => assert_eq!(got, ch, "{name}"),
                Err(ImageNameError::BadStart(_)) if name == "é" => {}
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}
