//! Unique names for the kernel objects of one test or benchmark run.
//!
//! Every runtime names its cgroups, bridge, veths, nftables tables and state dir after its
//! prefix (`hako` and at most 5 lowercase letters or digits), and gives its isolated
//! containers addresses from its subnet. Runs that happen at the same time (nextest runs each
//! test in its own process) must not share either. [`Names::unique`] takes them from
//! [`hako_runtime::RuntimeConfig::unique`]: `hako`, a tag letter and 4 characters mixed from
//! the pid, a counter and the clock, and a /24 in 10.100.0.0–10.249.255.0.
//!
//! Tags in use (the fifth character of a prefix, so a leftover tells whose it is):
//!
//! | tag | who |
//! |---|---|
//! | `b` | benchmarks (`hako-bench`) |
//! | `d` | the density experiment |
//! | `e` | the efficiency experiment |
//! | `l` | `hako serve` process tests ([`Serve`](crate::Serve) by default) |
//! | `n` | the nodes of a test bed (`hakon<bed><n>`, see [`crate::testbed`]); `f`: its front |
//! | `p` | the Debian package's test (`crates/hako/tests/package`) |
//! | `q` | the kill -9 / restart test of `hako serve` |
//! | `r` | `hako run` (its own prefix per run) |
//! | `s` | in-process `hako serve` tests (`crates/control/tests`) |
//! | `t` | runtime and agent tests |

/// A kernel-object prefix and an instance subnet for one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// E.g. `hakolx3f9`.
    pub prefix: String,
    /// E.g. `10.123.45.0/24`.
    pub subnet: String,
}

impl Names {
    /// Fresh names with the tag letter `tag` (see the table above).
    pub fn unique(tag: char) -> Names {
        let c = hako_runtime::RuntimeConfig::unique(tag, "/run/hako");
        Names {
            prefix: c.prefix,
            subnet: c.subnet.to_string(),
        }
    }

    /// These names with another subnet (e.g. a /21 for a thousand instances).
    pub fn with_subnet(self, subnet: impl Into<String>) -> Names {
        Names {
            subnet: subnet.into(),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_and_distinct() {
        let a = Names::unique('l');
        let b = Names::unique('l');
        assert_ne!(a.prefix, b.prefix);
        assert!(
            a.prefix.starts_with("hakol") && a.prefix.len() == 9,
            "{a:?}"
        );
        assert!(
            a.prefix[4..]
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
            "{a:?}"
        );
        assert!(
            a.subnet.starts_with("10.") && a.subnet.ends_with(".0/24"),
            "{a:?}"
        );
        let wide = a.clone().with_subnet("10.160.0.0/21");
        assert_eq!(
            (wide.prefix, wide.subnet.as_str()),
            (a.prefix, "10.160.0.0/21")
        );
    }
}
