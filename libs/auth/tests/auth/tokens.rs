//! Signing and verifying: what round-trips and what is refused.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sentra_auth::{AuthError, BrandRole, Claims, OrgRole, PortalScope, Principal, PrincipalKind, SigningKey, Verifier};
use tonic::Code;
use uuid::Uuid;

use crate::{staff_claims, verifier_for};

fn assert_unauthenticated(error: AuthError) {
    assert_eq!(tonic::Status::from(error).code(), Code::Unauthenticated);
}

#[tokio::test]
async fn staff_token_roundtrips_to_the_same_principal() {
    let key = SigningKey::generate("k1");
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let claims = staff_claims(OrgRole::Member, &[(a, BrandRole::Agent), (b, BrandRole::Viewer)]);
    let token = key.sign(&claims).unwrap();

    let principal = verifier_for(&[&key]).verify(&token).await.unwrap();

    let expected = Principal {
        user_id: claims.sub,
        organization_id: claims.org,
        kind: PrincipalKind::Staff,
        org_role: Some(OrgRole::Member),
        brand_roles: BTreeMap::from([(a, BrandRole::Agent), (b, BrandRole::Viewer)]),
        portal: None,
        token_id: claims.jti.clone(),
        expires_at: DateTime::<Utc>::from_timestamp(claims.exp, 0).unwrap(),
        session_version: 0,
    };
    assert_eq!(principal, expected);
    assert_eq!(principal, claims.into_principal().unwrap());
}

#[tokio::test]
async fn client_token_roundtrips_with_its_portal_scope() {
    let key = SigningKey::generate("k1");
    let (user, org, brand, client) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let claims = Claims::client(user, org, brand, client, chrono::Duration::minutes(15));
    let token = key.sign(&claims).unwrap();

    let principal = verifier_for(&[&key]).verify(&token).await.unwrap();

    assert_eq!(principal.kind, PrincipalKind::Client);
    assert_eq!((principal.user_id, principal.organization_id), (user, org));
    assert_eq!(principal.portal, Some(PortalScope { brand_id: brand, client_id: client }));
    assert_eq!(principal.org_role, None);
    assert!(principal.brand_roles.is_empty());
    assert_eq!(principal.token_id, claims.jti);
}

#[tokio::test]
async fn header_names_the_algorithm_type_and_key() {
    let key = SigningKey::generate("2025-01-key");
    let token = key.sign(&staff_claims(OrgRole::Owner, &[])).unwrap();
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["kid"], "2025-01-key");
}

#[tokio::test]
async fn a_key_read_back_from_storage_signs_tokens_the_old_public_key_verifies() {
    let original = SigningKey::generate("k1");
    let restored = SigningKey::from_pkcs8_der("k1", original.pkcs8_der()).unwrap();
    let token = restored.sign(&staff_claims(OrgRole::Admin, &[])).unwrap();
    assert!(verifier_for(&[&original]).verify(&token).await.is_ok());
}

#[tokio::test]
async fn token_from_a_key_not_in_the_source_is_refused_as_unknown() {
    let trusted = SigningKey::generate("k1");
    let stranger = SigningKey::generate("k2");
    let token = stranger.sign(&staff_claims(OrgRole::Owner, &[])).unwrap();

    let error = verifier_for(&[&trusted]).verify(&token).await.unwrap_err();

    assert!(matches!(error, AuthError::UnknownKey), "{error:?}");
    assert_unauthenticated(error);
}

#[tokio::test]
async fn token_from_another_key_reusing_a_known_kid_fails_the_signature_check() {
    let trusted = SigningKey::generate("k1");
    let impostor = SigningKey::generate("k1");
    let token = impostor.sign(&staff_claims(OrgRole::Owner, &[])).unwrap();

    let error = verifier_for(&[&trusted]).verify(&token).await.unwrap_err();

    assert!(matches!(error, AuthError::InvalidToken), "{error:?}");
    assert_unauthenticated(error);
}

#[tokio::test]
async fn expired_token_is_refused_beyond_the_leeway_only() {
    let key = SigningKey::generate("k1");
    let verifier = verifier_for(&[&key]);
    let now = Utc::now().timestamp();

    let long_gone = Claims { exp: now - 60, iat: now - 960, ..staff_claims(OrgRole::Owner, &[]) };
    let error = verifier.verify(&key.sign(&long_gone).unwrap()).await.unwrap_err();
    assert!(matches!(error, AuthError::Expired), "{error:?}");
    assert_unauthenticated(error);

    // Two seconds late is within the default 5 s leeway, and outside a zero one.
    let just_gone = Claims { exp: now - 2, ..staff_claims(OrgRole::Owner, &[]) };
    let token = key.sign(&just_gone).unwrap();
    assert!(verifier.verify(&token).await.is_ok());
    let strict = verifier.clone().with_leeway(0);
    assert!(matches!(strict.verify(&token).await, Err(AuthError::Expired)));
}

/// Re-encodes the payload of `token` after `edit`, keeping header and signature.
fn tamper(token: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("base64")).expect("json");
    edit(&mut payload);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).expect("json"));
    format!("{}.{}.{}", parts[0], payload, parts[2])
}

#[tokio::test]
async fn tampered_payload_is_refused() {
    let key = SigningKey::generate("k1");
    let verifier = verifier_for(&[&key]);
    let token = key.sign(&staff_claims(OrgRole::Member, &[])).unwrap();
    assert!(verifier.verify(&token).await.is_ok(), "the untampered token must pass");

    let promoted = tamper(&token, |p| p["org_role"] = "owner".into());
    let error = verifier.verify(&promoted).await.unwrap_err();
    assert!(matches!(error, AuthError::InvalidToken), "{error:?}");
    assert_unauthenticated(error);

    let extended = tamper(&token, |p| p["exp"] = (Utc::now().timestamp() + 86_400).into());
    assert!(matches!(verifier.verify(&extended).await, Err(AuthError::InvalidToken)));
}

#[tokio::test]
async fn hs256_token_with_a_known_kid_is_refused() {
    let key = SigningKey::generate("k1");
    let verifier = verifier_for(&[&key]);
    // The classic confusion attack: HMAC keyed with the (public) verification key.
    let public = URL_SAFE_NO_PAD.decode(key.public_key().x).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("k1".into());
    let claims = staff_claims(OrgRole::Owner, &[]);
    for secret in [public.as_slice(), key.public_key().x.as_bytes()] {
        let forged = jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(secret)).unwrap();
        let error = verifier.verify(&forged).await.unwrap_err();
        assert!(matches!(error, AuthError::InvalidToken), "{error:?}");
        assert_unauthenticated(error);
    }
}

#[tokio::test]
async fn unsigned_token_is_refused() {
    let key = SigningKey::generate("k1");
    let verifier = verifier_for(&[&key]);
    let token = key.sign(&staff_claims(OrgRole::Owner, &[])).unwrap();
    let payload = token.split('.').nth(1).unwrap();
    for alg in ["none", "None", "EdDSA"] {
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"k1"}}"#));
        for forged in [format!("{header}.{payload}."), format!("{header}.{payload}")] {
            assert!(matches!(verifier.verify(&forged).await, Err(AuthError::InvalidToken)), "{alg}: {forged}");
        }
    }
}

#[tokio::test]
async fn wrong_issuer_and_malformed_claims_are_refused() {
    let key = SigningKey::generate("k1");
    let verifier = verifier_for(&[&key]);

    let foreign = Claims { iss: "someone-else".into(), ..staff_claims(OrgRole::Owner, &[]) };
    assert!(matches!(verifier.verify(&key.sign(&foreign).unwrap()).await, Err(AuthError::InvalidToken)));

    let roleless = Claims { org_role: None, ..staff_claims(OrgRole::Owner, &[]) };
    assert!(matches!(verifier.verify(&key.sign(&roleless).unwrap()).await, Err(AuthError::InvalidToken)));

    let bare_client = Claims { kind: PrincipalKind::Client, org_role: None, ..staff_claims(OrgRole::Owner, &[]) };
    assert!(matches!(verifier.verify(&key.sign(&bare_client).unwrap()).await, Err(AuthError::InvalidToken)));
}

#[tokio::test]
async fn garbage_and_kidless_tokens_are_refused() {
    let key = SigningKey::generate("k1");
    let verifier = verifier_for(&[&key]);
    for garbage in ["", "abc", "a.b.c", "....", "eyJhbGciOiJFZERTQSJ9.e30.AAAA"] {
        let error = verifier.verify(garbage).await.unwrap_err();
        assert!(matches!(error, AuthError::InvalidToken), "{garbage:?}: {error:?}");
    }
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = None;
    let claims = staff_claims(OrgRole::Owner, &[]);
    let encoding = jsonwebtoken::EncodingKey::from_ed_der(key.pkcs8_der());
    let kidless = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
    assert!(matches!(verifier.verify(&kidless).await, Err(AuthError::InvalidToken)));
}

#[tokio::test]
async fn verifier_clones_share_one_cache() {
    let key = SigningKey::generate("k1");
    let verifier: Verifier = verifier_for(&[&key]);
    let clone = verifier.clone();
    let token = key.sign(&staff_claims(OrgRole::Owner, &[])).unwrap();
    assert!(clone.verify(&token).await.is_ok());
    assert!(format!("{verifier:?}").contains("k1"), "the original sees the key its clone fetched");
}
