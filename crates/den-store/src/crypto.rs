//! Sealing secrets at rest: AES-256-GCM with versioned master keys.
//!
//! A sealed record is `version (1 byte) ‖ nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)`. The
//! nonce is random per record. The associated data binds the record to its owner and purpose, so
//! a sealed value copied onto another user's row, or into another purpose, fails to open. The
//! version byte names the master key that sealed it, so the master key can be rotated: a new
//! version is added, every record is re-sealed with it, then the old key can go.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use uuid::Uuid;
use zeroize::Zeroizing;

const NONCE_LEN: usize = 12;

/// The master keys, by version; the highest version seals new records.
///
/// Its text form is `VERSION:BASE64KEY[,VERSION:BASE64KEY...]`, as kept in the key file or in
/// `DEN_MASTER_KEY`. `Debug` never shows key material.
#[derive(Clone)]
pub struct Keyring {
    keys: Arc<BTreeMap<u8, Zeroizing<[u8; 32]>>>,
}

/// Why a keyring could not be parsed or a record not opened.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("master key must be VERSION:BASE64 entries (32-byte keys) separated by commas")]
    Malformed,
    #[error("no master key with version {0}; was the key file replaced?")]
    UnknownVersion(u8),
    #[error("sealed record is too short")]
    Truncated,
    #[error("sealed record failed authentication (tampered, or bound to another owner)")]
    Authentication,
    #[error("the system random source failed")]
    Random,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("versions", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Keyring {
    /// A keyring with one fresh random key, version 1.
    pub fn generate() -> Result<Self, KeyringError> {
        Self::from_keys(BTreeMap::from([(1, random_key()?)]))
    }

    /// Parses the text form (see the type's docs).
    pub fn parse(text: &str) -> Result<Self, KeyringError> {
        let mut keys = BTreeMap::new();
        for entry in text.trim().split(',') {
            let (version, key) = entry
                .trim()
                .split_once(':')
                .ok_or(KeyringError::Malformed)?;
            let version: u8 = version.parse().map_err(|_| KeyringError::Malformed)?;
            let bytes = Zeroizing::new(STANDARD.decode(key).map_err(|_| KeyringError::Malformed)?);
            let key: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| KeyringError::Malformed)?;
            if version == 0 || keys.insert(version, Zeroizing::new(key)).is_some() {
                return Err(KeyringError::Malformed);
            }
        }
        Self::from_keys(keys)
    }

    fn from_keys(keys: BTreeMap<u8, Zeroizing<[u8; 32]>>) -> Result<Self, KeyringError> {
        if keys.is_empty() {
            return Err(KeyringError::Malformed);
        }
        Ok(Self {
            keys: Arc::new(keys),
        })
    }

    /// The text form, for writing the key file. Treat the result as a secret.
    pub fn to_text(&self) -> Zeroizing<String> {
        let entries: Vec<String> = self
            .keys
            .iter()
            .map(|(version, key)| format!("{version}:{}", STANDARD.encode(key.as_slice())))
            .collect();
        Zeroizing::new(entries.join(","))
    }

    /// The version that seals new records.
    pub fn current_version(&self) -> u8 {
        self.keys.keys().next_back().copied().unwrap_or(1)
    }

    /// This keyring plus a new random key that becomes current.
    pub fn with_new_key(&self) -> Result<Self, KeyringError> {
        let next = self
            .current_version()
            .checked_add(1)
            .ok_or(KeyringError::Malformed)?;
        let mut keys = (*self.keys).clone();
        keys.insert(next, random_key()?);
        Self::from_keys(keys)
    }

    /// A secret derived from the current key for `purpose` (hex): what den nodes sharing the
    /// master key present to each other, so no further secret needs configuring. One-way: the
    /// key cannot be recovered from it. Treat the result as a secret.
    pub fn derive_secret(&self, purpose: &str) -> Zeroizing<String> {
        use sha2::{Digest, Sha256};
        let version = self.current_version();
        let mut hasher = Sha256::new();
        hasher.update(b"den derived secret v1\0");
        if let Some(key) = self.keys.get(&version) {
            hasher.update(key.as_slice());
        }
        hasher.update([0]);
        hasher.update(purpose.as_bytes());
        Zeroizing::new(hex::encode(hasher.finalize()))
    }

    /// Only the current key: what remains once every record is sealed with it.
    pub fn current_only(&self) -> Self {
        let version = self.current_version();
        let keys = self.keys.iter().filter(|(v, _)| **v == version);
        Self {
            keys: Arc::new(keys.map(|(v, k)| (*v, k.clone())).collect()),
        }
    }

    /// Seals `plaintext` for (`owner`, `purpose`) with the current key.
    pub fn seal(
        &self,
        owner: Uuid,
        purpose: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, KeyringError> {
        let version = self.current_version();
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| KeyringError::Random)?;
        let aad = associated_data(version, owner, purpose);
        let ciphertext = self
            .cipher(version)?
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| KeyringError::Authentication)?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(version);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Opens a record sealed for (`owner`, `purpose`) by any key of this keyring.
    pub fn open(
        &self,
        owner: Uuid,
        purpose: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyringError> {
        let (&version, rest) = sealed.split_first().ok_or(KeyringError::Truncated)?;
        if rest.len() < NONCE_LEN + 16 {
            return Err(KeyringError::Truncated);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| KeyringError::Truncated)?;
        let aad = associated_data(version, owner, purpose);
        let plaintext = self
            .cipher(version)?
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| KeyringError::Authentication)?;
        Ok(Zeroizing::new(plaintext))
    }

    /// The version byte of a sealed record.
    pub fn version_of(sealed: &[u8]) -> Option<u8> {
        sealed.first().copied()
    }

    fn cipher(&self, version: u8) -> Result<Aes256Gcm, KeyringError> {
        let key = self
            .keys
            .get(&version)
            .ok_or(KeyringError::UnknownVersion(version))?;
        Ok(Aes256Gcm::new(&Key::<Aes256Gcm>::from(**key)))
    }
}

fn random_key() -> Result<Zeroizing<[u8; 32]>, KeyringError> {
    let mut key = Zeroizing::new([0u8; 32]);
    getrandom::fill(key.as_mut_slice()).map_err(|_| KeyringError::Random)?;
    Ok(key)
}

/// `den-secret-v1 ‖ version ‖ owner ‖ purpose`: what a sealed record is bound to.
fn associated_data(version: u8, owner: Uuid, purpose: &str) -> Vec<u8> {
    let mut aad = b"den-secret-v1".to_vec();
    aad.push(version);
    aad.extend_from_slice(owner.as_bytes());
    aad.extend_from_slice(purpose.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secret_opens_only_for_its_owner_and_purpose() {
        let keyring = Keyring::generate().unwrap();
        let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
        let sealed = keyring
            .seal(alice, "provider:anthropic", b"sk-ant-secret")
            .unwrap();
        assert!(
            !sealed.windows(6).any(|w| w == b"sk-ant"),
            "plaintext must not show"
        );
        assert_eq!(
            keyring
                .open(alice, "provider:anthropic", &sealed)
                .unwrap()
                .as_slice(),
            b"sk-ant-secret"
        );
        assert!(matches!(
            keyring.open(bob, "provider:anthropic", &sealed),
            Err(KeyringError::Authentication)
        ));
        assert!(matches!(
            keyring.open(alice, "provider:openai", &sealed),
            Err(KeyringError::Authentication)
        ));
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let keyring = Keyring::generate().unwrap();
        let owner = Uuid::now_v7();
        let sealed = keyring.seal(owner, "p", b"value").unwrap();
        for index in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[index] ^= 0x01;
            assert!(
                keyring.open(owner, "p", &tampered).is_err(),
                "byte {index} flip undetected"
            );
        }
        assert!(matches!(
            keyring.open(owner, "p", &sealed[..10]),
            Err(KeyringError::Truncated)
        ));
    }

    #[test]
    fn nonces_differ_between_records() {
        let keyring = Keyring::generate().unwrap();
        let owner = Uuid::now_v7();
        let first = keyring.seal(owner, "p", b"same").unwrap();
        let second = keyring.seal(owner, "p", b"same").unwrap();
        assert_ne!(first, second);
    }

    #[test]
    fn rotation_keeps_old_records_readable_until_resealed() {
        let old = Keyring::generate().unwrap();
        let owner = Uuid::now_v7();
        let sealed_old = old.seal(owner, "p", b"v").unwrap();
        let rotated = old.with_new_key().unwrap();
        assert_eq!(rotated.current_version(), 2);
        assert_eq!(
            rotated.open(owner, "p", &sealed_old).unwrap().as_slice(),
            b"v"
        );
        let resealed = rotated.seal(owner, "p", b"v").unwrap();
        assert_eq!(Keyring::version_of(&resealed), Some(2));
        let only_new = rotated.current_only();
        assert!(matches!(
            only_new.open(owner, "p", &sealed_old),
            Err(KeyringError::UnknownVersion(1))
        ));
        assert_eq!(
            only_new.open(owner, "p", &resealed).unwrap().as_slice(),
            b"v"
        );
    }

    #[test]
    fn text_form_round_trips_and_bad_text_is_refused() {
        let keyring = Keyring::generate().unwrap().with_new_key().unwrap();
        let parsed = Keyring::parse(&keyring.to_text()).unwrap();
        assert_eq!(parsed.current_version(), 2);
        let owner = Uuid::now_v7();
        let sealed = keyring.seal(owner, "p", b"x").unwrap();
        assert_eq!(parsed.open(owner, "p", &sealed).unwrap().as_slice(), b"x");
        for bad in [
            "",
            "1",
            "1:short",
            "x:AAAA",
            "0:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ] {
            assert!(Keyring::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    /// A known key, so the check can look for every form a leaked key would take in `Debug`
    /// output: its bytes as a derived `Debug` prints them (`[7, 7, …]`, or one per line), in
    /// hex, or in the key file's base64.
    #[test]
    fn debug_never_shows_key_material() {
        let key = [7u8; 32];
        let base64 = STANDARD.encode(key);
        let leaks = |shown: &str| -> Vec<&'static str> {
            [
                (shown.contains(&base64), "base64"),
                (shown.contains("7, 7, 7, 7"), "bytes"),
                (shown.contains("7,\n"), "bytes, one per line"),
                (shown.contains("07070707"), "hex"),
            ]
            .into_iter()
            .filter_map(|(leaked, form)| leaked.then_some(form))
            .collect()
        };
        let keyring = Keyring::parse(&format!("1:{base64}")).unwrap();
        let shown = format!("{keyring:?} {keyring:#?}");
        assert!(shown.contains("versions"), "the check reads Debug: {shown}");
        assert_eq!(leaks(&shown), Vec::<&str>::new(), "{shown}");
        // The check catches what a derived `Debug` would print.
        #[derive(Debug)]
        #[allow(dead_code, reason = "only printed")]
        struct Derived {
            keys: BTreeMap<u8, [u8; 32]>,
        }
        let derived = Derived {
            keys: BTreeMap::from([(1, key)]),
        };
        let derived = format!("{derived:?} {derived:#?}");
        assert_eq!(leaks(&derived), ["bytes", "bytes, one per line"]);
        assert_eq!(leaks(&base64), ["base64"]);
        assert_eq!(leaks("07070707"), ["hex"]);
    }
}
