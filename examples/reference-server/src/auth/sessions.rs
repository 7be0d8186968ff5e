//! The state of sessions and logins in progress: which refresh family each access token
//! belongs to (`server_sessions`, so logout revokes the family even without the refresh
//! token), what `GET /sessions` shows of each session (`server_session_info`), and the
//! second-factor challenges of password logins (`server_mfa_challenges`)
//! ([`SessionStore`], implemented on SQLite and PostgreSQL in [`super::sql`]).

use std::convert::Infallible;

use async_trait::async_trait;
use axum::extract::FromRequestParts;
use axum::http::header::USER_AGENT;
use axum::http::request::Parts;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::http::layers::client_addr::ClientAddr;
use crate::storage::sql::StoreResult;

/// The longest user agent a session records, in characters; longer ones are cut.
pub const MAX_USER_AGENT_CHARS: usize = 256;

/// The client of the request that opened or refreshed a session: its address (as
/// resolved through the trusted proxies) and user agent. Never fails to extract.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionClient {
    /// The client's address.
    pub ip: Option<String>,
    /// The `User-Agent` header, control characters removed, at most
    /// [`MAX_USER_AGENT_CHARS`] characters; `None` when absent, not UTF-8 or empty.
    pub user_agent: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for SessionClient {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let ip = parts
            .extensions
            .get::<ClientAddr>()
            .map(|addr| addr.ip().to_string());
        let user_agent = parts
            .headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_USER_AGENT_CHARS)
                    .collect::<String>()
            })
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty());
        Ok(Self { ip, user_agent })
    }
}

/// What `GET /sessions` shows of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session's id (its refresh family).
    pub id: String,
    /// When it began: the login.
    pub created_at: OffsetDateTime,
    /// When it last got a token: the login or its latest refresh.
    pub last_used_at: OffsetDateTime,
    /// The client address of that request.
    pub client_ip: Option<String>,
    /// The user agent of that request.
    pub user_agent: Option<String>,
}

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

    /// Records that session `family` of `user` got a token at `now` for `client`: a new
    /// session starts at `now`; a known one keeps its start and takes the new time and
    /// client. First deletes every session last used before `purge_before`. Does nothing to
    /// a session that was ended.
    ///
    /// # Errors
    /// If the database fails (a `family` of another user is such a failure).
    async fn touch_session(
        &self,
        family: &str,
        user: Uuid,
        client: &SessionClient,
        now: OffsetDateTime,
        purge_before: OffsetDateTime,
    ) -> StoreResult<()>;

    /// `user`'s sessions that were not ended, were last used at or after `used_since` and
    /// began at or after `created_since`, newest first.
    ///
    /// # Errors
    /// If the database fails.
    async fn list_sessions(
        &self,
        user: Uuid,
        used_since: OffsetDateTime,
        created_since: OffsetDateTime,
    ) -> StoreResult<Vec<SessionInfo>>;

    /// Marks session `family` ended at `now` (if recorded and not ended yet).
    ///
    /// # Errors
    /// If the database fails.
    async fn end_session(&self, family: &str, now: OffsetDateTime) -> StoreResult<()>;

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

    /// Remembers a device of `user` by the hash of its token until `expires_at`, first
    /// deleting the user's expired devices, then keeping only the user's newest `keep`.
    ///
    /// # Errors
    /// If the database fails (a hash already recorded is such a failure).
    async fn remember_device(
        &self,
        token_hash: &str,
        user: Uuid,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
        keep: u32,
    ) -> StoreResult<()>;

    /// The user whose remembered device `token_hash` is, if it has not expired at `now`.
    ///
    /// # Errors
    /// If the database fails.
    async fn device_owner(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Uuid>>;

    /// Forgets every remembered device of `user`; returns how many.
    ///
    /// # Errors
    /// If the database fails.
    async fn forget_devices(&self, user: Uuid) -> StoreResult<u64>;

    /// Records a new reset request (pending).
    ///
    /// # Errors
    /// If the database fails (an id already recorded, or a user that does not exist, is
    /// such a failure).
    async fn insert_reset(&self, reset: &ResetRequest) -> StoreResult<()>;

    /// The reset request `id`, if any.
    ///
    /// # Errors
    /// If the database fails or a stored value does not decode.
    async fn reset_request(&self, id: &str) -> StoreResult<Option<ResetRequest>>;

    /// Approves reset request `id` for `approver` at `now`, if it is pending and not expired
    /// and `approver` is neither its asker nor its user; a password reset records `token`
    /// (the token's hash and when it expires). Of concurrent approvals exactly one returns
    /// `true`.
    ///
    /// # Errors
    /// If the database fails.
    async fn approve_reset(
        &self,
        id: &str,
        approver: Uuid,
        now: OffsetDateTime,
        token: Option<(&str, OffsetDateTime)>,
    ) -> StoreResult<bool>;

    /// Uses the reset token whose hash is `token_hash` at `now`: the user it resets, if the
    /// token was approved, is unused and unexpired. A token works once, however many
    /// requests race.
    ///
    /// # Errors
    /// If the database fails.
    async fn use_reset_token(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Uuid>>;
}

/// What a reset request resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetKind {
    /// The password: the approver gets a single-use token with which the user sets a new
    /// one; the old one stops working.
    Password,
    /// The second factor: turned off, backup codes deleted; the user enrols again.
    Mfa,
}

impl ResetKind {
    /// `password` or `mfa`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Mfa => "mfa",
        }
    }

    /// The kind `text` names.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "password" => Some(Self::Password),
            "mfa" => Some(Self::Mfa),
            _ => None,
        }
    }
}

/// A request to reset a user's password or second factor, waiting for a second admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetRequest {
    /// Its id.
    pub id: String,
    /// Whose account.
    pub user_id: Uuid,
    /// What is reset.
    pub kind: ResetKind,
    /// Whether the user's API keys are revoked too.
    pub revoke_api_keys: bool,
    /// The admin who asked.
    pub requested_by: Uuid,
    /// When.
    pub created_at: OffsetDateTime,
    /// Until when it can be approved.
    pub expires_at: OffsetDateTime,
    /// The admin who approved it.
    pub approved_by: Option<Uuid>,
    /// When.
    pub approved_at: Option<OffsetDateTime>,
}
