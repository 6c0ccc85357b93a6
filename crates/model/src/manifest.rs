//! An app's manifest: `hako.toml` at the top of the site's code, so that
//! `hako app deploy --code DIR` creates the app if it is missing, brings its settings to what
//! the file says, then deploys the code — as `fly.toml` or `app.yaml` do.
//!
//! The file holds an optional `name` and the app's settings under the names and value forms
//! of the API's JSON ([`AppSpec`], [`AppPatch`]): `hosts`, `image`, `cmd`, `port`, `memory`,
//! `cpu`, `pids`, `min`, `max`, `idle_timeout`, `max_lifetime`, `keep_alive`, `schedules`
//! (cron), `database`, an `[env]` table… Values are read by the same parsers as everywhere
//! else (`"256MiB"`, `"20m"`, `"site:latest"`), because the settings are read straight into
//! [`AppPatch`]: there is no second list of settings to drift. An unknown key is an error
//! that names it and its line.
//!
//! ```toml
//! name = "blog"
//! hosts = ["blog.example", "www.blog.example"]
//! image = "php:latest"
//! cmd = "php -S 0.0.0.0:$PORT -t /app"
//! memory = "128MiB"
//! idle_timeout = "20m"
//! schedules = ["*/15 * * * * GET /wp-cron.php"]
//! database = true
//!
//! [env]
//! WP_ENV = "production"
//! ```
//!
//! The file is the whole truth about the app's settings: a setting it leaves out takes its
//! default on the next deploy ([`full_patch`]), as a create would give it.

use serde::Deserialize;

use crate::app::{AppError, AppPatch, AppSpec, valid_name};

/// The manifest's file name in the top directory of an app's code.
pub const MANIFEST_FILE: &str = "hako.toml";

/// Longest manifest read, in bytes.
pub const MAX_MANIFEST_LEN: usize = 256 << 10;

/// A read manifest: the app's name if the file gives one, and its settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Manifest {
    /// `name = "…"`, checked like any app name.
    pub name: Option<String>,
    /// Every other key of the file.
    pub settings: AppPatch,
}

/// Why a manifest cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ManifestError {
    /// Not TOML, an unknown key or a value of the wrong form; the text names the line.
    #[error("{0}")]
    Toml(String),
    /// Longer than [`MAX_MANIFEST_LEN`].
    #[error("the manifest is larger than {MAX_MANIFEST_LEN} bytes")]
    TooLarge,
    /// `name` is not a valid app name.
    #[error(
        "name {0:?} is not a valid app name: use 1-63 lowercase letters, digits and '-', starting with a letter or digit"
    )]
    Name(String),
    /// Neither the file nor the command line names the app.
    #[error("the manifest has no name: add name = \"NAME\" to it or give the app's name")]
    NoName,
    /// The settings do not make a valid app.
    #[error("{0}")]
    App(#[from] AppError),
}

/// Only the root table's `name`, with where its value is in the text.
#[derive(Deserialize)]
struct NameOnly {
    #[serde(default)]
    name: Option<toml::Spanned<String>>,
}

impl Manifest {
    /// Reads a manifest's text. Syntax errors, unknown keys and badly formed values are
    /// refused here, each with its line; whether the settings make a valid app is checked
    /// by [`Manifest::spec`] (and again by the API, with the node's limits).
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        if text.len() > MAX_MANIFEST_LEN {
            return Err(ManifestError::TooLarge);
        }
        let toml_err = |e: toml::de::Error| ManifestError::Toml(tidy(&e.to_string()));
        let named: NameOnly = toml::from_str(text).map_err(toml_err)?;
        // The settings are the whole file but `name`, read as an `AppPatch` (which refuses
        // `name` as unknown). Blanking `name`'s line keeps every other line where it was, so
        // errors point at the user's lines.
        let mut settings_text = text.to_string();
        if let Some(name) = &named.name {
            let span = name.span();
            let start = text[..span.start].rfind('\n').map_or(0, |i| i + 1);
            let blanked: String = text[start..span.end]
                .chars()
                .map(|c| {
                    if c == '\n' {
                        "\n".to_string()
                    } else {
                        " ".repeat(c.len_utf8())
                    }
                })
                .collect();
            settings_text.replace_range(start..span.end, &blanked);
        }
        let settings: AppPatch = toml::from_str(&settings_text).map_err(toml_err)?;
        let name = named.name.map(toml::Spanned::into_inner);
        if let Some(n) = &name
            && !valid_name(n)
        {
            return Err(ManifestError::Name(n.clone()));
        }
        Ok(Manifest { name, settings })
    }

    /// The app's name: the one given on the command line wins over the file's (so one
    /// manifest can deploy a second copy of a site); without either, an error.
    pub fn app_name(&self, given: Option<&str>) -> Result<String, ManifestError> {
        match (given, &self.name) {
            (Some(g), _) if !valid_name(g) => Err(ManifestError::Name(g.to_string())),
            (Some(g), _) => Ok(g.to_string()),
            (None, Some(n)) => Ok(n.clone()),
            (None, None) => Err(ManifestError::NoName),
        }
    }

    /// The app `name` as the file describes it: its settings over the defaults, validated as
    /// the API validates a create.
    pub fn spec(&self, name: &str) -> Result<AppSpec, ManifestError> {
        Ok(self.settings.create(name)?)
    }
}

/// The patch that turns any app's settings into `spec`'s: every setting, set or cleared.
/// An app deployed with a manifest gets exactly the file's settings, with the defaults for
/// what the file leaves out.
pub fn full_patch(spec: &AppSpec) -> AppPatch {
    // No `..`: a new setting of `AppSpec` fails to compile here until it is handled.
    let AppSpec {
        name: _,
        hosts,
        image,
        cmd,
        port,
        env,
        user,
        workdir,
        memory,
        cpu,
        pids,
        min,
        max,
        idle_timeout,
        max_lifetime,
        start_timeout,
        health_path,
        network,
        stop_signal,
        database,
        warm_pool,
        seccomp,
        seccomp_reason,
        restore,
        target_concurrency,
        schedules,
        ignored_clients,
        https_redirect,
        hsts,
        acme,
        keep_alive,
    } = spec.clone();
    AppPatch {
        hosts: Some(hosts),
        image: Some(image),
        cmd: Some(cmd),
        port: Some(port),
        env: Some(env),
        user: Some(user),
        workdir: Some(workdir),
        memory: Some(memory),
        cpu: Some(cpu),
        pids: Some(pids),
        min: Some(min),
        max: Some(max),
        idle_timeout: Some(idle_timeout),
        max_lifetime: Some(max_lifetime),
        start_timeout: Some(start_timeout),
        health_path: Some(health_path),
        network: Some(network),
        stop_signal: Some(stop_signal),
        database: Some(database),
        warm_pool: Some(warm_pool),
        seccomp: Some(seccomp),
        seccomp_reason: Some(seccomp_reason),
        restore: Some(restore),
        target_concurrency: Some(target_concurrency),
        schedules: Some(schedules),
        ignored_clients: Some(ignored_clients),
        https_redirect: Some(https_redirect),
        hsts: Some(hsts),
        acme: Some(acme),
        keep_alive: Some(keep_alive),
    }
}

/// toml's message with its long list of expected keys cut: the key and line are what help.
fn tidy(message: &str) -> String {
    let mut out = String::new();
    for line in message.trim_end().lines() {
        let line = match line.find(", expected one of") {
            Some(at) => &line[..at],
            None => line,
        };
        out.push_str(line);
        out.push('\n');
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{ByteSize, ImageRef, KeepAliveMode};

    const BLOG: &str = r#"
# The blog.
name = "blog"
hosts = ["Blog.Example", "www.blog.example"]
image = "php:latest"
cmd = "php -S 0.0.0.0:$PORT -t /app"
memory = "128MiB"
cpu = 1
idle_timeout = "20m"
max_lifetime = "24h"
keep_alive = "predictive"
schedules = ["*/15 * * * * GET /wp-cron.php"]
database = true

[env]
WP_ENV = "production"
"#;

    #[test]
    fn reads_every_kind_of_setting_with_the_one_units_parser() {
        let m = Manifest::parse(BLOG).unwrap();
        assert_eq!(m.name.as_deref(), Some("blog"));
        let spec = m.spec(&m.app_name(None).unwrap()).unwrap();
        assert_eq!(spec.name, "blog");
        assert_eq!(spec.hosts, ["blog.example", "www.blog.example"]);
        assert_eq!(spec.image, ImageRef::latest("php"));
        assert_eq!(spec.memory, ByteSize(128 << 20));
        assert_eq!(spec.cpu, Some(1.0));
        assert_eq!(spec.idle_timeout.0, Duration::from_secs(1200));
        assert_eq!(spec.keep_alive, KeepAliveMode::Predictive);
        assert_eq!(spec.schedules.len(), 1);
        assert!(spec.database);
        assert_eq!(spec.env["WP_ENV"], "production");
        // Defaults for the rest, exactly as a create through the API gives them.
        assert_eq!(spec.port, 8080);
        assert_eq!(spec.max, 4);
    }

    #[test]
    fn the_command_line_name_wins() {
        let m = Manifest::parse(BLOG).unwrap();
        assert_eq!(m.app_name(Some("blog-staging")).unwrap(), "blog-staging");
        assert!(matches!(
            m.app_name(Some("Bad_Name")),
            Err(ManifestError::Name(_))
        ));
        let nameless = Manifest::parse("hosts = [\"a.example\"]").unwrap();
        assert_eq!(nameless.app_name(None), Err(ManifestError::NoName));
        assert_eq!(nameless.app_name(Some("a")).unwrap(), "a");
    }

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let err = Manifest::parse("name = \"blog\"\nimage = \"php\"\nmemroy = \"1GiB\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("memroy"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(!err.contains("expected one of"), "{err}");
        // Also in a table, and with a name written on a later line than the key.
        let err = Manifest::parse("image = \"php\"\n\n[limits]\nmemory = \"1GiB\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("limits") && err.contains("line 3"), "{err}");
        let err = Manifest::parse("idle = \"5m\"\nname = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("idle") && err.contains("line 1"), "{err}");
    }

    #[test]
    fn bad_values_are_refused_by_the_models_parsers() {
        for (text, needle) in [
            ("memory = \"lots\"", "line 1"),
            ("\nidle_timeout = \"45\"", "45s"),
            ("image = \"php:0\"", "NAME:VERSION"),
            ("port = \"http\"", "line 1"),
            ("hosts = \"a.example\"", "line 1"),
            ("[env]\nA = 1", "line 2"),
            ("schedules = [\"every day\"]", "line 1"),
            ("cmd = ", "line 1"),
            ("name = 3", "line 1"),
            ("name = \"Bad_Name\"", "Bad_Name"),
            ("name = \"a\"\nname = \"b\"", "line 2"),
        ] {
            let err = Manifest::parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
        let huge = format!("# {}", "x".repeat(MAX_MANIFEST_LEN));
        assert_eq!(Manifest::parse(&huge), Err(ManifestError::TooLarge));
    }

    #[test]
    fn settings_are_validated_like_a_create() {
        let m = Manifest::parse("image = \"php\"\ncmd = \"php\"\n").unwrap();
        assert_eq!(m.spec("blog"), Err(ManifestError::App(AppError::NoHosts)));
        let m = Manifest::parse("hosts = [\"a.example\"]\ncmd = \"x\"\n").unwrap();
        assert_eq!(m.spec("a"), Err(ManifestError::App(AppError::NoImage)));
        let m = Manifest::parse("hosts = [\"a.example\"]\nimage = \"x\"\ncmd = \"x\"\nmin = 5\n")
            .unwrap();
        assert!(matches!(
            m.spec("a"),
            Err(ManifestError::App(AppError::MinMax { .. }))
        ));
    }

    #[test]
    fn a_full_patch_makes_any_app_the_manifests() {
        let m = Manifest::parse(BLOG).unwrap();
        let want = m.spec("blog").unwrap();
        let mut other = AppSpec::new(
            "blog",
            vec!["old.example".into()],
            ImageRef::latest("base"),
            "busybox httpd -f -p $PORT",
        );
        other.cpu = Some(2.0);
        other.hsts = Some("1d".parse().unwrap());
        other.min = 1;
        other.validate().unwrap();
        assert_eq!(full_patch(&want).apply(&other).unwrap(), want);
        // And a file without the optional settings clears them.
        let plain = Manifest::parse("hosts = [\"a.example\"]\nimage = \"x\"\ncmd = \"x\"\n")
            .unwrap()
            .spec("blog")
            .unwrap();
        let applied = full_patch(&plain).apply(&other).unwrap();
        assert_eq!(applied, plain);
        assert_eq!((applied.cpu, applied.hsts, applied.min), (None, None, 0));
    }
}
