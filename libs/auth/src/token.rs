//! The access token: its claims, the Ed25519 key that signs it, and the public half verifiers use.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretSlice};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::{AuthError, BrandRole, OrgRole, PortalScope, Principal, PrincipalKind};

/// The `iss` of every Sentra access token.
pub const ISSUER: &str = "sentra";

/// JWT claims. Field names in the token: sub, org, kind, org_role, brands (map brand id -> role),
/// portal_brand, client_id, sv (session version), exp, iat, jti, iss ("sentra").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    /// Staff user id or portal user id.
    pub sub: Uuid,
    /// Organization id.
    pub org: Uuid,
    /// Staff or portal client.
    pub kind: PrincipalKind,
    /// Org-wide role (staff only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_role: Option<OrgRole>,
    /// Brand id -> role (staff only).
    #[serde(default)]
    pub brands: BTreeMap<Uuid, BrandRole>,
    /// The portal's brand (clients only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portal_brand: Option<Uuid>,
    /// The client the portal user belongs to (clients only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<Uuid>,
    /// The subject's session version when the token was issued; the token stands only while it
    /// is the current one (see [`crate::SessionSource`]). Absent in older tokens: 0.
    #[serde(default)]
    pub sv: u64,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issue time, seconds since the Unix epoch.
    pub iat: i64,
    /// Unique token id.
    pub jti: String,
    /// Issuer, always [`ISSUER`].
    pub iss: String,
}

impl Claims {
    /// Claims for a staff user, valid for `ttl` from now, with a fresh `jti`.
    pub fn staff(
        user_id: Uuid,
        organization_id: Uuid,
        org_role: OrgRole,
        brands: BTreeMap<Uuid, BrandRole>,
        ttl: chrono::Duration,
    ) -> Self {
        let now = Utc::now().timestamp();
        Claims {
            sub: user_id,
            org: organization_id,
            kind: PrincipalKind::Staff,
            org_role: Some(org_role),
            brands,
            portal_brand: None,
            client_id: None,
            sv: 0,
            exp: now + ttl.num_seconds(),
            iat: now,
            jti: Uuid::now_v7().to_string(),
            iss: ISSUER.to_owned(),
        }
    }

    /// Claims for a portal user of `brand_id` acting for `client_id`, valid for `ttl` from now.
    pub fn client(
        user_id: Uuid,
        organization_id: Uuid,
        brand_id: Uuid,
        client_id: Uuid,
        ttl: chrono::Duration,
    ) -> Self {
        let now = Utc::now().timestamp();
        Claims {
            sub: user_id,
            org: organization_id,
            kind: PrincipalKind::Client,
            org_role: None,
            brands: BTreeMap::new(),
            portal_brand: Some(brand_id),
            client_id: Some(client_id),
            sv: 0,
            exp: now + ttl.num_seconds(),
            iat: now,
            jti: Uuid::now_v7().to_string(),
            iss: ISSUER.to_owned(),
        }
    }

    /// The principal these claims describe.
    ///
    /// Client kind requires portal_brand + client_id; Staff requires org_role. Claims that mix
    /// the two shapes (a client with an org role or brand roles, staff with a portal scope) are
    /// refused as [`AuthError::InvalidToken`] too: Tenancy never issues them, so one is either a
    /// bug or a forgery, and guessing which half to trust would be a privilege decision made by
    /// accident.
    pub fn into_principal(self) -> Result<Principal, AuthError> {
        let expires_at = DateTime::<Utc>::from_timestamp(self.exp, 0).ok_or(AuthError::InvalidToken)?;
        let (org_role, brand_roles, portal) = match self.kind {
            PrincipalKind::Staff => {
                if self.portal_brand.is_some() || self.client_id.is_some() {
                    return Err(AuthError::InvalidToken);
                }
                (Some(self.org_role.ok_or(AuthError::InvalidToken)?), self.brands, None)
            }
            PrincipalKind::Client => {
                if self.org_role.is_some() || !self.brands.is_empty() {
                    return Err(AuthError::InvalidToken);
                }
                let (Some(brand_id), Some(client_id)) = (self.portal_brand, self.client_id) else {
                    return Err(AuthError::InvalidToken);
                };
                (None, BTreeMap::new(), Some(PortalScope { brand_id, client_id }))
            }
        };
        Ok(Principal {
            user_id: self.sub,
            organization_id: self.org,
            kind: self.kind,
            org_role,
            brand_roles,
            portal,
            token_id: self.jti,
            expires_at,
            session_version: self.sv,
        })
    }
}

/// A verification key as published by Tenancy's GetSigningKeys (JWKS shape: kty OKP, crv Ed25519,
/// alg EdDSA, use sig).
///
/// Only `kid` and `x` vary; the constant JWK members are the associated constants below.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    /// Key id, as in the token header.
    pub kid: String,
    /// The 32-byte Ed25519 public key, base64url without padding.
    pub x: String,
}

impl PublicKey {
    /// JWK `kty`.
    pub const KTY: &'static str = "OKP";
    /// JWK `crv`.
    pub const CRV: &'static str = "Ed25519";
    /// JWK `alg`.
    pub const ALG: &'static str = "EdDSA";
    /// JWK `use`.
    pub const USE: &'static str = "sig";

    /// The raw key bytes, if `x` is valid base64url of a valid Ed25519 point.
    pub(crate) fn verifying_key(&self) -> Option<ed25519_dalek::VerifyingKey> {
        let bytes = URL_SAFE_NO_PAD.decode(&self.x).ok()?;
        let bytes: [u8; 32] = bytes.try_into().ok()?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes).ok()
    }
}

/// PKCS#8 v1 (RFC 8410) for an Ed25519 private key is this fixed header followed by the 32-byte
/// seed. Writing it by hand keeps [`SigningKey::generate`] infallible; a unit test checks it
/// against ed25519-dalek's own encoder.
const PKCS8_V1_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

/// An Ed25519 signing key with its key id.
///
/// The private key lives in zeroize-on-drop buffers and never appears in `Debug` output.
pub struct SigningKey {
    kid: String,
    der: SecretSlice<u8>,
    encoding: EncodingKey,
    public: [u8; 32],
}

impl SigningKey {
    /// A new random key (from the operating system's CSPRNG).
    pub fn generate(kid: impl Into<String>) -> Self {
        let mut der = Zeroizing::new([0u8; PKCS8_V1_PREFIX.len() + 32]);
        let (prefix, seed) = der.split_at_mut(PKCS8_V1_PREFIX.len());
        prefix.copy_from_slice(&PKCS8_V1_PREFIX);
        rand::rngs::OsRng.fill_bytes(seed);
        let mut secret = Zeroizing::new([0u8; 32]);
        secret.copy_from_slice(seed);
        let key = ed25519_dalek::SigningKey::from_bytes(&secret);
        Self::from_parts(kid.into(), der.as_slice(), &key)
    }

    /// A key read back from storage (PKCS#8 DER, v1 or v2).
    pub fn from_pkcs8_der(kid: impl Into<String>, der: &[u8]) -> Result<Self, AuthError> {
        let key = ed25519_dalek::SigningKey::from_pkcs8_der(der)
            .map_err(|_| AuthError::Signing("not an Ed25519 PKCS#8 private key".to_owned()))?;
        Ok(Self::from_parts(kid.into(), der, &key))
    }

    fn from_parts(kid: String, der: &[u8], key: &ed25519_dalek::SigningKey) -> Self {
        SigningKey {
            kid,
            der: SecretSlice::from(der.to_vec()),
            encoding: EncodingKey::from_ed_der(der),
            public: key.verifying_key().to_bytes(),
        }
    }

    /// The key id put in the `kid` header of every token this key signs.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The private key as PKCS#8 DER, for storage by Tenancy (encrypt it at rest).
    pub fn pkcs8_der(&self) -> &[u8] {
        self.der.expose_secret()
    }

    /// The public half, to publish through GetSigningKeys.
    pub fn public_key(&self) -> PublicKey {
        PublicKey { kid: self.kid.clone(), x: URL_SAFE_NO_PAD.encode(self.public) }
    }

    /// Signs `claims` as a compact JWT (header: alg EdDSA, typ JWT, kid).
    pub fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("JWT".to_owned());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|e| AuthError::Signing(e.to_string()))
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("public", &URL_SAFE_NO_PAD.encode(self.public))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;

    use super::*;

    #[test]
    fn generated_der_is_what_dalek_encodes_and_reads_back() {
        let key = SigningKey::generate("k1");
        let parsed = ed25519_dalek::SigningKey::from_pkcs8_der(key.pkcs8_der()).unwrap();
        // dalek's own v1 encoding (no public key) of the same seed is byte-for-byte ours.
        let v1 = ed25519_dalek::pkcs8::KeypairBytes { secret_key: parsed.to_bytes(), public_key: None };
        assert_eq!(v1.to_pkcs8_der().unwrap().as_bytes(), key.pkcs8_der());
        assert_eq!(parsed.verifying_key().to_bytes(), key.public);
        // dalek's default (v2, with the public key) is accepted too.
        let v2 = SigningKey::from_pkcs8_der("k1", parsed.to_pkcs8_der().unwrap().as_bytes()).unwrap();
        assert_eq!(v2.public_key(), key.public_key());
        let again = SigningKey::from_pkcs8_der("k1", key.pkcs8_der()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        assert_ne!(SigningKey::generate("k2").pkcs8_der(), key.pkcs8_der());
    }

    #[test]
    fn public_key_is_base64url_of_32_bytes() {
        let public = SigningKey::generate("k1").public_key();
        assert_eq!(public.kid, "k1");
        assert_eq!(public.x.len(), 43);
        assert!(!public.x.contains('=') && !public.x.contains('+') && !public.x.contains('/'));
        assert!(public.verifying_key().is_some());
        assert!(PublicKey { kid: "k".into(), x: "AAAA".into() }.verifying_key().is_none());
    }

    #[test]
    fn garbage_der_is_refused() {
        assert!(matches!(SigningKey::from_pkcs8_der("k", b"not a key"), Err(AuthError::Signing(_))));
    }

    #[test]
    fn debug_does_not_print_the_private_key() {
        let key = SigningKey::generate("k1");
        let debug = format!("{key:?}");
        assert!(debug.contains("k1"));
        let seed_b64 = URL_SAFE_NO_PAD.encode(&key.pkcs8_der()[16..]);
        assert!(!debug.contains(&seed_b64));
        let seed_bytes = format!("{:?}", &key.pkcs8_der()[16..]);
        assert!(!debug.contains(&seed_bytes[1..seed_bytes.len() - 1]));
    }

    #[test]
    fn claims_shapes_convert_to_principals() {
        let (user, org, brand, client) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let ttl = chrono::Duration::minutes(15);
        let staff = Claims::staff(user, org, OrgRole::Member, BTreeMap::from([(brand, BrandRole::Agent)]), ttl);
        let p = staff.clone().into_principal().unwrap();
        assert_eq!((p.user_id, p.organization_id, p.org_role), (user, org, Some(OrgRole::Member)));
        assert_eq!(p.brand_roles.get(&brand), Some(&BrandRole::Agent));
        assert_eq!(p.expires_at.timestamp(), staff.exp);
        assert_eq!(p.token_id, staff.jti);

        let portal = Claims::client(user, org, brand, client, ttl).into_principal().unwrap();
        assert_eq!(portal.portal, Some(PortalScope { brand_id: brand, client_id: client }));
        assert_eq!(portal.org_role, None);

        let no_role = Claims { org_role: None, ..staff.clone() };
        assert!(matches!(no_role.into_principal(), Err(AuthError::InvalidToken)));
        let staff_with_portal = Claims { portal_brand: Some(brand), ..staff.clone() };
        assert!(matches!(staff_with_portal.into_principal(), Err(AuthError::InvalidToken)));
        let client_without_scope =
            Claims { kind: PrincipalKind::Client, org_role: None, brands: BTreeMap::new(), ..staff };
        assert!(matches!(client_without_scope.into_principal(), Err(AuthError::InvalidToken)));
        let client_with_role =
            Claims { org_role: Some(OrgRole::Owner), ..Claims::client(user, org, brand, client, ttl) };
        assert!(matches!(client_with_role.into_principal(), Err(AuthError::InvalidToken)));
    }

    #[test]
    fn claims_use_the_documented_field_names() {
        let brand = Uuid::new_v4();
        let claims = Claims::staff(
            Uuid::new_v4(),
            Uuid::new_v4(),
            OrgRole::Admin,
            BTreeMap::from([(brand, BrandRole::Finance)]),
            chrono::Duration::minutes(5),
        );
        let json = serde_json::to_value(&claims).unwrap();
        let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 10, "{keys:?}");
        for key in ["sub", "org", "kind", "org_role", "brands", "sv", "exp", "iat", "jti", "iss"] {
            assert!(json.get(key).is_some(), "{key}");
        }
        assert_eq!(json["kind"], "staff");
        assert_eq!(json["org_role"], "admin");
        assert_eq!(json["iss"], "sentra");
        assert_eq!(json["brands"][brand.to_string()], "finance");
        let portal =
            serde_json::to_value(Claims::client(Uuid::nil(), Uuid::nil(), brand, brand, chrono::Duration::minutes(5)))
                .unwrap();
        assert_eq!(portal["kind"], "client");
        assert!(portal.get("org_role").is_none());
        assert!(portal.get("portal_brand").is_some() && portal.get("client_id").is_some());
    }
}
