//! A person's credentials for git hosts: a username and token per host, kept as a sealed
//! secret with the purpose `git:<host>` (the pair as JSON, so both are sealed together).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::{Result, Store, StoreError};

const PURPOSE_PREFIX: &str = "git:";

/// An opened credential. `Debug` never shows the token.
pub struct GitCredential {
    pub username: String,
    pub token: Zeroizing<String>,
}

impl std::fmt::Debug for GitCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitCredential")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    username: String,
    token: String,
}

fn purpose(host: &str) -> String {
    format!("{PURPOSE_PREFIX}{host}")
}

impl Store {
    /// Stores (or replaces) the owner's credential for `host` (lowercase `name[:port]`).
    pub async fn put_git_credential(
        &self,
        owner_id: Uuid,
        host: &str,
        username: &str,
        token: &str,
    ) -> Result<()> {
        let plaintext = Zeroizing::new(
            serde_json::to_vec(&Sealed {
                username: username.to_owned(),
                token: token.to_owned(),
            })
            .map_err(|err| StoreError::Corrupt(err.to_string()))?,
        );
        self.put_secret(owner_id, &purpose(host), &plaintext).await
    }

    /// The owner's credential for `host`, if they stored one.
    pub async fn git_credential(
        &self,
        owner_id: Uuid,
        host: &str,
    ) -> Result<Option<GitCredential>> {
        let plaintext = match self.secret(owner_id, &purpose(host)).await {
            Ok(plaintext) => plaintext,
            Err(StoreError::NotFound) => return Ok(None),
            Err(err) => return Err(err),
        };
        let sealed: Sealed = serde_json::from_slice(&plaintext)
            .map_err(|_| StoreError::Corrupt(format!("git credential for {host}")))?;
        Ok(Some(GitCredential {
            username: sealed.username,
            token: Zeroizing::new(sealed.token),
        }))
    }

    /// The hosts the owner has a credential for, each with its username and when it was set.
    pub async fn git_credentials(
        &self,
        owner_id: Uuid,
    ) -> Result<Vec<(String, String, DateTime<Utc>)>> {
        let mut out = Vec::new();
        for (purpose, updated_at) in self.secret_purposes(owner_id).await? {
            let Some(host) = purpose.strip_prefix(PURPOSE_PREFIX) else {
                continue;
            };
            if let Some(credential) = self.git_credential(owner_id, host).await? {
                out.push((host.to_owned(), credential.username, updated_at));
            }
        }
        Ok(out)
    }

    pub async fn delete_git_credential(&self, owner_id: Uuid, host: &str) -> Result<()> {
        self.delete_secret(owner_id, &purpose(host)).await
    }
}
