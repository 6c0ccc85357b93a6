//! `hako tenant …` and `hako token …`: site owners' accounts, their quotas and their tokens,
//! through the API with the admin token (a tenant's token may `hako tenant show` its own).

use std::io::IsTerminal;
use std::path::Path;
use std::str::FromStr;

use anyhow::Context;
use hako_api::Client;
use hako_api::client::TenantInfo;
use hako_model::units::format_size;
use hako_model::{ByteSize, Quota, QuotaPatch, TokenRecord};

use super::{Exit, Failure, OrExit, api_failure, out};

#[derive(Debug, clap::Args)]
pub struct TenantArgs {
    #[command(subcommand)]
    pub command: TenantCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum TenantCommand {
    /// Create a tenant (a site owner's account) with a quota; then give its owner a token
    /// with `hako token create --tenant NAME`.
    Create {
        name: String,
        #[command(flatten)]
        quota: QuotaArgs,
    },
    /// Change a tenant's quota (only the bounds given change; `none` removes one).
    Update {
        name: String,
        #[command(flatten)]
        quota: QuotaArgs,
    },
    /// List tenants with their quotas and what their apps hold.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one tenant (a tenant's token may show its own).
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Changes to a tenant's quota and tokens, with who made them.
    Events {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a tenant that has no apps left, and revoke all its tokens (asks first unless
    /// --yes).
    Delete {
        name: String,
        #[arg(long, short)]
        yes: bool,
    },
}

/// A quota's bounds: a number or size, or `none` for no bound.
#[derive(Debug, Clone, clap::Args)]
pub struct QuotaArgs {
    /// Most apps the tenant may have.
    #[arg(long, value_name = "N|none")]
    pub max_apps: Option<Bound<u32>>,
    /// Most memory of all its apps at their most instances (memory × (max + warm pool)
    /// summed), e.g. 4GiB.
    #[arg(long, value_name = "SIZE|none")]
    pub max_memory: Option<Bound<ByteSize>>,
    /// Most instances of all its apps together (max + warm pool summed).
    #[arg(long, value_name = "N|none")]
    pub max_instances: Option<Bound<u32>>,
    /// Largest code release (unpacked), e.g. 100MiB; the node's own bound applies too.
    #[arg(long, value_name = "SIZE|none")]
    pub max_release_size: Option<Bound<ByteSize>>,
}

/// A bound, or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound<T>(pub Option<T>);

impl<T: FromStr> FromStr for Bound<T>
where
    T::Err: std::fmt::Display,
{
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim().eq_ignore_ascii_case("none") {
            return Ok(Bound(None));
        }
        s.trim()
            .parse()
            .map(|v| Bound(Some(v)))
            .map_err(|e| format!("{e} (or none for no bound)"))
    }
}

impl QuotaArgs {
    fn patch(&self) -> QuotaPatch {
        QuotaPatch {
            max_apps: self.max_apps.map(|b| b.0),
            max_memory: self.max_memory.map(|b| b.0),
            max_instances: self.max_instances.map(|b| b.0),
            max_release_size: self.max_release_size.map(|b| b.0),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Make a token for a tenant. It is printed once: hand it to the site owner, who sets it
    /// as HAKO_TOKEN; hako keeps only its hash.
    Create {
        #[arg(long)]
        tenant: String,
        /// Its name, to tell tokens apart and to revoke it (default token-N).
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List tokens (their names and first characters, never the tokens).
    List {
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: it stops working at once.
    Revoke {
        #[arg(long)]
        tenant: String,
        name: String,
    },
}

fn client(data_dir: &Path) -> Result<Client, Failure> {
    Client::from_env(data_dir)
        .context("cannot find hako's API (is `hako serve` running? set HAKO_API and HAKO_TOKEN for a remote one)")
        .or_exit(Exit::Failure)
}

pub async fn tenant(args: TenantArgs, data_dir: &Path) -> Result<u8, Failure> {
    let client = client(data_dir)?;
    tokio::task::spawn_blocking(move || run_tenant(args.command, &client))
        .await
        .map_err(|e| Failure::new(Exit::Failure, e))?
}

pub async fn token(args: TokenArgs, data_dir: &Path) -> Result<u8, Failure> {
    let client = client(data_dir)?;
    tokio::task::spawn_blocking(move || run_token(args.command, &client))
        .await
        .map_err(|e| Failure::new(Exit::Failure, e))?
}

fn json(v: &impl serde::Serialize) {
    out(&format!(
        "{}\n",
        serde_json::to_string_pretty(v).expect("serializable")
    ));
}

fn run_tenant(command: TenantCommand, client: &Client) -> Result<u8, Failure> {
    match command {
        TenantCommand::Create { name, quota } => {
            let q: Quota = quota.patch().apply(&Quota::default());
            let t = client.create_tenant(&name, &q).map_err(api_failure)?;
            out(&format!(
                "created tenant {} ({}): give its owner a token with 'hako token create --tenant {}'\n",
                t.tenant.name,
                quota_words(&t.tenant.quota),
                t.tenant.name
            ));
        }
        TenantCommand::Update { name, quota } => {
            let patch = quota.patch();
            if patch.is_empty() {
                return Err(Failure::new(
                    Exit::Usage,
                    anyhow::anyhow!(
                        "nothing to change: give --max-apps, --max-memory, --max-instances or --max-release-size"
                    ),
                ));
            }
            let t = client.update_tenant(&name, &patch).map_err(api_failure)?;
            out(&format!(
                "updated tenant {}: {}\n",
                t.tenant.name,
                quota_words(&t.tenant.quota)
            ));
        }
        TenantCommand::List { json: as_json } => {
            let tenants = client.tenants().map_err(api_failure)?;
            if as_json {
                json(&tenants);
            } else {
                out(&tenant_table(&tenants));
            }
        }
        TenantCommand::Show {
            name,
            json: as_json,
        } => {
            let t = client.tenant(&name).map_err(api_failure)?;
            if as_json {
                json(&t);
            } else {
                out(&tenant_table(std::slice::from_ref(&t)));
            }
        }
        TenantCommand::Events {
            name,
            json: as_json,
        } => {
            let events = client.tenant_events(&name).map_err(api_failure)?;
            if as_json {
                json(&events);
            } else {
                let mut s = String::new();
                for e in events {
                    s += &format!(
                        "{} {:<16} {:<16} {}\n",
                        super::format_time_ms(e.time_unix_ms),
                        format!("{:?}", e.kind).to_lowercase(),
                        e.actor.as_deref().unwrap_or("-"),
                        e.reason
                    );
                }
                out(&s);
            }
        }
        TenantCommand::Delete { name, yes } => {
            if !yes {
                if !std::io::stdin().is_terminal() {
                    return Err(Failure::new(
                        Exit::Usage,
                        anyhow::anyhow!(
                            "deleting tenant {name} revokes all its tokens: add --yes to confirm"
                        ),
                    ));
                }
                eprint!("delete tenant {name} and revoke all its tokens? [y/N] ");
                let mut answer = String::new();
                let _ = std::io::stdin().read_line(&mut answer);
                if !matches!(answer.trim(), "y" | "Y" | "yes") {
                    out("not deleted\n");
                    return Ok(1);
                }
            }
            client.delete_tenant(&name).map_err(api_failure)?;
            out(&format!("deleted tenant {name}\n"));
        }
    }
    Ok(0)
}

fn run_token(command: TokenCommand, client: &Client) -> Result<u8, Failure> {
    match command {
        TokenCommand::Create {
            tenant,
            name,
            json: as_json,
        } => {
            let made = client
                .create_token(&tenant, name.as_deref())
                .map_err(api_failure)?;
            if as_json {
                json(&made);
            } else {
                eprintln!(
                    "token {} of tenant {}: give it to the site owner as HAKO_TOKEN (with HAKO_API); it is not shown again",
                    made.record.name, made.record.tenant
                );
                out(&format!("{}\n", made.token));
            }
        }
        TokenCommand::List {
            tenant,
            json: as_json,
        } => {
            let tenants = match tenant {
                Some(t) => vec![t],
                None => client
                    .tenants()
                    .map_err(api_failure)?
                    .into_iter()
                    .map(|t| t.tenant.name)
                    .collect(),
            };
            let mut all: Vec<TokenRecord> = Vec::new();
            for t in tenants {
                all.extend(client.tokens(&t).map_err(api_failure)?);
            }
            if as_json {
                json(&all);
            } else {
                let mut s = format!(
                    "{:<16} {:<16} {:<12} {}\n",
                    "TENANT", "NAME", "STARTS", "CREATED"
                );
                for t in all {
                    s += &format!(
                        "{:<16} {:<16} {:<12} {}\n",
                        t.tenant,
                        t.name,
                        t.hint,
                        super::format_time_ms(t.created_unix * 1000)
                    );
                }
                out(&s);
            }
        }
        TokenCommand::Revoke { tenant, name } => {
            client.revoke_token(&tenant, &name).map_err(api_failure)?;
            out(&format!("revoked token {name} of tenant {tenant}\n"));
        }
    }
    Ok(0)
}

fn bound<T: std::fmt::Display>(b: Option<T>) -> String {
    b.map_or("none".into(), |v| v.to_string())
}

fn quota_words(q: &Quota) -> String {
    format!(
        "max apps {}, max memory {}, max instances {}, max release size {}",
        bound(q.max_apps),
        bound(q.max_memory),
        bound(q.max_instances),
        bound(q.max_release_size)
    )
}

/// Tenants with each bound beside what their apps hold (`used/bound`).
fn tenant_table(tenants: &[TenantInfo]) -> String {
    let mut s = format!(
        "{:<16} {:<10} {:<22} {:<12} {}\n",
        "TENANT", "APPS", "MEMORY", "INSTANCES", "RELEASE"
    );
    for t in tenants {
        let (q, u) = (&t.tenant.quota, &t.usage);
        s += &format!(
            "{:<16} {:<10} {:<22} {:<12} {}\n",
            t.tenant.name,
            format!("{}/{}", u.apps, bound(q.max_apps)),
            format!("{}/{}", format_size(u.memory_bytes), bound(q.max_memory)),
            format!("{}/{}", u.instances, bound(q.max_instances)),
            bound(q.max_release_size)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    enum Cli {
        #[command(subcommand)]
        Tenant(TenantCommand),
    }

    #[test]
    fn quota_flags_take_values_or_none() {
        let Cli::Tenant(TenantCommand::Update { name, quota }) = Cli::try_parse_from([
            "hako",
            "tenant",
            "update",
            "acme",
            "--max-apps",
            "none",
            "--max-memory",
            "2GiB",
        ])
        .unwrap() else {
            panic!("not update")
        };
        assert_eq!(name, "acme");
        let p = quota.patch();
        assert_eq!(p.max_apps, Some(None), "none removes the bound");
        assert_eq!(p.max_memory, Some(Some(ByteSize(2 << 30))));
        assert_eq!(p.max_instances, None, "not given: unchanged");
        let err = Cli::try_parse_from(["hako", "tenant", "create", "a", "--max-apps", "many"])
            .err()
            .unwrap();
        assert!(err.to_string().contains("none"), "{err}");
    }
}
