//! `hako app delete`: an app, its releases and data, and — asked separately — its database.

use std::io::IsTerminal;

use hako_api::{Client, DatabaseOnDelete};

use crate::cmd::{Exit, Failure, api, out};

/// `hako app delete NAME [--yes] [--drop-database | --keep-database]`.
pub(super) fn delete(
    client: &Client,
    name: String,
    yes: bool,
    drop_database: bool,
    keep_database: bool,
) -> Result<u8, Failure> {
    let app = api(client.app(&name))?;
    let interactive = std::io::stdin().is_terminal();
    if !yes {
        if !interactive {
            return Err(Failure::new(
                Exit::Usage,
                anyhow::anyhow!(
                    "deleting {name} removes its releases and data: add --yes to confirm"
                ),
            ));
        }
        if !ask(&format!("delete app {name} with its releases and data?")) {
            out("not deleted\n");
            return Ok(1);
        }
    }
    let choice = match (&app.database_grant, drop_database, keep_database) {
        (None, _, _) => None,
        (Some(_), true, _) => Some(DatabaseOnDelete::Drop),
        (Some(_), _, true) => Some(DatabaseOnDelete::Keep),
        (Some(g), false, false) if interactive => Some(
            if ask(&format!(
                "also drop its database {} with all its data? This cannot be undone.",
                g.database
            )) {
                DatabaseOnDelete::Drop
            } else {
                DatabaseOnDelete::Keep
            },
        ),
        (Some(g), false, false) => {
            return Err(Failure::new(
                Exit::Usage,
                anyhow::anyhow!(
                    "{name} has a database ({}): add --drop-database to drop it with the app, or --keep-database to keep it",
                    g.database
                ),
            ));
        }
    };
    match choice {
        Some(c) => api(client.delete_app_with(&name, c))?,
        None => api(client.delete_app(&name))?,
    }
    out(&format!("deleted app {name}\n"));
    if let (Some(g), Some(c)) = (&app.database_grant, choice) {
        out(&match c {
            DatabaseOnDelete::Drop => format!("dropped database {}\n", g.database),
            DatabaseOnDelete::Keep => format!("kept database {}\n", g.database),
        });
    }
    Ok(0)
}

/// Asks a yes/no question on the terminal; only an explicit yes is yes.
fn ask(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}
