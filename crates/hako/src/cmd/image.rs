//! `hako image …`: import, build, host, list and remove images in the data dir's store; with
//! `--store etcd://…`, also record (or drop) the versions' layer digests in a cluster's store,
//! which its nodes verify their copies against.
//!
//! Errors a user causes (bad names, unknown images, refused tarballs, bad package names)
//! exit 2; other failures exit 1.

mod record;
mod table;
mod update;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use hako_image::{DebianBuild, DebianError, Image, ImageError, ImageStore};

use super::{Exit, Failure, OrExit, out};
use hako_model::ImageRef;
use hako_model::units::format_size;

/// `hako image` and its subcommand.
#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    command: ImageCommand,
    /// A cluster's etcd (`etcd://HOST:PORT[,…]`): record each version made here (and drop
    /// removed ones) in its store, so that the cluster's nodes run it. Point --data-dir at
    /// the cluster's shared storage.
    #[arg(long, global = true, value_name = "STORE")]
    store: Option<String>,
}

#[derive(Debug, Subcommand)]
enum ImageCommand {
    /// Import a root filesystem as the next version of NAME: a directory, or a .tar or
    /// .tar.gz; or an OCI image layout (directory or tar) or a `docker save` tarball, whose
    /// layers are applied with their whiteouts and verified against their digests (hostile
    /// archives are refused).
    Import {
        /// Image name: lowercase letters, digits, '_', '.', '-'.
        name: String,
        /// A directory, a rootfs tarball (.tar / .tar.gz), an OCI layout or a docker save
        /// tarball (detected by content).
        source: PathBuf,
    },
    /// Build the next version of NAME with debootstrap (cached per package set).
    Build {
        /// Image name.
        name: String,
        /// Debian packages to install, comma-separated (e.g. php-cli,busybox).
        #[arg(
            long,
            value_name = "PKG[,PKG…]",
            value_delimiter = ',',
            required = true
        )]
        debian_packages: Vec<String>,
        /// Debian suite [default: the host's].
        #[arg(long, value_name = "SUITE")]
        suite: Option<String>,
        /// Debian mirror URL [default: the host's apt mirror].
        #[arg(long, value_name = "URL")]
        mirror: Option<String>,
        /// A directory whose tree lies over the built system (config files, entrypoints),
        /// e.g. `images/wordpress`. The Debian system stays cached and shared.
        #[arg(long, value_name = "DIR")]
        add: Option<PathBuf>,
    },
    /// Make the next version of NAME from the host's own system dirs, bound read-only.
    Host {
        /// Image name.
        name: String,
    },
    /// Rebuild a Debian-package image (`hako image build`) against its archive as it is now;
    /// says which packages changed. Apps on NAME move to the new version as their instances
    /// cycle, or at once with --rollout (successor first).
    Update {
        /// Image name.
        name: String,
        /// Roll out every app that tracks NAME (not those pinned to NAME:VERSION) now.
        #[arg(long)]
        rollout: bool,
        /// Debian mirror URL [default: the one it was built from].
        #[arg(long, value_name = "URL")]
        mirror: Option<String>,
    },
    /// List every version of every image: how old its packages are, and how many running
    /// instances still use an older version (when `hako serve` answers).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Record NAME:VERSION (default: the latest) in the cluster store given with --store: for
    /// a version made without --store, whose files you vouch for as they are now.
    Record {
        /// NAME or NAME:VERSION.
        #[arg(value_name = "NAME[:VERSION]")]
        image: ImageRef,
    },
    /// Remove NAME:VERSION, or every version of NAME.
    Remove {
        /// NAME (every version) or NAME:VERSION.
        #[arg(value_name = "NAME[:VERSION]")]
        image: ImageRef,
    },
}

/// Runs one `hako image` subcommand; exit code 0 on success.
pub async fn execute(args: ImageArgs, data_dir: &Path) -> Result<u8, Failure> {
    let store = ImageStore::open(data_dir.join("images"))
        .with_context(|| format!("cannot open the image store in {}", data_dir.display()))
        .or_exit(Exit::Failure)?;
    // The cluster store, opened first: a version made must not miss its record for want of it.
    let cluster = match &args.store {
        Some(s) => Some(record::open(s).await?),
        None => None,
    };
    let made = match args.command {
        ImageCommand::Import { name, source } => {
            let progress = super::progress::Progress::stderr();
            progress.line(&format!("importing {} as {name}", source.display()));
            let image = store
                .import_image(&name, &source, &|s| progress.line(s))
                .map_err(|e| failure(e, &format!("cannot import {}", source.display())))?;
            out(&format!("imported {}\n", describe(&image)));
            if let Some(c) = &image.config {
                out(&format!("{}\n", config_line(c)));
            }
            Some(image)
        }
        ImageCommand::Build {
            name,
            debian_packages,
            suite,
            mirror,
            add,
        } => {
            let opts = DebianBuild {
                suite,
                mirror,
                add,
                ..DebianBuild::default()
            };
            let progress = super::progress::Progress::stderr();
            progress.line(&format!(
                "building {name} with debootstrap ({}); the first build of a package set takes minutes",
                debian_packages.join(",")
            ));
            let image = store
                .build_debian(&name, &debian_packages, &opts)
                .map_err(|e| failure(e, &format!("cannot build image {name}")))?;
            progress.line(&format!("built {name}:{}", image.version));
            out(&format!("built {}\n", describe(&image)));
            Some(image)
        }
        ImageCommand::Host { name } => {
            let image = store
                .host(&name)
                .map_err(|e| failure(e, &format!("cannot make host image {name}")))?;
            out(&format!("made {}\n", describe(&image)));
            Some(image)
        }
        ImageCommand::List { json } => {
            let images = store.list().map_err(|e| failure(e, "cannot list images"))?;
            let older = update::older_instances(data_dir, &images);
            if json {
                let rows: Vec<serde_json::Value> = images
                    .iter()
                    .map(|i| {
                        let mut v = serde_json::to_value(i).unwrap_or_default();
                        if let Some(o) = v.as_object_mut() {
                            o.insert(
                                "packages_built_unix".into(),
                                hako_image::packages_built_unix(&store, i).into(),
                            );
                            if let Some(older) = &older {
                                o.insert(
                                    "older_instances".into(),
                                    older.get(&i.name).copied().unwrap_or(0).into(),
                                );
                            }
                        }
                        v
                    })
                    .collect();
                let text = serde_json::to_string_pretty(&rows).or_exit(Exit::Failure)?;
                out(&format!("{text}\n"));
            } else {
                let built = |i: &Image| hako_image::packages_built_unix(&store, i);
                out(&table::render(
                    &images,
                    &table::Extra {
                        now: hako_model::now_unix(),
                        packages_built: &built,
                        older: older.as_ref(),
                    },
                ));
            }
            None
        }
        ImageCommand::Record { image } => {
            if cluster.is_none() {
                return Err(anyhow::anyhow!(
                    "hako image record writes to a cluster store: give --store etcd://HOST:PORT[,…]"
                ))
                .or_exit(Exit::Usage);
            }
            Some(
                store
                    .get(&image.name, image.version)
                    .map_err(|e| failure(e, &format!("cannot record image {image}")))?,
            )
        }
        ImageCommand::Update {
            name,
            rollout,
            mirror,
        } => return update::run(&store, data_dir, &name, rollout, mirror),
        ImageCommand::Remove { image } => {
            store
                .remove(&image.name, image.version)
                .map_err(|e| failure(e, &format!("cannot remove image {image}")))?;
            match image.version {
                Some(_) => out(&format!("removed {image}\n")),
                None => out(&format!("removed every version of {image}\n")),
            }
            if let Some(cluster) = &cluster {
                record::remove(cluster.as_ref(), &image.name, image.version).await?;
                out("dropped its records from the cluster store\n");
            }
            None
        }
    };
    if let (Some(cluster), Some(image)) = (&cluster, &made) {
        let r = record::put(cluster.as_ref(), image).await?;
        out(&format!("{}\n", record::describe(&r)));
    }
    Ok(0)
}

/// What an app made from an imported OCI or Docker image gets from it by default.
fn config_line(c: &hako_image::ImageConfig) -> String {
    let command: Vec<&str> = c
        .entrypoint
        .iter()
        .chain(&c.cmd)
        .map(String::as_str)
        .collect();
    format!(
        "image defaults for apps: command {}, port {}, workdir {}, user {}, {} environment variables",
        if command.is_empty() {
            "-".to_string()
        } else {
            format!("{:?}", command.join(" "))
        },
        c.ports.first().map_or("-".to_string(), |p| p.to_string()),
        c.workdir.as_deref().unwrap_or("-"),
        c.user.as_deref().unwrap_or("-"),
        c.env.len()
    )
}

/// `name:version (size, kind)` for the success lines.
fn describe(i: &Image) -> String {
    match i.kind {
        hako_image::ImageKind::Host => format!("{}:{} (host)", i.name, i.version),
        hako_image::ImageKind::Rootfs => {
            format!("{}:{} ({})", i.name, i.version, format_size(i.size_bytes))
        }
    }
}

/// Wraps a store error with what was being done and the exit code it deserves.
fn failure(e: ImageError, doing: &str) -> Failure {
    let exit = exit_for(&e);
    Failure::new(exit, anyhow::Error::new(e).context(doing.to_string()))
}

/// Usage (2) for what the user can fix in their input, Failure (1) for everything else.
fn exit_for(e: &ImageError) -> Exit {
    use hako_image::{CopyError, UnpackError};
    match e {
        ImageError::Name(_) | ImageError::NotFound { .. } | ImageError::Source { .. } => {
            Exit::Usage
        }
        ImageError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            Exit::Usage
        }
        ImageError::Unpack(UnpackError::Write { .. }) => Exit::Failure,
        ImageError::Unpack(_) => Exit::Usage,
        ImageError::Copy(CopyError::SpecialFile { .. }) => Exit::Usage,
        // A refused OCI/Docker image is the input's fault; failing to read or write is not.
        ImageError::Oci(hako_image::OciError::Read { .. })
        | ImageError::Oci(hako_image::OciError::Layer {
            source: UnpackError::Write { .. },
            ..
        }) => Exit::Failure,
        ImageError::Oci(_) => Exit::Usage,
        ImageError::Debian(
            DebianError::BadPackage(_) | DebianError::BadOption { .. } | DebianError::NoSuite,
        ) => Exit::Usage,
        _ => Exit::Failure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_mistakes_are_usage_errors() {
        let not_found = ImageError::NotFound {
            name: "x".into(),
            version: None,
        };
        assert_eq!(exit_for(&not_found), Exit::Usage);
        let hostile = ImageError::Unpack(hako_image::UnpackError::AbsolutePath {
            entry: "/etc/passwd".into(),
        });
        assert_eq!(exit_for(&hostile), Exit::Usage);
        let pkg = ImageError::Debian(DebianError::BadPackage("A B".into()));
        assert_eq!(exit_for(&pkg), Exit::Usage);
        let io = ImageError::Io {
            what: "write",
            path: "/x".into(),
            source: std::io::ErrorKind::PermissionDenied.into(),
        };
        assert_eq!(exit_for(&io), Exit::Failure);
        let altered = ImageError::Oci(hako_image::OciError::Digest {
            what: "layer".into(),
            expected: "sha256:a".into(),
            actual: "sha256:b".into(),
        });
        assert_eq!(exit_for(&altered), Exit::Usage);
        let hostile_layer = ImageError::Oci(hako_image::OciError::Layer {
            index: 2,
            digest: "sha256:a".into(),
            source: hako_image::UnpackError::ParentDir {
                entry: "../x".into(),
            },
        });
        assert_eq!(exit_for(&hostile_layer), Exit::Usage);
        assert!(
            hostile_layer.to_string().contains("layer 2 (sha256:a)"),
            "{hostile_layer}"
        );
    }

    #[test]
    fn failures_say_what_was_being_done() {
        let f = failure(
            ImageError::NotFound {
                name: "bb".into(),
                version: Some(3),
            },
            "cannot remove image bb:3",
        );
        let lines = f.lines();
        assert_eq!(lines[0], "cannot remove image bb:3");
        assert!(lines[1].contains("hako image list"), "{lines:?}");
    }
}
