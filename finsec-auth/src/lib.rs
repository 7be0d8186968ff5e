//! Authentication for finsec: JWT tokens, argon2id passwords, TOTP MFA and API keys.
//!
//! | module | what it holds |
//! |---|---|
//! | [`outcome`] | [`CredentialOutcome`], the answer of every credential check below, and [`CredentialRejection`], the stable audit code of each reason |
//! | [`tokens`] | JWT issue/verify (HS256/384/512, EdDSA, ES256) on aws-lc-rs (`jsonwebtoken`'s `aws_lc_rs` backend; keys parsed once, no process-wide provider needed) with strict defaults, `kid` rotation and JWKS, access/refresh pairs with reuse detection, `jti` revocation ([`tokens::RevocationStore`], [`tokens::RefreshTokenStore`]) |
//! | [`passwords`] | argon2id PHC hashes (OWASP defaults), rehash detection, optional pepper, dummy verification for unknown users, NIST SP 800-63B rules, legacy bcrypt verification (feature `legacy-bcrypt`) |
//! | [`mfa`] | RFC 6238 TOTP with replay protection ([`mfa::TotpReplayStore`]), pending enrollment, `otpauth://` URIs and QR codes (PNG, SVG), hashed single-use backup codes |
//! | [`lockout`] | failed logins counted per account and per account at one address, exponential back-off, remembered devices exempt from the account back-off, recovery after 100 failures in a row ([`lockout::FailureStore`]) |
//! | [`api_keys`] | printable keys (`fsk_` prefix, key id, 256-bit secret, CRC-32) stored as hashes, scopes, expiry, revocation, rotation with overlap, batched usage tracking ([`api_keys::ApiKeyStore`]) |
//!
//! Every credential check (password, TOTP code, backup code, API key, token) answers with
//! one type, [`CredentialOutcome`]: accepted, or rejected with the module's reason, whose
//! [`CredentialRejection::code`] is a stable string for the audit log. `Err` means only
//! that a check could not be carried out (a store failed, a stored hash is corrupt). Each
//! module has its own error type; [`Error`] gathers them.
//!
//! ```
//! use finsec_auth::outcome::{CredentialOutcome, CredentialRejection};
//! use finsec_auth::passwords::{
//!     Argon2Params, Password, PasswordAccepted, PasswordHasher, PasswordPolicy,
//! };
//!
//! # fn main() -> Result<(), finsec_auth::Error> {
//! let hasher = PasswordHasher::new(Argon2Params::default(), None)?;
//! let new = PasswordPolicy::default().check(&Password::new("correct horse battery staple"))?;
//! let stored = hasher.hash(&new)?;
//! assert_eq!(
//!     hasher.verify(&Password::new("correct horse battery staple"), &stored)?,
//!     CredentialOutcome::Accepted(PasswordAccepted { needs_rehash: false })
//! );
//! // An unknown user: the same work, and a rejection whose code goes to the audit log.
//! let outcome = hasher.dummy_verify(&Password::new("guess"));
//! assert_eq!(outcome.rejection().map(|r| r.code()), Some("password.mismatch"));
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! | feature | enables |
//! |---|---|
//! | `sqlite` | SQLite stores (tokens, TOTP replay, backup codes, API keys, login failures) and their migrations (20001–20999, run by [`sqlite::migrate`]) |
//! | `postgres` | the same stores on PostgreSQL (migrations run by [`postgres::migrate`]) |
//! | `redis` | Redis stores for token revocation/refresh families, TOTP replay and backup codes |
//! | `legacy-bcrypt` | verification of `$2a$`/`$2b$`/`$2y$` bcrypt hashes, to migrate to argon2id on login |
//! | `testing` | the behavioural conformance suites every store implementation runs, and their cross-instance race checks |
//! | `full` | all of the above |
//!
//! Each SQL store is written once for both databases (a generic `Sql*Store` with
//! `Sqlite*`/`Postgres*` aliases, see finsec-sql), and the crate's migrations are versions
//! 20001–20999 of the workspace registry
//! [`MIGRATIONS.md`](https://github.com/finsec-rs/finsec/blob/main/MIGRATIONS.md).
//!
//! # Threat model
//!
//! Each module documents its own; in short:
//!
//! - **Forged or confused tokens**: the algorithm comes from the key, never the token;
//!   `alg: none`, key-supplying headers (`jku`, `x5u`, `x5c`, `jwk`) and unknown `crit` are
//!   refused; `exp`, `iss` and `aud` are required; duplicate JSON members are refused.
//! - **Stolen refresh tokens**: rotation on every use and family revocation on reuse.
//! - **Offline attacks on a database dump**: passwords are argon2id (optionally peppered),
//!   API keys and refresh tokens are stored only as hashes, backup codes as keyed hashes.
//! - **Account enumeration by timing**: a dummy verification for unknown users and
//!   constant-time comparisons.
//! - **TOTP replay**, also across instances: an atomic compare-and-set of the last accepted
//!   step in a shared store.
//! - **Leaks through logs**: secrets, keys and codes print as `[REDACTED]`.
//!
//! - **Online guessing and lockout abuse**: failures counted per account and address, with
//!   remembered devices exempt from the per-account back-off ([`lockout`]).
//!
//! Not covered here: rate limiting of requests (finsec-ratelimit), transport security, and
//! the compromise of the host holding signing keys and peppers.
#![forbid(unsafe_code)]

pub mod outcome;
pub use outcome::{CredentialOutcome, CredentialRejection};
pub mod tokens;
pub use tokens::{Claims, SigningKey, TokenError, Validation, Verifier};
pub mod passwords;
pub use passwords::{Password, PasswordError, PasswordHasher, PasswordOutcome, PasswordPolicy};
pub mod api_keys;
pub mod error;
pub mod lockout;
pub mod mfa;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql_store;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;

pub use error::Error;
