//! The error type of the MFA module.

/// What went wrong in an MFA operation. Messages never contain secrets or codes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
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
    /// A SQL store failed.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
    #[error("mfa store: {0}")]
    Sql(#[from] sqlx::Error),
    /// A migration failed.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
    #[error("mfa migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A Redis store failed.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    #[error("mfa redis store: {0}")]
    Redis(#[from] redis::RedisError),
}

/// The result type of the MFA module.
pub type Result<T> = std::result::Result<T, Error>;
