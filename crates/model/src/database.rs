//! An app's own database on the shared database service: what the control plane records when
//! it creates one, and what reaches the app's containers through their environment.

use std::collections::BTreeMap;

/// Where the database server's socket directory appears inside a container.
pub const SOCKET_DIR_IN_CONTAINER: &str = "/run/mysqld";
/// The socket's path inside a container (the server's socket file name is kept).
pub const SOCKET_IN_CONTAINER: &str = "/run/mysqld/mysqld.sock";

/// An app's database and the account that may use it (and nothing else).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DatabaseGrant {
    /// The database (schema) name, e.g. `hako_blog`.
    pub database: String,
    /// The account, `'<user>'@'localhost'`.
    pub user: String,
    /// The account's password (random; never shown by the API).
    pub password: String,
    /// When it was first created (seconds since the Unix epoch).
    #[serde(default)]
    pub created_unix: u64,
}

/// A database an app's deletion left on the server ("keep"), and whose it is: only an app of
/// the same name *and owner* takes it over, so a kept database never passes from one tenant to
/// another with the app name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeptDatabase {
    /// The database's name, e.g. `hako_blog`.
    pub database: String,
    /// The tenant of the deleted app; `None`: the admin's.
    #[serde(default)]
    pub tenant: Option<String>,
    /// When the app was deleted (seconds since the Unix epoch).
    pub kept_unix: u64,
}

/// What the API shows in place of a password.
pub const REDACTED: &str = "(hidden)";

impl std::fmt::Debug for DatabaseGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseGrant")
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &REDACTED)
            .finish()
    }
}

impl DatabaseGrant {
    /// The environment an app's containers get: `DB_HOST`, `DB_NAME`, `DB_USER`,
    /// `DB_PASSWORD`, `DB_SOCKET` and a `DATABASE_URL` for frameworks that read one.
    pub fn environment(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        env.insert("DB_HOST".into(), "localhost".into());
        env.insert("DB_SOCKET".into(), SOCKET_IN_CONTAINER.into());
        env.insert("DB_NAME".into(), self.database.clone());
        env.insert("DB_USER".into(), self.user.clone());
        env.insert("DB_PASSWORD".into(), self.password.clone());
        env.insert(
            "DATABASE_URL".into(),
            format!(
                "mysql://{}:{}@localhost/{}?socket={}",
                self.user, self.password, self.database, SOCKET_IN_CONTAINER
            ),
        );
        env
    }

    /// A copy safe to show: the password replaced by [`REDACTED`].
    pub fn redacted(&self) -> DatabaseGrant {
        DatabaseGrant {
            password: REDACTED.into(),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> DatabaseGrant {
        DatabaseGrant {
            database: "hako_blog".into(),
            user: "hako_blog".into(),
            password: "s3cret".into(),
            created_unix: 1,
        }
    }

    #[test]
    fn environment_carries_the_credentials_and_the_socket() {
        let env = grant().environment();
        assert_eq!(env["DB_NAME"], "hako_blog");
        assert_eq!(env["DB_PASSWORD"], "s3cret");
        assert_eq!(env["DB_SOCKET"], "/run/mysqld/mysqld.sock");
        assert_eq!(
            env["DATABASE_URL"],
            "mysql://hako_blog:s3cret@localhost/hako_blog?socket=/run/mysqld/mysqld.sock"
        );
    }

    #[test]
    fn debug_and_redacted_never_show_the_password() {
        let g = grant();
        assert!(!format!("{g:?}").contains("s3cret"));
        assert_eq!(g.redacted().password, REDACTED);
        assert_eq!(g.redacted().database, g.database);
    }
}
