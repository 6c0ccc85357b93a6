//! A static site, the simplest app hako serves: its code (an index.html), its app spec
//! (`busybox httpd` on the host image) and the host image itself.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::Error;

/// The command of a static site: busybox's httpd serving /app on `$PORT`.
pub const STATIC_CMD: &str = "busybox httpd -f -p $PORT -h /app";

/// Writes a static site's code into `dir` (made if missing): `index.html` holding `body`,
/// readable by the instances' user (the dir 0755, the file 0644). Returns `dir`.
#[track_caller]
pub fn static_code(dir: &Path, body: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("create the site's code dir");
    std::fs::write(dir.join("index.html"), body).expect("write index.html");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .expect("make the code dir readable");
    std::fs::set_permissions(
        dir.join("index.html"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("make index.html readable");
    dir.to_path_buf()
}

/// The JSON app spec of a static site `name`, served for `NAME.example` from the host image
/// `base`, with a 30 s idle timeout: change fields as the test needs, then read it as an
/// [`hako_model::AppSpec`] (`serde_json::from_value`).
pub fn static_app(name: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "hosts": [format!("{name}.example")],
        "image": "base",
        "cmd": STATIC_CMD,
        "idle_timeout": "30s",
    })
}

/// Makes the host image `name` (the host's own /usr and needed /etc, read-only) in the image
/// store of `data_dir`, as `hako image host NAME` does.
pub fn host_image(data_dir: &Path, name: &str) -> Result<(), Error> {
    hako_image::ImageStore::open(data_dir.join("images"))?.host(name)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_static_app_is_a_valid_spec() {
        let mut spec: hako_model::AppSpec = serde_json::from_value(static_app("blog")).unwrap();
        spec.validate().unwrap();
        assert_eq!(spec.hosts, ["blog.example"]);
        assert_eq!(spec.cmd, STATIC_CMD);
    }

    #[test]
    fn code_is_readable_by_everyone() {
        let t = tempfile::tempdir().unwrap();
        let dir = static_code(&t.path().join("site"), "hi\n");
        assert_eq!(
            std::fs::read_to_string(dir.join("index.html")).unwrap(),
            "hi\n"
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&dir), mode(&dir.join("index.html"))), (0o755, 0o644));
    }

    #[test]
    fn makes_the_host_image() {
        crate::require_root();
        let t = tempfile::tempdir().unwrap();
        host_image(t.path(), "base").unwrap();
        let list = hako_image::ImageStore::open(t.path().join("images"))
            .unwrap()
            .list()
            .unwrap();
        assert_eq!(
            list.iter().filter(|i| i.name == "base").count(),
            1,
            "{list:?}"
        );
    }
}
