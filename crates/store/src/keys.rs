//! The key layout the daemon uses, in one place.
//!
//! | key | holds |
//! |---|---|
//! | `/apps/<name>` | an app's spec |
//! | `/apps/<name>/releases/<n>` | code release `n` of an app (`n` zero-padded to 10 digits so releases sort in order) |
//! | `/images/<name>/<version>` | one version of an image |
//! | `/instances/<app>/<id>` | a running instance (attach to the node's lease in a cluster) |
//! | `/events/<app>/<seq>` | an app's events, append-only: [`crate::StoreExt::append_json`] + [`crate::StoreExt::trim`] |
//! | `/nodes/<name>` | a node, attached to its lease so it disappears when the node stops renewing |
//! | `/tenants/<name>` | a tenant (site owner's account) and its quota |
//! | `/tokens/<hash>` | a tenant's token: its record, keyed by the token's SHA-256 (hex), never the token |
//! | `/tenant-events/<tenant>/<seq>` | a tenant's own events (quota and token changes), append-only like an app's |
//! | `/kept-databases/<app>` | whose is the database a deleted app of that name kept on the server |
//! | `/certs/<app>` | an app's TLS certificate: PEM chain, PEM private key (never shown by the API), source, issuer, names, validity |
//! | `/acme/account` | the ACME account's credentials and the directory they are for |
//! | `/node-state/<name>` | whether a node takes new instances (active, cordoned, draining) |
//! | `/assign/<node>/<slot>` | an instance the leader assigned to a node |
//! | `/wants/<app>` | a cold start a proxy waits for (one per app, for all proxies) |
//! | `/activity/<front>` | what one front's proxy sees of each instance |
//! | `/drained/<instance>/<front>` | one front sends an instance no more requests |
//! | `/fronts/<name>` | a front (`hako serve`) |
//! | `/leader` | the front that schedules |
//! | `/forgotten/<storage-key>` | a deleted app's files every node removes (on a lease of [`FORGOTTEN_TTL`]) |
//!
//! See docs/cluster.md for who writes what and which keys live on a lease.
//!
//! Because `/apps/<name>/releases/…` lives under `/apps/`, a range over
//! [`APPS`] returns releases too: keep the keys that [`parse`] as
//! [`Key::App`]. Builders take names already checked with [`validate_name`];
//! prefixes end with `/` so `blog` never matches `blog2`.

use crate::StoreError;

/// Prefix of every app.
pub const APPS: &str = "/apps/";
/// Prefix of every image.
pub const IMAGES: &str = "/images/";
/// Prefix of every instance.
pub const INSTANCES: &str = "/instances/";
/// Prefix of every event.
pub const EVENTS: &str = "/events/";
/// Prefix of every node.
pub const NODES: &str = "/nodes/";
/// Prefix of every tenant.
pub const TENANTS: &str = "/tenants/";
/// Prefix of every tenant's token.
pub const TOKENS: &str = "/tokens/";
/// Prefix of every tenant's own events.
pub const TENANT_EVENTS: &str = "/tenant-events/";
/// Prefix of the records of kept databases.
pub const KEPT_DATABASES: &str = "/kept-databases/";
/// Prefix of every app's certificate.
pub const CERTS: &str = "/certs/";
/// The ACME account of the cluster (one per directory in use).
pub const ACME_ACCOUNT: &str = "/acme/account";
/// Prefix of every node's operator state.
pub const NODE_STATES: &str = "/node-state/";
/// Prefix of every assignment.
pub const ASSIGNMENTS: &str = "/assign/";
/// Prefix of every cold start a proxy waits for.
pub const WANTS: &str = "/wants/";
/// Prefix of every front's activity report.
pub const ACTIVITY: &str = "/activity/";
/// Prefix of every drain acknowledgement.
pub const DRAINED: &str = "/drained/";
/// Prefix of every front.
pub const FRONTS: &str = "/fronts/";
/// The leader's key.
pub const LEADER: &str = "/leader";
/// Prefix of the deleted apps whose files every node removes.
pub const FORGOTTEN: &str = "/forgotten/";
/// How long a `/forgotten/…` record lives: nodes that were away longer sweep their own
/// leftovers when they join again.
pub const FORGOTTEN_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Longest name segment accepted.
pub const MAX_NAME_LEN: usize = 253;

/// Checks that `name` can be one segment of a key: non-empty, at most 253
/// bytes, no `/`, no whitespace or control characters, not `.` or `..`.
pub fn validate_name(name: &str) -> Result<(), StoreError> {
    let reason = if name.is_empty() {
        Some("a name segment is empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("a name segment is longer than 253 bytes")
    } else if name.contains('/') {
        Some("a name segment contains '/'")
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("a name segment contains whitespace or a control character")
    } else if name == "." || name == ".." {
        Some("a name segment is '.' or '..'")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(StoreError::InvalidKey {
            key: name.chars().take(200).collect(),
            reason,
        }),
        None => Ok(()),
    }
}

/// `/apps/<name>`
pub fn app(name: &str) -> String {
    format!("{APPS}{name}")
}

/// `/apps/<name>/releases/`: prefix of an app's releases.
pub fn releases(app: &str) -> String {
    format!("{APPS}{app}/releases/")
}

/// `/apps/<name>/releases/<n>` with `n` zero-padded to 10 digits.
pub fn release(app: &str, n: u64) -> String {
    format!("{APPS}{app}/releases/{n:010}")
}

/// `/images/<name>/`: prefix of an image's versions.
pub fn image_versions(name: &str) -> String {
    format!("{IMAGES}{name}/")
}

/// `/images/<name>/<version>`
pub fn image(name: &str, version: &str) -> String {
    format!("{IMAGES}{name}/{version}")
}

/// `/instances/<app>/`: prefix of an app's instances.
pub fn instances(app: &str) -> String {
    format!("{INSTANCES}{app}/")
}

/// `/instances/<app>/<id>`
pub fn instance(app: &str, id: &str) -> String {
    format!("{INSTANCES}{app}/{id}")
}

/// `/events/<app>/`: prefix of an app's events (append with `append_json`).
pub fn events(app: &str) -> String {
    format!("{EVENTS}{app}/")
}

/// `/nodes/<name>`
pub fn node(name: &str) -> String {
    format!("{NODES}{name}")
}

/// `/tenants/<name>`
pub fn tenant(name: &str) -> String {
    format!("{TENANTS}{name}")
}

/// `/tokens/<hash>`: a token's record under the hex SHA-256 of the token.
pub fn token(hash: &str) -> String {
    format!("{TOKENS}{hash}")
}

/// `/tenant-events/<tenant>/`: prefix of a tenant's own events (append with `append_json`).
pub fn tenant_events(tenant: &str) -> String {
    format!("{TENANT_EVENTS}{tenant}/")
}

/// `/kept-databases/<app>`: whose is the database a deleted app of that name kept.
pub fn kept_database(app: &str) -> String {
    format!("{KEPT_DATABASES}{app}")
}

/// `/certs/<app>`
pub fn cert(app: &str) -> String {
    format!("{CERTS}{app}")
}

/// `/node-state/<name>`
pub fn node_state(name: &str) -> String {
    format!("{NODE_STATES}{name}")
}

/// `/assign/<node>/`: prefix of a node's assignments.
pub fn assignments(node: &str) -> String {
    format!("{ASSIGNMENTS}{node}/")
}

/// `/assign/<node>/<slot>`
pub fn assignment(node: &str, slot: &str) -> String {
    format!("{ASSIGNMENTS}{node}/{slot}")
}

/// `/wants/<app>`
pub fn want(app: &str) -> String {
    format!("{WANTS}{app}")
}

/// `/activity/<front>`
pub fn activity(front: &str) -> String {
    format!("{ACTIVITY}{front}")
}

/// `/drained/<instance>/`: prefix of an instance's drain acknowledgements.
pub fn drained_of(instance: &str) -> String {
    format!("{DRAINED}{instance}/")
}

/// `/drained/<instance>/<front>`
pub fn drained(instance: &str, front: &str) -> String {
    format!("{DRAINED}{instance}/{front}")
}

/// `/fronts/<name>`
pub fn front(name: &str) -> String {
    format!("{FRONTS}{name}")
}

/// `/forgotten/<storage-key>`
pub fn forgotten(storage_key: &str) -> String {
    format!("{FORGOTTEN}{storage_key}")
}

/// A key of the layout, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key<'a> {
    /// `/apps/<name>`
    App {
        /// App name.
        name: &'a str,
    },
    /// `/apps/<app>/releases/<n>`
    Release {
        /// App name.
        app: &'a str,
        /// Release number.
        n: u64,
    },
    /// `/images/<name>/<version>`
    Image {
        /// Image name.
        name: &'a str,
        /// Version.
        version: &'a str,
    },
    /// `/instances/<app>/<id>`
    Instance {
        /// App name.
        app: &'a str,
        /// Instance id.
        id: &'a str,
    },
    /// `/events/<app>/<seq>`
    Event {
        /// App name.
        app: &'a str,
        /// Sequence (sortable).
        seq: &'a str,
    },
    /// `/nodes/<name>`
    Node {
        /// Node name.
        name: &'a str,
    },
    /// `/tenants/<name>`
    Tenant {
        /// Tenant name.
        name: &'a str,
    },
    /// `/tokens/<hash>`
    Token {
        /// The token's hash.
        hash: &'a str,
    },
    /// `/tenant-events/<tenant>/<seq>`
    TenantEvent {
        /// Tenant name.
        tenant: &'a str,
        /// Sequence (sortable).
        seq: &'a str,
    },
    /// `/kept-databases/<app>`
    KeptDatabase {
        /// App name.
        app: &'a str,
    },
    /// `/certs/<app>`
    Cert {
        /// App name.
        app: &'a str,
    },
    /// `/node-state/<name>`
    NodeState {
        /// Node name.
        name: &'a str,
    },
    /// `/assign/<node>/<slot>`
    Assignment {
        /// Node name.
        node: &'a str,
        /// Slot.
        slot: &'a str,
    },
    /// `/wants/<app>`
    Want {
        /// App name.
        app: &'a str,
    },
    /// `/activity/<front>`
    Activity {
        /// Front name.
        front: &'a str,
    },
    /// `/drained/<instance>/<front>`
    Drained {
        /// Instance id.
        instance: &'a str,
        /// Front name.
        front: &'a str,
    },
    /// `/fronts/<name>`
    Front {
        /// Front name.
        name: &'a str,
    },
    /// `/forgotten/<storage-key>`
    Forgotten {
        /// The deleted app's storage key.
        storage_key: &'a str,
    },
}

/// Parses a key of the layout; `None` for anything else.
pub fn parse(key: &str) -> Option<Key<'_>> {
    let rest = key.strip_prefix('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    Some(match parts.as_slice() {
        ["apps", name] => Key::App { name },
        ["apps", app, "releases", n] => Key::Release {
            app,
            n: n.parse().ok()?,
        },
        ["images", name, version] => Key::Image { name, version },
        ["instances", app, id] => Key::Instance { app, id },
        ["events", app, seq] => Key::Event { app, seq },
        ["nodes", name] => Key::Node { name },
        ["tenants", name] => Key::Tenant { name },
        ["tokens", hash] => Key::Token { hash },
        ["tenant-events", tenant, seq] => Key::TenantEvent { tenant, seq },
        ["kept-databases", app] => Key::KeptDatabase { app },
        ["certs", app] => Key::Cert { app },
        ["node-state", name] => Key::NodeState { name },
        ["assign", node, slot] => Key::Assignment { node, slot },
        ["wants", app] => Key::Want { app },
        ["activity", front] => Key::Activity { front },
        ["drained", instance, front] => Key::Drained { instance, front },
        ["fronts", name] => Key::Front { name },
        ["forgotten", storage_key] => Key::Forgotten { storage_key },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::validate_key;

    #[test]
    fn builders_and_parse_agree() {
        let cases = [
            (app("blog"), Key::App { name: "blog" }),
            (release("blog", 7), Key::Release { app: "blog", n: 7 }),
            (
                image("php", "3"),
                Key::Image {
                    name: "php",
                    version: "3",
                },
            ),
            (
                instance("blog", "i-1"),
                Key::Instance {
                    app: "blog",
                    id: "i-1",
                },
            ),
            (
                format!("{}00000000000000000042", events("blog")),
                Key::Event {
                    app: "blog",
                    seq: "00000000000000000042",
                },
            ),
            (node("n1"), Key::Node { name: "n1" }),
            (tenant("acme"), Key::Tenant { name: "acme" }),
            (token("00ff"), Key::Token { hash: "00ff" }),
            (kept_database("blog"), Key::KeptDatabase { app: "blog" }),
            (
                format!("{}00000000000000000007", tenant_events("acme")),
                Key::TenantEvent {
                    tenant: "acme",
                    seq: "00000000000000000007",
                },
            ),
            (cert("blog"), Key::Cert { app: "blog" }),
            (node_state("n1"), Key::NodeState { name: "n1" }),
            (
                assignment("n1", "s9"),
                Key::Assignment {
                    node: "n1",
                    slot: "s9",
                },
            ),
            (want("blog"), Key::Want { app: "blog" }),
            (activity("f1"), Key::Activity { front: "f1" }),
            (
                drained("blog-1", "f1"),
                Key::Drained {
                    instance: "blog-1",
                    front: "f1",
                },
            ),
            (front("f1"), Key::Front { name: "f1" }),
            (
                forgotten("blog_0a1b"),
                Key::Forgotten {
                    storage_key: "blog_0a1b",
                },
            ),
        ];
        assert!(assignment("n1", "s").starts_with(&assignments("n1")));
        assert!(!assignment("n10", "s").starts_with(&assignments("n1")));
        assert!(drained("i", "f").starts_with(&drained_of("i")));
        for (key, want) in cases {
            validate_key(&key).unwrap();
            assert_eq!(parse(&key), Some(want), "{key}");
        }
        assert_eq!(release("blog", 12), "/apps/blog/releases/0000000012");
        assert!(
            release("blog", 9) < release("blog", 10),
            "releases sort numerically"
        );
        assert!(release("blog", 1).starts_with(&releases("blog")));
        assert!(instance("blog", "x").starts_with(&instances("blog")));
        assert!(!instance("blog2", "x").starts_with(&instances("blog")));
        assert!(image("php", "1").starts_with(&image_versions("php")));
    }

    #[test]
    fn parse_rejects_other_shapes() {
        for key in [
            "/apps",
            "/apps/",
            "/apps/a/b",
            "/apps/a/releases/x",
            "/other/a",
            "apps/a",
            "/nodes/a/",
        ] {
            assert_eq!(parse(key), None, "{key}");
        }
    }

    #[test]
    fn names_are_checked() {
        for ok in ["blog", "my-site.example", "i-00af"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a/b", "a b", "..", "tab\t", &"x".repeat(254)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }
}
