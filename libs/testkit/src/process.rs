//! Service binaries as real processes, for tests that need more than one replica or a SIGKILL.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::{Child, Command};

/// A free TCP port on 127.0.0.1 (bound and released: another process could take it meanwhile,
/// which only matters on a busy machine; the binary then fails to bind and the test says so).
///
/// # Panics
/// If no port can be bound at all.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// A running binary, killed (SIGKILL) when dropped. Its output goes to a log file named in
/// panics, so a failing test shows where to look.
pub struct Process {
    child: Child,
    /// The file holding its stdout and stderr.
    pub log: PathBuf,
}

impl Process {
    /// Starts `program` with `env` added to the test's environment.
    ///
    /// # Panics
    /// If the binary cannot be started.
    pub fn spawn(program: &Path, name: &str, env: &[(String, String)]) -> Self {
        Self::spawn_with_args(program, &[], name, env)
    }

    /// Starts `program` with `args`, and `env` added to the test's environment.
    ///
    /// # Panics
    /// If the binary cannot be started.
    pub fn spawn_with_args(program: &Path, args: &[&str], name: &str, env: &[(String, String)]) -> Self {
        let log = std::env::temp_dir().join(format!("{}.log", crate::unique_prefix(name)));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        Self { child, log }
    }

    /// Kills it with SIGKILL (no shutdown, no drain: as a crashed node) and reaps it.
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}
