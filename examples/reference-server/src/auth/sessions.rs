//! The state of sessions and logins in progress: which refresh family each access token
//! belongs to (`server_sessions`, so logout revokes the family even without the refresh
//! token) and the second-factor challenges of password logins (`server_mfa_challenges`)
//! ([`SessionStore`], implemented on SQLite and PostgreSQL in [`super::sql`]).

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::storage::sql::StoreResult;

/// Access-token sessions and MFA challenges.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Records that access token `jti` of `user` belongs to refresh family `family` until
    /// `expires_at`, first deleting every row that expired before `purge_before` (the
    /// caller keeps rows past their expiry for as long as the idle timeout looks back).
    ///
    /// # Errors
    /// If the database fails (a `jti` already recorded is such a failure).
    async fn insert_session(
        &self,
        jti: &str,
        family: &str,
        user: Uuid,
        purge_before: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> StoreResult<()>;

    /// The refresh families of `user`'s recorded sessions (rows not yet purged), each once.
    ///
    /// # Errors
    /// If the database fails.
    async fn user_families(&self, user: Uuid) -> StoreResult<Vec<String>>;

    /// When the newest recorded access token of `family` expires; `None` if none is
    /// recorded (never, or purged).
    ///
    /// # Errors
    /// If the database fails.
    async fn newest_access_expiry(&self, family: &str) -> StoreResult<Option<OffsetDateTime>>;

    /// The refresh family of access token `jti`; `None` if it is not recorded (never, or
    /// purged after expiry).
    ///
    /// # Errors
    /// If the database fails.
    async fn session_family(&self, jti: &str) -> StoreResult<Option<String>>;

    /// Records a new MFA challenge `id` for `user`, unused and without attempts, valid
    /// until `expires_at`, first deleting every challenge that expired before `now`.
    ///
    /// # Errors
    /// If the database fails (an `id` already recorded, or a user that does not exist,
    /// is such a failure).
    async fn insert_challenge(
        &self,
        id: &str,
        user: Uuid,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> StoreResult<()>;

    /// Reserves one attempt on challenge `id` of `user`: counts it (before the code is
    /// checked, so concurrent guesses cannot exceed the limit) if the challenge is unused,
    /// expires after `now` and has had fewer than `max_attempts` attempts. Returns `false`,
    /// and counts nothing, if the challenge is closed (or unknown, or another user's): of
    /// concurrent calls at the last allowed attempt, exactly one returns `true`.
    ///
    /// # Errors
    /// If the database fails.
    async fn challenge_attempt(
        &self,
        id: &str,
        user: Uuid,
        now: OffsetDateTime,
        max_attempts: u32,
    ) -> StoreResult<bool>;

    /// Marks challenge `id` used (after a successful attempt). Returns `false` if it is
    /// unknown or already used: of concurrent calls, exactly one returns `true`.
    ///
    /// # Errors
    /// If the database fails.
    async fn challenge_use(&self, id: &str) -> StoreResult<bool>;
}
