//! Every seed and every input that ever made a target fail (`regressions/<target>/`), replayed:
//! what the fuzzer found stays fixed.

use std::path::Path;

fn target(name: &str) -> sentra_fuzz::Target {
    sentra_fuzz::TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f).expect("a known target")
}

#[test]
fn seeds_pass_every_target() {
    let seeds = sentra_fuzz::seeds::seeds();
    for (name, _) in sentra_fuzz::TARGETS {
        assert!(seeds.iter().any(|(n, _)| n == name), "{name} has seeds");
    }
    for (name, bytes) in seeds {
        target(name)(&bytes);
    }
}

#[test]
fn regressions_stay_fixed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut replayed = 0;
    for (name, run) in sentra_fuzz::TARGETS {
        let Ok(entries) = std::fs::read_dir(root.join(name)) else { continue };
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            let bytes = std::fs::read(&path).expect("a regression input");
            eprintln!("replaying {}", path.display());
            run(&bytes);
            replayed += 1;
        }
    }
    eprintln!("{replayed} regression inputs replayed");
}
