//! The documentation and the contracts agree with the permission matrix.

use std::path::{Path, PathBuf};

use sentra_auth::permissions::{self, Scope};

/// The crate docs carry the matrix table verbatim, as `//! ` lines.
#[test]
fn crate_docs_show_the_current_matrix() {
    let lib = include_str!("../../src/lib.rs");
    let expected: String = permissions::matrix_markdown().lines().map(|l| format!("//! {l}\n")).collect();
    assert!(lib.contains(&expected), "the permission table in src/lib.rs is out of date; replace it with:\n{expected}");
}

/// The web apps decide which actions to offer from a copy of the matrix; it must be this one.
#[test]
fn web_apps_carry_the_current_matrix() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/shared/src/permissions.json");
    let shipped = std::fs::read_to_string(&path).unwrap_or_default();
    let expected = permissions::matrix_json();
    assert!(shipped == expected, "{} is out of date; replace it with:\n{expected}", path.display());
}

fn proto_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable proto dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            proto_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
}

/// Every `permission: "..."` an RPC contract declares is in the matrix, with the same scope, so a
/// contract cannot name a permission nobody can hold.
#[test]
fn contract_permissions_exist_with_the_same_scope() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let mut files = Vec::new();
    proto_files(&root, &mut files);
    assert!(!files.is_empty(), "no contracts under {}", root.display());
    let mut checked = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("permission: \"") {
            rest = &rest[at + "permission: \"".len()..];
            let name = &rest[..rest.find('"').unwrap()];
            let scope_at = rest.find("scope:").unwrap_or_else(|| panic!("{name} in {} has no scope", file.display()));
            let scope =
                rest[scope_at + "scope:".len()..].split_whitespace().next().unwrap().trim_end_matches(['}', ';']);
            let grant = permissions::grant(name)
                .unwrap_or_else(|| panic!("{} declares {name}, which is not in the matrix", file.display()));
            let expected = match grant.scope {
                Scope::Organization => "SCOPE_ORGANIZATION",
                Scope::Brand => "SCOPE_BRAND",
            };
            assert_eq!(scope, expected, "{name} in {}", file.display());
            checked += 1;
        }
    }
    assert!(checked > 0, "found no permission in the contracts");
}
