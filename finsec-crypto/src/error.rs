//! The crate's error type.

use std::path::PathBuf;

/// A specialised `Result` for finsec-crypto.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in finsec-crypto.
///
/// Messages are lowercase, name the field or key that was wrong, and never contain key
/// material, plaintext or passphrases. Authentication failures are deliberately opaque
/// (`Decryption`, `KeyUnwrap`): they do not say which byte was wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input to decrypt or parse was empty.
    #[error("input is empty")]
    Empty,

    /// The input ended before a field could be read.
    #[error(
        "input is truncated: {field} needs {needed} bytes at offset {offset}, {available} available"
    )]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Offset of the field in the input.
        offset: usize,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },

    /// The input does not start with the expected magic bytes.
    #[error("not a finsec {expected}: magic bytes do not match")]
    BadMagic {
        /// What the input was expected to be.
        expected: &'static str,
    },

    /// The format version in the header is not one this build understands.
    #[error("unsupported {format} format version {version}")]
    UnsupportedVersion {
        /// Which format.
        format: &'static str,
        /// The version found.
        version: u16,
    },

    /// A header field holds a value outside its allowed range.
    #[error("invalid header field {field}: {reason}")]
    InvalidHeader {
        /// The field.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },

    /// A byte string has the wrong length for what it is (key, nonce, tag, salt...).
    #[error("invalid {what} length: expected {expected}, got {actual}")]
    InvalidLength {
        /// What the bytes are.
        what: &'static str,
        /// The accepted length (or a description of the accepted lengths).
        expected: String,
        /// The length given.
        actual: usize,
    },

    /// A key name does not follow the key naming rules.
    #[error("invalid key name {name:?}: {reason}")]
    InvalidKeyName {
        /// The name given.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// A parameter is outside its allowed range.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// Why it was refused.
        reason: String,
    },

    /// No key with this name (and version) is known to the key provider.
    #[error("unknown key {name} version {version}")]
    UnknownKey {
        /// The key name.
        name: String,
        /// The key version (0 when no version was asked for).
        version: u32,
    },

    /// The key version is below the key's minimum decryption version.
    #[error("key {name} version {version} is retired (minimum decryption version is {minimum})")]
    KeyRetired {
        /// The key name.
        name: String,
        /// The retired version.
        version: u32,
        /// The minimum version that still decrypts.
        minimum: u32,
    },

    /// The key version has reached its hard usage limit and refuses to encrypt more.
    #[error(
        "key {name} version {version} has encrypted {count} messages, its hard limit; rotate it"
    )]
    KeyUsageExhausted {
        /// The key name.
        name: String,
        /// The key version.
        version: u32,
        /// How many messages it has encrypted.
        count: u64,
    },

    /// The wrapped data key did not authenticate under the named key-encryption key.
    #[error("data key unwrap failed: the wrapped key was altered or belongs to another key")]
    KeyUnwrap,

    /// The ciphertext did not authenticate: it was altered, the associated data is not the
    /// one it was encrypted with, or the key is wrong.
    #[error("decryption failed: ciphertext was altered, or associated data or key does not match")]
    Decryption,

    /// A chunk of a stream did not authenticate (altered, reordered or from another stream).
    #[error("stream chunk {index} failed to authenticate (altered, reordered or foreign)")]
    StreamChunk {
        /// Zero-based index of the chunk.
        index: u64,
    },

    /// A stream ended without its final chunk.
    #[error("stream is truncated: it ended after {chunks} chunks without a final chunk")]
    StreamTruncated {
        /// Chunks read before the end.
        chunks: u64,
    },

    /// Bytes follow the final chunk of a stream.
    #[error("stream has data after its final chunk")]
    StreamTrailingData,

    /// The message is too large for the format.
    #[error("message too large: {size} bytes, limit {limit}")]
    TooLarge {
        /// Size given.
        size: u64,
        /// The limit.
        limit: u64,
    },

    /// A base64url text form could not be decoded.
    #[error("invalid base64url text: {0}")]
    Base64(#[from] base64::DecodeError),

    /// The operating system's random number generator failed.
    #[error("operating system random number generator failed")]
    Random,

    /// A key derivation failed (parameters rejected by the KDF).
    #[error("key derivation failed: {0}")]
    Kdf(String),

    /// A keyring document could not be read.
    #[error("invalid keyring: {0}")]
    Keyring(String),

    /// A sealed keyring could not be opened: wrong passphrase or master key, or altered file.
    #[error("sealed keyring could not be opened: wrong passphrase or master key, or altered file")]
    KeyringSeal,

    /// A file operation failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A stream read or write failed.
    #[error("i/o error: {0}")]
    Stream(#[source] std::io::Error),

    /// The data subject's key was destroyed (crypto-shredded); its data cannot be read and
    /// no new key is created for it.
    #[error("data subject {subject} was erased: its key was destroyed")]
    SubjectErased {
        /// The subject id.
        subject: String,
    },

    /// A subject id does not follow the subject id rules.
    #[error("invalid subject id: {reason}")]
    InvalidSubjectId {
        /// Why it was refused.
        reason: &'static str,
    },

    /// A storage backend failed.
    #[error("storage backend error: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl Error {
    /// A [`Store`](Self::Store) error from a store's own failure (any error type, or a
    /// message): how a `SubjectKeyStore` of your own reports its backend's errors.
    pub fn store(source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self::Store(source.into())
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid_length(
        what: &'static str,
        expected: impl ToString,
        actual: usize,
    ) -> Self {
        Self::InvalidLength {
            what,
            expected: expected.to_string(),
            actual,
        }
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(Box::new(e))
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl From<sqlx::migrate::MigrateError> for Error {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Self::Store(Box::new(e))
    }
}
