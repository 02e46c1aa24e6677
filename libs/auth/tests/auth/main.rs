//! Integration tests of sentra-auth: tokens, key rotation, the permission matrix, the tonic
//! layer on a real server, and the docs/contracts staying in step with the matrix.

mod cache;
mod docs;
mod layer;
mod matrix;
mod rotation;
mod tokens;

use std::collections::BTreeMap;
use std::sync::Arc;

use sentra_auth::{BrandRole, Claims, OrgRole, SigningKey, StaticKeys, Verifier};
use uuid::Uuid;

/// Staff claims for a fresh user of a fresh organization, valid for 15 minutes.
pub fn staff_claims(org_role: OrgRole, brands: &[(Uuid, BrandRole)]) -> Claims {
    Claims::staff(
        Uuid::new_v4(),
        Uuid::new_v4(),
        org_role,
        brands.iter().copied().collect::<BTreeMap<_, _>>(),
        chrono::Duration::minutes(15),
    )
}

/// A verifier that knows exactly `keys`.
pub fn verifier_for(keys: &[&SigningKey]) -> Verifier {
    Verifier::new(Arc::new(StaticKeys(keys.iter().map(|k| k.public_key()).collect())))
}
