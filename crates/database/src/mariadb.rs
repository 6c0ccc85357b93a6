//! The MariaDB server on this host, administered with its own client over its Unix socket.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use hako_model::DatabaseGrant;

use crate::{DatabaseError, database_name};

/// Debian's MariaDB socket.
pub const DEFAULT_SOCKET: &str = "/run/mysqld/mysqld.sock";
/// Connections one app's account may hold at once, so that one site cannot take the
/// server's whole `max_connections` from the others.
pub const DEFAULT_MAX_USER_CONNECTIONS: u32 = 20;

/// The shared MariaDB server and how hako names what it makes there.
#[derive(Debug, Clone)]
pub struct MariaDb {
    socket: PathBuf,
    client: Option<PathBuf>,
    prefix: String,
    defaults_file: Option<PathBuf>,
    max_user_connections: u32,
}

impl MariaDb {
    /// The server listening on `socket`, administered as the current (root) user, names
    /// prefixed `hako_`.
    pub fn new(socket: impl Into<PathBuf>) -> MariaDb {
        MariaDb {
            socket: socket.into(),
            client: None,
            prefix: "hako".into(),
            defaults_file: None,
            max_user_connections: DEFAULT_MAX_USER_CONNECTIONS,
        }
    }

    /// Names databases and accounts `<prefix>_<app>` (1–16 lowercase letters and digits).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> MariaDb {
        self.prefix = prefix.into();
        self
    }

    /// The client program (default: `mariadb`, else `mysql`, found in `PATH`).
    pub fn with_client(mut self, program: impl Into<PathBuf>) -> MariaDb {
        self.client = Some(program.into());
        self
    }

    /// A client defaults file with the admin's user and password (`[client] user=… password=…`),
    /// for servers where root has no `unix_socket` login.
    pub fn with_defaults_file(mut self, path: impl Into<PathBuf>) -> MariaDb {
        self.defaults_file = Some(path.into());
        self
    }

    /// Connections each app's account may hold at once.
    pub fn with_max_user_connections(mut self, n: u32) -> MariaDb {
        self.max_user_connections = n.max(1);
        self
    }

    /// The server's socket on the host.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The directory holding the socket: what containers get bound at `/run/mysqld` (a
    /// directory, so that a restarted server's new socket reaches running containers).
    pub fn socket_dir(&self) -> &Path {
        self.socket.parent().unwrap_or(Path::new("/"))
    }

    /// The database name `app` gets.
    pub fn name_for(&self, app: &str) -> Result<String, DatabaseError> {
        Ok(database_name(&self.prefix, app)?)
    }

    /// Checks the server answers; returns its version.
    pub fn ping(&self) -> Result<String, DatabaseError> {
        let out = self.run("a version query", "SELECT VERSION();")?;
        Ok(out.trim().to_owned())
    }

    /// Does the database `name` exist?
    pub fn exists(&self, name: &str) -> Result<bool, DatabaseError> {
        check_identifier(name)?;
        let out = self.run(
            "a lookup of the database",
            &format!(
                "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{name}';"
            ),
        )?;
        Ok(out.trim() != "0")
    }

    /// Makes `app`'s database and account (or takes over the ones a deleted app of the same
    /// name kept, with a new password) and grants the account every privilege on that
    /// database only. Returns the grant and whether the database existed before.
    pub fn provision(&self, app: &str) -> Result<(DatabaseGrant, bool), DatabaseError> {
        let name = self.name_for(app)?;
        let existed = self.exists(&name)?;
        let password = password()?;
        let limit = self.max_user_connections;
        let sql = format!(
            "CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n\
             CREATE USER IF NOT EXISTS '{name}'@'localhost' IDENTIFIED BY '{password}' WITH MAX_USER_CONNECTIONS {limit};\n\
             ALTER USER '{name}'@'localhost' IDENTIFIED BY '{password}' WITH MAX_USER_CONNECTIONS {limit};\n\
             GRANT ALL PRIVILEGES ON `{name}`.* TO '{name}'@'localhost';\n"
        );
        self.run(&format!("creating database {name}"), &sql)?;
        tracing::info!(app, database = %name, existed, "database provisioned");
        Ok((
            DatabaseGrant {
                database: name.clone(),
                user: name,
                password,
                created_unix: hako_model::now_unix(),
            },
            existed,
        ))
    }

    /// Drops the grant's database and account. Idempotent: what is already gone is fine.
    pub fn drop_database(&self, grant: &DatabaseGrant) -> Result<(), DatabaseError> {
        check_identifier(&grant.database)?;
        check_identifier(&grant.user)?;
        let sql = format!(
            "DROP DATABASE IF EXISTS `{}`;\nDROP USER IF EXISTS '{}'@'localhost';\n",
            grant.database, grant.user
        );
        self.run(&format!("dropping database {}", grant.database), &sql)?;
        tracing::info!(database = %grant.database, "database dropped");
        Ok(())
    }

    /// Runs `sql` through the client; returns its output.
    fn run(&self, what: &str, sql: &str) -> Result<String, DatabaseError> {
        let program = self.client_program();
        let mut cmd = Command::new(&program);
        if let Some(f) = &self.defaults_file {
            // The client wants this option first.
            cmd.arg(format!("--defaults-extra-file={}", f.display()));
        }
        cmd.arg("--protocol=socket")
            .arg(format!("--socket={}", self.socket.display()))
            .args(["--batch", "--skip-column-names", "--connect-timeout=5"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let client_err = |source| DatabaseError::Client {
            program: program.display().to_string(),
            source,
        };
        let mut child = cmd.spawn().map_err(client_err)?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let written = stdin.write_all(sql.as_bytes());
        drop(stdin);
        let out = child.wait_with_output().map_err(client_err)?;
        if out.status.success() {
            written.map_err(client_err)?;
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let message = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        // 2002: no server on the socket; 2013/2006: it went away.
        if ["ERROR 2002", "ERROR 2006", "ERROR 2013"]
            .iter()
            .any(|code| message.contains(code))
        {
            return Err(DatabaseError::Unavailable {
                socket: self.socket.display().to_string(),
                message,
            });
        }
        Err(DatabaseError::Refused {
            what: what.into(),
            message: if message.is_empty() {
                format!("the client exited with {}", out.status)
            } else {
                message
            },
        })
    }

    fn client_program(&self) -> PathBuf {
        if let Some(p) = &self.client {
            return p.clone();
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        for name in ["mariadb", "mysql"] {
            if let Some(p) = std::env::split_paths(&path)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
            {
                return p;
            }
        }
        PathBuf::from("mariadb")
    }
}

/// Names hako made itself: lowercase letters, digits and `_` only (never quoted wrongly).
fn check_identifier(name: &str) -> Result<(), DatabaseError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(DatabaseError::Refused {
            what: format!("the name {name:?}"),
            message: "hako only manages databases named with lowercase letters, digits and '_'"
                .into(),
        })
    }
}

/// 32 hex digits from the OS's randomness.
fn password() -> Result<String, DatabaseError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| DatabaseError::Random(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_long_and_differ() {
        let a = password().unwrap();
        let b = password().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn only_hakos_own_names_are_managed() {
        assert!(check_identifier("hako_blog").is_ok());
        for bad in ["", "a`b", "a'b", "mysql.user", "Hako", &"a".repeat(65)] {
            assert!(check_identifier(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_missing_server_is_unavailable_with_a_hint() {
        let dir = std::env::temp_dir().join(format!("hako-nodb-{}", std::process::id()));
        let db = MariaDb::new(dir.join("mysqld.sock"));
        match db.ping() {
            Err(e @ DatabaseError::Unavailable { .. }) => {
                assert!(e.to_string().contains("start MariaDB"), "{e}")
            }
            other => panic!("expected unavailable, got {other:?}"),
        }
    }
}
