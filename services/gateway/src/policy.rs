//! The authorization policy declared in the contracts: one [`Rule`] per RPC path.
//!
//! Every RPC carries `option (sentra.auth.v1.rule) = {permission: "...", scope: SCOPE_...}`. The
//! options are read from an encoded `FileDescriptorSet` with a handful of hand-written prost
//! messages that keep only what the gateway needs (package, services, methods, the option's
//! field 51000): prost skips every other field, so no reflection library is needed.

use std::collections::HashMap;

use prost::Message;

/// The descriptor set of every contract, custom options included.
pub const CONTRACTS: &[u8] = sentra_proto::FILE_DESCRIPTOR_SET;

/// Field number of the `sentra.auth.v1.rule` extension of `google.protobuf.MethodOptions`.
pub const RULE_EXTENSION: u32 = 51000;

/// Where a rule's permission must hold (`sentra.auth.v1.Scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Anyone, without a token.
    Public,
    /// Any valid token.
    Authenticated,
    /// The permission, organization-wide.
    Organization,
    /// The permission, on the brand the request names.
    Brand,
}

/// The access rule of one RPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The permission (empty for PUBLIC and AUTHENTICATED).
    pub permission: String,
    /// Where it must hold.
    pub scope: Scope,
}

/// Why an RPC's declared rule is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    /// No `sentra.auth.v1.rule` option at all.
    #[error("{0}: no sentra.auth.v1.rule option")]
    MissingRule(String),
    /// The rule's scope is SCOPE_UNSPECIFIED (or a value this gateway does not know).
    #[error("{0}: scope unspecified or unknown ({1})")]
    BadScope(String, i32),
    /// The permission is not in `sentra_auth::permissions::MATRIX`.
    #[error("{0}: unknown permission {1:?}")]
    UnknownPermission(String, String),
    /// An ORGANIZATION rule naming a brand-scoped permission, or the reverse.
    #[error("{0}: permission {1:?} is not checked at scope {2:?}")]
    ScopeMismatch(String, String, Scope),
    /// ORGANIZATION and BRAND rules must name a permission.
    #[error("{0}: scope {1:?} without a permission")]
    MissingPermission(String, Scope),
}

/// Every RPC path of the `sentra.*` packages with its rule, read once at start-up.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    rules: HashMap<String, Rule>,
    errors: Vec<ContractError>,
}

impl Policy {
    /// The policy of the contracts this gateway was built with.
    pub fn from_contracts() -> Result<Self, prost::DecodeError> {
        Self::from_descriptor_set(CONTRACTS)
    }

    /// Reads every `sentra.*` RPC and its rule from an encoded `FileDescriptorSet`.
    ///
    /// RPCs whose rule is missing or malformed are left out of the policy (so the gateway refuses
    /// them) and reported by [`Policy::errors`].
    pub fn from_descriptor_set(encoded: &[u8]) -> Result<Self, prost::DecodeError> {
        let set = FileDescriptorSet::decode(encoded)?;
        let mut policy = Policy::default();
        for (path, rule) in methods(&set) {
            match validate(&path, rule) {
                Ok(rule) => {
                    policy.rules.insert(path, rule);
                }
                Err(error) => policy.errors.push(error),
            }
        }
        Ok(policy)
    }

    /// The rule of `/package.Service/Method`, if the contracts declare that RPC with a valid rule.
    pub fn rule(&self, path: &str) -> Option<&Rule> {
        self.rules.get(path)
    }

    /// Every RPC path with a valid rule.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.rules.keys().map(String::as_str)
    }

    /// RPCs of `sentra.*` packages whose rule is unusable.
    pub fn errors(&self) -> &[ContractError] {
        &self.errors
    }
}

/// Every `sentra.*` RPC path (`/pkg.Service/Method`) of `set`, with its raw rule option.
fn methods(set: &FileDescriptorSet) -> Vec<(String, Option<AccessRule>)> {
    let mut out = Vec::new();
    for file in &set.file {
        let package = file.package.as_deref().unwrap_or_default();
        if !package.starts_with("sentra.") {
            continue;
        }
        for service in &file.service {
            let service_name = service.name.as_deref().unwrap_or_default();
            for method in &service.method {
                let path = format!("/{package}.{service_name}/{}", method.name.as_deref().unwrap_or_default());
                out.push((path, method.options.as_ref().and_then(|o| o.rule.clone())));
            }
        }
    }
    out
}

/// Every `sentra.*` RPC path of an encoded descriptor set (for the contract test).
pub fn rpc_paths(encoded: &[u8]) -> Result<Vec<String>, prost::DecodeError> {
    let set = FileDescriptorSet::decode(encoded)?;
    Ok(methods(&set).into_iter().map(|(path, _)| path).collect())
}

fn validate(path: &str, rule: Option<AccessRule>) -> Result<Rule, ContractError> {
    let rule = rule.ok_or_else(|| ContractError::MissingRule(path.to_owned()))?;
    let scope = match rule.scope {
        1 => Scope::Public,
        2 => Scope::Authenticated,
        3 => Scope::Organization,
        4 => Scope::Brand,
        other => return Err(ContractError::BadScope(path.to_owned(), other)),
    };
    let permission = rule.permission.trim().to_owned();
    if permission.is_empty() {
        return match scope {
            Scope::Organization | Scope::Brand => Err(ContractError::MissingPermission(path.to_owned(), scope)),
            Scope::Public | Scope::Authenticated => Ok(Rule { permission, scope }),
        };
    }
    let grant = sentra_auth::permissions::grant(&permission)
        .ok_or_else(|| ContractError::UnknownPermission(path.to_owned(), permission.clone()))?;
    let matches = match scope {
        Scope::Organization => grant.scope == sentra_auth::permissions::Scope::Organization,
        Scope::Brand => grant.scope == sentra_auth::permissions::Scope::Brand,
        // A permission named next to PUBLIC/AUTHENTICATED is documentation only; it must still exist.
        Scope::Public | Scope::Authenticated => true,
    };
    if !matches {
        return Err(ContractError::ScopeMismatch(path.to_owned(), permission, scope));
    }
    Ok(Rule { permission, scope })
}

/// The bounded context of a path `/sentra.<context>.v1.<Service>/<Method>`.
pub fn context_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/sentra.")?;
    let (context, _) = rest.split_once('.')?;
    (!context.is_empty()).then_some(context)
}

// The subset of descriptor.proto the gateway reads; prost skips all other fields.

#[derive(Clone, PartialEq, Message)]
struct FileDescriptorSet {
    #[prost(message, repeated, tag = "1")]
    file: Vec<FileDescriptorProto>,
}

#[derive(Clone, PartialEq, Message)]
struct FileDescriptorProto {
    #[prost(string, optional, tag = "2")]
    package: Option<String>,
    #[prost(message, repeated, tag = "6")]
    service: Vec<ServiceDescriptorProto>,
}

#[derive(Clone, PartialEq, Message)]
struct ServiceDescriptorProto {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(message, repeated, tag = "2")]
    method: Vec<MethodDescriptorProto>,
}

#[derive(Clone, PartialEq, Message)]
struct MethodDescriptorProto {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(message, optional, tag = "4")]
    options: Option<MethodOptions>,
}

#[derive(Clone, PartialEq, Message)]
struct MethodOptions {
    #[prost(message, optional, tag = "51000")]
    rule: Option<AccessRule>,
}

#[derive(Clone, PartialEq, Message)]
struct AccessRule {
    #[prost(string, tag = "1")]
    permission: String,
    #[prost(int32, tag = "2")]
    scope: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps the contracts honest as they grow (and fails the build's tests otherwise): every
    /// RPC of every `sentra.*` package declares a usable rule naming a permission of the matrix
    /// at the right scope.
    #[test]
    fn every_contract_rpc_declares_a_valid_rule() {
        let policy = Policy::from_contracts().expect("descriptor set decodes");
        assert!(policy.errors().is_empty(), "contract errors: {:#?}", policy.errors());
        let rpcs = rpc_paths(CONTRACTS).expect("descriptor set decodes");
        assert!(rpcs.len() > 50, "every contract is in the set: {}", rpcs.len());
        for path in &rpcs {
            assert!(policy.rule(path).is_some(), "{path} has no usable rule");
        }
    }

    #[test]
    fn reads_the_declared_rules() {
        let policy = Policy::from_contracts().expect("descriptor set decodes");
        let login = policy.rule("/sentra.tenancy.v1.AuthService/Login").expect("login");
        assert_eq!(login.scope, Scope::Public);
        let get_brand = policy.rule("/sentra.tenancy.v1.TenancyService/GetBrand").expect("get brand");
        assert_eq!(get_brand, &Rule { permission: "tenancy.brand.read".into(), scope: Scope::Brand });
        let list = policy.rule("/sentra.tenancy.v1.TenancyService/ListUsers").expect("list users");
        assert_eq!(list.scope, Scope::Organization);
        assert!(policy.rule("/sentra.tenancy.v1.TenancyService/Nope").is_none());
    }

    #[test]
    fn malformed_rules_are_reported_not_served() {
        let rule = |permission: &str, scope: i32| Some(AccessRule { permission: permission.into(), scope });
        let file = |methods: Vec<(&str, Option<AccessRule>)>| FileDescriptorProto {
            package: Some("sentra.demo.v1".into()),
            service: vec![ServiceDescriptorProto {
                name: Some("DemoService".into()),
                method: methods
                    .into_iter()
                    .map(|(name, rule)| MethodDescriptorProto {
                        name: Some(name.into()),
                        options: Some(MethodOptions { rule }),
                    })
                    .collect(),
            }],
        };
        let set = FileDescriptorSet {
            file: vec![file(vec![
                ("Ok", rule("sales.lead.read", 4)),
                ("NoRule", None),
                ("Unspecified", rule("", 0)),
                ("Unknown", rule("sales.lead.fly", 4)),
                ("Mismatch", rule("sales.lead.read", 3)),
                ("NoPermission", rule("", 4)),
            ])],
        };
        let policy = Policy::from_descriptor_set(&set.encode_to_vec()).expect("decodes");
        assert!(policy.rule("/sentra.demo.v1.DemoService/Ok").is_some());
        assert_eq!(policy.paths().count(), 1);
        assert_eq!(policy.errors().len(), 5, "{:?}", policy.errors());
    }

    #[test]
    fn contexts_come_from_the_package() {
        assert_eq!(context_of("/sentra.sales.v1.LeadService/CreateLead"), Some("sales"));
        assert_eq!(context_of("/grpc.health.v1.Health/Check"), None);
        assert_eq!(context_of("/sentra..v1.X/Y"), None);
    }
}
