//! Image references on the command line: `NAME` (the latest version) or `NAME:VERSION`.

use std::fmt;
use std::str::FromStr;

/// A reference to one image version; `version: None` means the latest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The image name.
    pub name: String,
    /// A version number, or `None` for the latest.
    pub version: Option<u32>,
}

/// Why an image reference was not understood.
#[derive(Debug, thiserror::Error)]
pub enum ImageRefError {
    /// The name part is not a valid image name.
    #[error(transparent)]
    Name(#[from] hako_image::NameError),
    /// The part after `:` is not a version number.
    #[error(
        "image version {version:?} in {input:?} is not a number: use NAME or NAME:VERSION, e.g. site:3 (see `hako image list`)"
    )]
    BadVersion {
        /// The whole reference.
        input: String,
        /// The text after `:`.
        version: String,
    },
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
                let n: u32 = v.parse().map_err(|_| bad())?;
                if n == 0 || v.starts_with('+') {
                    return Err(bad());
                }
                (name, Some(n))
            }
        };
        hako_image::validate_name(name)?;
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
        assert_eq!(r.version, None);
        assert_eq!("bb:3".parse::<ImageRef>().unwrap().to_string(), "bb:3");
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "", "Site", "../etc", "bb:", "bb:x", "bb:0", "bb:-1", "bb:+2", "bb:1:2",
        ] {
            assert!(bad.parse::<ImageRef>().is_err(), "{bad:?} was accepted");
        }
        let err = "bb:two".parse::<ImageRef>().unwrap_err().to_string();
        assert!(err.contains("NAME:VERSION"), "{err}");
    }
}
