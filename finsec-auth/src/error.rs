//! [`Error`]: every error of this crate in one type, for callers that handle them together.

use crate::api_keys::ApiKeyError;
use crate::passwords::PasswordError;
use crate::tokens::TokenError;

/// Any error of this crate. Each module's own error converts into it with `?`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A token could not be issued or was refused.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// A password was refused by the rules, or a stored hash or pepper is unusable.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// An MFA operation failed.
    #[error(transparent)]
    Mfa(#[from] crate::mfa::MfaError),
    /// A lockout operation failed.
    #[error(transparent)]
    Lockout(#[from] crate::lockout::LockoutError),
    /// An API key operation failed or the key was rejected.
    #[error(transparent)]
    ApiKey(#[from] ApiKeyError),
    /// The crate's migrations failed (`sqlite::migrate`, `postgres::migrate`).
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
    #[error("finsec-auth migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}
