//! Running the real server binary: start it on `127.0.0.1:0` with a fresh data directory,
//! learn its address from the `listening on http://ADDR` log line, stop it with SIGTERM,
//! and run its `keys` subcommands. Every wait has a deadline, so a broken server fails a
//! test instead of hanging it.
#![cfg(test)]

use std::io::{BufRead as _, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The server binary cargo built for these tests.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_finsec-reference-server");

/// How long a server may take to start (or to fail to start).
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server may take to exit after SIGTERM.
pub(crate) const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a `keys` subcommand may take.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// What precedes the address in the start-up log line.
const LISTENING: &str = "listening on http://";

/// Environment variables of the server that must not leak in from the environment the
/// tests run in.
/// Whether the server reads the environment variable `name`: every `FINSEC_` variable
/// except the tests' own (`FINSEC_TEST_*`), and `RUST_LOG`. All of them are cleared for the
/// servers tests start, so a developer's shell never changes what a test sees, whatever
/// flags are added later.
fn is_server_var(name: &str) -> bool {
    (name.starts_with("FINSEC_") && !name.starts_with("FINSEC_TEST_")) || name == "RUST_LOG"
}

/// Rate limits far above what tests send, given to every server through
/// `FINSEC_RATE_LIMITS`; a test of the limits passes its own `--rate-limits` file instead.
pub(crate) const RELAXED_RATE_LIMITS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/server/rate-limits-relaxed.toml"
);

/// A fresh temporary directory; the server's data directory is `data` inside it, so the
/// server creates it (and chooses its mode) itself.
#[derive(Debug)]
pub(crate) struct DataDir {
    _tmp: TempDir,
    path: PathBuf,
}

impl DataDir {
    /// A new, not yet existing, data directory.
    pub(crate) fn new() -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("finsec-server-test-")
            .tempdir()
            .unwrap();
        let path = tmp.path().join("data");
        Self { _tmp: tmp, path }
    }

    /// The data directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The sealed keyring file.
    pub(crate) fn keyring(&self) -> PathBuf {
        self.path.join("keyring.sealed")
    }

    /// The generated master key file.
    pub(crate) fn master_key(&self) -> PathBuf {
        self.path.join("master.key")
    }
}

/// How to start the binary: extra arguments and environment variables.
#[derive(Debug, Clone, Default)]
pub(crate) struct Launch {
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Launch {
    /// No extra settings: SQLite, no Redis, no passphrase.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds command line arguments.
    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the child.
    pub(crate) fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Sets `FINSEC_MASTER_PASSPHRASE`.
    pub(crate) fn passphrase(self, passphrase: &str) -> Self {
        self.env("FINSEC_MASTER_PASSPHRASE", passphrase)
    }

    fn command(&self, data: &DataDir, leading: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        for (var, _) in std::env::vars_os() {
            if var.to_str().is_some_and(is_server_var) {
                command.env_remove(var);
            }
        }
        command
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env("FINSEC_RATE_LIMITS", RELAXED_RATE_LIMITS)
            // Tests register users and read their ids from the answer; the registration
            // modes have a test of their own (`--registration` on its command line wins).
            .env("FINSEC_REGISTRATION", "open")
            .args(leading)
            .arg("--data-dir")
            .arg(data.path())
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
    }

    /// Starts the server and waits for it to listen.
    ///
    /// # Panics
    /// If it exits or stays silent for [`START_TIMEOUT`]; the message holds its output.
    pub(crate) fn start(&self, data: &DataDir) -> Server {
        match self.try_start(data) {
            Ok(server) => server,
            Err(failure) => panic!("the server did not start: {failure}"),
        }
    }

    /// Starts the server and waits for it to listen, or to exit.
    pub(crate) fn try_start(&self, data: &DataDir) -> Result<Server, StartFailure> {
        let mut child = self
            .command(data, &["--listen", "127.0.0.1:0"])
            .spawn()
            .unwrap();
        let output = Output::capture(&mut child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(addr) = output.listening_addr() {
                return Ok(Server {
                    child,
                    addr,
                    output,
                    client: client(),
                });
            }
            if let Some(status) = child.try_wait().unwrap() {
                output.wait_closed(Duration::from_secs(5));
                if let Some(addr) = output.listening_addr() {
                    panic!(
                        "the server said it listens on {addr} but exited with {status}:\n{}",
                        output.text()
                    );
                }
                return Err(StartFailure {
                    status: Some(status),
                    output: output.text(),
                });
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(StartFailure {
                    status: None,
                    output: output.text(),
                });
            }
            output.wait_for_line(Duration::from_millis(100));
        }
    }

    /// Runs `keys <args>` to completion.
    ///
    /// # Panics
    /// If it runs longer than [`COMMAND_TIMEOUT`].
    pub(crate) fn keys(&self, data: &DataDir, args: &[&str]) -> Finished {
        let mut leading = vec!["keys"];
        leading.extend_from_slice(args);
        let mut child = self.command(data, &leading).spawn().unwrap();
        let stdout = read_all(child.stdout.take().unwrap());
        let stderr = read_all(child.stderr.take().unwrap());
        let status = wait_until(&mut child, COMMAND_TIMEOUT).unwrap_or_else(|| {
            panic!("`keys {}` ran for over {COMMAND_TIMEOUT:?}", args.join(" "))
        });
        Finished {
            status,
            stdout: stdout.join().unwrap(),
            stderr: stderr.join().unwrap(),
        }
    }

    /// Runs `roles <args>` to completion.
    ///
    /// # Panics
    /// If it runs longer than [`COMMAND_TIMEOUT`].
    pub(crate) fn roles(&self, data: &DataDir, args: &[&str]) -> Finished {
        self.subcommand(data, "roles", args)
    }

    /// Runs the `accounts` subcommand with `args`, as [`roles`](Self::roles) does.
    ///
    /// # Panics
    /// If it runs longer than [`COMMAND_TIMEOUT`].
    pub(crate) fn accounts(&self, data: &DataDir, args: &[&str]) -> Finished {
        self.subcommand(data, "accounts", args)
    }

    /// Runs the `reports` subcommand with `args`, as [`roles`](Self::roles) does.
    ///
    /// # Panics
    /// If it runs longer than [`COMMAND_TIMEOUT`].
    pub(crate) fn reports(&self, data: &DataDir, args: &[&str]) -> Finished {
        self.subcommand(data, "reports", args)
    }

    /// Runs the `users` subcommand with `args`, as [`roles`](Self::roles) does.
    ///
    /// # Panics
    /// If it runs longer than [`COMMAND_TIMEOUT`].
    pub(crate) fn users(&self, data: &DataDir, args: &[&str]) -> Finished {
        self.subcommand(data, "users", args)
    }

    /// Runs the `retention` subcommand with `args`, as [`roles`](Self::roles) does.
    ///
    /// # Panics
    /// If it runs longer than [`COMMAND_TIMEOUT`].
    pub(crate) fn retention(&self, data: &DataDir, args: &[&str]) -> Finished {
        self.subcommand(data, "retention", args)
    }

    fn subcommand(&self, data: &DataDir, name: &str, args: &[&str]) -> Finished {
        let mut leading = vec![name];
        leading.extend_from_slice(args);
        let mut child = self.command(data, &leading).spawn().unwrap();
        let stdout = read_all(child.stdout.take().unwrap());
        let stderr = read_all(child.stderr.take().unwrap());
        let status = wait_until(&mut child, COMMAND_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "`{name} {}` ran for over {COMMAND_TIMEOUT:?}",
                args.join(" ")
            )
        });
        Finished {
            status,
            stdout: stdout.join().unwrap(),
            stderr: stderr.join().unwrap(),
        }
    }
}

/// A server that exited (or hung) instead of listening.
#[derive(Debug)]
pub(crate) struct StartFailure {
    /// Its exit status; `None` if it neither listened nor exited in time (it was killed).
    pub(crate) status: Option<ExitStatus>,
    /// What it wrote to stdout and stderr.
    pub(crate) output: String,
}

impl std::fmt::Display for StartFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(status) => write!(f, "exited with {status}")?,
            None => write!(f, "neither listened nor exited within {START_TIMEOUT:?}")?,
        }
        write!(f, "; output:\n{}", self.output)
    }
}

/// A finished subcommand.
#[derive(Debug)]
pub(crate) struct Finished {
    /// Its exit status.
    pub(crate) status: ExitStatus,
    /// Its standard output.
    pub(crate) stdout: String,
    /// Its standard error (the logs).
    pub(crate) stderr: String,
}

impl Finished {
    /// Asserts it succeeded and returns its standard output.
    pub(crate) fn success(self) -> String {
        assert!(self.status.success(), "{self:#?}");
        self.stdout
    }
}

/// A running server, killed when dropped if still running.
#[derive(Debug)]
pub(crate) struct Server {
    child: Child,
    addr: SocketAddr,
    output: Output,
    client: reqwest::Client,
}

impl Server {
    /// `http://ADDR` + `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The server's process id (to read its `/proc/<pid>/status`).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The address the server listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A client for this server (no proxy, short timeouts).
    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// `GET path`.
    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// `GET path` and the body as JSON, asserting the status.
    pub(crate) async fn get_json(&self, path: &str, status: u16) -> serde_json::Value {
        let response = self.get(path).await;
        assert_eq!(response.status().as_u16(), status, "GET {path}");
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("application/json"),
            "GET {path}: content-type {content_type:?}"
        );
        response.json().await.unwrap()
    }

    /// Everything the server wrote so far (stdout and stderr, line by line).
    pub(crate) fn output(&self) -> String {
        self.output.text()
    }

    /// Sends SIGTERM and waits for the process to exit; returns its status and output.
    ///
    /// # Panics
    /// If it is still running after [`STOP_TIMEOUT`].
    pub(crate) fn terminate(mut self) -> (ExitStatus, String) {
        send_sigterm(self.child.id());
        let Some(status) = wait_until(&mut self.child, STOP_TIMEOUT) else {
            panic!(
                "the server did not exit within {STOP_TIMEOUT:?} of SIGTERM; output:\n{}",
                self.output.text()
            )
        };
        self.output.wait_closed(Duration::from_secs(5));
        (status, self.output.text())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
}

/// Sends SIGTERM to `pid` with `kill(1)`.
pub(crate) fn send_sigterm(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM {pid}: {status}");
}

/// Waits for `child` to exit, at most `timeout`; kills it and returns `None` on timeout.
fn wait_until(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn read_all(mut stream: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// The lines a child writes to stdout and stderr, collected by two threads. The start-up
/// line is looked for in both: where the logs go is the server's choice.
#[derive(Debug)]
struct Output {
    lines: Arc<Mutex<Vec<String>>>,
    events: Receiver<()>,
}

impl Output {
    fn capture(child: &mut Child) -> Self {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, events) = mpsc::channel();
        let stdout = child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>);
        let stderr = child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>);
        for stream in [stdout, stderr].into_iter().flatten() {
            let lines = Arc::clone(&lines);
            let tx = tx.clone();
            thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    lines.lock().unwrap().push(line);
                    let _ = tx.send(());
                }
            });
        }
        Self { lines, events }
    }

    fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    fn listening_addr(&self) -> Option<SocketAddr> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .find_map(|line| parse_listening(line))
    }

    /// Waits for a new line (or for `timeout`).
    fn wait_for_line(&self, timeout: Duration) {
        let _ = self.events.recv_timeout(timeout);
    }

    /// Waits until both streams are closed (the readers dropped their senders), at most
    /// `timeout`.
    fn wait_closed(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(()) => {}
                Err(RecvTimeoutError::Disconnected | RecvTimeoutError::Timeout) => return,
            }
        }
    }
}

/// The address in a `listening on http://ADDR` line (text or JSON logs, any prefix).
pub(crate) fn parse_listening(line: &str) -> Option<SocketAddr> {
    let (_, rest) = line.split_once(LISTENING)?;
    let addr: String = rest
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '[' | ']'))
        .collect();
    addr.parse().ok()
}

#[test]
fn parses_listening_lines() {
    let text =
        "2026-01-01T00:00:00Z  INFO finsec_reference_server: listening on http://127.0.0.1:4242";
    assert_eq!(
        parse_listening(text),
        Some("127.0.0.1:4242".parse().unwrap())
    );
    let json = r#"{"fields":{"message":"listening on http://[::1]:80"},"level":"INFO"}"#;
    assert_eq!(parse_listening(json), Some("[::1]:80".parse().unwrap()));
    assert_eq!(parse_listening("listening on http://nowhere"), None);
    assert_eq!(parse_listening("started"), None);
}
