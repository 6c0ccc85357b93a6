//! An app's limits as its containers get them (the cgroup's memory, CPU quota and pids), and
//! the proof that no limit a user can type reaches a cgroup as "unlimited" or as something
//! the node cannot give.
//!
//! The chain: a user's text goes through the one parser of its kind (`hako_model::units`,
//! or the integer parser for pids), the app's validation ([`hako_model::AppSpec::validate`],
//! through [`hako_model::AppPatch`]) and the node's capacity
//! ([`hako_model::NodeCapacity::check_app`], the API's check at create and update). What
//! passes all three becomes [`container_limits`] here.

use hako_model::{AppSpec, InstanceLimits};
use hako_runtime::Limits;

/// The cgroup limits of an instance of `spec`: memory and pids always, CPU if set.
pub fn container_limits(spec: &AppSpec) -> Limits {
    Limits {
        memory_max: Some(spec.memory.0),
        cpu_cores: spec.cpu,
        pids_max: Some(spec.pids),
    }
}

/// The cgroup limits of an instance from the model's [`InstanceLimits`] (a live resize).
pub fn runtime_limits(l: &InstanceLimits) -> Limits {
    Limits {
        memory_max: Some(l.memory.0),
        cpu_cores: l.cpu,
        pids_max: Some(l.pids),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::str::FromStr;
    use std::time::Duration;

    use hako_model::units::{MAX_DURATION, parse_cpu};
    use hako_model::{AppPatch, ByteSize, HumanDuration, ImageRef, NodeCapacity};
    use hako_runtime::{CPU_PERIOD_US, PIDS_CEILING};
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    use super::*;

    /// A 2-core node as this VM, with 4 GiB and the default pid_max.
    const NODE: NodeCapacity = NodeCapacity {
        cpus: 2,
        memory_bytes: 4 << 30,
        max_pids: 32768,
    };

    fn base() -> AppSpec {
        let mut s = AppSpec::new(
            "blog",
            vec!["blog.example".into()],
            ImageRef::latest("php"),
            "php -S 0.0.0.0:$PORT -t /app",
        );
        s.validate().unwrap();
        s
    }

    /// Any text, and text shaped like what people type for a number with a unit.
    fn typed() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[ +-]?[0-9]{0,24}(\\.[0-9]{0,24})?([eE][+-]?[0-9]{1,4})? ?(|k|K|M|G|T|P|E|[kKmMgGtTpPeE]i?[bB]|[kKmMgGtTpPeE][bB]|B|b|ns|us|ms|s|m|h|d|inf|x)",
            prop::sample::select(vec![
                "inf",
                "-inf",
                "+inf",
                "nan",
                "NaN",
                "infinity",
                "0",
                "-0",
                "0.0",
                "1e309",
                "1e-400",
                "18446744073709551615",
                "18446744073709551616",
                "99999999999",
                "4194305",
                "16EiB",
                "17179869184GiB",
                "0.001",
                "0.009",
                "2.0000001",
            ])
            .prop_map(String::from),
        ]
    }

    /// Mostly plausible values of one kind (so that many inputs get past every parser and
    /// the checks behind them are exercised), else anything [`typed`].
    fn mostly(plausible: &'static str) -> impl Strategy<Value = String> {
        prop_oneof![3 => plausible, 2 => typed()]
    }

    /// The settings a user types a limit or a time for.
    #[derive(Debug, Clone, Copy)]
    enum Field {
        Cpu,
        Memory,
        Pids,
        IdleTimeout,
        MaxLifetime,
    }

    const FIELDS: [Field; 5] = [
        Field::Cpu,
        Field::Memory,
        Field::Pids,
        Field::IdleTimeout,
        Field::MaxLifetime,
    ];

    /// A field and a text for it: mostly plausible for that field, often not.
    fn field_and_text() -> impl Strategy<Value = (Field, String)> {
        prop::sample::select(FIELDS.to_vec()).prop_flat_map(|f| {
            let plausible = match f {
                Field::Cpu => "[0-2](\\.[0-9]{1,4})?|[0-9]{1,3}(\\.[0-9]{1,3})?",
                Field::Memory => "[0-9]{1,4}(\\.[0-9]{1,3})?(|B|k|kB|KiB|M|MB|MiB|G|GB|GiB|T)",
                Field::Pids => "[0-9]{1,6}",
                Field::IdleTimeout | Field::MaxLifetime => {
                    "([0-9]{1,5}(\\.[0-9]{1,2})?(ns|us|ms|s|m|h|d)){1,3}"
                }
            };
            (Just(f), mostly(plausible))
        })
    }

    /// What one user input ends as: refused somewhere, or the spec whose limits a cgroup gets.
    enum Outcome {
        Refused,
        Accepted(Box<AppSpec>),
    }

    /// The command line's path for one setting: the text through its parser (as clap calls
    /// it for `hako app create/update`), then the patch, validation and the node's capacity.
    fn through_the_cli(field: Field, text: &str) -> Outcome {
        let mut patch = AppPatch::default();
        let parsed = match field {
            Field::Cpu => parse_cpu(text).map(|c| patch.cpu = Some(Some(c))).is_ok(),
            Field::Memory => ByteSize::from_str(text)
                .map(|m| patch.memory = Some(m))
                .is_ok(),
            Field::Pids => u64::from_str(text).map(|p| patch.pids = Some(p)).is_ok(),
            Field::IdleTimeout => HumanDuration::from_str(text)
                .map(|d| patch.idle_timeout = Some(d))
                .is_ok(),
            Field::MaxLifetime => HumanDuration::from_str(text)
                .map(|d| patch.max_lifetime = Some(Some(d)))
                .is_ok(),
        };
        if parsed {
            accept(patch)
        } else {
            Outcome::Refused
        }
    }

    /// A text as a client would put it in JSON: as it is if it is a JSON value by itself (a
    /// number), else as a string.
    fn json(text: &str) -> String {
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(_) => text.to_string(),
            Err(_) => serde_json::Value::String(text.into()).to_string(),
        }
    }

    /// The API's path for one setting: the text as a JSON value in `PATCH /v1/apps/NAME`.
    fn through_the_api(field: Field, text: &str) -> Outcome {
        let name = match field {
            Field::Cpu => "cpu",
            Field::Memory => "memory",
            Field::Pids => "pids",
            Field::IdleTimeout => "idle_timeout",
            Field::MaxLifetime => "max_lifetime",
        };
        match serde_json::from_str::<AppPatch>(&format!(r#"{{"{name}": {}}}"#, json(text))) {
            Ok(patch) => accept(patch),
            Err(_) => Outcome::Refused,
        }
    }

    fn accept(patch: AppPatch) -> Outcome {
        match patch.apply(&base()) {
            Ok(spec) if NODE.check_app(&spec).is_ok() => Outcome::Accepted(Box::new(spec)),
            _ => Outcome::Refused,
        }
    }

    /// What every accepted spec must give a cgroup: finite, positive, within the node.
    fn assert_startable(spec: &AppSpec) -> Result<(), TestCaseError> {
        let l = container_limits(spec);
        let memory = l.memory_max.expect("apps always have a memory limit");
        prop_assert!((4 << 20..=NODE.memory_bytes).contains(&memory), "{memory}");
        let pids = l.pids_max.expect("apps always have a pids limit");
        prop_assert!((1..=NODE.max_pids).contains(&pids), "{pids}");
        prop_assert!(pids <= PIDS_CEILING);
        if let Some(cpu) = l.cpu_cores {
            prop_assert!(cpu.is_finite() && cpu >= 0.01 && cpu <= f64::from(NODE.cpus));
            let quota = l.cpu_quota_us().expect("a cpu limit has a quota");
            prop_assert!((1000..=u64::from(NODE.cpus) * CPU_PERIOD_US).contains(&quota));
        }
        // The runtime's own check (the one every start runs) agrees.
        prop_assert_eq!(l.validate_for_cores(NODE.cpus as usize), Ok(()));
        for d in [
            Some(spec.idle_timeout),
            spec.max_lifetime,
            Some(spec.start_timeout),
        ]
        .into_iter()
        .flatten()
        {
            prop_assert!(d.0 >= Duration::from_millis(100) && d.0 <= MAX_DURATION);
        }
        Ok(())
    }

    #[test]
    fn no_limit_a_user_can_type_is_unlimited_or_unstartable() {
        let mut runner = TestRunner::new(Config {
            cases: 3000,
            failure_persistence: None,
            ..Config::default()
        });
        // Accepted and refused inputs of each path.
        let counts: [Cell<u32>; 4] = Default::default();
        let [cli_ok, cli_no, api_ok, api_no] = &counts;
        let count = |c: &Cell<u32>| c.set(c.get() + 1);
        runner
            .run(&field_and_text(), |(field, text)| {
                match through_the_cli(field, &text) {
                    Outcome::Accepted(spec) => {
                        count(cli_ok);
                        assert_startable(&spec)?;
                        if let Field::Cpu = field {
                            // A typed cpu limit always reaches the cgroup as a quota.
                            prop_assert!(container_limits(&spec).cpu_quota_us().is_some());
                        }
                    }
                    Outcome::Refused => count(cli_no),
                }
                match through_the_api(field, &text) {
                    Outcome::Accepted(spec) => {
                        count(api_ok);
                        assert_startable(&spec)?;
                    }
                    Outcome::Refused => count(api_no),
                }
                Ok(())
            })
            .unwrap();
        let [cli_ok, cli_no, api_ok, api_no] = counts.map(Cell::into_inner);
        eprintln!(
            "limits: cli {cli_ok} accepted {cli_no} refused; api {api_ok} accepted {api_no} refused"
        );
        // Not vacuous: both paths accepted many inputs and refused many others.
        for (path, ok, no) in [("cli", cli_ok, cli_no), ("api", api_ok, api_no)] {
            assert!(
                ok >= 300 && no >= 300,
                "{path}: {ok} accepted, {no} refused"
            );
        }
    }

    #[test]
    fn every_setting_at_once_stays_within_the_node() {
        let mut runner = TestRunner::new(Config {
            cases: 500,
            failure_persistence: None,
            ..Config::default()
        });
        let texts = prop::collection::vec(field_and_text(), 1..8);
        runner
            .run(&texts, |settings| {
                let mut spec = base();
                for (field, text) in settings {
                    if let Outcome::Accepted(next) = through_the_cli_on(&spec, field, &text) {
                        spec = *next;
                    }
                }
                assert_startable(&spec)
            })
            .unwrap();
    }

    /// [`through_the_cli`] on a given spec (a sequence of updates).
    fn through_the_cli_on(spec: &AppSpec, field: Field, text: &str) -> Outcome {
        match through_the_cli(field, text) {
            Outcome::Accepted(one) => {
                let mut patch = AppPatch::default();
                match field {
                    Field::Cpu => patch.cpu = Some(one.cpu),
                    Field::Memory => patch.memory = Some(one.memory),
                    Field::Pids => patch.pids = Some(one.pids),
                    Field::IdleTimeout => patch.idle_timeout = Some(one.idle_timeout),
                    Field::MaxLifetime => patch.max_lifetime = Some(one.max_lifetime),
                }
                match patch.apply(spec) {
                    Ok(s) if NODE.check_app(&s).is_ok() => Outcome::Accepted(Box::new(s)),
                    _ => Outcome::Refused,
                }
            }
            Outcome::Refused => Outcome::Refused,
        }
    }

    #[test]
    fn the_reported_inputs_are_refused_with_what_to_do() {
        let err = |cpu: &str| parse_cpu(cpu).unwrap_err().to_string();
        assert_eq!(
            err("inf"),
            "cpu limit \"inf\" is not valid: give a positive number of cores such as 0.5 or 2"
        );
        assert_eq!(
            err("nan"),
            "cpu limit \"nan\" is not valid: give a positive number of cores such as 0.5 or 2"
        );
        let capacity = |p: AppPatch| NODE.check_app(&p.apply(&base()).unwrap());
        let cpu64 = AppPatch {
            cpu: Some(Some(parse_cpu("64").unwrap())),
            ..AppPatch::default()
        };
        assert_eq!(
            capacity(cpu64).unwrap_err().to_string(),
            "cpu limit of 64 cores is more than this node has (2 cores): give at most 2"
        );
        let pids = AppPatch {
            pids: Some("99999999999".parse().unwrap()),
            ..AppPatch::default()
        };
        assert_eq!(
            capacity(pids).unwrap_err().to_string(),
            "pids limit of 99999999999 is more than this node allows (32768): give at most 32768"
        );
        // The API's JSON cannot carry NaN or infinity at all.
        for cpu in ["NaN", "Infinity", "1e400", "-1", "0"] {
            assert!(
                matches!(through_the_api(Field::Cpu, cpu), Outcome::Refused),
                "{cpu}"
            );
        }
    }

    #[test]
    fn limits_follow_the_spec() {
        let mut s = base();
        s.cpu = Some(0.5);
        assert_eq!(
            container_limits(&s),
            Limits {
                memory_max: Some(256 << 20),
                cpu_cores: Some(0.5),
                pids_max: Some(512)
            }
        );
    }
}
