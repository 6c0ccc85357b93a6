//! Per-app databases on the shared database service (issue 5): every app that asks for one
//! gets its own MariaDB database and an account that can use that database and nothing else.
//!
//! The server runs on the host, outside the containers; hako administers it through the
//! `mariadb` client over the server's Unix socket (as root, by MariaDB's `unix_socket`
//! authentication, or with an admin defaults file), and containers reach it through the same
//! socket, bound read-only into them at `/run/mysqld` — the network namespaces stay closed.
//!
//! ```no_run
//! let server = hako_database::MariaDb::new("/run/mysqld/mysqld.sock").with_prefix("hako");
//! let (grant, existed) = server.provision("blog").unwrap();
//! assert_eq!(grant.database, "hako_blog");
//! assert!(!existed);
//! server.drop_database(&grant).unwrap();
//! ```
#![forbid(unsafe_code)]

mod mariadb;
mod names;

pub use mariadb::{DEFAULT_MAX_USER_CONNECTIONS, DEFAULT_SOCKET, MariaDb};
pub use names::{NameError, database_name};

/// Why a database operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// The client program could not be run.
    #[error(
        "cannot run the MariaDB client {program:?} ({source}): install it with `apt-get install -y mariadb-client`"
    )]
    Client {
        /// The program hako tried.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The server does not answer on its socket.
    #[error(
        "the database server does not answer on {socket} ({message}): start MariaDB (`service mariadb start`) or set [database] socket"
    )]
    Unavailable {
        /// The socket tried.
        socket: String,
        /// The client's message.
        message: String,
    },
    /// The server refused a statement.
    #[error("the database server refused {what}: {message}")]
    Refused {
        /// What hako was doing.
        what: String,
        /// The server's message.
        message: String,
    },
    /// An app or prefix that cannot name a database.
    #[error(transparent)]
    Name(#[from] NameError),
    /// No randomness for a password.
    #[error("no randomness for a password: {0}")]
    Random(String),
}
