//! A human with a real crypto client: `tests/e2ee/nio_human.py` (matrix-nio with its e2e
//! extra, installed into `target/nio-venv` by `scripts/install-nio.sh`), one process per
//! client device, driven over its stdin and stdout one JSON line at a time.

use std::{
    io::{BufRead, BufReader, Write},
    path::PathBuf,
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
};

use serde_json::{json, Value};

use super::{process::target_dir, Human};

/// One crypto client device of a human.
pub struct NioClient {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// The client's crypto store.
    _store: tempfile::TempDir,
}

impl NioClient {
    /// Logs `human` in as a new device `device` of theirs, with its keys uploaded.
    pub fn login(homeserver: &str, human: &Human, device: &str) -> NioClient {
        let install = root().join("scripts/install-nio.sh");
        let status = Command::new("bash")
            .arg(&install)
            .status()
            .expect("run scripts/install-nio.sh");
        assert!(status.success(), "scripts/install-nio.sh failed");
        let python = target_dir().join("nio-venv/bin/python");
        let mut child = Command::new(python)
            .arg(root().join("tests/e2ee/nio_human.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the nio client");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let store = tempfile::tempdir().expect("nio store dir");
        let mut client = NioClient {
            child,
            stdin,
            stdout,
            _store: store,
        };
        let store_path = client._store.path().display().to_string();
        client.call(json!({
            "cmd": "login", "homeserver": homeserver, "user": human.user_id,
            "password": human.password, "device": device, "store": store_path,
        }));
        client
    }

    /// One command; panics with the client's error when it fails.
    pub fn call(&mut self, command: Value) -> Value {
        writeln!(self.stdin, "{command}").expect("write to the nio client");
        self.stdin.flush().expect("flush");
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("read from the nio client");
        let answer: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the nio client answered {line:?} to {command}: {e}"));
        assert_eq!(answer["ok"], true, "nio client: {command} failed: {answer}");
        answer
    }

    /// Sends an encrypted text message; answers its event id.
    pub fn send(&mut self, room: &str, body: &str) -> String {
        let answer = self.call(json!({"cmd": "send", "room": room, "body": body}));
        answer["event_id"].as_str().expect("event_id").to_owned()
    }

    /// Waits for a text message containing `body` in `room`, decrypted by this client.
    pub fn wait_message(&mut self, room: &str, body: &str, timeout_s: u64) -> Value {
        self.call(json!({"cmd": "wait_message", "room": room, "body": body, "timeout": timeout_s}))
    }
}

impl Drop for NioClient {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"cmd": "quit"}));
        let _ = self.child.wait();
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
