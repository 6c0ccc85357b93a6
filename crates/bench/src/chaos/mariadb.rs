//! The chaos benchmark's own MariaDB server: a fresh data dir and socket in the run's temp dir
//! (`mariadb-install-db`, then `mariadbd --no-defaults --skip-networking`), so that killing it
//! with -9 disturbs nobody else on the host. Root administers it over the socket
//! (unix_socket authentication), as hako does the host's server.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long the server gets to answer after a start (InnoDB recovery after kill -9 included).
const START_LIMIT: Duration = Duration::from_secs(60);

/// A private `mariadbd`; killed when dropped (its files go with the run's temp dir).
pub struct MariaDb {
    dir: PathBuf,
    child: Option<Child>,
}

impl MariaDb {
    /// Initialises a data dir under `dir` and starts the server.
    pub fn start(dir: &Path) -> anyhow::Result<MariaDb> {
        let data = dir.join("data");
        // The socket's directory is bound into containers at /run/mysqld: readable by all.
        let run = dir.join("run");
        std::fs::create_dir_all(&run)?;
        std::fs::create_dir_all(&data)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755))?;
        let out = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args([
                "--user=root",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
            ])
            .output()
            .context("cannot run mariadb-install-db (apt-get install -y mariadb-server)")?;
        if !out.status.success() {
            bail!(
                "mariadb-install-db failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut db = MariaDb {
            dir: dir.to_path_buf(),
            child: None,
        };
        db.launch()?;
        Ok(db)
    }

    /// The server's socket (named as Debian's, `mysqld.sock`, in a directory of its own).
    pub fn socket(&self) -> PathBuf {
        self.dir.join("run").join("mysqld.sock")
    }

    /// Starts `mariadbd` and waits until it answers.
    pub fn launch(&mut self) -> anyhow::Result<()> {
        let child = Command::new("mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", self.dir.join("data").display()))
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!(
                "--pid-file={}",
                self.dir.join("mariadbd.pid").display()
            ))
            .arg(format!(
                "--log-error={}",
                self.dir.join("error.log").display()
            ))
            .args([
                "--user=root",
                "--skip-networking",
                "--innodb-buffer-pool-size=64M",
                "--max-connections=200",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot run mariadbd (apt-get install -y mariadb-server)")?;
        self.child = Some(child);
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if self.query("SELECT 1").is_ok() {
                return Ok(());
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                bail!(
                    "mariadbd exited ({status}); see {}",
                    self.dir.join("error.log").display()
                );
            }
            if Instant::now() >= deadline {
                bail!("mariadbd did not answer within {START_LIMIT:?}");
            }
            // Polling the server's readiness, bounded by the deadline.
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Runs `sql` as root; returns the rows (tab-separated, no header).
    pub fn query(&self, sql: &str) -> anyhow::Result<String> {
        let out = Command::new("mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["-uroot", "-N", "-B", "-e", sql])
            .stdin(Stdio::null())
            .output()
            .context("cannot run the mariadb client")?;
        if !out.status.success() {
            bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The database site's code: `index.html`, and `cgi-bin/w` which inserts the row whose id is
/// its query string into the app's database (table `w`) and answers 201 only once the server
/// committed it (503 with the client's message if not).
pub fn site_code(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let cgi = dir.join("cgi-bin");
    std::fs::create_dir_all(&cgi)?;
    std::fs::write(dir.join("index.html"), "db site\n")?;
    let script = cgi.join("w");
    std::fs::write(
        &script,
        r#"#!/bin/sh
id="$QUERY_STRING"
case "$id" in
  ''|*[!0-9]*) printf 'Status: 400 Bad Request\r\nContent-Type: text/plain\r\n\r\nbad id\n'; exit 0 ;;
esac
if out=$(MYSQL_PWD="$DB_PASSWORD" mariadb --no-defaults --socket="$DB_SOCKET" -u"$DB_USER" "$DB_NAME" \
    -e "CREATE TABLE IF NOT EXISTS w (id BIGINT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO w (id) VALUES ($id);" 2>&1); then
  printf 'Status: 201 Created\r\nContent-Type: text/plain\r\n\r\nstored %s\n' "$id"
else
  printf 'Status: 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\n%s\n' "$out"
fi
"#,
    )?;
    for (p, mode) in [(dir, 0o755), (&cgi, 0o755), (&script, 0o755)] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))?;
    }
    std::fs::set_permissions(
        dir.join("index.html"),
        std::fs::Permissions::from_mode(0o644),
    )?;
    Ok(())
}
