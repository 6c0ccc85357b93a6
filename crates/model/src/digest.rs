//! Content digests: what a code release or an image layer *is*, independent of where its bytes
//! lie. Written `sha256:<64 lowercase hex digits>` everywhere (store records, `image.json`,
//! the API, messages). `hako_image::tree_digest` computes one over a directory tree.

use std::fmt;
use std::str::FromStr;

/// The SHA-256 digest of a tree (see `hako_image::tree_digest` for what it covers).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

/// The algorithm prefix of every [`Digest`] written out.
pub const DIGEST_PREFIX: &str = "sha256:";

/// Why a text is not a [`Digest`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a digest: write sha256: followed by 64 lowercase hex digits")]
pub struct DigestError(pub String);

impl Digest {
    /// The digest with these 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Digest {
        Digest(bytes)
    }

    /// Its 32 bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64 lowercase hex digits, without the `sha256:` prefix (a file name for it).
    pub fn hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from_digit(u32::from(b >> 4), 16).expect("nibble"));
            s.push(char::from_digit(u32::from(b & 15), 16).expect("nibble"));
        }
        s
    }

    /// The first 12 hex digits, for logs.
    pub fn short(&self) -> String {
        self.hex()[..12].to_string()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{DIGEST_PREFIX}{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Digest, DigestError> {
        let bad = || DigestError(s.chars().take(100).collect());
        let hex = s.strip_prefix(DIGEST_PREFIX).ok_or_else(bad)?;
        if hex.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
            let digit = |c: u8| match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                _ => None,
            };
            out[i] = (digit(pair[0]).ok_or_else(bad)? << 4) | digit(pair[1]).ok_or_else(bad)?;
        }
        Ok(Digest(out))
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_writes_and_nothing_else() {
        let d = Digest::from_bytes(std::array::from_fn(|i| i as u8 * 7));
        let text = d.to_string();
        assert!(text.starts_with("sha256:00070e15"), "{text}");
        assert_eq!(text.len(), 7 + 64);
        assert_eq!(text.parse::<Digest>().unwrap(), d);
        assert_eq!(serde_json::to_value(&d).unwrap(), text.as_str());
        assert_eq!(
            serde_json::from_value::<Digest>(text.clone().into()).unwrap(),
            d
        );
        assert_eq!(d.short(), &text[7..19]);
        for bad in [
            "",
            "sha256:",
            &text[7..],
            &text.to_uppercase(),
            &format!("sha512:{}", &text[7..]),
            &format!("{text}0"),
            &text.replace('7', "g"),
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad}");
        }
        let e = "sha256:xyz".parse::<Digest>().unwrap_err().to_string();
        assert!(e.contains("64 lowercase hex digits"), "{e}");
    }
}
