//! What the `cased serve` benches share: the real `cased serve` binary started on a free
//! loopback port with a fresh store.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

pub(crate) struct Server {
    child: std::process::Child,
    pub(crate) base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cased serve --no-auth` with its store in `dir` and `config`, if any.
pub(crate) fn start(dir: &std::path::Path, config: Option<&std::path::Path>) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cased"));
    cmd.env_clear()
        .current_dir(dir)
        .args(["serve", "--no-auth", "--listen", "127.0.0.1:0", "--store"])
        .arg(dir.join(".cased"));
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    spawn(cmd)
}

/// Starts `cmd` and waits for the `listening on URL` line on its stderr.
pub(crate) fn spawn(mut cmd: Command) -> Server {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.split("listening on ").nth(1) {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("cased serve listens");
    Server { child, base }
}
