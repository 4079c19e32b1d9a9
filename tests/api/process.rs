//! The real `latchkey` binary as a child process, for what only a process
//! shows: signals, exit codes and everything it writes to stderr.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running `latchkey serve` on a fresh SQLite file and keys folder.
pub struct ServerProcess {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    stderr: Arc<Mutex<String>>,
    lines: Receiver<String>,
}

impl ServerProcess {
    /// Starts the server with `env` on top of a fresh store and port 0, and
    /// waits until it listens.
    pub fn start(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut all = vec![
            (
                "LATCHKEY__DATABASE__URL".to_owned(),
                format!("sqlite://{}", dir.path().join("db.sqlite").display()),
            ),
            (
                "LATCHKEY__KEYS__DIR".to_owned(),
                dir.path().join("keys").display().to_string(),
            ),
            ("LATCHKEY__SERVER__PORT".to_owned(), "0".to_owned()),
            ("LATCHKEY__SERVER__WORKERS".to_owned(), "2".to_owned()),
            (
                "LATCHKEY__PASSWORDS__MAX_CONCURRENT_HASHES".to_owned(),
                "2".to_owned(),
            ),
        ];
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut child = command(&all)
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = mpsc::channel();
        let pipe = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                sink.lock().expect("lock").push_str(&format!("{line}\n"));
                let _ = tx.send(line);
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let (port_tx, port_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("latchkey listening on port ") {
                    let port = rest.split(' ').next().and_then(|p| p.parse::<u16>().ok());
                    let _ = port_tx.send(port);
                }
            }
        });
        let port = match port_rx.recv_timeout(Duration::from_secs(120)) {
            Ok(Some(port)) => port,
            _ => {
                let _ = child.kill();
                panic!("server did not start: {}", stderr.lock().expect("lock"));
            }
        };
        Self {
            child,
            port,
            dir,
            env: all,
            stderr,
            lines,
        }
    }

    /// The base URL.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The keys folder the server uses.
    pub fn keys_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("keys")
    }

    /// Runs a CLI command against the same store and keys: (success,
    /// stdout, stderr).
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let mut child = command(&self.env)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("binary runs");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin");
            pipe.write_all(input.as_bytes()).expect("write");
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().expect("output");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Sends SIGTERM, as an orchestrator stopping the instance would.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits until a stderr line contains `needle`; false if the server
    /// closed stderr (exited) first or nothing came for a minute.
    pub fn wait_for_log(&self, needle: &str) -> bool {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(60)) {
            if line.contains(needle) {
                return true;
            }
        }
        false
    }

    /// What the server wrote to stderr so far.
    pub fn logs(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    /// Waits for the process to exit: its status and everything it wrote to
    /// stderr.
    pub fn wait(mut self) -> (ExitStatus, String) {
        let status = self.child.wait().expect("wait");
        // Drain what the reader thread still holds.
        while self.lines.recv_timeout(Duration::from_secs(5)).is_ok() {}
        let logs = self.stderr.lock().expect("lock").clone();
        (status, logs)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    cmd.env_remove("DATABASE_URL").env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}
