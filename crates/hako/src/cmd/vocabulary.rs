//! One vocabulary across the command line, the API and config files: a size, a duration or
//! an image reference means the same wherever a user writes it (issue 9 §2's regressions:
//! `100MB` was 10^8 bytes for `hako run` but 100 MiB for `hako app create`; `site:latest` was
//! refused by `hako app create`; a bare `45` was seconds in the API and refused on the CLI).

use clap::Parser;
use hako_model::{AppPatch, ByteSize, ImageRef};

use super::app::{AppCommand, create_spec};
use super::run::RunArgs;

/// The commands under test, parsed as on the command line.
#[derive(Parser)]
enum Cli {
    Run(Box<RunArgs>),
    #[command(subcommand)]
    App(Box<AppCommand>),
}

fn parse(argv: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("hako").chain(argv.iter().copied()))
}

/// `hako app create NAME …`'s spec, as the CLI would send it.
fn app_create(extra: &[&str]) -> Result<hako_model::AppSpec, String> {
    let mut argv = vec![
        "app",
        "create",
        "blog",
        "--host",
        "blog.example",
        "--cmd",
        "php -S",
    ];
    if !extra.contains(&"--image") {
        argv.extend(["--image", "php"]);
    }
    argv.extend_from_slice(extra);
    let Cli::App(app) = parse(&argv).map_err(|e| e.to_string())? else {
        unreachable!()
    };
    let AppCommand::Create(a) = *app else {
        unreachable!()
    };
    create_spec(&a.name, a.settings, std::path::Path::new("/nonexistent"))
        .map_err(|f| f.error.to_string())
}

/// `hako run …`'s container limits, as the spec the runtime gets.
fn run_memory(memory: &str) -> Option<u64> {
    let Cli::Run(args) =
        parse(&["run", "--image", "bb", "--memory", memory, "--", "true"]).unwrap()
    else {
        unreachable!()
    };
    let image: hako_image::Image = serde_json::from_str(
        r#"{"name":"bb","version":1,"kind":"rootfs","created_unix":0,"size_bytes":0,
            "source":"x","storage":{"type":"local"}}"#,
    )
    .unwrap();
    super::run::spec::build(&args, &image, |_| None)
        .unwrap()
        .limits
        .memory_max
}

/// An API create request's spec, as the server reads it.
fn api_create(fields: serde_json::Value) -> Result<hako_model::AppSpec, String> {
    let mut v = serde_json::json!({
        "name": "blog", "hosts": ["blog.example"], "image": "php", "cmd": "php -S",
    });
    for (k, x) in fields.as_object().unwrap() {
        v[k] = x.clone();
    }
    hako_api::action::parse_spec(v.to_string().as_bytes()).map_err(|e| e.to_string())
}

#[test]
fn one_hundred_mb_is_the_same_bytes_everywhere() {
    const MB100: u64 = 100_000_000;
    assert_eq!(run_memory("100MB"), Some(MB100), "hako run");
    assert_eq!(
        app_create(&["--memory", "100MB"]).unwrap().memory,
        ByteSize(MB100),
        "hako app create"
    );
    assert_eq!(
        api_create(serde_json::json!({"memory": "100MB"}))
            .unwrap()
            .memory,
        ByteSize(MB100),
        "the API's JSON"
    );
    let file: AppPatch = toml::from_str("memory = \"100MB\"").unwrap();
    assert_eq!(file.memory, Some(ByteSize(MB100)), "a TOML file");
    // And MiB is 2^20 in all of them.
    const MIB100: u64 = 100 << 20;
    assert_eq!(run_memory("100MiB"), Some(MIB100));
    assert_eq!(run_memory("100M"), Some(MIB100));
    assert_eq!(
        app_create(&["--memory", "100MiB"]).unwrap().memory,
        ByteSize(MIB100)
    );
    assert_eq!(
        api_create(serde_json::json!({"memory": "100MiB"}))
            .unwrap()
            .memory,
        ByteSize(MIB100)
    );
}

#[test]
fn latest_is_an_image_version_for_app_create_as_for_run() {
    let spec = app_create(&["--image", "site:latest"]).unwrap();
    assert_eq!(spec.image, ImageRef::latest("site"));
    let Cli::Run(run) = parse(&["run", "--image", "site:latest", "--", "true"]).unwrap() else {
        unreachable!()
    };
    assert_eq!(run.image, spec.image);
    let err = app_create(&["--image", "site:newest"]).unwrap_err();
    assert!(err.contains("NAME:latest or NAME:VERSION"), "{err}");
}

#[test]
fn a_bare_duration_is_refused_everywhere_with_the_fix() {
    let err = app_create(&["--idle-timeout", "45"]).unwrap_err();
    assert!(err.contains("add one, like 45s"), "{err}");
    let err = api_create(serde_json::json!({"idle_timeout": "45"})).unwrap_err();
    assert!(err.contains("add one, like 45s"), "{err}");
    let err = hako_api::action::parse_target(None, Some("45")).unwrap_err();
    assert!(err.to_string().contains("add one, like 45s"), "{err}");
    assert!(parse(&["run", "--image", "bb", "--stop-timeout", "45", "--", "true"]).is_err());
    let ok = app_create(&["--idle-timeout", "45s"]).unwrap();
    assert_eq!(ok.idle_timeout.0, std::time::Duration::from_secs(45));
}

#[test]
fn impossible_cpu_values_are_refused_by_the_cli_with_their_reason() {
    for cpu in ["inf", "nan"] {
        let err = app_create(&["--cpu", cpu]).unwrap_err();
        assert!(
            err.contains(&format!(
                "cpu limit \"{cpu}\" is not valid: give a positive number of cores such as 0.5 or 2"
            )),
            "{err}"
        );
        let err = parse(&["run", "--image", "bb", "--cpu", cpu, "--", "true"])
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("is not valid: give a positive number of cores"),
            "{err}"
        );
    }
}

#[test]
fn schedules_targets_and_ignored_clients_read_the_same_as_the_api() {
    let spec = app_create(&[
        "--cron",
        "*/15 * * * * GET /wp-cron.php",
        "--cron",
        "0 3 * * * php /app/cleanup.php",
        "--target-concurrency",
        "2.5",
        "--ignore-uptime-checkers",
        "--ignore-path",
        "/health*",
    ])
    .unwrap();
    let api = api_create(serde_json::json!({
        "schedules": ["*/15 * * * * GET /wp-cron.php", "0 3 * * * php /app/cleanup.php"],
        "target_concurrency": 2.5,
        "ignored_clients": {
            "user_agents": hako_model::IgnoredClients::uptime_checkers().user_agents,
            "paths": ["/health*"],
        },
    }))
    .unwrap();
    assert_eq!(spec, api);
    assert_eq!(spec.schedules.len(), 2);
    // A cron field out of range is refused by both, saying which.
    let cli = app_create(&["--cron", "61 * * * * GET /x"]).unwrap_err();
    let server = api_create(serde_json::json!({"schedules": ["61 * * * * GET /x"]})).unwrap_err();
    assert!(cli.contains("61 * * * *"), "{cli}");
    assert!(server.contains("61 * * * *"), "{server}");
    assert!(app_create(&["--target-concurrency", "0"]).is_err());
}
