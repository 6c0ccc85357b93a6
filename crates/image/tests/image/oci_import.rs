//! OCI image layouts and `docker save` tarballs, made here without a registry: layers applied
//! in order with their whiteouts, the run configuration kept, digests verified, and hostile
//! layers refused with nothing left behind.

use std::io::Write;
use std::path::{Path, PathBuf};

use hako_image::{ImageError, OciError, UnpackError};
use sha2::{Digest, Sha256};

use super::support::{Meta, TarBuilder, TestStore};

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn config_json(diff_ids: &[String]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/bin:/bin", "GREETING=hi"],
            "Entrypoint": ["/bin/busybox"],
            "Cmd": ["httpd", "-f", "-p", "$PORT"],
            "WorkingDir": "/srv",
            "User": "1000",
            "ExposedPorts": {"8000/tcp": {}}
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids}
    }))
    .unwrap()
}

/// Writes an OCI image layout of `layers` (tar bytes; gzip-compressed when the flag says) to
/// `dir`; returns the layers' blob paths.
fn oci_layout(dir: &Path, layers: &[(Vec<u8>, bool)]) -> Vec<PathBuf> {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let hex = sha256(bytes);
        std::fs::write(blobs.join(&hex), bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len(), blobs.join(hex))
    };
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    let mut paths = Vec::new();
    for (tar, gz) in layers {
        diff_ids.push(format!("sha256:{}", sha256(tar)));
        let (digest, size, path) = if *gz { put(&gzip(tar)) } else { put(tar) };
        paths.push(path);
        descriptors.push(serde_json::json!({
            "mediaType": if *gz { "application/vnd.oci.image.layer.v1.tar+gzip" } else { "application/vnd.oci.image.layer.v1.tar" },
            "digest": digest, "size": size
        }));
    }
    let (config, config_size, _) = put(&config_json(&diff_ids));
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
        "layers": descriptors
    }))
    .unwrap();
    let (m, m_size, _) = put(&manifest);
    // An index naming another platform first: the host's is chosen.
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{}", "0".repeat(64)), "size": 1,
             "platform": {"architecture": "s390x", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m, "size": m_size,
             "platform": {"architecture": host_arch(), "os": "linux"}}
        ]
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    paths
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// A `docker save` tarball (the legacy form: `<id>/layer.tar`, `<hex>.json`, manifest.json
/// last) of uncompressed `layers`.
fn docker_save(path: &Path, layers: &[Vec<u8>]) {
    let mut tb = TarBuilder::new();
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("sha256:{}", sha256(l)))
        .collect();
    let mut names = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let id = format!("{:064x}", i + 1);
        tb.dir(&format!("{id}/"), 0o755);
        tb.file(&format!("{id}/layer.tar"), l, Meta::default());
        names.push(format!("{id}/layer.tar"));
    }
    let config = config_json(&diff_ids);
    let config_name = format!("{}.json", sha256(&config));
    tb.file(&config_name, &config, Meta::default());
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": config_name, "RepoTags": ["site:latest"], "Layers": names}
    ]))
    .unwrap();
    tb.file("manifest.json", &manifest, Meta::default());
    tb.file("repositories", b"{}", Meta::default());
    tb.write_to(path, false);
}

fn lower() -> Vec<u8> {
    let mut tb = TarBuilder::new();
    tb.dir("./", 0o755).dir("etc/", 0o755).dir("var/", 0o755);
    tb.dir("var/cache/", 0o755).dir("var/cache/sub/", 0o755);
    tb.file("etc/keep", b"kept\n", Meta::default());
    tb.file("etc/gone", b"deleted\n", Meta::default());
    tb.file("var/cache/a", b"a\n", Meta::default());
    tb.file("var/cache/sub/b", b"b\n", Meta::default());
    tb.dir("opt/", 0o755)
        .file("opt/was-a-dir", b"x", Meta::default());
    tb.bytes()
}

fn upper() -> Vec<u8> {
    let mut tb = TarBuilder::new();
    tb.file("etc/.wh.gone", b"", Meta::default());
    tb.dir("var/cache/", 0o755);
    tb.file("var/cache/.wh..wh..opq", b"", Meta::default());
    tb.file("var/cache/new", b"new\n", Meta::default());
    tb.file("etc/added", b"added\n", Meta::default());
    tb.file("etc/keep", b"replaced\n", Meta::default());
    tb.file("opt", b"now a file\n", Meta::default());
    tb.bytes()
}

fn assert_layers_applied(rootfs: &Path) {
    let read = |p: &str| std::fs::read_to_string(rootfs.join(p)).ok();
    assert_eq!(read("etc/keep").as_deref(), Some("replaced\n"));
    assert_eq!(read("etc/added").as_deref(), Some("added\n"));
    assert!(!rootfs.join("etc/gone").exists(), "whiteout applied");
    assert!(
        !rootfs.join("etc/.wh.gone").exists(),
        "no whiteout file left"
    );
    assert!(!rootfs.join("var/cache/a").exists(), "opaque dir emptied");
    assert!(!rootfs.join("var/cache/sub").exists(), "opaque dir emptied");
    assert!(!rootfs.join("var/cache/.wh..wh..opq").exists());
    assert_eq!(
        read("var/cache/new").as_deref(),
        Some("new\n"),
        "its own layer kept"
    );
    assert_eq!(read("opt").as_deref(), Some("now a file\n"));
}

fn rootfs_of(image: &hako_image::Image) -> PathBuf {
    match image.rootfs() {
        hako_image::Rootfs::Layers(l) => l.last().unwrap().clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_oci_layout_is_applied_layer_by_layer_with_its_whiteouts() {
    let t = TestStore::new();
    let dir = t.scratch("layout");
    oci_layout(&dir, &[(lower(), false), (upper(), true)]);
    let seen = std::sync::Mutex::new(Vec::new());
    let image = t
        .store
        .import_image("site", &dir, &|s| seen.lock().unwrap().push(s.to_string()))
        .unwrap();
    assert_layers_applied(&rootfs_of(&image));
    let seen = seen.into_inner().unwrap();
    assert!(
        seen.iter().any(|s| s.starts_with("layer 2/2 sha256:")),
        "{seen:?}"
    );
    // The run configuration is kept with the version (in image.json too).
    let config = t.store.get("site", None).unwrap().config.unwrap();
    assert_eq!(config.entrypoint, ["/bin/busybox"]);
    assert_eq!(config.cmd, ["httpd", "-f", "-p", "$PORT"]);
    assert_eq!(config.workdir.as_deref(), Some("/srv"));
    assert_eq!(config.user.as_deref(), Some("1000"));
    assert_eq!(config.ports, [8000]);
    assert!(config.env.contains(&"GREETING=hi".to_string()));
    // As an app's defaults: the command, environment, directory, user and port.
    let mut patch = hako_model::AppPatch {
        hosts: Some(vec!["site.example".into()]),
        image: Some("site".parse().unwrap()),
        ..Default::default()
    };
    config.app_defaults(&mut patch);
    let spec = patch.create("site").unwrap();
    assert_eq!(spec.cmd, "/bin/busybox httpd -f -p '$PORT'");
    assert_eq!(spec.port, 8000);
    assert_eq!(spec.env["GREETING"], "hi");
    assert_eq!(t.leftovers(), ["site"]);
}

#[test]
fn a_tar_of_an_oci_layout_and_a_docker_save_tarball_import_alike() {
    let t = TestStore::new();
    let dir = t.scratch("layout");
    oci_layout(&dir, &[(lower(), true), (upper(), false)]);
    let tar = t.scratch("oci.tar");
    let status = std::process::Command::new("tar")
        .args([
            "-C",
            dir.to_str().unwrap(),
            "-cf",
            tar.to_str().unwrap(),
            ".",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let image = t.store.import_image("oci", &tar, &|_| {}).unwrap();
    assert_layers_applied(&rootfs_of(&image));
    assert!(image.config.is_some());

    let saved = t.scratch("saved.tar");
    docker_save(&saved, &[lower(), upper()]);
    let image = t.store.import_image("docker", &saved, &|_| {}).unwrap();
    assert_layers_applied(&rootfs_of(&image));
    assert_eq!(image.config.as_ref().unwrap().ports, [8000]);
    // Nothing of the unpacked archives stays.
    assert!(!image.dir().join("archive").exists());
    assert_eq!(t.leftovers(), ["docker", "oci"]);
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_refused() {
    let t = TestStore::new();
    let dir = t.scratch("layout");
    let layers = oci_layout(&dir, &[(lower(), false), (upper(), false)]);
    // Same size, other bytes.
    let mut bytes = std::fs::read(&layers[1]).unwrap();
    let at = bytes.len() / 3;
    bytes[at] ^= 0xff;
    std::fs::write(&layers[1], &bytes).unwrap();
    let err = t.store.import_image("site", &dir, &|_| {}).unwrap_err();
    assert!(
        matches!(err, ImageError::Oci(OciError::Digest { .. })),
        "{err}"
    );
    assert!(
        err.to_string().contains("does not match its digest"),
        "{err}"
    );
    assert_eq!(t.leftovers(), Vec::<String>::new());
    // Longer than its descriptor says.
    bytes[at] ^= 0xff;
    bytes.extend_from_slice(&[0u8; 512]);
    std::fs::write(&layers[1], &bytes).unwrap();
    let err = t.store.import_image("site", &dir, &|_| {}).unwrap_err();
    assert!(
        matches!(err, ImageError::Oci(OciError::Size { .. })),
        "{err}"
    );

    // A docker save whose layer was altered after the config named it.
    let saved = t.scratch("saved.tar");
    docker_save(&saved, &[lower(), upper()]);
    let good = std::fs::read(&saved).unwrap();
    assert!(
        t.store.import_image("ok", &saved, &|_| {}).is_ok(),
        "the unaltered one imports"
    );
    // Rebuild with the config naming the original layer but the altered bytes in its place.
    let layer_at = good
        .windows(upper().len())
        .position(|w| w == upper().as_slice())
        .expect("layer bytes in the archive");
    let mut altered = good.clone();
    altered[layer_at + 600] ^= 0x01;
    std::fs::write(&saved, &altered).unwrap();
    let err = t.store.import_image("bad", &saved, &|_| {}).unwrap_err();
    assert!(
        matches!(err, ImageError::Oci(OciError::Digest { .. })),
        "{err}"
    );
    assert_eq!(t.leftovers(), ["ok"]);
}

#[test]
fn hostile_layers_are_refused_and_leave_nothing() {
    let t = TestStore::new();
    let outside = t.scratch("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("victim"), b"still here\n").unwrap();

    let import = |name: &str, layers: &[Vec<u8>]| {
        let dir = t.scratch(&format!("layout-{name}"));
        let layers: Vec<(Vec<u8>, bool)> = layers.iter().map(|l| (l.clone(), true)).collect();
        oci_layout(&dir, &layers);
        t.store.import_image(name, &dir, &|_| {}).unwrap_err()
    };
    let layer_error = |err: ImageError| match err {
        ImageError::Oci(OciError::Layer { index, source, .. }) => (index, source),
        other => panic!("not refused as a layer: {other}"),
    };

    // A `..` path in the second layer.
    let mut tb = TarBuilder::new();
    tb.file("../escaped", b"x", Meta::default());
    let (index, e) = layer_error(import("dotdot", &[lower(), tb.bytes()]));
    assert_eq!(index, 2);
    assert!(matches!(e, UnpackError::ParentDir { .. }), "{e}");

    // A whiteout through a symlink a lower layer made: the host file stays.
    let mut tb = TarBuilder::new();
    tb.symlink("lnk", outside.to_str().unwrap());
    let link_layer = tb.bytes();
    let mut tb = TarBuilder::new();
    tb.file("lnk/.wh.victim", b"", Meta::default());
    let (_, e) = layer_error(import("wh-link", &[link_layer.clone(), tb.bytes()]));
    assert!(matches!(e, UnpackError::ThroughSymlink { .. }), "{e}");
    // An opaque marker under it, and a file written through it.
    let mut tb = TarBuilder::new();
    tb.file("lnk/.wh..wh..opq", b"", Meta::default());
    let (_, e) = layer_error(import("opq-link", &[link_layer.clone(), tb.bytes()]));
    assert!(matches!(e, UnpackError::ThroughSymlink { .. }), "{e}");
    let mut tb = TarBuilder::new();
    tb.file("lnk/victim", b"overwritten", Meta::default());
    let (_, e) = layer_error(import("write-link", &[link_layer, tb.bytes()]));
    assert!(matches!(e, UnpackError::ThroughSymlink { .. }), "{e}");
    assert_eq!(
        std::fs::read_to_string(outside.join("victim")).unwrap(),
        "still here\n"
    );

    // A whiteout that names the parent directory; a device node.
    let mut tb = TarBuilder::new();
    tb.file("etc/.wh...", b"", Meta::default());
    let (_, e) = layer_error(import("wh-dotdot", &[lower(), tb.bytes()]));
    assert!(matches!(e, UnpackError::Whiteout { .. }), "{e}");
    let mut tb = TarBuilder::new();
    tb.raw("dev-null", tar::EntryType::Char, Meta::default(), None, &[]);
    let (_, e) = layer_error(import("device", &[tb.bytes()]));
    assert!(matches!(e, UnpackError::SpecialFile { .. }), "{e}");

    // A blob of a tarred layout that is a symlink out of it.
    let dir = t.scratch("layout-blob-link");
    let layers = oci_layout(&dir, &[(lower(), false)]);
    std::fs::remove_file(&layers[0]).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", &layers[0]).unwrap();
    let tar = t.scratch("blob-link.tar");
    let status = std::process::Command::new("tar")
        .args([
            "-C",
            dir.to_str().unwrap(),
            "-cf",
            tar.to_str().unwrap(),
            ".",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let err = t
        .store
        .import_image("blob-link", &tar, &|_| {})
        .unwrap_err();
    assert!(
        matches!(err, ImageError::Oci(OciError::Blob { .. })),
        "{err}"
    );

    assert_eq!(t.leftovers(), Vec::<String>::new());
    assert!(!t.dir.path().join("escaped").exists());
}

#[test]
fn a_root_filesystem_with_its_own_manifest_json_stays_a_root_filesystem() {
    let t = TestStore::new();
    let dir = t.scratch("rootfs");
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::write(dir.join("manifest.json"), br#"{"name": "my-web-app"}"#).unwrap();
    std::fs::write(dir.join("etc/hostname"), b"x\n").unwrap();
    let image = t.store.import_image("plain", &dir, &|_| {}).unwrap();
    assert!(image.config.is_none());
    assert!(rootfs_of(&image).join("manifest.json").is_file());
    assert!(rootfs_of(&image).join("etc/hostname").is_file());
    // And a plain import (what code releases use) never takes a layout for an image.
    let layout = t.scratch("layout");
    oci_layout(&layout, &[(lower(), false)]);
    let copied = t.store.import("copied", &layout).unwrap();
    assert!(copied.config.is_none());
    assert!(rootfs_of(&copied).join("index.json").is_file());
    assert!(!rootfs_of(&copied).join("etc/keep").exists());
}
