//! What the installed systemd unit says to run: its `ExecStart=` command and `Environment=`
//! settings, read from the unit file as systemd would (for the plain lines hako.service has),
//! so the test starts hako exactly as `systemctl start hako` does.

/// The service's command and environment.
#[derive(Debug, PartialEq, Eq)]
pub struct Service {
    /// `ExecStart=`, split into words.
    pub exec_start: Vec<String>,
    /// Every `Environment=` assignment, in order.
    pub environment: Vec<(String, String)>,
}

/// Reads the `[Service]` section of a unit file. Panics on what this reader does not handle
/// (quotes, specifiers, `$` expansion, a `-`/`@`/`+` prefix, continuation lines, a second
/// `ExecStart=`): the unit would then need a real systemd to be understood.
#[track_caller]
pub fn read(text: &str) -> Service {
    let mut section = "";
    let mut exec_start = None;
    let mut environment = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            section = line;
            continue;
        }
        if section != "[Service]" {
            continue;
        }
        assert!(
            !line.ends_with('\\') && !line.contains(['"', '\'', '%', '$']),
            "a unit line this reader cannot take: {line}"
        );
        let Some((key, value)) = line.split_once('=') else {
            panic!("not a setting: {line}")
        };
        match key.trim() {
            "ExecStart" => {
                assert!(exec_start.is_none(), "two ExecStart= lines");
                let value = value.trim();
                assert!(
                    value.starts_with('/'),
                    "ExecStart= without an absolute path or with a prefix: {value}"
                );
                exec_start = Some(value.split_whitespace().map(String::from).collect());
            }
            "Environment" => {
                for assignment in value.split_whitespace() {
                    let (k, v) = assignment
                        .split_once('=')
                        .unwrap_or_else(|| panic!("not KEY=VALUE: {assignment}"));
                    environment.push((k.to_string(), v.to_string()));
                }
            }
            _ => {}
        }
    }
    Service {
        exec_start: exec_start.expect("the unit has an ExecStart= line in [Service]"),
        environment,
    }
}

/// The value of `key` in the `[section]` of a unit file (the last one, as systemd takes it).
pub fn setting<'a>(text: &'a str, section: &str, key: &str) -> Option<&'a str> {
    let mut current = "";
    let mut found = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            current = line;
        } else if current.trim_matches(['[', ']']) == section
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == key
        {
            found = Some(v.trim());
        }
    }
    found
}

#[test]
fn reads_the_command_and_environment_of_the_service() {
    let text = "# x\n[Unit]\nDescription=a\nExecStart=/not/this\n\n[Service]\n\
                Environment=A=1 B=2\nExecStart=/usr/bin/hako serve --config /etc/hako/hako.toml\n\
                Environment=C=3\n[Install]\nWantedBy=multi-user.target\n";
    let s = read(text);
    assert_eq!(
        s.exec_start,
        ["/usr/bin/hako", "serve", "--config", "/etc/hako/hako.toml"]
    );
    assert_eq!(
        s.environment,
        [
            ("A".into(), "1".into()),
            ("B".into(), "2".into()),
            ("C".into(), "3".into())
        ]
    );
    assert_eq!(
        setting(text, "Install", "WantedBy"),
        Some("multi-user.target")
    );
    assert_eq!(setting(text, "Service", "Restart"), None);
}

#[test]
fn refuses_what_it_cannot_read() {
    for bad in [
        "[Service]\nExecStart=-/usr/bin/hako serve\n",
        "[Service]\nExecStart=/usr/bin/hako \"serve\"\n",
        "[Service]\nExecStart=/usr/bin/hako %i\n",
        "[Service]\nExecStart=/a\nExecStart=/b\n",
        "[Service]\nType=simple\n",
    ] {
        assert!(std::panic::catch_unwind(|| read(bad)).is_err(), "{bad}");
    }
}
