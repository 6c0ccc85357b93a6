//! The daemon's tokens. Two are files made on first start (32 random bytes as hex each, mode
//! 0600, reused after): the admin token in `<data-dir>/admin.token`, and the metrics token in
//! `<data-dir>/metrics.token` (it reads `GET /metrics` and nothing else: give it to a
//! Prometheus server). A tenant's token ([`new_tenant_token`]) is `hkt_` and 32 random bytes
//! as hex, shown once when made and stored only as its [`hash`]. Clients send any of them as
//! `Authorization: Bearer <token>`; [`crate::caller::Authenticator`] tells them apart.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// File name of the admin token inside the data dir.
pub const TOKEN_FILE: &str = "admin.token";

/// File name of the metrics token inside the data dir.
pub const METRICS_TOKEN_FILE: &str = "metrics.token";

/// The admin token file's path.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(TOKEN_FILE)
}

/// Reads the admin token from `<data_dir>/admin.token`, creating the dir and the token
/// (mode 0600) if there is none. Refuses a token file that others can read or that is not
/// a token, with a message saying what to do.
pub fn load_or_create(data_dir: &Path) -> io::Result<String> {
    load_or_create_file(data_dir, TOKEN_FILE)
}

/// Like [`load_or_create`] for the metrics token (`<data_dir>/metrics.token`).
pub fn load_or_create_metrics(data_dir: &Path) -> io::Result<String> {
    load_or_create_file(data_dir, METRICS_TOKEN_FILE)
}

/// Reads the token in `<data_dir>/<name>`, creating it (mode 0600) if there is none.
fn load_or_create_file(data_dir: &Path, name: &str) -> io::Result<String> {
    let file = data_dir.join(name);
    match read(&file) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        other => return other,
    }
    fs::create_dir_all(data_dir)?;
    // Write a temporary file, then link it into place: the link fails if another process
    // made the token meanwhile, so everyone ends up with the same, complete token.
    let tmp = data_dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let token = generate()?;
    let written = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
        f.write_all(format!("{token}\n").as_bytes())?;
        f.sync_all()?;
        fs::hard_link(&tmp, &file)
    })();
    let _ = fs::remove_file(&tmp);
    match written {
        Ok(()) => Ok(token),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read(&file),
        Err(e) => Err(e),
    }
}

/// Reads a token file as a client does (no creation). Same checks as [`load_or_create`].
pub fn read(file: &Path) -> io::Result<String> {
    let meta = fs::metadata(file)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "token file {} has mode {mode:o}, readable by others: run 'chmod 600 {}'",
                file.display(),
                file.display()
            ),
        ));
    }
    let token = fs::read_to_string(file)?.trim().to_string();
    if token.len() < 32 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "token file {} does not hold a token: delete it and restart hako serve to make a new one",
                file.display()
            ),
        ));
    }
    Ok(token)
}

/// What every tenant token starts with (and the admin token never does: it is bare hex), so a
/// leaked one is recognisable to secret scanners and to people.
pub const TENANT_TOKEN_PREFIX: &str = "hkt_";

/// A new tenant token: [`TENANT_TOKEN_PREFIX`] and 32 random bytes as hex.
pub fn new_tenant_token() -> io::Result<String> {
    Ok(format!("{TENANT_TOKEN_PREFIX}{}", generate()?))
}

/// The stored form of a tenant token: its SHA-256, hex. A plain (fast) hash is enough here
/// because the token is 256 random bits, not a password: no dictionary or brute force gets
/// near its preimage, so a slow password hash (argon2, bcrypt) would only make every API
/// request slower. The hash is also the token record's key, so checking a token is one read.
pub fn hash(token: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The start of a token, to tell tokens apart in lists without showing them.
pub fn hint(token: &str) -> String {
    let head: String = token.chars().take(TENANT_TOKEN_PREFIX.len() + 4).collect();
    format!("{head}…")
}

/// 32 random bytes, hex.
pub fn generate() -> io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| io::Error::other(format!("no randomness: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compares a given token with the expected one in time that does not depend on where
/// they differ. An empty expected token matches nothing.
pub fn same(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    if b.is_empty() || a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("hako-data");
        let token = load_or_create(&data).unwrap();
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        let mode = fs::metadata(path(&data)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_or_create(&data).unwrap(), token, "token not reused");
        assert_eq!(read(&path(&data)).unwrap(), token);
        let leftovers: Vec<_> = fs::read_dir(&data).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temporary file left behind");
        let other = tempfile::tempdir().unwrap();
        assert_ne!(load_or_create(other.path()).unwrap(), token);
        let metrics = load_or_create_metrics(&data).unwrap();
        assert_ne!(metrics, token, "the metrics token is a token of its own");
        assert_eq!(load_or_create_metrics(&data).unwrap(), metrics);
        let mode = fs::metadata(data.join(METRICS_TOKEN_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn refuses_open_or_broken_files() {
        let dir = tempfile::tempdir().unwrap();
        let token = load_or_create(dir.path()).unwrap();
        let file = path(dir.path());
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create(dir.path()).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(load_or_create(dir.path()).unwrap(), token);
        fs::write(&file, "").unwrap();
        let err = load_or_create(dir.path()).unwrap_err();
        assert!(err.to_string().contains("delete it"), "{err}");
    }

    #[test]
    fn tenant_tokens_are_random_and_stored_hashed() {
        let a = new_tenant_token().unwrap();
        let b = new_tenant_token().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(TENANT_TOKEN_PREFIX));
        assert_eq!(a.len(), TENANT_TOKEN_PREFIX.len() + 64);
        assert_eq!(hash(&a).len(), 64);
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
        assert!(
            !hash(&a).contains(&a[4..12]),
            "the hash does not show the token"
        );
        // SHA-256 of "abc", the standard test vector.
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hint("hkt_0123456789"), "hkt_0123…");
    }

    #[test]
    fn compare() {
        assert!(same("abc", "abc"));
        assert!(!same("abd", "abc"));
        assert!(!same("ab", "abc"));
        assert!(!same("", ""));
    }
}
