//! The `secrets` table: values sealed with the [`Keyring`](crate::Keyring) before storage.
//!
//! A secret is addressed by (owner, purpose), for example (user, `provider:anthropic`) or
//! (user, `github:token`). The plaintext exists only in memory, in a zeroizing buffer.

use uuid::Uuid;
use zeroize::Zeroizing;

use crate::{Keyring, Result, Store, StoreError, now, with_pool};

impl Store {
    /// Seals and stores a secret, replacing any previous value for (owner, purpose).
    pub async fn put_secret(&self, owner_id: Uuid, purpose: &str, plaintext: &[u8]) -> Result<()> {
        let sealed = self.keyring.seal(owner_id, purpose, plaintext)?;
        let at = now();
        let sql = "INSERT INTO secrets (owner_id, purpose, sealed, created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $4) \
                   ON CONFLICT (owner_id, purpose) DO UPDATE SET sealed = $3, updated_at = $4";
        with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(owner_id)
                .bind(purpose)
                .bind(&sealed)
                .bind(at)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        Ok(())
    }

    /// Opens a stored secret.
    pub async fn secret(&self, owner_id: Uuid, purpose: &str) -> Result<Zeroizing<Vec<u8>>> {
        let sealed = self.sealed_secret(owner_id, purpose).await?;
        Ok(self.keyring.open(owner_id, purpose, &sealed)?)
    }

    /// The sealed bytes as stored (tests check that they never hold the plaintext).
    pub async fn sealed_secret(&self, owner_id: Uuid, purpose: &str) -> Result<Vec<u8>> {
        let sql = "SELECT sealed FROM secrets WHERE owner_id = $1 AND purpose = $2";
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar(sql)
                .bind(owner_id)
                .bind(purpose)
                .fetch_one(pool)
                .await
        })?)
    }

    /// The purposes for which the owner has a secret, with when each was last set.
    pub async fn secret_purposes(
        &self,
        owner_id: Uuid,
    ) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>)>> {
        let sql = "SELECT purpose, updated_at FROM secrets WHERE owner_id = $1 ORDER BY purpose";
        Ok(with_pool!(self, |pool| sqlx::query_as(sql)
            .bind(owner_id)
            .fetch_all(pool)
            .await)?)
    }

    pub async fn delete_secret(&self, owner_id: Uuid, purpose: &str) -> Result<()> {
        let sql = "DELETE FROM secrets WHERE owner_id = $1 AND purpose = $2";
        let done = with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(owner_id)
                .bind(purpose)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Re-seals every secret with `new_keyring`'s current key; returns how many were re-sealed.
    /// `new_keyring` must still hold the keys that sealed the existing records.
    ///
    /// Each record is re-sealed in its own statement and guarded by its old bytes, so a
    /// concurrent write is never overwritten with a stale value, and a rotation that stops half
    /// way can simply be run again.
    pub async fn reseal_secrets(&self, new_keyring: &Keyring) -> Result<usize> {
        let sql = "SELECT owner_id, purpose, sealed FROM secrets";
        let rows: Vec<(Uuid, String, Vec<u8>)> =
            with_pool!(self, |pool| sqlx::query_as(sql).fetch_all(pool).await)?;
        let mut resealed = 0;
        for (owner_id, purpose, sealed) in rows {
            if Keyring::version_of(&sealed) == Some(new_keyring.current_version()) {
                continue;
            }
            let plaintext = new_keyring.open(owner_id, &purpose, &sealed)?;
            let fresh = new_keyring.seal(owner_id, &purpose, &plaintext)?;
            let update = "UPDATE secrets SET sealed = $4, updated_at = $5 \
                          WHERE owner_id = $1 AND purpose = $2 AND sealed = $3";
            with_pool!(self, |pool| {
                sqlx::query(update)
                    .bind(owner_id)
                    .bind(&purpose)
                    .bind(&sealed)
                    .bind(&fresh)
                    .bind(now())
                    .execute(pool)
                    .await
                    .map(|done| done.rows_affected())
            })?;
            resealed += 1;
        }
        Ok(resealed)
    }

    /// A handle that seals with `keyring` instead (after a rotation).
    pub fn with_keyring(&self, keyring: Keyring) -> Self {
        Self {
            backend: self.backend.clone(),
            keyring,
        }
    }
}
