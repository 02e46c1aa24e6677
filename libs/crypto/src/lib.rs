//! Envelope encryption for secrets and personal data at rest.
//!
//! Every protected record (a mailbox's OAuth tokens today; a data subject's personal data for
//! crypto-shredding next) gets its own random 256-bit **data key**. Values are sealed with that
//! key (AES-256-GCM, a fresh 96-bit nonce per value, the caller's associated data binding the
//! ciphertext to its record and purpose). The data key itself is stored only **wrapped**: sealed
//! by one of the **key-encryption keys** (KEKs) of the [`KeyRing`], which come from configuration
//! (a Kubernetes secret) and never touch the database. A [`WrappedKey`] names the KEK that
//! wrapped it, so:
//!
//! - rotating the KEK is adding a new key, making it active, and re-wrapping data keys
//!   ([`KeyRing::rewrap`]) while both keys are configured: values sealed under a data key are
//!   never re-encrypted, and readers keep working during the rotation (no downtime);
//! - deleting a record's wrapped data key makes every value sealed under it unreadable
//!   (crypto-shredding), wherever copies of the ciphertext live.
//!
//! Keys are zeroed on drop; nothing here logs or formats key material (`Debug` prints ids only).

use std::collections::BTreeMap;
use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// AES-GCM's standard nonce length, in bytes; sealed values start with it.
const NONCE_LEN: usize = 12;
/// AES-256 key length, in bytes.
const KEY_LEN: usize = 32;

/// Why a key ring could not be built or a value could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The configuration names no key, no active key, or an active key it does not define.
    #[error("key ring configuration: {0}")]
    Config(String),
    /// A wrapped key names a key-encryption key this ring does not hold (removed too early).
    #[error("unknown key-encryption key {0:?}")]
    UnknownKey(String),
    /// Authentication failed: wrong key, wrong associated data, or a tampered ciphertext.
    #[error("ciphertext does not authenticate")]
    Decrypt,
    /// Too short to be a sealed value.
    #[error("malformed ciphertext")]
    Malformed,
}

/// The key ring's configuration: key ids to base64-encoded 32-byte keys, and which one wraps new
/// data keys. Old keys stay listed until every data key they wrapped has been re-wrapped.
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct KeyRingConfig {
    /// The id of the key that wraps new data keys (and that [`KeyRing::rewrap`] moves keys to).
    pub active: String,
    /// Every configured key-encryption key, base64 (standard alphabet) of 32 random bytes.
    #[serde(serialize_with = "redacted_keys")]
    pub keys: BTreeMap<String, SecretString>,
}

fn redacted_keys<S: serde::Serializer>(keys: &BTreeMap<String, SecretString>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(keys.keys().map(|id| (id, "[redacted]")))
}

impl fmt::Debug for KeyRingConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRingConfig").field("active", &self.active).field("keys", &self.keys.keys()).finish()
    }
}

impl KeyRingConfig {
    /// A configuration with one key, e.g. a freshly generated one for tests.
    pub fn single(id: &str, key: &[u8; KEY_LEN]) -> Self {
        Self { active: id.to_owned(), keys: BTreeMap::from([(id.to_owned(), STANDARD.encode(key).into())]) }
    }

    /// 32 random bytes, base64: what an operator puts in the secret for a new key.
    pub fn generate_key() -> String {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        STANDARD.encode(key.as_ref())
    }
}

/// A data key sealed by a key-encryption key, as stored next to the record it protects.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// The id of the key-encryption key that sealed it.
    pub kek_id: String,
    /// Nonce followed by the AES-GCM ciphertext and tag of the data key.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappedKey").field("kek_id", &self.kek_id).finish_non_exhaustive()
    }
}

/// A record's data key, unwrapped in memory for as long as the caller needs it.
pub struct DataKey(Aes256Gcm);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey([redacted])")
    }
}

impl DataKey {
    /// Seals `plaintext`; `aad` (say, the record id and field name) must be given again to open it,
    /// so a ciphertext copied to another record or field does not decrypt there.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        seal(&self.0, plaintext, aad)
    }

    /// Opens a value sealed by [`DataKey::seal`] with the same associated data.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        open(&self.0, sealed, aad).map(Zeroizing::new)
    }
}

/// The configured key-encryption keys.
pub struct KeyRing {
    active: String,
    keys: BTreeMap<String, Aes256Gcm>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing").field("active", &self.active).field("keys", &self.keys.keys()).finish()
    }
}

impl KeyRing {
    /// Builds the ring; every key must be base64 of exactly 32 bytes and the active one defined.
    pub fn from_config(config: &KeyRingConfig) -> Result<Self, CryptoError> {
        if config.keys.is_empty() {
            return Err(CryptoError::Config("no key-encryption keys are configured".into()));
        }
        let mut keys = BTreeMap::new();
        for (id, encoded) in &config.keys {
            if id.is_empty() {
                return Err(CryptoError::Config("a key has an empty id".into()));
            }
            let bytes = Zeroizing::new(
                STANDARD
                    .decode(encoded.expose_secret().trim())
                    .map_err(|_| CryptoError::Config(format!("key {id:?} is not base64")))?,
            );
            if bytes.len() != KEY_LEN {
                return Err(CryptoError::Config(format!("key {id:?} has {} bytes, not {KEY_LEN}", bytes.len())));
            }
            keys.insert(id.clone(), Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes)));
        }
        if !keys.contains_key(&config.active) {
            return Err(CryptoError::Config(format!("the active key {:?} is not among the keys", config.active)));
        }
        Ok(Self { active: config.active.clone(), keys })
    }

    /// The id of the key wrapping new data keys.
    pub fn active_id(&self) -> &str {
        &self.active
    }

    /// A new random data key and its wrapped form under the active key. `aad` binds the wrapped
    /// key to its record (its id), so it cannot be moved to another record.
    pub fn generate_data_key(&self, aad: &[u8]) -> (DataKey, WrappedKey) {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        let wrapped = self.wrap(&self.active, bytes.as_ref(), aad);
        (DataKey(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(bytes.as_ref()))), wrapped)
    }

    /// Unwraps a record's data key (with the `aad` it was generated with).
    pub fn unwrap(&self, wrapped: &WrappedKey, aad: &[u8]) -> Result<DataKey, CryptoError> {
        let bytes = self.unwrap_bytes(wrapped, aad)?;
        Ok(DataKey(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes))))
    }

    /// Re-wraps a data key under the active key; `None` when it already is. The values sealed
    /// with the data key stay as they are.
    pub fn rewrap(&self, wrapped: &WrappedKey, aad: &[u8]) -> Result<Option<WrappedKey>, CryptoError> {
        if wrapped.kek_id == self.active {
            return Ok(None);
        }
        let bytes = self.unwrap_bytes(wrapped, aad)?;
        Ok(Some(self.wrap(&self.active, &bytes, aad)))
    }

    fn wrap(&self, kek_id: &str, key: &[u8], aad: &[u8]) -> WrappedKey {
        let kek = &self.keys[kek_id];
        WrappedKey { kek_id: kek_id.to_owned(), ciphertext: seal(kek, key, &wrap_aad(kek_id, aad)) }
    }

    fn unwrap_bytes(&self, wrapped: &WrappedKey, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let kek = self.keys.get(&wrapped.kek_id).ok_or_else(|| CryptoError::UnknownKey(wrapped.kek_id.clone()))?;
        let bytes = Zeroizing::new(open(kek, &wrapped.ciphertext, &wrap_aad(&wrapped.kek_id, aad))?);
        if bytes.len() != KEY_LEN {
            return Err(CryptoError::Malformed);
        }
        Ok(bytes)
    }
}

/// The KEK id is authenticated with the wrapped key, so relabelling a wrapped key fails to open.
fn wrap_aad(kek_id: &str, aad: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(kek_id.len() + 1 + aad.len());
    out.extend_from_slice(kek_id.as_bytes());
    out.push(0);
    out.extend_from_slice(aad);
    out
}

fn seal(cipher: &Aes256Gcm, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    // Encryption fails only past AES-GCM's 64 GiB message limit, which no token or field nears.
    #[allow(clippy::expect_used)]
    let ciphertext = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad })
        .expect("AES-GCM encrypts any message under 64 GiB");
    let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    out
}

fn open(cipher: &Aes256Gcm, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < NONCE_LEN + 16 {
        return Err(CryptoError::Malformed);
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad }).map_err(|_| CryptoError::Decrypt)
}
