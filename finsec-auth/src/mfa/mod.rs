//! Multi-factor authentication: RFC 6238 TOTP with replay protection, enrollment with
//! `otpauth://` URIs and QR codes, and single-use backup codes.
//!
//! # Flow
//!
//! ```
//! # async fn example() -> finsec_auth::mfa::Result<()> {
//! use finsec_auth::mfa::{
//!     MemoryTotpReplayStore, MfaUserId, PendingEnrollment, TotpRejection,
//! };
//! use finsec_auth::outcome::CredentialOutcome;
//! use time::OffsetDateTime;
//!
//! let replay = MemoryTotpReplayStore::new(); // Postgres/SQLite/Redis when scaled out
//! let user = MfaUserId::new("user-42")?;
//! let pending = PendingEnrollment::begin(user.clone(), "ACME Trading", "alice@example.com")?;
//! let _png = pending.qr_png()?; // show it; keep the secret encrypted while pending
//!
//! let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
//! let first = pending.secret().clone();
//! # let code = finsec_auth::mfa::Totp::new(first, *pending.params()).code_at(now)?.expose();
//! let totp = match pending.confirm_at(&code, now, &replay).await? {
//!     CredentialOutcome::Accepted(totp) => totp, // store totp.secret() encrypted
//!     CredentialOutcome::Rejected(_) => return Ok(()), // count a failed attempt
//! };
//! // The confirming code is used up: it cannot log in.
//! let outcome = totp.verify_at(&user, &code, now, &replay).await?;
//! assert_eq!(outcome, CredentialOutcome::Rejected(TotpRejection::Replayed));
//! assert!(outcome.is_rejected());
//! # Ok(())
//! # }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(example()).unwrap();
//! ```
//!
//! # Policy and defaults
//!
//! - **Algorithm**: HMAC-SHA-1, 6 digits, 30-second steps by default, because that is
//!   what every authenticator app implements (SHA-1's collision weakness does not affect
//!   HMAC). SHA-256/512 and 8 digits are available through [`TotpParams`].
//! - **Skew**: one step either side of the current one ([`Totp::SKEW_STEPS`]), so a code
//!   is valid for at most ~90 seconds.
//! - **Replay**: the last accepted time step of each user is kept in a
//!   [`TotpReplayStore`]; a code is accepted only if its step is strictly later. So a
//!   code is never accepted twice (also not on another server instance sharing the store,
//!   nor by two racing requests: the store's compare-and-set is atomic), and after a code
//!   of step *n* no code of an earlier step works either (RFC 6238 section 5.2).
//! - **Secrets**: 160 bits from the OS ([`finsec_crypto::fill_random`]), zeroized on drop
//!   and `[REDACTED]` in `Debug`; URIs and QR images are returned in secret/zeroizing
//!   types because they contain the secret.
//! - **Enrollment** is pending until a first valid code is confirmed
//!   ([`PendingEnrollment::confirm_at`]); only a confirmed enrollment yields a [`Totp`].
//! - **Backup codes**: see [`backup`] (ten 12-character codes, ~59 bits each,
//!   HMAC-SHA-256 under a server key, consumed atomically).
//! - **Failed attempts** are values, not errors: [`TotpOutcome`] and
//!   [`BackupCodeOutcome`] are [`CredentialOutcome`](crate::outcome::CredentialOutcome)s
//!   whose rejection says why a code was refused. Count every rejection (feed it to a
//!   rate limiter / lock-out), log its code to the audit trail, and show the client only
//!   one generic "invalid credentials". An
//!   `Err` means the store failed: fail closed, but do not blame the user.
//!
//! # Threat model
//!
//! Defends against: a phished or shoulder-surfed code used after the legitimate login
//! (replay protection), two parallel requests racing with one intercepted code (atomic
//! compare-and-set), an enrollment the user never completed (pending state), secrets in
//! logs (`Debug` redaction), a database dump revealing backup codes (keyed hashes; the key
//! lives outside the database), timing comparison of codes (constant-time compare).
//!
//! Does not defend against: online brute force of 6-digit codes (~3 valid codes per
//! 10^6 per attempt) — the caller **must** rate-limit and lock out on counted failures;
//! real-time phishing proxies that relay a fresh code (use WebAuthn for that); theft of
//! the TOTP secret from storage (store it encrypted, e.g. with finsec-crypto envelopes);
//! a wrong server clock (keep NTP running). The in-memory stores lose their state on
//! restart, reopening replay of codes from the last ~90 seconds.
//!
//! # Storage
//!
//! | store | replay | backup codes | feature |
//! |---|---|---|---|
//! | memory | [`MemoryTotpReplayStore`] | [`MemoryBackupCodeStore`] | always |
//! | SQLite | `sqlite::SqliteTotpReplayStore` | `sqlite::SqliteBackupCodeStore` | `sqlite` |
//! | PostgreSQL | `postgres::PgTotpReplayStore` | `postgres::PgBackupCodeStore` | `postgres` |
//! | Redis | `redis::RedisTotpReplayStore` | `redis::RedisBackupCodeStore` | `redis` |
//!
//! SQL stores use the tables `finsec_mfa_totp_replay` and `finsec_mfa_backup_codes`
//! (migrations 20101 and 20102, in the 20101–20199 part of the finsec-auth range); run
//! [`crate::sqlite::migrate`] / [`crate::postgres::migrate`] (the crate-wide migrator)
//! once at start-up. Both SQL backends are one generic store each
//! ([`SqlTotpReplayStore`], [`SqlBackupCodeStore`]), the `sqlite`/`postgres` names being
//! aliases of it.

pub mod backup;
mod enroll;
mod error;
mod store;
mod totp;

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

pub use backup::{
    BackupCodeHash, BackupCodeKey, BackupCodeOutcome, BackupCodeRejection, BackupCodes,
    redeem_backup_code,
};
pub use enroll::{
    Confirmation, ConfirmationRejected, MAX_LABEL_LEN, PendingEnrollment, percent_encode,
};
pub use error::{MfaError, Result};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use sql::{SqlBackupCodeStore, SqlTotpReplayStore};
pub use store::{
    BackupCodeStore, MemoryBackupCodeStore, MemoryTotpReplayStore, MfaUserId, TotpReplayStore,
};
pub use totp::{
    Digits, OtpCode, Totp, TotpAccepted, TotpAlgorithm, TotpOutcome, TotpParams, TotpRejection,
    TotpSecret, hotp,
};
