//! A person's model provider keys and their own OpenAI-compatible endpoints.
//!
//! Keys are secrets: each is sealed in the `secrets` table (so `den keys rotate` re-seals it
//! with everything else) under `provider:<id>` for den's built-in providers and
//! `endpoint:<name>` for a personal endpoint. The `model_endpoints` table holds what is not
//! secret about an endpoint: its base URL and models. Nothing here ever returns a key except
//! [`Store::provider_key`] and [`Store::endpoint_key`], which the model gateway calls at request
//! time.

use chrono::{DateTime, Utc};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::{Result, Store, StoreError, now, with_pool};

/// A stored key as it may be shown: when it was set and a short fingerprint, never the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The last four characters (`…x9Qz`) of a key long enough that they give nothing away,
    /// so a person can tell which of their keys it is; `None` for short keys.
    pub fingerprint: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// A personal OpenAI-compatible endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelEndpointRecord {
    pub owner_id: Uuid,
    /// Unique per owner; names the provider (`my-<name>`).
    pub name: String,
    /// The upstream base URL, e.g. `https://models.example.com/v1`.
    pub base_url: String,
    pub models: Vec<String>,
    /// The endpoint's key, when it has one.
    pub key: Option<KeyInfo>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What creating or replacing an endpoint needs.
pub struct NewModelEndpoint<'a> {
    pub owner_id: Uuid,
    pub name: &'a str,
    pub base_url: &'a str,
    pub models: &'a [String],
    /// `Some` sets (or replaces) the key; `None` keeps the key the endpoint has, if any.
    pub api_key: Option<&'a [u8]>,
}

/// The fingerprint of a key: its last four characters, when it has at least 16.
pub fn key_fingerprint(key: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(key).ok()?;
    let count = text.chars().count();
    (count >= 16).then(|| {
        let tail: String = text.chars().skip(count - 4).collect();
        format!("…{tail}")
    })
}

fn provider_purpose(provider: &str) -> String {
    format!("provider:{provider}")
}

fn endpoint_purpose(name: &str) -> String {
    format!("endpoint:{name}")
}

type EndpointRow = (Uuid, String, String, String, DateTime<Utc>, DateTime<Utc>);

impl Store {
    /// Seals and stores the owner's key for a built-in provider, replacing any previous one.
    pub async fn set_provider_key(&self, owner_id: Uuid, provider: &str, key: &[u8]) -> Result<()> {
        self.put_secret(owner_id, &provider_purpose(provider), key)
            .await
    }

    /// The owner's key for `provider`, if they set one.
    pub async fn provider_key(
        &self,
        owner_id: Uuid,
        provider: &str,
    ) -> Result<Option<Zeroizing<Vec<u8>>>> {
        match self.secret(owner_id, &provider_purpose(provider)).await {
            Ok(key) => Ok(Some(key)),
            Err(StoreError::NotFound) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Removes the owner's key for `provider`; [`StoreError::NotFound`] when none was set.
    pub async fn delete_provider_key(&self, owner_id: Uuid, provider: &str) -> Result<()> {
        self.delete_secret(owner_id, &provider_purpose(provider))
            .await
    }

    /// The owner's keys for built-in providers, by provider id.
    pub async fn provider_keys(&self, owner_id: Uuid) -> Result<Vec<(String, KeyInfo)>> {
        let mut keys = Vec::new();
        for (purpose, updated_at) in self.secret_purposes(owner_id).await? {
            let Some(provider) = purpose.strip_prefix("provider:") else {
                continue;
            };
            let key = self.secret(owner_id, &purpose).await?;
            keys.push((
                provider.to_owned(),
                KeyInfo {
                    fingerprint: key_fingerprint(&key),
                    updated_at,
                },
            ));
        }
        Ok(keys)
    }

    /// Creates or replaces the owner's endpoint `name` (its key too when one is given), in one
    /// transaction.
    pub async fn put_model_endpoint(
        &self,
        new: NewModelEndpoint<'_>,
    ) -> Result<ModelEndpointRecord> {
        let models = serde_json::to_string(new.models)
            .map_err(|err| StoreError::Corrupt(err.to_string()))?;
        let purpose = endpoint_purpose(new.name);
        let sealed = match new.api_key {
            Some(key) => Some(self.keyring.seal(new.owner_id, &purpose, key)?),
            None => None,
        };
        let at = now();
        let upsert = "INSERT INTO model_endpoints (owner_id, name, base_url, models, created_at, \
                      updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
                      ON CONFLICT (owner_id, name) DO UPDATE SET base_url = $3, models = $4, \
                      updated_at = $5";
        let put_key = "INSERT INTO secrets (owner_id, purpose, sealed, created_at, updated_at) \
                       VALUES ($1, $2, $3, $4, $4) \
                       ON CONFLICT (owner_id, purpose) DO UPDATE SET sealed = $3, updated_at = $4";
        with_pool!(self, |pool| async {
            let mut tx = pool.begin().await?;
            sqlx::query(upsert)
                .bind(new.owner_id)
                .bind(new.name)
                .bind(new.base_url)
                .bind(&models)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            if let Some(sealed) = &sealed {
                sqlx::query(put_key)
                    .bind(new.owner_id)
                    .bind(&purpose)
                    .bind(sealed)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        }
        .await)?;
        self.model_endpoint(new.owner_id, new.name).await
    }

    /// The owner's endpoint `name`.
    pub async fn model_endpoint(&self, owner_id: Uuid, name: &str) -> Result<ModelEndpointRecord> {
        let sql = "SELECT owner_id, name, base_url, models, created_at, updated_at \
                   FROM model_endpoints WHERE owner_id = $1 AND name = $2";
        let row: EndpointRow = with_pool!(self, |pool| sqlx::query_as(sql)
            .bind(owner_id)
            .bind(name)
            .fetch_one(pool)
            .await)?;
        self.endpoint_record(row).await
    }

    /// The owner's endpoints, by name.
    pub async fn model_endpoints(&self, owner_id: Uuid) -> Result<Vec<ModelEndpointRecord>> {
        let sql = "SELECT owner_id, name, base_url, models, created_at, updated_at \
                   FROM model_endpoints WHERE owner_id = $1 ORDER BY name";
        let rows: Vec<EndpointRow> = with_pool!(self, |pool| sqlx::query_as(sql)
            .bind(owner_id)
            .fetch_all(pool)
            .await)?;
        let mut records = Vec::with_capacity(rows.len());
        for row in rows {
            records.push(self.endpoint_record(row).await?);
        }
        Ok(records)
    }

    async fn endpoint_record(&self, row: EndpointRow) -> Result<ModelEndpointRecord> {
        let (owner_id, name, base_url, models, created_at, updated_at) = row;
        let models: Vec<String> = serde_json::from_str(&models)
            .map_err(|err| StoreError::Corrupt(format!("endpoint models: {err}")))?;
        let key = match self.endpoint_key(owner_id, &name).await? {
            Some(key) => Some(KeyInfo {
                fingerprint: key_fingerprint(&key),
                updated_at: self
                    .secret_updated_at(owner_id, &endpoint_purpose(&name))
                    .await?,
            }),
            None => None,
        };
        Ok(ModelEndpointRecord {
            owner_id,
            name,
            base_url,
            models,
            key,
            created_at,
            updated_at,
        })
    }

    /// The key of the owner's endpoint `name`, if it has one.
    pub async fn endpoint_key(
        &self,
        owner_id: Uuid,
        name: &str,
    ) -> Result<Option<Zeroizing<Vec<u8>>>> {
        match self.secret(owner_id, &endpoint_purpose(name)).await {
            Ok(key) => Ok(Some(key)),
            Err(StoreError::NotFound) => Ok(None),
            Err(err) => Err(err),
        }
    }

    async fn secret_updated_at(&self, owner_id: Uuid, purpose: &str) -> Result<DateTime<Utc>> {
        let sql = "SELECT updated_at FROM secrets WHERE owner_id = $1 AND purpose = $2";
        Ok(with_pool!(self, |pool| sqlx::query_scalar(sql)
            .bind(owner_id)
            .bind(purpose)
            .fetch_one(pool)
            .await)?)
    }

    /// Removes the owner's endpoint `name` and its key, in one transaction;
    /// [`StoreError::NotFound`] when there is no such endpoint.
    pub async fn delete_model_endpoint(&self, owner_id: Uuid, name: &str) -> Result<()> {
        let purpose = endpoint_purpose(name);
        let deleted = with_pool!(self, |pool| async {
            let mut tx = pool.begin().await?;
            let done = sqlx::query("DELETE FROM model_endpoints WHERE owner_id = $1 AND name = $2")
                .bind(owner_id)
                .bind(name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query("DELETE FROM secrets WHERE owner_id = $1 AND purpose = $2")
                .bind(owner_id)
                .bind(&purpose)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(done)
        }
        .await)?;
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
