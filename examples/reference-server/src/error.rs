//! The server's error type: everything that stops it from starting, serving or running a
//! subcommand. Messages say what failed and where, never secrets (URLs are redacted).

use std::path::PathBuf;

/// A specialised `Result` for the server.
pub type Result<T, E = ServerError> = std::result::Result<T, E>;

/// Why the server or a subcommand failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A setting is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// A file or directory operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The master key file is readable or writable by others than its owner.
    #[error(
        "master key file {path} has permissions {mode:04o}; it must be accessible by its owner only \
         (run `chmod 600 {path}`)"
    )]
    MasterKeyPermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// The master key file does not hold exactly 32 bytes.
    #[error("master key file {path} holds {len} bytes; a master key is exactly 32 bytes")]
    MasterKeyLength {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: u64,
    },

    /// A keyring operation failed.
    #[error("keyring {path}: {source}")]
    Keyring {
        /// The sealed keyring file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: finsec_crypto::Error,
    },

    /// The RBAC policy file does not load (the loader's error names the problem).
    #[error("rbac policy {path}: {source}")]
    Policy {
        /// The policy file.
        path: PathBuf,
        /// The loader's error.
        #[source]
        source: finsec_rbac::Error,
    },

    /// The RBAC policy file is writable by others than its owner.
    #[error(
        "rbac policy {path} has permissions {mode:04o}; only its owner may write it \
         (run `chmod go-w {path}`)"
    )]
    PolicyPermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// A finsec-crypto operation failed.
    #[error(transparent)]
    Crypto(#[from] finsec_crypto::Error),

    /// The database could not be opened or migrated.
    #[error("{backend} storage at {target}: {source}")]
    Storage {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// The database file, or the URL without its password.
        target: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// A store of the server's own tables failed (see [`crate::storage::sql`]).
    #[error("server tables: {0}")]
    Store(#[from] crate::storage::sql::StoreError),

    /// Redis could not be reached or did not answer `PING`.
    #[error("redis at {url}: {reason}")]
    Redis {
        /// The URL without its password.
        url: String,
        /// What went wrong.
        reason: String,
    },

    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Serving HTTP failed.
    #[error("http server failed: {0}")]
    Serve(#[source] std::io::Error),

    /// The OpenAPI document could not be serialised.
    #[error("openapi document: {0}")]
    OpenApi(#[source] serde_json::Error),

    /// Logging could not be set up.
    #[error("logging: {0}")]
    Telemetry(String),

    /// Recording a fill, a transaction report or a review failed (MiFID II).
    #[error("MiFID II: {0}")]
    Compliance(String),
}

impl ServerError {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            what,
            path: path.into(),
            source,
        }
    }
}
