//! Servers of a test's own: a PostgreSQL cluster ([`PgCluster`]) and a `redis-server`
//! ([`RedisServer`]), each in a fresh temporary directory on a free loopback port, with
//! TLS if asked for.
//!
//! They exist for tests that the shared servers cannot serve: a TLS-only listener with a
//! certificate the test made, or a backend the test stops and starts again to see what
//! an application does through an outage. They never touch the shared servers of
//! [`postgres`](crate::postgres) and [`redis()`](crate::redis): each has its own data
//! directory, port and socket directory, listens on `127.0.0.1` only, and is stopped and
//! deleted when dropped, even when the test panics.
//!
//! Every start waits at most [`START_TIMEOUT`]; a server that does not come up fails the
//! test with its own log in the message.
//!
//! # Requirements
//!
//! - PostgreSQL's server binaries (`initdb`, `pg_ctl`, `postgres`): the newest
//!   `/usr/lib/postgresql/<version>/bin` (Debian's `postgresql` package), or the directory
//!   in [`PG_BIN_VAR`]. PostgreSQL refuses to run as root, so when the tests run as root
//!   the cluster runs as the `postgres` user (through `runuser`).
//! - `redis-server` on `PATH` (or [`REDIS_SERVER_VAR`]), built with TLS for
//!   [`RedisServer`] with TLS: Debian's `redis-server` package is (it links `libssl`).
//!
//! # Example
//!
//! ```no_run
//! use finsec_testkit::cluster::{PgCluster, ServerTls};
//!
//! # fn example(cert_pem: String, key_pem: String) {
//! let mut pg = PgCluster::start(Some(ServerTls::new(cert_pem, key_pem)));
//! let url = pg.url(); // postgres://postgres@127.0.0.1:<port>/postgres
//! // ... connect with sslmode=verify-full ...
//! pg.stop(); // an outage
//! pg.start_again(); // same port, same data
//! # }
//! ```

use std::fmt;
use std::fs;
use std::io::Write as _;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::{PermissionsExt as _, chown};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a server may take to come up (or to stop) before the test fails.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Environment variable naming the directory of PostgreSQL's server binaries.
pub const PG_BIN_VAR: &str = "FINSEC_TEST_PG_BIN";
/// Environment variable naming the `redis-server` binary.
pub const REDIS_SERVER_VAR: &str = "FINSEC_TEST_REDIS_SERVER";

/// The user a cluster runs as when the tests run as root.
const PG_OS_USER: &str = "postgres";
/// The database user [`PgCluster`] creates (trusted: no password).
pub const PG_SUPERUSER: &str = "postgres";

/// How many times a start is retried when another process took the free port first.
const PORT_ATTEMPTS: usize = 3;

/// A TLS certificate and key (PEM) for a server of the test's own, and optionally the
/// CA whose client certificates it then requires.
#[derive(Clone)]
pub struct ServerTls {
    cert_pem: String,
    key_pem: String,
    client_ca_pem: Option<String>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field(
                "requires_client_certificates",
                &self.client_ca_pem.is_some(),
            )
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// The server's certificate chain and private key, both PEM.
    pub fn new(cert_pem: impl Into<String>, key_pem: impl Into<String>) -> Self {
        Self {
            cert_pem: cert_pem.into(),
            key_pem: key_pem.into(),
            client_ca_pem: None,
        }
    }

    /// Requires every client to present a certificate issued by this CA (PEM).
    #[must_use]
    pub fn require_client_certificates(mut self, ca_pem: impl Into<String>) -> Self {
        self.client_ca_pem = Some(ca_pem.into());
        self
    }
}

/// A free TCP port on `127.0.0.1` (free when asked; another process may take it before
/// the server binds it, which is why the starts below retry).
fn free_port() -> u16 {
    match TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()) {
        Ok(addr) => addr.port(),
        Err(e) => panic!("no free port on 127.0.0.1: {e}"),
    }
}

fn temp_dir(prefix: &str) -> TempDir {
    match tempfile::Builder::new().prefix(prefix).tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("could not create a temporary directory: {e}"),
    }
}

fn write_file(path: &Path, contents: &str, mode: u32) {
    let written = fs::File::create(path).and_then(|mut file| {
        file.write_all(contents.as_bytes())?;
        file.set_permissions(fs::Permissions::from_mode(mode))
    });
    if let Err(e) = written {
        panic!("could not write {}: {e}", path.display());
    }
}

fn read_log(path: &Path) -> String {
    match fs::read_to_string(path) {
        Ok(log) => log,
        Err(e) => format!("(no log at {}: {e})", path.display()),
    }
}

fn output_text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `command`, waiting at most [`START_TIMEOUT`]; `None` if it ran longer (it is
/// killed).
fn run_bounded(mut command: Command) -> Option<std::io::Result<Output>> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return Some(Err(e)),
    };
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return Some(child.wait_with_output()),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            Ok(None) => thread::sleep(Duration::from_millis(50)),
            Err(e) => return Some(Err(e)),
        }
    }
}

/// Whether this process runs as root (`id -u` says `0`).
fn running_as_root() -> bool {
    match Command::new("id").arg("-u").output() {
        Ok(output) => String::from_utf8_lossy(&output.stdout).trim() == "0",
        Err(e) => panic!("cannot run `id -u`: {e}"),
    }
}

/// The numeric user and group id of `user` (`id -u`, `id -g`).
fn user_ids(user: &str) -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let output = match Command::new("id").arg(flag).arg(user).output() {
            Ok(output) => output,
            Err(e) => panic!("cannot run `id {flag} {user}`: {e}"),
        };
        match String::from_utf8_lossy(&output.stdout).trim().parse() {
            Ok(id) if output.status.success() => id,
            _ => panic!(
                "`id {flag} {user}` failed ({}): the PostgreSQL cluster runs as user {user} \
                 when the tests run as root; install Debian's postgresql package, which \
                 creates it",
                output_text(&output).trim()
            ),
        }
    };
    (id("-u"), id("-g"))
}

// ---------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------

/// The directory of PostgreSQL's server binaries: [`PG_BIN_VAR`], or the highest version
/// under `/usr/lib/postgresql`.
///
/// # Panics
/// If neither holds an `initdb`.
pub fn pg_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(PG_BIN_VAR) {
        let dir = PathBuf::from(dir);
        if dir.join("initdb").is_file() {
            return dir;
        }
        panic!("{PG_BIN_VAR}={} holds no initdb", dir.display());
    }
    let versions = fs::read_dir("/usr/lib/postgresql").into_iter().flatten();
    let newest = versions
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version);
    match newest {
        Some((_, bin)) => bin,
        None => panic!(
            "no PostgreSQL server binaries: /usr/lib/postgresql/<version>/bin/initdb not \
             found; install Debian's postgresql package or set {PG_BIN_VAR}"
        ),
    }
}

/// A PostgreSQL cluster of the test's own: `initdb` in a temporary directory, listening on
/// `127.0.0.1:<free port>` only, trusting user [`PG_SUPERUSER`] without a password.
///
/// With TLS, only TLS connections are accepted over TCP (`hostssl` lines alone in
/// `pg_hba.conf`), so a client that does not ask for TLS is refused. Stopped
/// (`pg_ctl stop -m immediate`) and deleted when dropped.
pub struct PgCluster {
    // The cluster is stopped in `Drop` before this directory is removed.
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    tls: bool,
    owner: Option<(u32, u32)>,
    running: bool,
}

impl fmt::Debug for PgCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgCluster")
            .field("dir", &self.dir.path())
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("running", &self.running)
            .finish_non_exhaustive()
    }
}

impl PgCluster {
    /// Creates and starts a cluster, with TLS if `tls` is given.
    ///
    /// # Panics
    /// If `initdb` fails or the server is not up within [`START_TIMEOUT`]; the message
    /// holds the command's output and the server log.
    pub fn start(tls: Option<ServerTls>) -> Self {
        let dir = temp_dir("finsec-test-pg-");
        let owner = running_as_root().then(|| user_ids(PG_OS_USER));
        let mut cluster = Self {
            bin: pg_bin_dir(),
            port: 0,
            tls: tls.is_some(),
            owner,
            running: false,
            dir,
        };
        cluster.chown(cluster.dir.path());
        cluster.init(tls.as_ref());
        let mut attempt = 1;
        loop {
            cluster.port = free_port();
            cluster.write_port();
            match cluster.try_start() {
                Ok(()) => return cluster,
                Err(log) if attempt < PORT_ATTEMPTS && log.contains("could not bind") => {
                    attempt += 1;
                }
                Err(log) => panic!(
                    "the test's PostgreSQL cluster on port {} did not start within \
                     {START_TIMEOUT:?}:\n{log}",
                    cluster.port
                ),
            }
        }
    }

    /// The TCP port (on `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether only TLS connections are accepted.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`; add `sslmode=...` as needed.
    pub fn url(&self) -> String {
        format!("postgres://{PG_SUPERUSER}@127.0.0.1:{}/postgres", self.port)
    }

    /// The same URL with `localhost` as the host, the name a test certificate usually
    /// carries (`sslmode=verify-full` checks it).
    pub fn localhost_url(&self) -> String {
        format!("postgres://{PG_SUPERUSER}@localhost:{}/postgres", self.port)
    }

    /// Whether the server is running (as far as this handle knows).
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        read_log(&self.log_path())
    }

    /// Stops the server (`pg_ctl stop -m fast`): connections are closed, the data stays.
    ///
    /// # Panics
    /// If it does not stop within [`START_TIMEOUT`].
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        if let Err(output) = self.pg_ctl(&["stop", "-m", "fast"]) {
            panic!(
                "the test's PostgreSQL cluster on port {} did not stop: {output}\n{}",
                self.port,
                self.log()
            );
        }
        self.running = false;
    }

    /// Starts a stopped server again on the same port with the same data.
    ///
    /// # Panics
    /// If it is not up within [`START_TIMEOUT`] (for example because another process took
    /// the port meanwhile); the message holds the server log.
    pub fn start_again(&mut self) {
        if self.running {
            return;
        }
        if let Err(log) = self.try_start() {
            panic!(
                "the test's PostgreSQL cluster on port {} did not start again within \
                 {START_TIMEOUT:?}:\n{log}",
                self.port
            );
        }
    }

    /// Stops the server and starts it again.
    ///
    /// # Panics
    /// As [`stop`](Self::stop) and [`start_again`](Self::start_again).
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    fn chown(&self, path: &Path) {
        if let Some((uid, gid)) = self.owner
            && let Err(e) = chown(path, Some(uid), Some(gid))
        {
            panic!("could not give {} to {PG_OS_USER}: {e}", path.display());
        }
    }

    /// `program args...`, as the cluster's owner.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        let mut command = match self.owner {
            Some(_) => {
                let mut command = Command::new("runuser");
                command.args(["-u", PG_OS_USER, "--"]).arg(program);
                command
            }
            None => Command::new(program),
        };
        // Only what the command line says counts, not the environment of the test run.
        for var in [
            "PGDATA",
            "PGPORT",
            "PGHOST",
            "PGUSER",
            "PGDATABASE",
            "PGOPTIONS",
        ] {
            command.env_remove(var);
        }
        command.current_dir(self.dir.path());
        command
    }

    fn init(&self, tls: Option<&ServerTls>) {
        let data = self.data_dir();
        let mut initdb = self.command("initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", PG_SUPERUSER, "--auth=trust", "-E", "UTF8"])
            .args(["--locale=C", "--no-sync", "--no-instructions"]);
        match run_bounded(initdb) {
            Some(Ok(output)) if output.status.success() => {}
            Some(Ok(output)) => panic!("initdb failed:\n{}", output_text(&output)),
            Some(Err(e)) => panic!("cannot run initdb in {}: {e}", self.bin.display()),
            None => panic!("initdb ran for over {START_TIMEOUT:?}"),
        }

        let socket_dir = self.dir.path().display().to_string();
        let mut conf = format!(
            "\n# finsec-testkit\nlisten_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{socket_dir}'\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n\
             include_if_exists = 'finsec_port.conf'\n"
        );
        // Local (socket) connections for administration; TCP only over TLS when TLS is on.
        let mut hba = String::from("local all all trust\n");
        match tls {
            Some(tls) => {
                write_file(&data.join("server.crt"), &tls.cert_pem, 0o600);
                write_file(&data.join("server.key"), &tls.key_pem, 0o600);
                self.chown(&data.join("server.crt"));
                self.chown(&data.join("server.key"));
                conf.push_str(
                    "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n",
                );
                let client_auth = match &tls.client_ca_pem {
                    Some(ca) => {
                        write_file(&data.join("client-ca.crt"), ca, 0o600);
                        self.chown(&data.join("client-ca.crt"));
                        conf.push_str("ssl_ca_file = 'client-ca.crt'\n");
                        " clientcert=verify-full"
                    }
                    None => "",
                };
                hba.push_str(&format!(
                    "hostssl all all 127.0.0.1/32 trust{client_auth}\n"
                ));
            }
            None => {
                conf.push_str("ssl = off\n");
                hba.push_str("host all all 127.0.0.1/32 trust\n");
            }
        }
        let appended = fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut file| file.write_all(conf.as_bytes()));
        if let Err(e) = appended {
            panic!("could not configure the test cluster: {e}");
        }
        // Truncating an existing file keeps its owner.
        let hba_path = data.join("pg_hba.conf");
        if let Err(e) = fs::write(&hba_path, hba) {
            panic!("could not write {}: {e}", hba_path.display());
        }
    }

    fn write_port(&self) {
        let path = self.data_dir().join("finsec_port.conf");
        write_file(&path, &format!("port = {}\n", self.port), 0o600);
        self.chown(&path);
    }

    /// `pg_ctl <args>` with a bound; the output on failure.
    fn pg_ctl(&self, args: &[&str]) -> Result<(), String> {
        let timeout = START_TIMEOUT.as_secs().to_string();
        let mut command = self.command("pg_ctl");
        command
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_path())
            .args(["-w", "-t", &timeout])
            .args(args);
        match run_bounded(command) {
            Some(Ok(output)) if output.status.success() => Ok(()),
            Some(Ok(output)) => Err(output_text(&output)),
            Some(Err(e)) => Err(format!("cannot run pg_ctl: {e}")),
            None => Err(format!("pg_ctl ran for over {START_TIMEOUT:?}")),
        }
    }

    /// Starts the server; on failure, the output of `pg_ctl` and the server log.
    fn try_start(&mut self) -> Result<(), String> {
        match self.pg_ctl(&["start"]) {
            Ok(()) => {
                self.running = true;
                Ok(())
            }
            Err(output) => {
                // pg_ctl may give up while the postmaster still runs: make sure it is gone.
                let _ = self.pg_ctl(&["stop", "-m", "immediate"]);
                Err(format!("{output}\n--- server log ---\n{}", self.log()))
            }
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.running || self.data_dir().join("postmaster.pid").exists() {
            let _ = self.pg_ctl(&["stop", "-m", "immediate"]);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------

/// The `redis-server` binary: [`REDIS_SERVER_VAR`], or `redis-server` on `PATH`.
pub fn redis_server_binary() -> PathBuf {
    std::env::var_os(REDIS_SERVER_VAR).map_or_else(|| PathBuf::from("redis-server"), PathBuf::from)
}

/// A `redis-server` of the test's own on `127.0.0.1:<free port>`, keeping nothing on disk
/// (`--save ""`, no AOF), in a temporary directory.
///
/// With TLS it listens on the TLS port only (`--port 0 --tls-port <port>`). Killed and
/// deleted when dropped.
pub struct RedisServer {
    // The process is killed in `Drop` before this directory is removed.
    dir: TempDir,
    binary: PathBuf,
    port: u16,
    tls: Option<ServerTls>,
    child: Option<Child>,
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServer")
            .field("dir", &self.dir.path())
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .field("running", &self.child.is_some())
            .finish_non_exhaustive()
    }
}

impl RedisServer {
    /// Starts a server, with TLS if `tls` is given.
    ///
    /// # Panics
    /// If it does not say it is ready within [`START_TIMEOUT`] (a `redis-server` built
    /// without TLS exits at once on `--tls-port`); the message holds its log.
    pub fn start(tls: Option<ServerTls>) -> Self {
        let dir = temp_dir("finsec-test-redis-");
        if let Some(tls) = &tls {
            write_file(&dir.path().join("server.crt"), &tls.cert_pem, 0o600);
            write_file(&dir.path().join("server.key"), &tls.key_pem, 0o600);
            if let Some(ca) = &tls.client_ca_pem {
                write_file(&dir.path().join("client-ca.crt"), ca, 0o600);
            }
        }
        let mut server = Self {
            dir,
            binary: redis_server_binary(),
            port: 0,
            tls,
            child: None,
        };
        let mut attempt = 1;
        loop {
            server.port = free_port();
            match server.try_start() {
                Ok(()) => return server,
                Err(log) if attempt < PORT_ATTEMPTS && log.contains("Address already in use") => {
                    attempt += 1;
                }
                Err(log) => panic!(
                    "the test's redis-server ({}) on port {} did not start within \
                     {START_TIMEOUT:?}:\n{log}",
                    server.binary.display(),
                    server.port
                ),
            }
        }
    }

    /// The TCP port (on `127.0.0.1`): the TLS port when TLS is on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether it speaks TLS only.
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// `rediss://localhost:<port>` with TLS (the name a test certificate usually carries),
    /// `redis://127.0.0.1:<port>` without.
    pub fn url(&self) -> String {
        if self.tls() {
            format!("rediss://localhost:{}", self.port)
        } else {
            format!("redis://127.0.0.1:{}", self.port)
        }
    }

    /// Whether the server is running (as far as this handle knows).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        read_log(&self.log_path())
    }

    /// Stops the server (SIGKILL: an outage, not a shutdown; nothing is kept on disk
    /// anyway).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a stopped server again on the same port (empty: nothing was kept).
    ///
    /// # Panics
    /// If it is not ready within [`START_TIMEOUT`]; the message holds its log.
    pub fn start_again(&mut self) {
        if self.child.is_some() {
            return;
        }
        if let Err(log) = self.try_start() {
            panic!(
                "the test's redis-server on port {} did not start again within \
                 {START_TIMEOUT:?}:\n{log}",
                self.port
            );
        }
    }

    /// Stops the server and starts it again.
    ///
    /// # Panics
    /// As [`start_again`](Self::start_again).
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    fn try_start(&mut self) -> Result<(), String> {
        let dir = self.dir.path();
        let log_path = self.log_path();
        // A fresh log per start, so readiness is read from this start's lines only.
        let _ = fs::remove_file(&log_path);
        let port = self.port.to_string();
        let mut command = Command::new(&self.binary);
        command
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--protected-mode", "yes"])
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(&log_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match &self.tls {
            Some(tls) => {
                command
                    .args(["--port", "0", "--tls-port", &port])
                    .arg("--tls-cert-file")
                    .arg(dir.join("server.crt"))
                    .arg("--tls-key-file")
                    .arg(dir.join("server.key"));
                if tls.client_ca_pem.is_some() {
                    command
                        .arg("--tls-ca-cert-file")
                        .arg(dir.join("client-ca.crt"))
                        .args(["--tls-auth-clients", "yes"]);
                } else {
                    command.args(["--tls-auth-clients", "no"]);
                }
            }
            None => {
                command.args(["--port", &port]);
            }
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                return Err(format!(
                    "cannot run {}: {e} (install Debian's redis-server package or set \
                     {REDIS_SERVER_VAR})",
                    self.binary.display()
                ));
            }
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let log = read_log(&log_path);
            if log.contains("Ready to accept connections") {
                self.child = Some(child);
                return Ok(());
            }
            let exited = match child.try_wait() {
                Ok(status) => status.map(|s| s.to_string()),
                Err(e) => Some(e.to_string()),
            };
            if let Some(status) = exited {
                let _ = child.wait();
                return Err(format!("redis-server exited ({status}):\n{}", self.log()));
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no readiness line; log:\n{}", self.log()));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
