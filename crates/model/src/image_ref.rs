//! Image references, the one form everywhere (`hako run --image`, `hako app create --image`,
//! `hako image remove`, an app's `image` in the API and in the store): `NAME` or
//! `NAME:latest` (the latest version, looked up each time an instance starts) or
//! `NAME:VERSION` (one version, a number from 1).

use std::fmt;
use std::str::FromStr;

use crate::image_name::{ImageNameError, validate_image_name};

/// A reference to an image version; `version: None` means the latest. Written back as `NAME`
/// or `NAME:VERSION` (so `site:latest` is stored as `site`); in JSON, that string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    /// The image name (valid: see [`validate_image_name`]).
    pub name: String,
    /// A version number, or `None` for the latest.
    pub version: Option<u32>,
}

/// Why an image reference was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefError {
    /// The name part is not a valid image name.
    #[error(transparent)]
    Name(#[from] ImageNameError),
    /// The part after `:` is not a version number.
    #[error(
        "image version {version:?} in {input:?} is not a number: use NAME, NAME:latest or NAME:VERSION, e.g. site:3 (see `hako image list`)"
    )]
    BadVersion {
        /// The whole reference.
        input: String,
        /// The text after `:`.
        version: String,
    },
}

impl ImageRef {
    /// The latest version of `name` (not checked: use `parse` for user input).
    pub fn latest(name: impl Into<String>) -> ImageRef {
        ImageRef {
            name: name.into(),
            version: None,
        }
    }
}

impl FromStr for ImageRef {
    type Err = ImageRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, version) = match s.split_once(':') {
            None => (s, None),
            Some((name, "latest")) => (name, None),
            Some((name, v)) => {
                let bad = || ImageRefError::BadVersion {
                    input: s.to_string(),
                    version: v.to_string(),
                };
                if !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                let n: u32 = v.parse().map_err(|_| bad())?;
                if n == 0 {
                    return Err(bad());
                }
                (name, Some(n))
            }
        };
        validate_image_name(name)?;
        Ok(ImageRef {
            name: name.to_string(),
            version,
        })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.version {
            Some(v) => write!(f, "{}:{v}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

impl serde::Serialize for ImageRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ImageRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_name_and_version() {
        let r: ImageRef = "site".parse().unwrap();
        assert_eq!((r.name.as_str(), r.version), ("site", None));
        let r: ImageRef = "php-8.2:12".parse().unwrap();
        assert_eq!((r.name.as_str(), r.version), ("php-8.2", Some(12)));
        let r: ImageRef = "bb:latest".parse().unwrap();
        assert_eq!(r, ImageRef::latest("bb"));
        assert_eq!(r.to_string(), "bb");
        assert_eq!("bb:3".parse::<ImageRef>().unwrap().to_string(), "bb:3");
        assert_eq!("wp_6.4".parse::<ImageRef>().unwrap().name, "wp_6.4");
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "Site",
            "../etc",
            "bb:",
            "bb:x",
            "bb:0",
            "bb:-1",
            "bb:+2",
            "bb:1:2",
            ":3",
            "bb:LATEST",
            "bb:99999999999",
            ".hidden",
        ] {
            assert!(bad.parse::<ImageRef>().is_err(), "{bad:?} was accepted");
        }
        let err = "bb:two".parse::<ImageRef>().unwrap_err().to_string();
        assert!(err.contains("NAME:VERSION"), "{err}");
        let err = "Site".parse::<ImageRef>().unwrap_err().to_string();
        assert!(err.contains("lowercase"), "{err}");
    }

    #[test]
    fn json_is_the_written_form() {
        let r: ImageRef = serde_json::from_str("\"site:latest\"").unwrap();
        assert_eq!(r, ImageRef::latest("site"));
        assert_eq!(serde_json::to_string(&r).unwrap(), "\"site\"");
        let r: ImageRef = serde_json::from_str("\"php:3\"").unwrap();
        assert_eq!(serde_json::to_string(&r).unwrap(), "\"php:3\"");
        let err = serde_json::from_str::<ImageRef>("\"php:0\"").unwrap_err();
        assert!(err.to_string().contains("NAME:VERSION"), "{err}");
        assert!(serde_json::from_str::<ImageRef>("3").is_err());
    }
}
