//! Fuzz targets for the model's parsers of outside input: the command-line splitter with
//! `$VAR` expansion, the human units, an app's JSON (serde + validate) and its manifest
//! (`hako.toml`).
//!
//! `cargo test` runs each for under a second on random inputs after replaying its corpus
//! (`fuzz/__fuzz__/<target>/corpus/`, and `crashes/`: inputs that once failed, kept as
//! regressions). Long runs: see README, "Fuzzing".

use std::time::Duration;

use hako_model::command::split;
use hako_model::{AppSpec, ByteSize, HumanDuration};

/// Random-input time per target in the normal suite (BOLERO_RANDOM_TEST_TIME_MS overrides).
const SUITE_TIME: Duration = Duration::from_millis(700);

fn env(name: &str) -> Option<String> {
    match name {
        "PORT" => Some("8080".into()),
        "SPACED" => Some("a b\t'c\"".into()),
        _ => None,
    }
}

/// Quotes a word so that the splitter gives it back unchanged.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

#[test]
fn command_line() {
    bolero::check!(name = "command_line")
        .with_test_time(SUITE_TIME)
        .for_each(|input: &[u8]| {
            let line = String::from_utf8_lossy(input);
            let Ok(words) = split(&line, &env) else {
                return;
            };
            assert!(
                !words.is_empty() && !words[0].is_empty(),
                "{line:?} → {words:?}"
            );
            // Quoted back, the words split into themselves, with nothing expanded.
            let quoted: Vec<String> = words.iter().map(|w| quote(w)).collect();
            let again =
                split(&quoted.join(" "), &|_| Some("EXPANDED".into())).expect("quoted words split");
            assert_eq!(again, words, "{line:?}");
        });
}

#[test]
fn byte_size() {
    bolero::check!(name = "byte_size")
        .with_test_time(SUITE_TIME)
        .for_each(|input: &[u8]| {
            let text = String::from_utf8_lossy(input);
            if let Ok(size) = text.parse::<ByteSize>() {
                // What hako prints, it reads back as the same number of bytes.
                let shown = size.to_string();
                assert_eq!(shown.parse::<ByteSize>(), Ok(size), "{text:?} → {shown:?}");
            }
        });
    bolero::check!(name = "byte_size_numbers")
        .with_type::<u64>()
        .with_test_time(SUITE_TIME / 4)
        .for_each(|&n| {
            let shown = ByteSize(n).to_string();
            assert_eq!(shown.parse::<ByteSize>(), Ok(ByteSize(n)), "{shown}");
        });
}

#[test]
fn human_duration() {
    bolero::check!(name = "human_duration")
        .with_test_time(SUITE_TIME)
        .for_each(|input: &[u8]| {
            let text = String::from_utf8_lossy(input);
            if let Ok(d) = text.parse::<HumanDuration>() {
                let shown = d.to_string();
                assert_eq!(
                    shown.parse::<HumanDuration>(),
                    Ok(d),
                    "{text:?} → {shown:?}"
                );
            }
        });
}

/// An app's JSON: some inputs are raw bytes, the rest a valid spec with one field replaced
/// by a fuzzed value, so validation is reached often.
#[test]
fn app_json() {
    let base = serde_json::json!({
        "name": "blog", "hosts": ["blog.example"], "image": "php",
        "cmd": "php -S 0.0.0.0:$PORT -t /app", "env": {"A": "1"},
    });
    let fields = [
        "name",
        "hosts",
        "image",
        "cmd",
        "env",
        "port",
        "user",
        "workdir",
        "memory",
        "cpu",
        "pids",
        "min",
        "max",
        "idle_timeout",
        "max_lifetime",
        "start_timeout",
        "health_path",
        "network",
        "stop_signal",
        "warm_pool",
        "seccomp",
        "seccomp_reason",
    ];
    bolero::check!(name = "app_json")
        .with_test_time(SUITE_TIME)
        .for_each(|input: &[u8]| {
            let spec: Option<AppSpec> = match input.split_first() {
                Some((&pick, rest)) if pick < 200 => {
                    let field = fields[usize::from(pick) % fields.len()];
                    let text = String::from_utf8_lossy(rest);
                    let value = serde_json::from_str(&text)
                        .unwrap_or_else(|_| serde_json::Value::String(text.into_owned()));
                    let mut v = base.clone();
                    v[field] = value;
                    serde_json::from_value(v).ok()
                }
                _ => serde_json::from_slice(input).ok(),
            };
            let Some(mut spec) = spec else { return };
            if spec.validate().is_err() {
                return;
            }
            check_valid(&spec);
            // Valid specs are stable: stored and read back, they validate to themselves.
            let stored = serde_json::to_string(&spec).expect("serializable");
            let mut back: AppSpec = serde_json::from_str(&stored).expect("reads back");
            back.validate().expect("still valid");
            assert_eq!(back, spec);
        });
}

/// What a valid spec promises the agent and the runtime.
fn check_valid(spec: &AppSpec) {
    let words = spec.command(spec.port).expect("a valid spec has a command");
    let nul = |s: &str| s.contains('\0');
    assert!(
        !words.iter().any(|w| nul(w)),
        "NUL in the command: {spec:?}"
    );
    for (k, v) in spec.environment(spec.port) {
        assert!(!nul(&k) && !nul(&v) && !k.contains('='), "env {k:?}={v:?}");
    }
    assert!(
        !nul(&spec.workdir) && spec.workdir.starts_with('/'),
        "{:?}",
        spec.workdir
    );
    if let Some(u) = &spec.user {
        assert!(
            !u.is_empty() && !u.chars().any(char::is_control),
            "user {u:?}"
        );
    }
    if let Some(p) = &spec.health_path {
        // It goes into the probe's request line.
        assert!(
            p.starts_with('/') && p.bytes().all(|b| b.is_ascii_graphic()),
            "health path {p:?}"
        );
    }
    assert!(spec.memory.0 >= 4 << 20 && spec.pids > 0 && spec.max >= spec.min.max(1));
}

#[test]
fn manifest() {
    bolero::check!(name = "manifest")
        .with_test_time(SUITE_TIME)
        .for_each(|input: &[u8]| {
            let text = String::from_utf8_lossy(input);
            // Never a panic; what reads, validates or says why not; a refused file's message
            // is never empty.
            match hako_model::Manifest::parse(&text) {
                Ok(m) => {
                    if let Ok(name) = m.app_name(Some("fuzz")) {
                        let _ = m.spec(&name);
                    }
                }
                Err(e) => assert!(!e.to_string().is_empty()),
            }
        });
}
