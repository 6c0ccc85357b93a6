//! Fuzz target for `hako serve --config FILE` (TOML): any text gives settings or a usage
//! error, never a panic; and settings that parse keep what the file said.
//!
//! A unit test of the binary (the config code is private to it), kept with its corpus under
//! `crates/hako/fuzz/`: `cargo test` replays `fuzz/__fuzz__/serve_config/{corpus,crashes}/`
//! and then runs random inputs for under a second. Long runs: README, "Fuzzing".

use std::path::Path;
use std::time::Duration;

use super::{ServeArgs, settings};
use crate::cmd::Exit;

/// Some inputs are raw text, the rest one known key set to a fuzzed value.
const KEYS: [&str; 12] = [
    "listen",
    "api",
    "prefix",
    "subnet",
    "state_root",
    "stop_grace",
    "trusted_proxies",
    "release_max_size",
    "release_max_files",
    "data_quota",
    "database.socket",
    "database.max_user_connections",
];

#[test]
fn serve_config() {
    bolero::check!(name = "serve_config")
        .with_test_time(Duration::from_millis(700))
        .for_each(|input: &[u8]| {
            let text = match input.split_first() {
                Some((&pick, rest)) if pick < 128 => {
                    let key = KEYS[usize::from(pick) % KEYS.len()];
                    let value = String::from_utf8_lossy(rest);
                    match key.split_once('.') {
                        Some((table, k)) => format!("[{table}]\n{k} = {value}\n"),
                        None => format!("{key} = {value}\n"),
                    }
                }
                _ => String::from_utf8_lossy(input).into_owned(),
            };
            match settings(
                ServeArgs::default(),
                Some(&text),
                Path::new("/var/lib/hako"),
            ) {
                Ok(config) => {
                    assert!(
                        config.storage.release_max_bytes > 0 || text.contains("release_max_size")
                    );
                    assert!(config.stop_grace < Duration::from_secs(u64::MAX / 2));
                }
                Err(f) => assert_eq!(f.exit, Exit::Usage, "{text:?}: {:#}", f.error),
            }
        });
}

#[test]
fn a_config_file_reaches_the_settings() {
    let text = r#"
        listen = "127.0.0.1:8081"
        trusted_proxies = ["10.0.0.0/8", "192.0.2.7"]
        release_max_size = "100MiB"
        release_max_files = 5000
        data_quota = "none"
        [database]
        max_user_connections = 7
    "#;
    let c = settings(ServeArgs::default(), Some(text), Path::new("/d")).unwrap();
    assert_eq!(c.listen, "127.0.0.1:8081".parse().unwrap());
    assert!(
        c.proxy
            .trusted_proxies
            .contains("10.1.2.3".parse().unwrap())
    );
    assert!(
        !c.proxy
            .trusted_proxies
            .contains("192.0.2.8".parse().unwrap())
    );
    assert_eq!(c.storage.release_max_bytes, 100 << 20);
    assert_eq!(c.storage.release_max_files, 5000);
    assert_eq!(c.storage.data_quota, None);
    assert_eq!(c.database.max_user_connections, 7);
    // Command-line options win; a bad entry is a usage error that names it.
    let args = ServeArgs {
        trusted_proxies: vec!["fd00::/8".into()],
        ..ServeArgs::default()
    };
    let c = settings(args, Some(text), Path::new("/d")).unwrap();
    assert!(
        !c.proxy
            .trusted_proxies
            .contains("10.1.2.3".parse().unwrap())
    );
    let bad = settings(
        ServeArgs::default(),
        Some("trusted_proxies = [\"10.0.0.1/8\"]"),
        Path::new("/d"),
    );
    let err = bad.expect_err("refused");
    assert_eq!(err.exit, Exit::Usage);
    assert!(
        format!("{:#}", err.error).contains("10.0.0.1/8"),
        "{:#}",
        err.error
    );
    let bad = settings(
        ServeArgs::default(),
        Some("data_quota = \"lots\""),
        Path::new("/d"),
    );
    assert!(format!("{:#}", bad.expect_err("refused").error).contains("data_quota"));
}
