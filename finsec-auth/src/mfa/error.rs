//! The error type of the MFA module.

/// What went wrong in an MFA operation. Messages never contain secrets or codes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MfaError {
    /// A parameter was out of range.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// A TOTP secret had a bad length or encoding.
    #[error("invalid totp secret: {reason}")]
    InvalidSecret {
        /// Why it was rejected (never the secret itself).
        reason: String,
    },
    /// A one-time or backup code was not of the right shape.
    #[error("malformed code: {reason}")]
    MalformedCode {
        /// Why it was rejected (never the code itself).
        reason: &'static str,
    },
    /// An issuer, account name or user id was empty, too long or contained a forbidden
    /// character.
    #[error("invalid {field}: {reason}")]
    InvalidLabel {
        /// `issuer`, `account` or `user id`.
        field: &'static str,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The operating system refused to provide randomness.
    #[error("operating system randomness unavailable")]
    Random,
    /// The QR code or its image could not be produced.
    #[error("qr code rendering failed: {0}")]
    Qr(String),
    /// A stored value was out of range (corrupt or written by something else).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// The store failed (SQL, Redis, or any store of your own); its error is the source.
    #[error("mfa store: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl MfaError {
    /// A [`Store`](Self::Store) error from a store's own failure (any error type, or a
    /// message).
    pub fn store(source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self::Store(source.into())
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl From<sqlx::Error> for MfaError {
    fn from(e: sqlx::Error) -> Self {
        Self::store(e)
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl From<sqlx::migrate::MigrateError> for MfaError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Self::store(e)
    }
}

#[cfg(feature = "redis")]
impl From<redis::RedisError> for MfaError {
    fn from(e: redis::RedisError) -> Self {
        Self::store(e)
    }
}

/// The result type of the MFA module.
pub type Result<T, E = MfaError> = std::result::Result<T, E>;
