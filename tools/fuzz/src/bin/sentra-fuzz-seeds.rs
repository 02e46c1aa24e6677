//! Writes the seed inputs of every fuzz target into `<dir>/<target>/seed-<n>` (`make fuzz`).

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "target/fuzz/seeds".into()));
    for (n, (target, bytes)) in sentra_fuzz::seeds::seeds().into_iter().enumerate() {
        let target_dir = dir.join(target);
        std::fs::create_dir_all(&target_dir)?;
        std::fs::write(target_dir.join(format!("seed-{n:03}")), bytes)?;
    }
    Ok(())
}
