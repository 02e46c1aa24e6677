//! Envelope encryption round trips, refuses what it must, and survives a key rotation.
#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use base64::Engine as _;
use proptest::prelude::*;
use sentra_crypto::{CryptoError, KeyRing, KeyRingConfig, WrappedKey};

fn ring(active: &str, ids: &[&str]) -> (KeyRingConfig, KeyRing) {
    let mut config = KeyRingConfig { active: active.into(), ..Default::default() };
    for id in ids {
        config.keys.insert((*id).into(), KeyRingConfig::generate_key().into());
    }
    let ring = KeyRing::from_config(&config).unwrap();
    (config, ring)
}

#[test]
fn seals_and_opens_with_the_same_record_and_purpose() {
    let (_, ring) = ring("k1", &["k1"]);
    let (key, wrapped) = ring.generate_data_key(b"mailbox-1");
    let sealed = key.seal(b"refresh-token", b"mailbox-1/refresh");
    assert!(!sealed.windows(13).any(|w| w == b"refresh-token"), "plaintext visible in ciphertext");
    let again = ring.unwrap(&wrapped, b"mailbox-1").unwrap();
    assert_eq!(again.open(&sealed, b"mailbox-1/refresh").unwrap().as_slice(), b"refresh-token");
    // Copied to another field or record it does not open.
    assert!(matches!(again.open(&sealed, b"mailbox-1/access"), Err(CryptoError::Decrypt)));
    assert!(matches!(ring.unwrap(&wrapped, b"mailbox-2"), Err(CryptoError::Decrypt)));
}

#[test]
fn the_same_plaintext_seals_differently_each_time() {
    let (_, ring) = ring("k1", &["k1"]);
    let (key, _) = ring.generate_data_key(b"r");
    assert_ne!(key.seal(b"same", b""), key.seal(b"same", b""));
}

#[test]
fn tampering_and_truncation_are_refused() {
    let (_, ring) = ring("k1", &["k1"]);
    let (key, wrapped) = ring.generate_data_key(b"r");
    let mut sealed = key.seal(b"value", b"");
    sealed[14] ^= 1;
    assert!(matches!(key.open(&sealed, b""), Err(CryptoError::Decrypt)));
    assert!(matches!(key.open(&sealed[..20], b""), Err(CryptoError::Malformed)));
    let relabelled = WrappedKey { kek_id: "k1".into(), ciphertext: wrapped.ciphertext[..10].to_vec() };
    assert!(matches!(ring.unwrap(&relabelled, b"r"), Err(CryptoError::Malformed)));
}

#[test]
fn rotation_rewraps_data_keys_and_values_keep_opening() {
    let (mut config, old) = ring("k1", &["k1"]);
    let (key, wrapped) = old.generate_data_key(b"m");
    let sealed = key.seal(b"token", b"m/t");

    // Step 1: the new key is added and made active; the old one stays for reading.
    config.keys.insert("k2".into(), KeyRingConfig::generate_key().into());
    config.active = "k2".into();
    let both = KeyRing::from_config(&config).unwrap();
    assert_eq!(both.unwrap(&wrapped, b"m").unwrap().open(&sealed, b"m/t").unwrap().as_slice(), b"token");
    let rewrapped = both.rewrap(&wrapped, b"m").unwrap().expect("moved to k2");
    assert_eq!(rewrapped.kek_id, "k2");
    assert!(both.rewrap(&rewrapped, b"m").unwrap().is_none(), "already on the active key");

    // Step 2: the old key is removed; re-wrapped keys open, a forgotten one names its key.
    config.keys.remove("k1");
    let new = KeyRing::from_config(&config).unwrap();
    assert_eq!(new.unwrap(&rewrapped, b"m").unwrap().open(&sealed, b"m/t").unwrap().as_slice(), b"token");
    assert!(matches!(new.unwrap(&wrapped, b"m"), Err(CryptoError::UnknownKey(id)) if id == "k1"));
    // A wrapped key relabelled with another key's id does not open.
    let relabelled = WrappedKey { kek_id: "k2".into(), ciphertext: wrapped.ciphertext.clone() };
    assert!(matches!(new.unwrap(&relabelled, b"m"), Err(CryptoError::Decrypt)));
}

#[test]
fn bad_configuration_names_the_problem() {
    let err = |c: &KeyRingConfig| KeyRing::from_config(c).unwrap_err().to_string();
    assert!(err(&KeyRingConfig::default()).contains("no key-encryption keys"));
    let (mut config, _) = ring("k1", &["k1"]);
    config.active = "k9".into();
    assert!(err(&config).contains("\"k9\""));
    config.active = "k1".into();
    config.keys.insert("short".into(), base64::engine::general_purpose::STANDARD.encode([1u8; 16]).into());
    assert!(err(&config).contains("\"short\" has 16 bytes"));
    config.keys.insert("short".into(), "not base64!".to_string().into());
    assert!(err(&config).contains("not base64"));
}

#[test]
fn debug_and_serialize_never_show_key_material() {
    let (config, ring) = ring("k1", &["k1"]);
    let secret = config.keys["k1"].clone();
    use secrecy::ExposeSecret as _;
    let secret = secret.expose_secret().to_owned();
    let (key, wrapped) = ring.generate_data_key(b"r");
    for shown in [
        format!("{config:?}"),
        format!("{ring:?}"),
        format!("{key:?}"),
        format!("{wrapped:?}"),
        serde_json::to_string(&config).unwrap(),
    ] {
        assert!(!shown.contains(&secret), "{shown}");
    }
}

proptest! {
    #[test]
    fn any_value_round_trips(value in proptest::collection::vec(any::<u8>(), 0..512), aad in proptest::collection::vec(any::<u8>(), 0..64)) {
        let (_, ring) = ring("k", &["k"]);
        let (key, wrapped) = ring.generate_data_key(&aad);
        let sealed = key.seal(&value, &aad);
        let opened = ring.unwrap(&wrapped, &aad).unwrap().open(&sealed, &aad).unwrap();
        prop_assert_eq!(opened.as_slice(), value.as_slice());
    }
}
