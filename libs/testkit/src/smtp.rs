//! A real SMTP server on loopback for tests: `aiosmtpd` (Python, started per test) with a small
//! handler that keeps every accepted message as a file, refuses recipients whose local part
//! starts with `reject` (550, permanent) and refuses those starting with `defer` once (451,
//! temporary). Tests read back exactly what the server received.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};

const HANDLER: &str = r#"
import os, sys, time
from aiosmtpd.controller import Controller

port, out = int(sys.argv[1]), sys.argv[2]
tries = {}

class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split('@')[0].lower()
        if local.startswith('reject'):
            return '550 5.1.1 mailbox unavailable'
        if local.startswith('defer'):
            tries[address] = tries.get(address, 0) + 1
            if tries[address] == 1:
                return '451 4.3.0 try again later'
        envelope.rcpt_tos.append(address)
        return '250 OK'

    async def handle_DATA(self, server, session, envelope):
        name = os.path.join(out, '%020d.eml' % time.time_ns())
        with open(name + '.tmp', 'wb') as f:
            f.write(b'X-Envelope-To: ' + ','.join(envelope.rcpt_tos).encode() + b'\r\n')
            f.write(envelope.original_content)
        os.rename(name + '.tmp', name)
        return '250 2.0.0 accepted'

controller = Controller(Handler(), hostname='127.0.0.1', port=port)
controller.start()
print('ready', flush=True)
while True:
    time.sleep(3600)
"#;

/// A running SMTP server; stopped when dropped.
pub struct SmtpServer {
    child: tokio::process::Child,
    port: u16,
    dir: PathBuf,
}

impl SmtpServer {
    /// Starts one on a free port.
    ///
    /// # Panics
    /// When `python3` with `aiosmtpd` is missing (`.ci/run` installs it) or it does not start.
    pub async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("sentra-smtp-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("a mail directory");
        let script = dir.join("handler.py");
        std::fs::write(&script, HANDLER).expect("the handler");
        let port = crate::process::free_port();
        let mut child = tokio::process::Command::new("python3")
            .arg(&script)
            .arg(port.to_string())
            .arg(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs (pip install aiosmtpd)");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await;
        assert!(
            matches!(ready, Ok(Ok(Some(ref line))) if line == "ready"),
            "aiosmtpd did not start (python3 -m pip install aiosmtpd): {ready:?}"
        );
        Self { child, port, dir }
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every message it accepted, oldest first, as received (an `X-Envelope-To` line first).
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
        files.sort();
        files.iter().filter_map(|p| std::fs::read_to_string(p).ok()).collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
