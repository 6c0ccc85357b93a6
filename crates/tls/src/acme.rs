//! The ACME flow (RFC 8555) with `instant-acme`: an account (made once, its credentials kept
//! by the caller in the store), then per order: one HTTP-01 challenge per host, answered by
//! the proxy through [`Challenges`] while the CA validates, the CSR and a fresh key, and the
//! issued chain.

use std::path::PathBuf;
use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};

use crate::challenges::Challenges;

/// `[acme]` of `hako serve`'s config: where certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeConfig {
    /// The directory URL, e.g. `https://acme-v02.api.letsencrypt.org/directory`.
    pub directory: String,
    /// A contact address for the account (`mailto:` is added), or none.
    pub email: Option<String>,
    /// A PEM root certificate to trust for the directory's HTTPS (a test CA such as pebble's);
    /// default: the system's roots.
    pub ca_file: Option<PathBuf>,
}

/// Let's Encrypt's production directory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// Why an ACME step failed; the message goes into the app's event.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error("the ACME server refused or failed: {0}")]
    Acme(#[from] instant_acme::Error),
    #[error("the ACME server offers no http-01 challenge for {0}: hako answers http-01 only")]
    NoHttp01(String),
    #[error("authorization for {host} is {status:?}: the ACME server will not issue for it")]
    Authorization {
        host: String,
        status: AuthorizationStatus,
    },
    #[error(
        "validation failed: {0}; check that the host's DNS points at this server and that port 80 reaches hako"
    )]
    Invalid(String),
    #[error("stored ACME account credentials are unreadable ({0}): a new account is made")]
    Credentials(String),
}

/// A certificate just issued: the PEM chain and its new PEM private key.
#[derive(Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// An ACME account on one directory.
pub struct AcmeClient {
    account: Account,
    directory: String,
    retry: RetryPolicy,
}

impl std::fmt::Debug for AcmeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmeClient")
            .field("directory", &self.directory)
            .finish_non_exhaustive()
    }
}

impl AcmeClient {
    /// The account of `config`: restored from `stored` credentials (JSON, as returned before)
    /// when they are for the same directory, else made anew. Returns the credentials to keep
    /// when they are new.
    pub async fn connect(
        config: &AcmeConfig,
        stored: Option<&serde_json::Value>,
    ) -> Result<(AcmeClient, Option<serde_json::Value>), AcmeError> {
        let builder = || match &config.ca_file {
            Some(ca) => Account::builder_with_root(ca),
            None => Account::builder(),
        };
        let restored = stored
            .filter(|s| s["directory"].as_str() == Some(config.directory.as_str()))
            .map(|s| serde_json::from_value::<AccountCredentials>(s["credentials"].clone()));
        let (account, fresh) = match restored {
            Some(Ok(credentials)) => (builder()?.from_credentials(credentials).await?, None),
            other => {
                if let Some(Err(e)) = other {
                    tracing::warn!("{}", AcmeError::Credentials(e.to_string()));
                }
                let contact = config.email.as_ref().map(|e| format!("mailto:{e}"));
                let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
                let (account, credentials) = builder()?
                    .create(
                        &NewAccount {
                            contact: &contacts,
                            terms_of_service_agreed: true,
                            only_return_existing: false,
                        },
                        config.directory.clone(),
                        None,
                    )
                    .await?;
                let value = serde_json::json!({
                    "directory": config.directory,
                    "credentials": serde_json::to_value(&credentials)
                        .map_err(|e| AcmeError::Credentials(e.to_string()))?,
                });
                (account, Some(value))
            }
        };
        Ok((
            AcmeClient {
                account,
                directory: config.directory.clone(),
                retry: RetryPolicy::new()
                    .initial_delay(Duration::from_millis(250))
                    .backoff(1.5)
                    .timeout(Duration::from_secs(90)),
            },
            fresh,
        ))
    }

    /// The directory this account is on.
    pub fn directory(&self) -> &str {
        &self.directory
    }

    /// Orders a certificate for `hosts`: publishes each HTTP-01 answer in `challenges` (the
    /// proxy serves them), tells the CA, waits for validation, sends a CSR for a fresh key
    /// and returns the chain. The answers are withdrawn whatever happens.
    pub async fn order(
        &self,
        hosts: &[String],
        challenges: &Challenges,
    ) -> Result<Issued, AcmeError> {
        let identifiers: Vec<Identifier> =
            hosts.iter().map(|h| Identifier::Dns(h.clone())).collect();
        let mut order = self.account.new_order(&NewOrder::new(&identifiers)).await?;
        let mut published = Published {
            challenges,
            tokens: Vec::new(),
        };
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz?;
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                status => {
                    return Err(AcmeError::Authorization {
                        host: authz.identifier().to_string(),
                        status,
                    });
                }
            }
            let host = authz.identifier().to_string();
            let mut challenge = authz
                .challenge(ChallengeType::Http01)
                .ok_or_else(|| AcmeError::NoHttp01(host.clone()))?;
            challenges.publish(
                &host,
                &challenge.token,
                challenge.key_authorization().as_str(),
            );
            published.tokens.push(challenge.token.clone());
            challenge.set_ready().await?;
        }
        let status = order.poll_ready(&self.retry).await?;
        if status != OrderStatus::Ready {
            return Err(AcmeError::Invalid(failed_challenges(&mut order).await));
        }
        let key_pem = order.finalize().await?;
        let cert_pem = order.poll_certificate(&self.retry).await?;
        drop(published);
        Ok(Issued { cert_pem, key_pem })
    }
}

/// Withdraws published answers when an order ends, however it ends.
struct Published<'a> {
    challenges: &'a Challenges,
    tokens: Vec<String>,
}

impl Drop for Published<'_> {
    fn drop(&mut self) {
        for token in &self.tokens {
            self.challenges.withdraw(token);
        }
    }
}

/// What the CA said about each failed challenge of an invalid order.
async fn failed_challenges(order: &mut instant_acme::Order) -> String {
    let mut said = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(authz)) = authorizations.next().await {
        let host = authz.identifier().to_string();
        for challenge in &authz.challenges {
            if let Some(e) = &challenge.error {
                said.push(format!(
                    "{host}: {}",
                    e.detail.as_deref().unwrap_or("no detail")
                ));
            }
        }
    }
    if said.is_empty() {
        "the order became invalid".into()
    } else {
        said.join("; ")
    }
}
