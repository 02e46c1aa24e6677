//! Key rotation: the verifier learns new kids, forgets retired ones, and rate-limits refetches.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sentra_auth::{AuthError, KeySource, OrgRole, PublicKey, SigningKey, Verifier};
use tonic::Code;

use crate::staff_claims;

/// A key source whose list the test changes, counting fetches.
#[derive(Default)]
pub(crate) struct Rotating {
    pub(crate) keys: Mutex<Vec<PublicKey>>,
    fetches: AtomicUsize,
    delay: Duration,
    fail: std::sync::atomic::AtomicBool,
}

impl Rotating {
    pub(crate) fn with(keys: &[&SigningKey]) -> Arc<Self> {
        let source = Rotating::default();
        source.set(keys);
        Arc::new(source)
    }

    pub(crate) fn set(&self, keys: &[&SigningKey]) {
        *self.keys.lock().expect("lock") = keys.iter().map(|k| k.public_key()).collect();
    }

    pub(crate) fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl KeySource for Rotating {
    async fn fetch(&self) -> Result<Vec<PublicKey>, AuthError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if self.fail.load(Ordering::SeqCst) {
            return Err(AuthError::KeySource("tenancy unreachable".into()));
        }
        Ok(self.keys.lock().expect("lock").clone())
    }
}

fn token(key: &SigningKey) -> String {
    key.sign(&staff_claims(OrgRole::Owner, &[])).expect("sign")
}

const INTERVAL: Duration = Duration::from_millis(200);
const PAST_INTERVAL: Duration = Duration::from_millis(260);

#[tokio::test]
async fn learns_a_new_kid_on_first_sight() {
    let (old, new) = (SigningKey::generate("2025-01"), SigningKey::generate("2025-02"));
    let source = Rotating::with(&[&old]);
    let verifier = Verifier::new(source.clone()).with_min_refetch_interval(INTERVAL);

    assert!(verifier.verify(&token(&old)).await.is_ok());
    assert_eq!(source.fetches(), 1, "the first verification loads the keys");
    assert!(verifier.verify(&token(&old)).await.is_ok());
    assert_eq!(source.fetches(), 1, "known kids are served from the cache");

    source.set(&[&old, &new]);
    tokio::time::sleep(PAST_INTERVAL).await;
    assert!(verifier.verify(&token(&new)).await.is_ok(), "the new kid is fetched on first sight");
    assert_eq!(source.fetches(), 2);
    assert!(verifier.verify(&token(&new)).await.is_ok());
    assert!(verifier.verify(&token(&old)).await.is_ok(), "the old key still verifies while published");
    assert_eq!(source.fetches(), 2);
}

#[tokio::test]
async fn a_new_kid_within_the_interval_waits_for_the_next_window() {
    let (old, new) = (SigningKey::generate("a"), SigningKey::generate("b"));
    let source = Rotating::with(&[&old]);
    let verifier = Verifier::new(source.clone()).with_min_refetch_interval(INTERVAL);
    assert!(verifier.verify(&token(&old)).await.is_ok());

    source.set(&[&old, &new]);
    let error = verifier.verify(&token(&new)).await.unwrap_err();
    assert!(matches!(error, AuthError::UnknownKey), "{error:?}");
    assert_eq!(source.fetches(), 1, "no refetch inside the interval");

    tokio::time::sleep(PAST_INTERVAL).await;
    assert!(verifier.verify(&token(&new)).await.is_ok());
    assert_eq!(source.fetches(), 2);
}

#[tokio::test]
async fn garbage_kids_refetch_at_most_once_per_interval() {
    let trusted = SigningKey::generate("trusted");
    let source = Rotating::with(&[&trusted]);
    let verifier = Verifier::new(source.clone()).with_min_refetch_interval(INTERVAL);

    for i in 0..25 {
        let garbage = SigningKey::generate(format!("garbage-{i}"));
        assert!(matches!(verifier.verify(&token(&garbage)).await, Err(AuthError::UnknownKey)));
    }
    assert_eq!(source.fetches(), 1, "25 unknown kids in one window cost one fetch");

    tokio::time::sleep(PAST_INTERVAL).await;
    for i in 0..25 {
        let garbage = SigningKey::generate(format!("more-garbage-{i}"));
        assert!(matches!(verifier.verify(&token(&garbage)).await, Err(AuthError::UnknownKey)));
    }
    assert_eq!(source.fetches(), 2, "one more fetch in the next window");
    assert!(verifier.verify(&token(&trusted)).await.is_ok(), "known keys are unaffected by the throttle");
}

#[tokio::test]
async fn default_interval_throttles_for_five_seconds() {
    let trusted = SigningKey::generate("trusted");
    let source = Rotating::with(&[&trusted]);
    let verifier = Verifier::new(source.clone());
    for i in 0..10 {
        let garbage = SigningKey::generate(format!("g{i}"));
        assert!(verifier.verify(&token(&garbage)).await.is_err());
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(source.fetches(), 1);
}

#[tokio::test]
async fn a_burst_of_one_new_kid_causes_one_fetch() {
    let key = SigningKey::generate("k1");
    let source = Arc::new(Rotating { delay: Duration::from_millis(100), ..Rotating::default() });
    source.set(&[&key]);
    let verifier = Verifier::new(source.clone());

    let token = token(&key);
    let results = futures::future::join_all((0..20).map(|_| {
        let verifier = verifier.clone();
        let token = token.clone();
        tokio::spawn(async move { verifier.verify(&token).await })
    }))
    .await;

    for result in results {
        assert!(result.unwrap().is_ok());
    }
    assert_eq!(source.fetches(), 1);
}

#[tokio::test]
async fn a_retired_key_stops_verifying_after_a_refresh() {
    let (old, new) = (SigningKey::generate("old"), SigningKey::generate("new"));
    let source = Rotating::with(&[&old, &new]);
    let verifier = Verifier::new(source.clone()).with_min_refetch_interval(INTERVAL);
    verifier.refresh().await.unwrap();
    let old_token = token(&old);
    assert!(verifier.verify(&old_token).await.is_ok());

    source.set(&[&new]);
    verifier.refresh().await.unwrap();
    assert!(matches!(verifier.verify(&old_token).await, Err(AuthError::UnknownKey)));
    assert!(verifier.verify(&token(&new)).await.is_ok());
    assert_eq!(source.fetches(), 2, "refresh fetches, the refused old kid was inside the interval");
}

#[tokio::test]
async fn an_unreachable_source_is_unavailable_not_unauthenticated() {
    let key = SigningKey::generate("k1");
    let source = Rotating::with(&[&key]);
    source.fail.store(true, Ordering::SeqCst);
    let verifier = Verifier::new(source.clone()).with_min_refetch_interval(INTERVAL);
    let token = token(&key);

    for _ in 0..3 {
        let error = verifier.verify(&token).await.unwrap_err();
        assert!(matches!(error, AuthError::KeySource(_)), "{error:?}");
        assert_eq!(tonic::Status::from(error).code(), Code::Unavailable);
    }
    assert_eq!(source.fetches(), 1, "failures are throttled too");

    source.fail.store(false, Ordering::SeqCst);
    tokio::time::sleep(PAST_INTERVAL).await;
    assert!(verifier.verify(&token).await.is_ok(), "recovers once the source answers");
    assert_eq!(source.fetches(), 2);
}

#[tokio::test]
async fn malformed_published_keys_are_skipped() {
    let key = SigningKey::generate("good");
    let source = Rotating::with(&[&key]);
    source.keys.lock().unwrap().extend([
        PublicKey { kid: "short".into(), x: "AAAA".into() },
        PublicKey { kid: "not-base64".into(), x: "!!!".into() },
    ]);
    let verifier = Verifier::new(source.clone());

    assert!(verifier.verify(&token(&key)).await.is_ok());
    let mut forged = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    forged.kid = Some("short".into());
    let encoding = jsonwebtoken::EncodingKey::from_ed_der(key.pkcs8_der());
    let claims = staff_claims(OrgRole::Owner, &[]);
    let token = jsonwebtoken::encode(&forged, &claims, &encoding).unwrap();
    assert!(matches!(verifier.verify(&token).await, Err(AuthError::UnknownKey)));
}
