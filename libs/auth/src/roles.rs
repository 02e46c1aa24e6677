//! The roles a token carries: the organization-wide role of a staff user, their role on each
//! brand, and what kind of principal the token names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::AuthError;

/// Role of a staff user across their whole organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgRole {
    /// Created the organization; holds every permission on every brand.
    Owner,
    /// Holds every permission on every brand, like the owner.
    Admin,
    /// Reads the organization and its users; everything brand-scoped comes from brand roles.
    Member,
    /// A member who may also replay the organization's event history (`analytics.events.read`),
    /// with personal data redacted unless a brand role or owner/admin role lets them read it.
    Analyst,
}

/// Role of a staff user on one brand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BrandRole {
    /// Every brand-scoped permission.
    Manager,
    /// Day-to-day sales work: leads, clients, orders, portal users.
    Agent,
    /// Invoices, payments and receivables.
    Finance,
    /// Reads everything on the brand, changes nothing.
    Viewer,
}

/// Who a token names: a staff user of the organization, or a client signed in to a brand portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// An agency employee, with an organization role and brand roles.
    Staff,
    /// A portal user: one client of one brand.
    Client,
}

/// Implements `as_str`, `Display` and `FromStr` from one list of (variant, name) pairs, so the
/// three can never disagree with each other (serde's snake_case gives the same names; a unit test
/// checks that).
macro_rules! named {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The name used in tokens, the database and the API.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = AuthError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    other => Err(AuthError::InvalidRole(other.to_owned())),
                }
            }
        }
    };
}

named!(OrgRole { Owner => "owner", Admin => "admin", Member => "member", Analyst => "analyst" });
named!(BrandRole { Manager => "manager", Agent => "agent", Finance => "finance", Viewer => "viewer" });
named!(PrincipalKind { Staff => "staff", Client => "client" });

#[cfg(test)]
mod tests {
    use super::*;

    fn check_names<T>(all: &[T])
    where
        T: Copy + fmt::Debug + PartialEq + fmt::Display + FromStr<Err = AuthError> + Serialize,
    {
        for value in all {
            let name = value.to_string();
            assert_eq!(name.parse::<T>().unwrap(), *value);
            assert_eq!(serde_json::to_string(value).unwrap(), format!("\"{name}\""));
        }
    }

    #[test]
    fn names_roundtrip_and_match_serde() {
        check_names(OrgRole::ALL);
        check_names(BrandRole::ALL);
        check_names(PrincipalKind::ALL);
        assert_eq!(OrgRole::Owner.as_str(), "owner");
        assert_eq!(BrandRole::Manager.as_str(), "manager");
        assert_eq!(PrincipalKind::Staff.as_str(), "staff");
    }

    #[test]
    fn unknown_names_are_refused() {
        assert!(matches!("Owner".parse::<OrgRole>(), Err(AuthError::InvalidRole(s)) if s == "Owner"));
        assert!(matches!("root".parse::<BrandRole>(), Err(AuthError::InvalidRole(_))));
        assert!(matches!("".parse::<PrincipalKind>(), Err(AuthError::InvalidRole(_))));
        assert!(serde_json::from_str::<BrandRole>("\"boss\"").is_err());
    }
}
