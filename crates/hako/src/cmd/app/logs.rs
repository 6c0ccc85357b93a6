//! `hako app events` and `logs`: what happened to an app, and what its instances wrote.

use hako_api::Client;

use crate::cmd::{Failure, api, out};

/// `hako app events NAME [--limit N] [--json]`.
pub(super) fn events(
    client: &Client,
    name: String,
    limit: usize,
    json: bool,
) -> Result<u8, Failure> {
    let events = api(client.events(&name, Some(limit)))?;
    if json {
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&events).expect("serializable")
        ));
        return Ok(0);
    }
    let mut s = String::new();
    for e in events {
        s += &format!(
            "{} {:<12} {:<14} {}\n",
            crate::cmd::format_time_ms(e.time_unix_ms),
            format!("{:?}", e.kind).to_lowercase(),
            e.instance.as_deref().unwrap_or("-"),
            e.reason
        );
        if let Some(t) = e.log_tail {
            for line in t
                .lines()
                .rev()
                .take(10)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                s += &format!("    | {line}\n");
            }
        }
    }
    out(&s);
    Ok(0)
}

/// `hako app logs NAME [--bytes N] [--follow]`.
pub(super) fn logs(
    client: &Client,
    name: String,
    bytes: Option<usize>,
    follow: bool,
) -> Result<u8, Failure> {
    if !follow {
        out(&api(client.logs(&name, Some(bytes.unwrap_or(16384))))?);
        return Ok(0);
    }
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let mut first = true;
    api(client.follow_logs(&name, bytes, |piece| {
        let written = match piece {
            hako_api::LogPiece::Instance(id) => {
                let gap = if first { "" } else { "\n" };
                first = false;
                writeln!(stdout, "{gap}==> {id} <==")
            }
            hako_api::LogPiece::Text(text) => stdout.write_all(text.as_bytes()),
        };
        // A closed stdout (`| head`) ends the following.
        written.and_then(|()| stdout.flush()).is_ok()
    }))?;
    Ok(0)
}
