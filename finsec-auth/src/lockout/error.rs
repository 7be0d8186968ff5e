//! The error type of the lockout module.

/// What went wrong in a lockout operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockoutError {
    /// An account id was empty, too long or held a forbidden character.
    #[error("invalid account id: {reason}")]
    InvalidAccount {
        /// Why it was refused.
        reason: &'static str,
    },
    /// A policy value was out of range.
    #[error("invalid lockout policy: {0}")]
    InvalidPolicy(String),
    /// A stored value was out of range (corrupt or written by something else).
    #[error("corrupt stored failure record: {0}")]
    Corrupt(String),
    /// Too many concurrent updates of one key: the attempt was neither counted nor let
    /// through. Treat it as a refusal (fail closed) and let the client retry.
    #[error("failure count of one key updated concurrently too often; retry")]
    Contended,
    /// The store failed (SQL, or any store of your own); its error is the source.
    #[error("failure store: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl LockoutError {
    /// A [`Store`](Self::Store) error from a store's own failure.
    pub fn store(source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self::Store(source.into())
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl From<sqlx::Error> for LockoutError {
    fn from(e: sqlx::Error) -> Self {
        Self::store(e)
    }
}

/// The result type of the lockout module.
pub type Result<T, E = LockoutError> = std::result::Result<T, E>;
