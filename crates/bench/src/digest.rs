//! `hako-bench digest`: what content addressing costs. On a WordPress release (the code tree
//! of Debian's `wordpress` package) and on a Debian image (the WordPress image's system, the
//! one the wordpress bench builds), files in the page cache:
//! - hako's tree digest (`hako_image::tree_digest`: computed once when a release or layer is
//!   made) beside its peer, `tar -cf - . | sha256sum` (the digest of a tar stream, what a
//!   registry-style layer digest costs);
//! - a node's first use of one (copy from shared storage into its cache with the importer's
//!   faithful copy, then the digest of the copy) beside `cp -a` of the same tree (a copy that
//!   verifies nothing).
//!
//! Last line: `digest: wordpress_files=… wordpress_mb=… wordpress_digest_ms=…
//! wordpress_tar_sha256_ms=… wordpress_fetch_ms=… wordpress_cp_ms=… debian_files=… …`
//! (medians of `--runs` runs, default 5). `--images DIR`: the image store to build (or find,
//! cached) the WordPress image in, default the wordpress bench's.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::samples::{Samples, ms};
use crate::wordpress::IMAGES;

/// The image this bench makes (the WordPress image's package set and added files).
const NAME: &str = "digest-bench";

struct Opts {
    runs: usize,
    images: PathBuf,
}

fn options(args: &[&str]) -> anyhow::Result<Opts> {
    let mut o = Opts {
        runs: 5,
        images: PathBuf::from(IMAGES),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match *a {
            "--runs" => {
                o.runs = it
                    .next()
                    .context("--runs needs a number")?
                    .parse()
                    .context("--runs needs a number")?;
            }
            "--images" => {
                o.images = PathBuf::from(it.next().context("--images needs a directory")?);
            }
            other => bail!("unknown option {other:?} (known: --runs N, --images DIR)"),
        }
    }
    if o.runs == 0 {
        bail!("--runs must be at least 1");
    }
    Ok(o)
}

/// One tree's figures.
struct Measured {
    files: u64,
    bytes: u64,
    digest: Samples,
    tar: Samples,
    fetch: Samples,
    cp: Samples,
}

pub fn main(args: &[&str]) -> anyhow::Result<()> {
    let opts = options(args)?;
    let root = crate::paths::workspace_root();
    let store = hako_image::ImageStore::open(&opts.images)?;
    let packages = std::fs::read_to_string(root.join("images/wordpress/packages"))?;
    let packages: Vec<String> = packages.trim().split(',').map(str::to_string).collect();
    eprintln!(
        "bench digest: the WordPress image (debootstrap once, cached in {})",
        opts.images.display()
    );
    let image = store.build_debian(
        NAME,
        &packages,
        &hako_image::DebianBuild {
            add: Some(root.join("images/wordpress/rootfs")),
            ..hako_image::DebianBuild::default()
        },
    )?;
    let hako_image::Rootfs::Layers(layers) = image.rootfs() else {
        bail!("the WordPress image is not a root filesystem");
    };
    let system = layers[0].clone();
    let wordpress = system.join("usr/share/wordpress");
    let scratch = tempfile::Builder::new()
        .prefix("hako-bench-digest")
        .tempdir_in(&opts.images)?;
    let mut rows = Vec::new();
    for (name, tree) in [("wordpress", &wordpress), ("debian", &system)] {
        let m = measure(tree, scratch.path(), opts.runs)
            .with_context(|| format!("measuring {}", tree.display()))?;
        println!(
            "{name}: {} files, {:.1} MB — digest {} ms (tar | sha256sum {} ms); first use on a node: copy + digest {} ms (cp -a {} ms)",
            m.files,
            m.bytes as f64 / 1e6,
            ms(m.digest.p50()),
            ms(m.tar.p50()),
            ms(m.fetch.p50()),
            ms(m.cp.p50()),
        );
        rows.push((name, m));
    }
    let mut line = String::from("digest:");
    for (name, m) in &rows {
        line.push_str(&format!(
            " {name}_files={} {name}_mb={:.1} {name}_digest_ms={} {name}_tar_sha256_ms={} {name}_fetch_ms={} {name}_cp_ms={}",
            m.files,
            m.bytes as f64 / 1e6,
            ms(m.digest.p50()),
            ms(m.tar.p50()),
            ms(m.fetch.p50()),
            ms(m.cp.p50()),
        ));
    }
    println!("{line}");
    // Keep one version (it keeps the cached system alive for the next run), not one per run.
    for old in store.list()? {
        if old.name == NAME && old.version < image.version {
            store.remove(NAME, Some(old.version))?;
        }
    }
    Ok(())
}

fn measure(tree: &Path, scratch: &Path, runs: usize) -> anyhow::Result<Measured> {
    if !tree.is_dir() {
        bail!("{} is not a directory", tree.display());
    }
    let (files, bytes) = count(tree)?;
    // Warm the page cache (and check the two digests agree run to run).
    let first = hako_image::tree_digest(tree)?;
    let mut m = Measured {
        files,
        bytes,
        digest: Samples::default(),
        tar: Samples::default(),
        fetch: Samples::default(),
        cp: Samples::default(),
    };
    for i in 0..runs {
        let t = Instant::now();
        let d = hako_image::tree_digest(tree)?;
        m.digest.push(t.elapsed());
        if d != first {
            bail!("the digest of {} changed between runs", tree.display());
        }
        m.tar.push(timed_shell(&format!(
            "tar -C '{}' -cf - . | sha256sum > /dev/null",
            tree.display()
        ))?);
        // A node's first use: faithful copy into its cache, then the digest of the copy.
        let dst = scratch.join(format!("fetch-{i}"));
        let t = Instant::now();
        hako_image::copy_tree(tree, &dst, &hako_image::ImportLimits::default())?;
        let d = hako_image::tree_digest(&dst)?;
        m.fetch.push(t.elapsed());
        if d != first {
            bail!("the copy of {} has another digest", tree.display());
        }
        std::fs::remove_dir_all(&dst)?;
        let dst = scratch.join(format!("cp-{i}"));
        m.cp.push(timed_shell(&format!(
            "cp -a '{}' '{}'",
            tree.display(),
            dst.display()
        ))?);
        std::fs::remove_dir_all(&dst)?;
    }
    Ok(m)
}

/// Regular files (hard links once) and their bytes under `tree`.
fn count(tree: &Path) -> anyhow::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let (mut files, mut bytes) = (0u64, 0u64);
    let mut stack: Vec<PathBuf> = vec![tree.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            let meta = e.metadata()?;
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.is_file() && seen.insert((meta.dev(), meta.ino())) {
                files += 1;
                bytes += meta.len();
            }
        }
    }
    Ok((files, bytes))
}

fn timed_shell(script: &str) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let status = Command::new("sh").args(["-c", script]).status()?;
    let took = t.elapsed();
    if !status.success() {
        bail!("{script} failed: {status}");
    }
    Ok(took)
}
