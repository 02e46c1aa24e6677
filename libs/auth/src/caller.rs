//! The caller of one request: its principal and the token it presented (which services forward
//! when they ask Tenancy something on the caller's behalf).

use crate::Principal;

/// Who is calling, as the auth layer established it.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The verified principal.
    pub principal: Principal,
    /// The bearer token, for calls made on the caller's behalf.
    pub token: String,
}

impl Caller {
    /// The caller of `request`, or UNAUTHENTICATED if it carried no token.
    pub fn of<T>(request: &tonic::Request<T>) -> Result<Self, tonic::Status> {
        let principal = crate::principal(request)?.clone();
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_owned();
        Ok(Self { principal, token })
    }

    /// The caller's organization: the tenant of everything it touches.
    pub fn tenant(&self) -> uuid::Uuid {
        self.principal.organization_id
    }
}
