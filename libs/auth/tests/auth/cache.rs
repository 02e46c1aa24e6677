//! The verified-token cache: a remembered token gives the answer a full verification would give,
//! and is re-checked for expiry on every use and for its key whenever the key set changes.

use chrono::Utc;
use sentra_auth::{AuthError, BrandRole, Claims, OrgRole, SigningKey, Verifier};
use uuid::Uuid;

use crate::rotation::Rotating;
use crate::staff_claims;

#[tokio::test]
async fn a_remembered_token_gives_the_same_principal_without_a_new_fetch() {
    let key = SigningKey::generate("k1");
    let source = Rotating::with(&[&key]);
    let verifier = Verifier::new(source.clone()).with_token_cache(100);
    let brand = Uuid::new_v4();
    let token = key.sign(&staff_claims(OrgRole::Member, &[(brand, BrandRole::Agent)])).unwrap();

    let first = verifier.verify(&token).await.unwrap();
    assert_eq!(verifier.remembered_tokens(), 1);
    let clone = verifier.clone();
    for _ in 0..3 {
        assert_eq!(clone.verify(&token).await.unwrap(), first, "clones share what was verified");
    }
    assert_eq!(verifier.remembered_tokens(), 1);
    assert_eq!(source.fetches(), 1);
    assert_eq!(Verifier::new(source).verify(&token).await.unwrap(), first, "the uncached answer is the same");
}

#[tokio::test]
async fn refused_tokens_are_never_remembered() {
    let (trusted, impostor) = (SigningKey::generate("k1"), SigningKey::generate("k1"));
    let verifier = Verifier::new(Rotating::with(&[&trusted])).with_token_cache(100);
    let forged = impostor.sign(&staff_claims(OrgRole::Owner, &[])).unwrap();
    for _ in 0..2 {
        assert!(matches!(verifier.verify(&forged).await, Err(AuthError::InvalidToken)));
    }
    let now = Utc::now().timestamp();
    let expired = trusted.sign(&Claims { exp: now - 60, iat: now - 960, ..staff_claims(OrgRole::Owner, &[]) }).unwrap();
    assert!(matches!(verifier.verify(&expired).await, Err(AuthError::Expired)));
    assert!(matches!(verifier.verify("not.a.token").await, Err(AuthError::InvalidToken)));
    assert_eq!(verifier.remembered_tokens(), 0);

    // One byte off a remembered token is another token, checked in full.
    let good = trusted.sign(&staff_claims(OrgRole::Member, &[])).unwrap();
    assert!(verifier.verify(&good).await.is_ok());
    let mut tampered = good.clone().into_bytes();
    let inside_signature = tampered.len() - 10;
    tampered[inside_signature] = if tampered[inside_signature] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert!(matches!(verifier.verify(&tampered).await, Err(AuthError::InvalidToken)));
    assert_eq!(verifier.remembered_tokens(), 1);
}

#[tokio::test]
async fn expiry_is_checked_on_every_use_with_the_callers_leeway() {
    let key = SigningKey::generate("k1");
    let verifier = Verifier::new(Rotating::with(&[&key])).with_token_cache(100);
    let now = Utc::now().timestamp();
    // Two seconds past `exp`: inside the default 5 s leeway, so verified and remembered.
    let token = key.sign(&Claims { exp: now - 2, ..staff_claims(OrgRole::Owner, &[]) }).unwrap();
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(verifier.remembered_tokens(), 1);

    // A clone with no leeway shares the cache, and still refuses the token.
    let strict = verifier.clone().with_leeway(0);
    assert!(matches!(strict.verify(&token).await, Err(AuthError::Expired)));
    assert!(verifier.verify(&token).await.is_ok());
}

#[tokio::test]
async fn a_retired_key_stops_vouching_for_its_remembered_tokens() {
    let (old, new) = (SigningKey::generate("old"), SigningKey::generate("new"));
    let source = Rotating::with(&[&old, &new]);
    let verifier = Verifier::new(source.clone()).with_token_cache(100);
    let (old_token, new_token) =
        (old.sign(&staff_claims(OrgRole::Owner, &[])).unwrap(), new.sign(&staff_claims(OrgRole::Owner, &[])).unwrap());
    assert!(verifier.verify(&old_token).await.is_ok());
    assert!(verifier.verify(&new_token).await.is_ok());
    assert_eq!(verifier.remembered_tokens(), 2);

    // A refresh that publishes the same keys changes nothing.
    verifier.refresh().await.unwrap();
    assert!(verifier.verify(&old_token).await.is_ok());

    source.set(&[&new]);
    verifier.refresh().await.unwrap();
    assert!(matches!(verifier.verify(&old_token).await, Err(AuthError::UnknownKey)));
    assert!(verifier.verify(&new_token).await.is_ok(), "tokens of a kept key are verified again and pass");
}

#[tokio::test]
async fn the_cache_stays_within_its_capacity() {
    let key = SigningKey::generate("k1");
    let verifier = Verifier::new(Rotating::with(&[&key])).with_token_cache(8);
    let tokens: Vec<String> = (0..20).map(|_| key.sign(&staff_claims(OrgRole::Owner, &[])).unwrap()).collect();
    for token in &tokens {
        assert!(verifier.verify(token).await.is_ok());
        assert!(verifier.remembered_tokens() <= 8, "{}", verifier.remembered_tokens());
    }
    for token in &tokens {
        assert!(verifier.verify(token).await.is_ok(), "forgotten tokens are verified again");
    }
    assert!(verifier.remembered_tokens() >= 1);
    assert_eq!(Verifier::new(Rotating::with(&[&key])).remembered_tokens(), 0, "off by default");
}
