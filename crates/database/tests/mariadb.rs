//! Against the real MariaDB server on this host (`cargo xtask test` installs and starts it):
//! a provisioned account can use its own database and no other, and drops are complete.

use std::process::{Command, Stdio};

use hako_database::{DEFAULT_SOCKET, DatabaseError, MariaDb};
use hako_model::DatabaseGrant;

/// A server handle whose names are unique to this test run.
fn server() -> MariaDb {
    let prefix = format!("hakot{}", std::process::id() % 100_000);
    let db = MariaDb::new(DEFAULT_SOCKET).with_prefix(prefix);
    if let Err(e) = db.ping() {
        panic!("these tests need MariaDB on {DEFAULT_SOCKET} (cargo xtask test starts it): {e}");
    }
    db
}

/// Runs `sql` as the grant's account (password auth over the socket); Ok(output) or Err(stderr).
fn as_user(g: &DatabaseGrant, sql: &str) -> Result<String, String> {
    let out = Command::new("mariadb")
        .args(["--protocol=socket", "--socket", DEFAULT_SOCKET, "--batch"])
        .args(["--skip-column-names", "-u", &g.user])
        .arg(format!("-p{}", g.password))
        .args(["-e", sql])
        .stdin(Stdio::null())
        .output()
        .expect("mariadb client");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Drops what a test made even when it fails half-way.
struct Cleanup<'a>(&'a MariaDb, Vec<DatabaseGrant>);
impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for g in &self.1 {
            let _ = self.0.drop_database(g);
        }
    }
}

#[test]
fn each_app_reaches_its_own_database_and_no_other() {
    let db = server();
    let (a, existed) = db.provision("site-a").unwrap();
    let mut cleanup = Cleanup(&db, vec![a.clone()]);
    assert!(!existed);
    let (b, _) = db.provision("site-b").unwrap();
    cleanup.1.push(b.clone());
    assert!(a.database.ends_with("_site_a"), "{}", a.database);
    assert_ne!(a.password, b.password);

    as_user(
        &a,
        &format!(
            "CREATE TABLE `{}`.posts (id INT PRIMARY KEY, title TEXT); INSERT INTO `{}`.posts VALUES (1, 'hello');",
            a.database, a.database
        ),
    )
    .unwrap();
    let got = as_user(&a, &format!("SELECT title FROM `{}`.posts", a.database)).unwrap();
    assert_eq!(got.trim(), "hello");

    // b cannot read a's table, nor even see a's database.
    let denied = as_user(&b, &format!("SELECT title FROM `{}`.posts", a.database)).unwrap_err();
    assert!(denied.contains("denied"), "{denied}");
    let seen = as_user(&b, "SHOW DATABASES").unwrap();
    assert!(!seen.contains(&a.database), "{seen}");
    assert!(seen.contains(&b.database), "{seen}");
    // Nor administer the server.
    let denied = as_user(&b, "CREATE DATABASE hako_evil").unwrap_err();
    assert!(denied.contains("denied"), "{denied}");
    // A wrong password is refused.
    let mut wrong = a.clone();
    wrong.password = "not-it".into();
    assert!(as_user(&wrong, "SELECT 1").is_err());
}

#[test]
fn provisioning_again_keeps_the_data_and_changes_the_password() {
    let db = server();
    let (first, _) = db.provision("again").unwrap();
    let _cleanup = Cleanup(&db, vec![first.clone()]);
    as_user(
        &first,
        &format!(
            "CREATE TABLE `{}`.t (x INT); INSERT INTO `{}`.t VALUES (7);",
            first.database, first.database
        ),
    )
    .unwrap();
    let (second, existed) = db.provision("again").unwrap();
    assert!(existed, "the kept database is taken over");
    assert_ne!(first.password, second.password);
    assert!(
        as_user(&first, "SELECT 1").is_err(),
        "the old password is gone"
    );
    let got = as_user(&second, &format!("SELECT x FROM `{}`.t", second.database)).unwrap();
    assert_eq!(got.trim(), "7");
}

#[test]
fn drop_removes_database_and_account_and_is_idempotent() {
    let db = server();
    let (g, _) = db.provision("gone").unwrap();
    let _cleanup = Cleanup(&db, vec![g.clone()]);
    assert!(db.exists(&g.database).unwrap());
    db.drop_database(&g).unwrap();
    assert!(!db.exists(&g.database).unwrap());
    let err = as_user(&g, "SELECT 1").unwrap_err();
    assert!(err.contains("denied"), "the account is gone: {err}");
    db.drop_database(&g).unwrap();
}

#[test]
fn long_app_names_fit_the_servers_limits() {
    let db = server();
    let app = "w".repeat(63);
    let (g, _) = db.provision(&app).unwrap();
    let _cleanup = Cleanup(&db, vec![g.clone()]);
    assert!(g.database.len() <= 64);
    assert_eq!(as_user(&g, "SELECT 1").unwrap().trim(), "1");
}

#[test]
fn bad_names_are_refused_before_reaching_the_server() {
    let db = server();
    assert!(matches!(
        db.provision("x'; DROP DATABASE mysql; --"),
        Err(DatabaseError::Name(_))
    ));
    let evil = DatabaseGrant {
        database: "mysql`; DROP".into(),
        user: "x".into(),
        password: "p".into(),
        created_unix: 0,
    };
    assert!(matches!(
        db.drop_database(&evil),
        Err(DatabaseError::Refused { .. })
    ));
}
