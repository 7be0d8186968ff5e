//! The authentication endpoints: registration, login, the second factor, refresh, logout,
//! MFA enrollment, API keys and `/me`. Each is registered with `utoipa_axum::routes!`.

use std::str::FromStr as _;
use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use finsec_audit::Outcome;
use finsec_auth::api_keys::{ApiKeyError, ApiKeyId, NewApiKey};
use finsec_auth::lockout::{Admission as Gate, Device, LockoutError, ThrottleScope};
use finsec_auth::mfa::{
    BackupCodes, MfaUserId, PendingEnrollment, Totp, TotpParams, TotpSecret, redeem_backup_code,
};
use finsec_auth::outcome::{CredentialOutcome, CredentialRejection as _};
use finsec_auth::passwords::{MAX_MAX_CHARS, Password, PasswordError};
use finsec_auth::tokens::{Claims, TokenPair, TokenRejection};
use finsec_crypto::envelope::aad_for;
use finsec_rbac::PermissionPattern;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use time::{Duration, OffsetDateTime};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::extract::{AccessClaims, Principal, Via};
use super::hashing::Admission;
use super::request_schema::{self, API_KEY_MAX_DAYS, API_KEY_NAME_MAX_CHARS};
use super::sessions::SessionClient;
use super::users::{self, StoredTotpSecret, Username};
use super::{Auth, MFA_MAX_FAILURES, MFA_TOKEN_TTL, TOTP_ISSUER};
use crate::audit::layer::{AuditNotes, Note};
use crate::http::json::{Json, Object};
use crate::http::path::Path;
use crate::problem::{Problem, ProblemType};
use crate::ratelimit::{LoginLimit, account_key};
use crate::state::AppState;

/// The authentication routes.
pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    AppState: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(mfa_verify))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(logout_all))
        .routes(routes!(change_password))
        .routes(routes!(reset_password))
        .routes(routes!(mfa_enroll))
        .routes(routes!(mfa_confirm))
        .routes(routes!(regenerate_backup_codes))
        .routes(routes!(disable_mfa))
        .routes(routes!(create_api_key, list_api_keys))
        .routes(routes!(delete_api_key))
        .routes(routes!(rotate_api_key))
        .routes(routes!(list_sessions))
        .routes(routes!(delete_session))
        .routes(routes!(me))
        .merge(super::admin::router())
}

/// An error answer of the authentication endpoints.
#[derive(Debug)]
pub enum ApiError {
    /// Wrong credentials at login or second factor (one answer for every reason).
    BadCredentials,
    /// The uniform 401 of protected endpoints.
    Unauthorized,
    /// The request is well-formed but refused (422), with the reason.
    Invalid(String),
    /// A conflict with the current state (409), with the reason.
    Conflict(String),
    /// The operation is not allowed with this credential (403).
    Forbidden(String),
    /// Nothing of the caller's with that id (404).
    NotFound,
    /// A backend failed (500; the detail is logged).
    Internal,
    /// The token is valid but the action needs a recent login (401 with an RFC 9470
    /// step-up challenge).
    StepUp,
    /// The password hashing queue is full (503 with `Retry-After`), or a hash failed.
    Hashing(super::hashing::HashingError),
    /// The account's second factor is locked after too many wrong codes (429 with
    /// `Retry-After`).
    MfaLocked {
        /// Seconds until the lock is over.
        retry_after: u64,
    },
    /// Too many failed logins of the account (429 with `Retry-After`).
    LoginThrottled {
        /// Seconds until an attempt is admitted.
        retry_after: u64,
        /// Which count holds the attempt back.
        scope: ThrottleScope,
    },
    /// Too many failed logins of the account in a row: it needs recovery (403).
    RecoveryRequired,
    /// The right password (or second factor) of a suspended user (403).
    Suspended,
    /// The right password of a user whose processing is restricted (GDPR Art. 18, 403).
    Restricted,
    /// `POST /auth/register` under `--registration closed` (403).
    RegistrationClosed,
}

/// The `detail` of a 401 asking for a recent login.
pub const STEP_UP_DETAIL: &str = "this action needs a login within the last 5 minutes (with the \
     second factor when enrolled): log in again and retry with the new token";

/// The `detail` of a login refused because the account needs recovery.
pub const RECOVERY_DETAIL: &str = "this account had too many failed logins in a row: log in from a \
     device that logged in to it before (send its device_token), or ask an administrator to \
     unlock it";

/// The `detail` of a refused login or second factor (one for every reason).
pub const BAD_CREDENTIALS_DETAIL: &str = "the credentials are not valid";

impl ApiError {
    /// The problem answered for this error.
    pub fn problem(self) -> Problem {
        match self {
            Self::BadCredentials => Problem::new(ProblemType::Unauthorized)
                .detail(BAD_CREDENTIALS_DETAIL)
                .header(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(super::extract::CHALLENGE),
                ),
            Self::Unauthorized => Problem::new(ProblemType::Unauthorized)
                .detail(super::extract::UNAUTHORIZED_DETAIL)
                .header(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(super::extract::CHALLENGE_INVALID),
                ),
            Self::StepUp => Problem::new(ProblemType::Unauthorized)
                .detail(STEP_UP_DETAIL)
                .header(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(super::extract::CHALLENGE_STEP_UP),
                ),
            Self::Invalid(m) => Problem::new(ProblemType::Validation).detail(m),
            Self::Conflict(m) => Problem::conflict(m),
            Self::Forbidden(m) => Problem::new(ProblemType::Forbidden).detail(m),
            Self::NotFound => Problem::not_found("the caller has nothing with this id"),
            Self::Internal => Problem::server_error(),
            Self::Hashing(e) => Problem::from(e),
            Self::LoginThrottled { retry_after, scope } => Problem::rate_limited(retry_after)
                .detail(match scope {
                    ThrottleScope::Pair => {
                        "too many failed logins of this account from this address: wait before trying again"
                    }
                    ThrottleScope::Account => {
                        "too many failed logins of this account: wait before trying again, or log in from a device that logged in to it before (send its device_token)"
                    }
                })
                .header(header::RETRY_AFTER, HeaderValue::from(retry_after)),
            Self::RegistrationClosed => Problem::new(ProblemType::Forbidden)
                .detail("registration is closed: an administrator creates accounts")
                .extension("code", "registration_closed"),
            Self::Suspended => Problem::new(ProblemType::Forbidden)
                .detail("this account is suspended: ask an administrator")
                .extension("code", "account_suspended"),
            Self::Restricted => Problem::new(ProblemType::Forbidden)
                .detail(
                    "processing of this account is restricted at its owner's request \
                     (GDPR Art. 18): ask the privacy officer to lift it",
                )
                .extension("code", "processing_restricted"),
            Self::RecoveryRequired => Problem::new(ProblemType::Forbidden)
                .detail(RECOVERY_DETAIL)
                .extension("code", "recovery_required"),
            Self::MfaLocked { retry_after } => Problem::rate_limited(retry_after)
                .detail("too many wrong codes for this account: its second factor is locked for a while")
                .header(header::RETRY_AFTER, HeaderValue::from(retry_after)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.problem().into_response()
    }
}

pub(crate) fn internal(what: &str, e: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "{what} failed");
    ApiError::Internal
}

type ApiResult<T> = Result<T, ApiError>;

/// `Debug` for bodies holding passwords, tokens, codes or keys: the type name only.
macro_rules! redacted_debug {
    ($($ty:ty),+ $(,)?) => {$(
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($ty), " { [REDACTED] }"))
            }
        }
    )+};
}

redacted_debug!(
    PasswordReset,
    RotatedApiKey,
    Credentials,
    PasswordChange,
    Registration,
    TokenResponse,
    MfaRequired,
    LoginResponse,
    MfaVerifyRequest,
    RefreshRequest,
    LogoutRequest,
    Enrollment,
    CodeRequest,
    BackupCodesResponse,
    CreatedApiKey,
);

/// A username and password, to log in. Neither is checked against the registration rules
/// here: any text is looked up (an unknown name or a wrong password is a 401), so that
/// accounts and passwords created under earlier rules keep working. Only a password longer
/// than any policy allows is refused (422), before any account is looked up.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// The username (case-insensitive).
    pub username: String,
    /// The password.
    #[schema(schema_with = request_schema::login_password)]
    pub password: String,
    /// The `device_token` of an earlier complete login of this account on this device: such
    /// a device is not held back when the account has had many failed logins.
    #[serde(default)]
    #[schema(schema_with = request_schema::device_token)]
    pub device_token: Option<String>,
}

/// A new user's name and password. The schema's limits are read from the rules the server
/// applies ([`Username::parse`] and finsec-auth's default [`PasswordPolicy`](finsec_auth::passwords::PasswordPolicy)).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// 3 to 64 ASCII letters, digits, `.`, `_` or `-`; unique regardless of case. Other
    /// scripts are refused: look-alike letters would let one user pass for another.
    #[schema(schema_with = request_schema::username)]
    pub username: String,
    /// 12 to 256 characters (Unicode code points, as sent; NIST SP 800-63B 5.1.1.2), no
    /// composition rules; it is NFKC-normalised before hashing. Common or breached
    /// passwords may be refused.
    #[schema(schema_with = request_schema::new_password)]
    pub password: String,
}

/// A password change: the current password, the new one, and whether to revoke the
/// caller's API keys too.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The current password.
    #[schema(schema_with = request_schema::login_password)]
    pub current_password: String,
    /// The new password, under the same rules as at registration.
    #[schema(schema_with = request_schema::new_password)]
    pub new_password: String,
    /// Also revoke every API key of the caller (default: keep them).
    #[serde(default)]
    pub revoke_api_keys: bool,
}

/// A registered user.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    /// The user's id.
    pub id: String,
    /// The name as registered.
    pub username: String,
}

/// An OAuth2-style token response.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// The access JWT.
    pub access_token: String,
    /// The opaque refresh token.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Seconds until the refresh token, and with it the session, expires: counted from the
    /// login, never extended by a refresh.
    pub refresh_expires_in: i64,
    /// On a complete login from a device that sent no valid one: a remembered-device token
    /// to keep and send with later logins of this account (`device_token`), valid for
    /// `--remembered-device-days`. Such a device is exempt from the per-account wait after
    /// failed logins. A password change or reset invalidates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_token: Option<String>,
}

/// A second factor is needed: send a code with the `mfa_token` to `/auth/mfa/verify`.
#[derive(Serialize, ToSchema)]
pub struct MfaRequired {
    /// Always `true`.
    pub mfa_required: bool,
    /// The short-lived token naming this login attempt.
    pub mfa_token: String,
}

/// What `/auth/login` answers.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginResponse {
    /// Logged in.
    Tokens(TokenResponse),
    /// A second factor is needed.
    Mfa(MfaRequired),
}

/// A second-factor code for a login attempt.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaVerifyRequest {
    /// The `mfa_token` from `/auth/login`.
    pub mfa_token: String,
    /// A TOTP code (six digits) or a backup code (twelve characters of
    /// `23456789ABCDEFGHJKMNPQRSTUVWXYZ`, either case, `-` and spaces ignored).
    #[schema(schema_with = request_schema::second_factor_code)]
    pub code: String,
    /// The device's `device_token` from an earlier complete login of this account, if it
    /// has one (no new one is issued then).
    #[serde(default)]
    #[schema(schema_with = request_schema::device_token)]
    pub device_token: Option<String>,
}

/// A refresh token.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token.
    pub refresh_token: String,
}

/// What `/auth/logout` may receive.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    /// The session's refresh token, whose family is revoked too.
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// A pending TOTP enrollment.
#[derive(Serialize, ToSchema)]
pub struct Enrollment {
    /// The `otpauth://` URI for an authenticator app.
    pub otpauth_uri: String,
    /// The same as a QR code (PNG, base64).
    pub qr_png_base64: String,
}

/// A TOTP code.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// The six-digit code the authenticator app shows.
    #[schema(schema_with = request_schema::totp_code)]
    pub code: String,
}

/// The backup codes, shown once.
#[derive(Serialize, ToSchema)]
pub struct BackupCodesResponse {
    /// Ten single-use codes.
    pub backup_codes: Vec<String>,
}

/// A new API key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKeyRequest {
    /// A name for the key: 1 to 64 characters, no control characters; kept as sent.
    #[schema(schema_with = request_schema::api_key_name)]
    pub name: String,
    /// finsec-rbac permission patterns the key is limited to, at least one: each 1 to 8
    /// segments of `A-Z a-z 0-9 _ - .`, or `*`, separated by `:`, at most 128 characters.
    #[schema(schema_with = request_schema::scopes)]
    pub scopes: Vec<String>,
    /// Days until the key expires: 1 to the server's longest lifetime (`--api-key-max-days`,
    /// 90 by default, at most 3650). None: that longest lifetime, or no expiry where the
    /// server allows keys that never expire (`--api-key-allow-no-expiry`).
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(schema_with = request_schema::expires_in_days)]
    pub expires_in_days: Option<u32>,
    /// Client networks the key may be used from (CIDR, or one address), at most 32; the
    /// client address is the TCP peer or what a trusted proxy forwarded. Absent or empty:
    /// from anywhere.
    #[serde(default)]
    #[schema(schema_with = request_schema::allowed_networks)]
    pub allowed_networks: Option<Vec<String>>,
}

/// A rotation of an API key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateApiKeyRequest {
    /// Minutes the old key keeps working: 0 to 10,080 (a week). None: 60.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(schema_with = request_schema::overlap_minutes)]
    pub overlap_minutes: Option<u32>,
    /// Days until the new key expires, as for a new key.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(schema_with = request_schema::expires_in_days)]
    pub expires_in_days: Option<u32>,
}

/// A rotated API key: the new key (shown only this once) and when the old one stops.
#[derive(Serialize, ToSchema)]
pub struct RotatedApiKey {
    /// The new key.
    #[serde(flatten)]
    pub created: CreatedApiKey,
    /// The id of the key it replaces.
    pub replaces: String,
    /// When the replaced key stops working (RFC 3339).
    pub replaced_expires_at: String,
}

/// Reads an optional whole number however JSON writes it (`30`, `30.0`, `3e1`): JSON
/// Schema's `integer` is a number's value, not its spelling, so a client generated from
/// the schema may send any of them.
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let parsed = match (number.as_u64(), number.as_f64()) {
        (Some(int), _) => u32::try_from(int).ok(),
        // A float's shortest display is digits only exactly when it is whole.
        (None, Some(float)) => float.to_string().parse::<u32>().ok(),
        (None, None) => None,
    };
    parsed.map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "expected a whole number from 0 to {}, found {number}",
            u32::MAX
        ))
    })
}

/// An API key, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyInfo {
    /// The key id (hex).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it expires (RFC 3339), if it does.
    pub expires_at: Option<String>,
    /// When it was last used (RFC 3339), if ever; uses are written in batches, so a use
    /// on another instance in the last minute may not show yet.
    pub last_used_at: Option<String>,
    /// How many times it was used (batched likewise).
    pub use_count: u64,
    /// The client networks it may be used from; empty: from anywhere.
    pub allowed_networks: Vec<String>,
}

/// A newly created API key: `key` is shown only this once.
#[derive(Serialize, ToSchema)]
pub struct CreatedApiKey {
    /// The printable key (`fsk_…`).
    pub key: String,
    /// The key without its secret.
    #[serde(flatten)]
    pub info: ApiKeyInfo,
}

/// One of the caller's sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// The session's id (what `DELETE /sessions/{id}` takes).
    pub id: String,
    /// When it began: the login (RFC 3339).
    pub created_at: String,
    /// When it last got a token: the login or its latest refresh (RFC 3339).
    pub last_used_at: String,
    /// The client address of that request.
    pub client_ip: Option<String>,
    /// The user agent of that request.
    pub user_agent: Option<String>,
    /// Whether this request came through this session.
    pub current: bool,
}

/// The caller's sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    /// Sessions not ended, expired or idle too long, newest first.
    pub sessions: Vec<SessionView>,
}

/// The API keys of the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    /// Active keys (not revoked).
    pub keys: Vec<ApiKeyInfo>,
}

/// How the caller authenticated.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A bearer access token.
    Bearer,
    /// An API key.
    ApiKey,
}

/// The caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The user's id.
    pub id: String,
    /// The user's name.
    pub username: String,
    /// Whether a TOTP second factor is confirmed.
    pub mfa_enabled: bool,
    /// How the request was authenticated.
    pub auth: AuthMethod,
    /// The API key's scopes (API keys only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

fn tokens_response(
    pair: &TokenPair,
    now: OffsetDateTime,
    device_token: Option<String>,
) -> Response {
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(TokenResponse {
            access_token: pair.access_token.expose_secret().to_owned(),
            refresh_token: pair.refresh_token.expose_secret().to_owned(),
            token_type: "Bearer".to_owned(),
            expires_in: (pair.access_expires_at - now).whole_seconds().max(0),
            refresh_expires_in: (pair.refresh_expires_at - now).whole_seconds().max(0),
            device_token,
        }),
    )
        .into_response()
}

/// The `jti` of an access token this server just issued (its payload is read without
/// verification: the token comes from the token service, not the client).
fn issued_jti_and_user(token: &str) -> Option<(String, Uuid)> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let jti = claims.get("jti")?.as_str()?.to_owned();
    let user = Uuid::parse_str(claims.get("sub")?.as_str()?).ok()?;
    Some((jti, user))
}

/// Ends session `family`: revokes its refresh tokens and, through their `sid`, its access
/// tokens (on every instance), and marks it ended for `GET /sessions`.
async fn end_session(auth: &Auth, family: &str, now: OffsetDateTime) -> ApiResult<()> {
    auth.tokens()
        .revoke_family_at(family, now)
        .await
        .map_err(|e| internal("session revocation", &e))?;
    auth.sessions
        .end_session(family, now)
        .await
        .map_err(|e| internal("session end", &e))
}

/// Records the new access token's refresh family (for logout) and the session's client
/// (for `GET /sessions`), and answers with the pair.
async fn session_response(
    auth: &Auth,
    pair: &TokenPair,
    client: &SessionClient,
    now: OffsetDateTime,
    device_token: Option<String>,
) -> ApiResult<Response> {
    let (jti, user) = issued_jti_and_user(pair.access_token.expose_secret())
        .ok_or_else(|| internal("token issue", &"issued access token has no jti or sub"))?;
    // Rows outlive their token by the idle window, so a refresh can still see when the
    // session last got a token.
    auth.sessions
        .insert_session(
            &jti,
            &pair.family,
            user,
            now - auth.session_idle,
            pair.access_expires_at,
        )
        .await
        .map_err(|e| internal("session insert", &e))?;
    let sealed = auth.sealing().seal_client(user, client, now).await;
    auth.sessions
        .touch_session(&pair.family, user, &sealed, now, now - auth.session_idle)
        .await
        .map_err(|e| internal("session insert", &e))?;
    Ok(tokens_response(pair, now, device_token))
}

/// How many remembered devices a user keeps (the newest).
pub const DEVICES_KEPT: u32 = 10;

/// The prefix of remembered-device tokens.
pub const DEVICE_TOKEN_PREFIX: &str = "fsd_";

/// `prefix` and 256 random bits in unpadded base64url: a device or reset token, or a
/// password nobody knows.
///
/// # Errors
/// [`ApiError::Internal`] if the operating system gives no randomness.
pub(crate) fn random_text(prefix: &str) -> ApiResult<Zeroizing<String>> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    finsec_crypto::fill_random(&mut *bytes).map_err(|e| internal("randomness", &e))?;
    Ok(Zeroizing::new(format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(*bytes)
    )))
}

/// How remembered-device and reset tokens are stored: the SHA-256 of the token, in hex.
pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The user whose remembered device `token` is, if any: one lookup by the token's hash,
/// whoever the login names, so the answer's timing says nothing about that account.
async fn device_owner(
    auth: &Auth,
    token: Option<&str>,
    now: OffsetDateTime,
) -> ApiResult<Option<Uuid>> {
    let Some(token) = token.filter(|t| t.starts_with(DEVICE_TOKEN_PREFIX)) else {
        return Ok(None);
    };
    auth.sessions
        .device_owner(&token_hash(token), now)
        .await
        .map_err(|e| internal("remembered device lookup", &e))
}

/// A new remembered-device token of `user`, recorded (as its hash) for the configured
/// lifetime; the user's oldest devices beyond [`DEVICES_KEPT`] are forgotten.
async fn remember_device(auth: &Auth, user: Uuid, now: OffsetDateTime) -> ApiResult<String> {
    let token = random_text(DEVICE_TOKEN_PREFIX)?.to_string();
    auth.sessions
        .remember_device(
            &token_hash(&token),
            user,
            now,
            now + auth.remembered_device_ttl,
            DEVICES_KEPT,
        )
        .await
        .map_err(|e| internal("remembered device insert", &e))?;
    Ok(token)
}

/// A place in the bounded password hashing queue, taken before any other work.
pub(crate) fn admit(auth: &Auth) -> ApiResult<Admission> {
    auth.hashing.admit().map_err(ApiError::Hashing)
}

/// Runs a password hash or verification in its place in the hashing queue.
pub(crate) async fn blocking<T: Send + 'static>(
    admission: Admission,
    f: impl FnOnce() -> T + Send + 'static,
) -> ApiResult<T> {
    admission.run(f).await.map_err(ApiError::Hashing)
}

fn require_bearer(principal: &Principal) -> ApiResult<()> {
    if principal.is_bearer() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "this operation needs a session (bearer access token), not an API key".to_owned(),
        ))
    }
}

/// A session whose login is recent (step-up): for actions that give lasting access.
pub(crate) fn require_recent_login(
    principal: &Principal,
    notes: &AuditNotes,
    action: &'static str,
) -> ApiResult<()> {
    require_bearer(principal)?;
    let Err(why) = principal.step_up(OffsetDateTime::now_utc()) else {
        return Ok(());
    };
    notes.note(
        Note::new(action, Outcome::Denied)
            .user(principal.user_id)
            .detail("reason", "step_up_required")
            .detail("code", why.code()),
    );
    Err(ApiError::StepUp)
}

/// What `POST /auth/register` answers under `--registration uniform`, whether the name was
/// free or taken.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegistrationAccepted {
    /// Always `accepted`.
    pub status: String,
    /// What to do next.
    pub detail: String,
}

/// The `detail` of [`RegistrationAccepted`].
pub const REGISTRATION_ACCEPTED_DETAIL: &str =
    "if the name was free, the account exists now: log in with it";

/// Creates user `name` with `password` at `now` (the policy checked, the password hashed in
/// the queue); `Ok(None)` if the name is taken.
pub(crate) async fn create_user(
    auth: &Arc<Auth>,
    name: &Username,
    password: String,
    now: OffsetDateTime,
) -> ApiResult<Option<Uuid>> {
    let new = auth
        .policy
        .check(&Password::new(password))
        .map_err(|e| ApiError::Invalid(e.to_string()))?;
    let hasher_auth = Arc::clone(auth);
    let hash = blocking(admit(auth)?, move || hasher_auth.hasher.hash(&new))
        .await?
        .map_err(|e| internal("password hashing", &e))?;
    let id = Uuid::now_v7();
    Ok(auth
        .users
        .insert_user(id, name, &hash, now)
        .await
        .map_err(|e| internal("user insert", &e))?
        .then_some(id))
}

/// Registers a user, as `--registration` allows.
#[utoipa::path(
    post,
    path = "/auth/register",
    tag = "auth",
    request_body = Registration,
    responses(
        (status = 201, description = "Registered (`--registration open`)", body = Registered),
        (status = 202, description = "Accepted (`--registration uniform`, the default): the same answer whether the name was free or taken; log in to find out", body = RegistrationAccepted),
        (status = 403, description = "Registration is closed (`--registration closed`): admins create accounts", body = Problem),
        (status = 409, description = "The username is taken (`--registration open` only)", body = Problem),
        (status = 422, description = "The username or password breaks the rules (a common password included)", body = Problem),
    )
)]
pub async fn register(
    State(state): State<AppState>,
    notes: AuditNotes,
    Json(request): Json<Registration>,
) -> ApiResult<Response> {
    let auth = Arc::clone(state.auth());
    if auth.registration == super::RegistrationMode::Closed {
        notes.note(
            Note::new("auth.register", Outcome::Denied)
                .attempted_username(&request.username)
                .detail("reason", "registration_closed"),
        );
        return Err(ApiError::RegistrationClosed);
    }
    let name = Username::parse(&request.username).map_err(ApiError::Invalid)?;
    let created = create_user(&auth, &name, request.password, OffsetDateTime::now_utc()).await?;
    let note = match created {
        Some(id) => Note::new("auth.register", Outcome::Success)
            .user(id)
            .resource("user", id),
        None => Note::new("auth.register", Outcome::Failure).detail("reason", "name.taken"),
    };
    notes.note(note.attempted_username(name.as_str()));
    if auth.registration == super::RegistrationMode::Uniform {
        if let Some(id) = created {
            tracing::info!(user_id = %id, "user registered");
        }
        return Ok((
            StatusCode::ACCEPTED,
            Json(RegistrationAccepted {
                status: "accepted".to_owned(),
                detail: REGISTRATION_ACCEPTED_DETAIL.to_owned(),
            }),
        )
            .into_response());
    }
    let Some(id) = created else {
        return Err(ApiError::Conflict("username is taken".to_owned()));
    };
    tracing::info!(user_id = %id, "user registered");
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            id: id.to_string(),
            username: name.as_str().to_owned(),
        }),
    )
        .into_response())
}

/// Checks a username and password for `action` (`auth.login`, or `auth.password_change`
/// for the current password); `Err(BadCredentials)` for an unknown user or a wrong password
/// alike (an unknown user still costs one hash verification). A refusal is audited as a
/// failure of `action`.
pub(crate) async fn check_password(
    auth: &Arc<Auth>,
    admission: Admission,
    action: &'static str,
    username: &str,
    password: String,
    notes: &AuditNotes,
) -> ApiResult<users::User> {
    let failed = |reason: &'static str| {
        Note::new(action, Outcome::Failure)
            .attempted_username(username)
            .detail("reason", reason)
    };
    let password = Password::new(password);
    // From here until the password is checked, every branch (unknown user, argon2id hash of
    // any parameters, legacy bcrypt) is timed; a refusal waits until it took as long as the
    // slowest recent check, so its timing does not tell whether the account exists.
    let started = std::time::Instant::now();
    let refuse = |reason: &'static str, user: Option<Uuid>| {
        let wait = auth.failure_floor.remaining(started.elapsed());
        let note = match user {
            Some(id) => failed(reason).user(id),
            None => failed(reason),
        };
        notes.note(note);
        async move {
            tokio::time::sleep(wait).await;
            Err(ApiError::BadCredentials)
        }
    };
    let user = match Username::lookup_key(username) {
        Some(key) => auth
            .users
            .find_by_name(&key)
            .await
            .map_err(|e| internal("user lookup", &e))?,
        None => None,
    };
    let hasher_auth = Arc::clone(auth);
    let Some(user) = user else {
        blocking(admission, move || {
            let _ = hasher_auth.hasher.dummy_verify(&password);
        })
        .await?;
        auth.failure_floor.record(started.elapsed());
        tracing::debug!("login refused: unknown user");
        return refuse("user.unknown", None).await;
    };
    let stored = user.password_hash.clone();
    let (outcome, rehash) = blocking(admission, move || {
        hasher_auth.hasher.verify_and_rehash(&password, &stored)
    })
    .await?
    .map_err(|e: PasswordError| internal("password verification", &e))?;
    // The rehash of a legacy or outdated hash (after a match) is not part of the check.
    auth.failure_floor.record(started.elapsed());
    match outcome {
        CredentialOutcome::Rejected(why) => {
            tracing::debug!(user_id = %user.id, reason = why.code(), "login refused");
            refuse(why.code(), Some(user.id)).await
        }
        CredentialOutcome::Accepted(_) => {
            if let Some(hash) = rehash {
                auth.users
                    .update_password_hash(user.id, &hash, OffsetDateTime::now_utc())
                    .await
                    .map_err(|e| internal("password rehash", &e))?;
                tracing::info!(user_id = %user.id, "password hash upgraded");
            }
            Ok(user)
        }
    }
}

/// An API key's scopes as one audit detail.
fn scopes_detail(scopes: &[PermissionPattern]) -> String {
    scopes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The claims of an `mfa_token`.
#[derive(Debug, Serialize, Deserialize)]
struct MfaClaims {
    typ: String,
}

const MFA_TYPE: &str = "mfa";

/// Logs in with a username and password.
#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "auth",
    request_body = Credentials,
    responses(
        (status = 200, description = "Tokens, or `mfa_required` with an `mfa_token`", body = LoginResponse),
        (status = 401, description = "Wrong username or password (every refusal takes about as long as the slowest recent password check)", body = Problem),
        (status = 403, description = "`recovery_required`: the account had too many failed logins in a row (an admin unlocks it, or log in from a remembered device); `account_suspended`: the right password of a suspended user; `processing_restricted`: the right password of a user whose processing is restricted (GDPR Art. 18)", body = Problem),
        (status = 422, description = "The password is longer than any policy allows (1,024 characters), refused before the account is looked up", body = Problem),
        (status = 429, description = "Too many attempts from this address (`login` policy), or too many failed logins of this account from this address or from anywhere (`Retry-After`; a remembered device is not held back by the account's count)", body = Problem),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    limit: LoginLimit,
    notes: AuditNotes,
    client: SessionClient,
    Json(request): Json<Credentials>,
) -> ApiResult<Response> {
    // A password longer than any policy allows cannot be anyone's: refused before the
    // account is looked up or charged, with the same answer for every username.
    if request.password.chars().count() > MAX_MAX_CHARS {
        notes.note(
            Note::new("auth.login", Outcome::Failure)
                .attempted_username(&request.username)
                .detail("reason", "password.too_long"),
        );
        return Err(ApiError::Invalid(format!(
            "the password is longer than {MAX_MAX_CHARS} characters"
        )));
    }
    // Every attempt is charged, before any verification, to the client address's `login`
    // rate limit (and to the account's, if the policy file asks for one).
    if let Err(denied) = limit.check_login(&request.username).await {
        notes.note(
            Note::new("auth.login", Outcome::Denied)
                .attempted_username(&request.username)
                .detail("reason", "rate_limited"),
        );
        return Ok(denied);
    }
    let auth = Arc::clone(state.auth());
    // A place in the hashing queue first: an attempt the queue turns away (503) is not
    // counted as a failed login.
    let admission = admit(&auth)?;
    let now = OffsetDateTime::now_utc();
    // Failed logins: the attempt is counted as a failure before the password is checked
    // (per case-folded name, known or not, and per name and address) and taken back if the
    // password is right. A remembered device of this account skips the per-account wait.
    let account = account_key(&request.username);
    let owner = device_owner(&auth, request.device_token.as_deref(), now).await?;
    let remembered = match owner {
        Some(owner) => auth
            .users
            .find_by_id(owner)
            .await
            .map_err(|e| internal("user lookup", &e))?
            .is_some_and(|user| account_key(&user.username) == account),
        None => false,
    };
    let device = if remembered {
        Device::Remembered
    } else {
        Device::Unknown
    };
    let refused = |reason: &'static str| {
        notes.note(
            Note::new("auth.login", Outcome::Denied)
                .attempted_username(&request.username)
                .detail("reason", reason),
        );
    };
    match auth
        .lockout()
        .admit(&account, limit.ip(), device, now)
        .await
    {
        Ok(Gate::Allowed) => {}
        Ok(Gate::Throttled { scope, retry_after }) => {
            refused(match scope {
                ThrottleScope::Pair => "lockout.address",
                ThrottleScope::Account => "lockout.account",
            });
            return Err(ApiError::LoginThrottled {
                // Rounded up: a client retrying after Retry-After is admitted.
                retry_after: u64::try_from(
                    retry_after.whole_seconds() + i64::from(retry_after.subsec_nanoseconds() > 0),
                )
                .unwrap_or(1)
                .max(1),
                scope,
            });
        }
        Ok(Gate::RecoveryRequired) => {
            refused("lockout.recovery_required");
            return Err(ApiError::RecoveryRequired);
        }
        Err(LockoutError::Contended) => {
            refused("lockout.contended");
            return Err(ApiError::LoginThrottled {
                retry_after: 1,
                scope: ThrottleScope::Account,
            });
        }
        Err(e) => return Err(internal("login failure count", &e)),
    }
    let user = check_password(
        &auth,
        admission,
        "auth.login",
        &request.username,
        request.password,
        &notes,
    )
    .await?;
    auth.lockout()
        .succeeded(&account, limit.ip())
        .await
        .map_err(|e| internal("login failure reset", &e))?;
    // A suspended user learns so only with the right password.
    if crate::controls::is_suspended(&state, user.id) {
        notes.note(
            Note::new("auth.login", Outcome::Denied)
                .user(user.id)
                .attempted_username(&request.username)
                .detail("reason", "user.suspended"),
        );
        return Err(ApiError::Suspended);
    }
    if state
        .gdpr()
        .is_restricted(user.id)
        .await
        .map_err(|e| internal("restriction lookup", &e))?
    {
        notes.note(
            Note::new("auth.login", Outcome::Denied)
                .user(user.id)
                .attempted_username(&request.username)
                .detail("reason", "user.restricted"),
        );
        return Err(ApiError::Restricted);
    }
    notes.note(
        Note::new("auth.login", Outcome::Success)
            .user(user.id)
            .attempted_username(&request.username)
            .detail("mfa_required", user.mfa_enabled),
    );
    if user.mfa_enabled {
        let challenge = Uuid::now_v7().simple().to_string();
        auth.sessions
            .insert_challenge(&challenge, user.id, now, now + MFA_TOKEN_TTL)
            .await
            .map_err(|e| internal("mfa challenge insert", &e))?;
        let v = auth.mfa_verifier.validation();
        let claims = Claims::new(
            v.issuer(),
            user.id.to_string(),
            v.audience(),
            now,
            MFA_TOKEN_TTL,
            MfaClaims {
                typ: MFA_TYPE.to_owned(),
            },
        )
        .with_jti(challenge);
        let token = auth
            .mfa_signer
            .sign(&claims)
            .map_err(|e| internal("mfa token signing", &e))?;
        return Ok((
            StatusCode::OK,
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            Json(MfaRequired {
                mfa_required: true,
                mfa_token: token,
            }),
        )
            .into_response());
    }
    let pair = auth
        .tokens()
        .issue_pair_at(
            &user.id.to_string(),
            AccessClaims::logged_in(now, &["pwd"]),
            now,
        )
        .await
        .map_err(|e| internal("token issue", &e))?;
    tracing::info!(user_id = %user.id, "logged in");
    let device_token = if remembered {
        None
    } else {
        Some(remember_device(&auth, user.id, now).await?)
    };
    session_response(&auth, &pair, &client, now, device_token).await
}

fn decrypt_secret(auth: &Auth, user: Uuid, sealed: &str) -> ApiResult<TotpSecret> {
    let plain = Zeroizing::new(
        auth.envelope
            .decrypt_str(
                sealed,
                &aad_for("server_mfa_secrets", "secret", &user.to_string()),
            )
            .map_err(|e| internal("totp secret decryption", &e))?,
    );
    TotpSecret::from_bytes(plain.to_vec()).map_err(|e| internal("totp secret", &e))
}

fn mfa_user(user: Uuid) -> ApiResult<MfaUserId> {
    MfaUserId::new(user.to_string()).map_err(|e| internal("mfa user id", &e))
}

/// Completes a login with a TOTP code or a backup code.
#[utoipa::path(
    post,
    path = "/auth/mfa/verify",
    tag = "auth",
    request_body = MfaVerifyRequest,
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 403, description = "The user is suspended (`account_suspended`)", body = Problem),
        (status = 401, description = "Wrong, replayed or used code, or an unusable mfa_token", body = Problem),
        (status = 429, description = "Too many attempts for this account or from this address (`login` policy), or the account's second factor is locked after ten consecutive wrong codes (15 minutes, doubling with each further wrong code, at most a day; `Retry-After`)", body = Problem),
    )
)]
pub async fn mfa_verify(
    State(state): State<AppState>,
    limit: LoginLimit,
    notes: AuditNotes,
    client: SessionClient,
    Json(request): Json<MfaVerifyRequest>,
) -> ApiResult<Response> {
    let auth = Arc::clone(state.auth());
    let now = OffsetDateTime::now_utc();
    let bad_token = |reason: &'static str| {
        notes.note(Note::new("auth.mfa", Outcome::Failure).detail("reason", reason));
        ApiError::BadCredentials
    };
    let claims = match auth
        .mfa_verifier
        .verify_at::<MfaClaims>(&request.mfa_token, now)
    {
        CredentialOutcome::Accepted(c) if c.extra.typ == MFA_TYPE => c,
        CredentialOutcome::Accepted(_) => return Err(bad_token("token.wrong_type")),
        CredentialOutcome::Rejected(why) => {
            tracing::debug!(reason = why.code(), "mfa token refused");
            return Err(bad_token(why.code()));
        }
    };
    let (Some(sub), Some(challenge)) = (claims.sub.as_deref(), claims.jti.as_deref()) else {
        return Err(bad_token("token.incomplete"));
    };
    let user_id = Uuid::parse_str(sub).map_err(|_| bad_token("token.subject"))?;
    let mfa = |outcome: Outcome, reason: &'static str| {
        notes.note(
            Note::new("auth.mfa", outcome)
                .user(user_id)
                .resource("user", user_id)
                .detail("reason", reason),
        );
    };
    // Every code guess is charged to the token's account and the client address (the
    // `login` policy, shared with password attempts), besides the per-token limit below.
    if let Err(denied) = limit.check_user(&*auth.users, user_id).await {
        mfa(Outcome::Denied, "rate_limited");
        return Ok(denied);
    }
    // An account whose second factor was locked by wrong codes takes none until the lock
    // is over (the caller proved the password, so the answer may say so).
    if let Some(until) = auth
        .users
        .mfa_locked_until(user_id)
        .await
        .map_err(|e| internal("mfa lock lookup", &e))?
        && until > now
    {
        mfa(Outcome::Denied, "mfa.locked");
        return Err(ApiError::MfaLocked {
            retry_after: u64::try_from((until - now).whole_seconds())
                .unwrap_or(1)
                .max(1),
        });
    }
    // Counted before the code is checked: at most MFA_MAX_FAILURES attempts per token,
    // across instances and concurrent requests.
    if !auth
        .sessions
        .challenge_attempt(challenge, user_id, now, MFA_MAX_FAILURES)
        .await
        .map_err(|e| internal("mfa challenge", &e))?
    {
        tracing::debug!("mfa token used, expired or out of attempts");
        mfa(Outcome::Failure, "challenge.exhausted");
        return Err(ApiError::BadCredentials);
    }
    let Some(StoredTotpSecret {
        sealed,
        confirmed: true,
    }) = auth
        .users
        .mfa_secret(user_id)
        .await
        .map_err(|e| internal("totp secret lookup", &e))?
    else {
        mfa(Outcome::Failure, "mfa.not_enabled");
        return Err(ApiError::BadCredentials);
    };
    let who = mfa_user(user_id)?;
    // The code as sent: the documented pattern has no surrounding space.
    let code = request.code.as_str();
    let used_totp = code.len() <= 8 && code.bytes().all(|b| b.is_ascii_digit());
    let accepted = if used_totp {
        let totp = Totp::new(
            decrypt_secret(&auth, user_id, &sealed)?,
            TotpParams::default(),
        );
        let outcome = totp
            .verify_at(&who, code, now, &*auth.replay)
            .await
            .map_err(|e| internal("totp replay store", &e))?;
        if let Some(why) = outcome.rejection() {
            tracing::debug!(reason = why.code(), "totp code refused");
        }
        outcome.is_accepted()
    } else {
        let outcome = redeem_backup_code(&auth.backup_key, &who, code, &*auth.backup_codes)
            .await
            .map_err(|e| internal("backup code store", &e))?;
        if let Some(why) = outcome.rejection() {
            tracing::debug!(reason = why.code(), "backup code refused");
        }
        outcome.is_accepted()
    };
    if !accepted {
        // Counted per account, persistently: a new login does not start the count again.
        let failures = auth
            .users
            .mfa_failed(user_id)
            .await
            .map_err(|e| internal("mfa failure count", &e))?;
        if let Some(lock) = super::mfa_lock(failures) {
            auth.users
                .lock_mfa(user_id, now + lock)
                .await
                .map_err(|e| internal("mfa lock", &e))?;
            tracing::warn!(user_id = %user_id, failures, "second factor locked after wrong codes");
        }
        notes.note(
            Note::new("auth.mfa", Outcome::Failure)
                .user(user_id)
                .resource("user", user_id)
                .detail("reason", "code.refused")
                .detail("consecutive_failures", i64::from(failures)),
        );
        return Err(ApiError::BadCredentials);
    }
    auth.users
        .mfa_succeeded(user_id)
        .await
        .map_err(|e| internal("mfa failure reset", &e))?;
    if !auth
        .sessions
        .challenge_use(challenge)
        .await
        .map_err(|e| internal("mfa challenge use", &e))?
    {
        mfa(Outcome::Failure, "challenge.used");
        return Err(ApiError::BadCredentials);
    }
    if crate::controls::is_suspended(&state, user_id) {
        mfa(Outcome::Denied, "user.suspended");
        return Err(ApiError::Suspended);
    }
    mfa(Outcome::Success, "accepted");
    let second = if used_totp { "otp" } else { "backup_code" };
    let pair = auth
        .tokens()
        .issue_pair_at(
            &user_id.to_string(),
            AccessClaims::logged_in(now, &["pwd", second, "mfa"]),
            now,
        )
        .await
        .map_err(|e| internal("token issue", &e))?;
    tracing::info!(user_id = %user_id, "logged in with a second factor");
    let device_token =
        if device_owner(&auth, request.device_token.as_deref(), now).await? == Some(user_id) {
            None
        } else {
            Some(remember_device(&auth, user_id, now).await?)
        };
    session_response(&auth, &pair, &client, now, device_token).await
}

/// Exchanges a refresh token for a new pair (the old one is spent; using it again revokes
/// every token of its family).
#[utoipa::path(
    post,
    path = "/auth/refresh",
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new pair", body = TokenResponse),
        (status = 401, description = "Unknown, expired, reused or revoked refresh token", body = Problem),
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    notes: AuditNotes,
    client: SessionClient,
    Json(request): Json<RefreshRequest>,
) -> ApiResult<Response> {
    let auth = state.auth();
    let now = OffsetDateTime::now_utc();
    let token = SecretString::from(request.refresh_token);
    match auth
        .tokens()
        .refresh_at(&token, AccessClaims::new(), now)
        .await
        .map_err(|e| internal("refresh", &e))?
    {
        CredentialOutcome::Accepted(pair) => {
            // The session's last token was issued when its newest access token was; longer
            // ago than the idle limit, the session is over (its new pair with it).
            let newest = auth
                .sessions
                .newest_access_expiry(&pair.family)
                .await
                .map_err(|e| internal("session lookup", &e))?;
            let idle = newest.is_none_or(|exp| now - (exp - auth.access_ttl) > auth.session_idle);
            let suspended = issued_jti_and_user(pair.access_token.expose_secret())
                .is_some_and(|(_, user)| crate::controls::is_suspended(&state, user));
            if suspended {
                end_session(auth, &pair.family, now).await?;
                notes.note(
                    Note::new("auth.refresh", Outcome::Denied)
                        .resource("session", &pair.family)
                        .detail("reason", "user.suspended"),
                );
                return Err(ApiError::Unauthorized);
            }
            if idle {
                end_session(auth, &pair.family, now).await?;
                notes.note(
                    Note::new("auth.refresh", Outcome::Denied)
                        .resource("session", &pair.family)
                        .detail("reason", "session.idle"),
                );
                tracing::debug!("refresh refused: the session was idle too long");
                return Err(ApiError::Unauthorized);
            }
            session_response(auth, &pair, &client, now, None).await
        }
        CredentialOutcome::Rejected(why) => {
            if let TokenRejection::RefreshReused { family } = &why {
                tracing::warn!("refresh token reused; its family is revoked");
                auth.sessions
                    .end_session(family, now)
                    .await
                    .map_err(|e| internal("session end", &e))?;
                // The family id names the session, never the token.
                notes.note(
                    Note::new("auth.refresh", Outcome::Denied)
                        .resource("session", family)
                        .detail("reason", why.code()),
                );
            }
            tracing::debug!(reason = why.code(), "refresh refused");
            Err(ApiError::Unauthorized)
        }
    }
}

/// Ends the session: revokes the access token and, when given, the refresh token's family.
#[utoipa::path(
    post,
    path = "/auth/logout",
    tag = "auth",
    request_body(content = Option<LogoutRequest>, description = "Optional refresh token"),
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 403, description = "Called with an API key", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn logout(
    State(state): State<AppState>,
    principal: Principal,
    notes: AuditNotes,
    request: Option<Json<Option<LogoutRequest>>>,
) -> ApiResult<StatusCode> {
    let Via::Bearer {
        jti, expires_at, ..
    } = &principal.via
    else {
        return Err(ApiError::Forbidden("logout needs a session".to_owned()));
    };
    let auth = state.auth();
    let now = OffsetDateTime::now_utc();
    let claims = Claims {
        iss: None,
        sub: Some(principal.user_id.to_string()),
        aud: None,
        exp: Some(expires_at.unix_timestamp()),
        nbf: None,
        iat: None,
        jti: Some(jti.clone()),
        sid: None,
        extra: (),
    };
    auth.tokens()
        .revoke(&claims)
        .await
        .map_err(|e| internal("token revocation", &e))?;
    if let Some(family) = auth
        .sessions
        .session_family(jti)
        .await
        .map_err(|e| internal("session lookup", &e))?
    {
        end_session(auth, &family, now).await?;
    }
    if let Some(Json(Some(LogoutRequest {
        refresh_token: Some(token),
    }))) = request
    {
        // Spending the refresh token names its family; the new pair is revoked with it.
        match auth
            .tokens()
            .refresh_at(&SecretString::from(token), AccessClaims::new(), now)
            .await
        {
            Ok(CredentialOutcome::Accepted(pair)) => end_session(auth, &pair.family, now).await?,
            Ok(CredentialOutcome::Rejected(why)) => {
                tracing::debug!(reason = why.code(), "logout: refresh token not usable");
            }
            Err(e) => return Err(internal("refresh", &e)),
        }
    }
    tracing::info!(user_id = %principal.user_id, "logged out");
    notes.note(Note::new("auth.logout", Outcome::Success));
    Ok(StatusCode::NO_CONTENT)
}

/// Starts a TOTP enrollment (replacing an unconfirmed one).
#[utoipa::path(
    post,
    path = "/mfa/enroll",
    tag = "auth",
    responses(
        (status = 200, description = "Scan the QR code, then confirm with a code", body = Enrollment),
        (status = 401, description = "Not authenticated, or the login is not recent: a step-up challenge (`error=\"insufficient_user_authentication\"`, `max_age=300`) asks for a login within 5 minutes, with the second factor when enrolled", body = Problem),
        (status = 403, description = "Called with an API key", body = Problem),
        (status = 409, description = "A second factor is already confirmed", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn mfa_enroll(
    State(state): State<AppState>,
    principal: Principal,
    notes: AuditNotes,
) -> ApiResult<Response> {
    require_recent_login(&principal, &notes, "auth.mfa_enroll")?;
    let auth = state.auth();
    let now = OffsetDateTime::now_utc();
    let pending = PendingEnrollment::begin(
        mfa_user(principal.user_id)?,
        TOTP_ISSUER,
        &principal.username,
    )
    .map_err(|e| internal("totp enrollment", &e))?;
    let sealed = auth
        .envelope
        .encrypt_to_string(
            pending.secret().expose_secret(),
            &aad_for(
                "server_mfa_secrets",
                "secret",
                &principal.user_id.to_string(),
            ),
        )
        .map_err(|e| internal("totp secret encryption", &e))?;
    if !auth
        .users
        .put_pending_secret(principal.user_id, &sealed, now)
        .await
        .map_err(|e| internal("totp secret insert", &e))?
    {
        return Err(ApiError::Conflict(
            "a second factor is already enabled".to_owned(),
        ));
    }
    let png = pending.qr_png().map_err(|e| internal("qr code", &e))?;
    Ok((
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(Enrollment {
            otpauth_uri: pending.otpauth_uri().expose_secret().to_owned(),
            qr_png_base64: base64::engine::general_purpose::STANDARD.encode(png.as_slice()),
        }),
    )
        .into_response())
}

/// Confirms the pending TOTP enrollment with a code and returns the backup codes, once.
#[utoipa::path(
    post,
    path = "/mfa/confirm",
    tag = "auth",
    request_body = CodeRequest,
    responses(
        (status = 200, description = "Enabled; the backup codes are shown only now", body = BackupCodesResponse),
        (status = 401, description = "Not authenticated, or the login is not recent: a step-up challenge (`error=\"insufficient_user_authentication\"`, `max_age=300`) asks for a login within 5 minutes, with the second factor when enrolled", body = Problem),
        (status = 403, description = "Called with an API key", body = Problem),
        (status = 409, description = "No pending enrollment", body = Problem),
        (status = 422, description = "The code is wrong", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn mfa_confirm(
    State(state): State<AppState>,
    principal: Principal,
    notes: AuditNotes,
    Json(request): Json<CodeRequest>,
) -> ApiResult<Response> {
    require_recent_login(&principal, &notes, "auth.mfa_confirm")?;
    let auth = state.auth();
    let now = OffsetDateTime::now_utc();
    let Some(StoredTotpSecret {
        sealed,
        confirmed: false,
    }) = auth
        .users
        .mfa_secret(principal.user_id)
        .await
        .map_err(|e| internal("totp secret lookup", &e))?
    else {
        return Err(ApiError::Conflict("no pending enrollment".to_owned()));
    };
    let who = mfa_user(principal.user_id)?;
    let secret = decrypt_secret(auth, principal.user_id, &sealed)?;
    let pending = PendingEnrollment::resume(
        who.clone(),
        TOTP_ISSUER,
        &principal.username,
        secret,
        TotpParams::default(),
    )
    .map_err(|e| internal("totp enrollment", &e))?;
    match pending
        .confirm_at(&request.code, now, &*auth.replay)
        .await
        .map_err(|e| internal("totp replay store", &e))?
    {
        CredentialOutcome::Accepted(_) => {}
        CredentialOutcome::Rejected(_) => {
            return Err(ApiError::Invalid("the code is not valid".to_owned()));
        }
    }
    let codes = new_backup_codes(auth, &who).await?;
    if !auth
        .users
        .confirm_mfa(principal.user_id, now)
        .await
        .map_err(|e| internal("mfa confirmation", &e))?
    {
        return Err(ApiError::Conflict("no pending enrollment".to_owned()));
    }
    // Sessions opened without the second factor end now, except the one enabling it.
    let current = principal.session();
    let ended = end_sessions(auth, principal.user_id, current, now).await?;
    notes.note(
        Note::new("auth.mfa_enable", Outcome::Success)
            .user(principal.user_id)
            .resource("user", principal.user_id)
            .detail("sessions_ended", i64::try_from(ended).unwrap_or(i64::MAX)),
    );
    tracing::info!(user_id = %principal.user_id, "second factor enabled");
    Ok(backup_codes_response(&codes))
}

/// Revokes every recorded session of `user` but `keep` (their refresh tokens and, through
/// their `sid`, their access tokens, on every instance); returns how many ended.
async fn end_sessions(
    auth: &Auth,
    user: Uuid,
    keep: Option<&str>,
    now: OffsetDateTime,
) -> ApiResult<usize> {
    let families = auth
        .sessions
        .user_families(user)
        .await
        .map_err(|e| internal("session lookup", &e))?;
    let mut ended = 0;
    for family in families.iter().filter(|f| Some(f.as_str()) != keep) {
        end_session(auth, family, now).await?;
        ended += 1;
    }
    Ok(ended)
}

/// What [`revoke_credentials`] took away.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Revoked {
    /// Sessions ended.
    pub sessions: usize,
    /// API keys revoked.
    pub api_keys: usize,
    /// Remembered devices forgotten.
    pub devices: u64,
}

/// Takes a user's standing credentials away, as a password change, a reset or a suspension
/// does: ends every session of `user` but `keep` (on every instance, at their next
/// request), forgets their remembered devices and, with `revoke_keys`, revokes their API
/// keys.
///
/// # Errors
/// [`ApiError::Internal`] if a store fails (what was done before stays done).
pub async fn revoke_credentials(
    auth: &Auth,
    user: Uuid,
    keep: Option<&str>,
    revoke_keys: bool,
    now: OffsetDateTime,
) -> Result<Revoked, ApiError> {
    let sessions = end_sessions(auth, user, keep, now).await?;
    let devices = auth
        .sessions
        .forget_devices(user)
        .await
        .map_err(|e| internal("remembered device removal", &e))?;
    let mut api_keys = 0;
    if revoke_keys {
        let keys = auth
            .api_keys()
            .store()
            .list_for_owner(&user.to_string())
            .await
            .map_err(|e| internal("api key list", &e))?;
        for key in keys.iter().filter(|k| k.revoked_at.is_none()) {
            auth.api_keys()
                .revoke_at(&key.id, now)
                .await
                .map_err(|e| internal("api key revocation", &e))?;
            api_keys += 1;
        }
    }
    Ok(Revoked {
        sessions,
        api_keys,
        devices,
    })
}

/// Ends every session of the caller, this one included: their refresh tokens stop
/// working and their access tokens are refused at their next request, on every instance.
#[utoipa::path(
    post,
    path = "/auth/logout-all",
    tag = "auth",
    responses(
        (status = 204, description = "Every session of the caller has ended"),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 403, description = "Called with an API key", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn logout_all(
    State(state): State<AppState>,
    principal: Principal,
    notes: AuditNotes,
) -> ApiResult<StatusCode> {
    require_bearer(&principal)?;
    let auth = state.auth();
    let ended = end_sessions(auth, principal.user_id, None, OffsetDateTime::now_utc()).await?;
    notes.note(
        Note::new("auth.logout_all", Outcome::Success)
            .user(principal.user_id)
            .resource("user", principal.user_id)
            .detail("sessions_ended", i64::try_from(ended).unwrap_or(i64::MAX)),
    );
    tracing::info!(user_id = %principal.user_id, ended, "logged out everywhere");
    Ok(StatusCode::NO_CONTENT)
}

/// Changes the caller's password. Needs the current password and a recent login (with
/// the second factor when enrolled); ends every other session of the caller and, when
/// asked, revokes their API keys.
#[utoipa::path(
    post,
    path = "/auth/password",
    tag = "auth",
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed; the caller's other sessions have ended"),
        (status = 401, description = "Not authenticated, the current password is wrong, or the login is not recent (a step-up challenge, `error=\"insufficient_user_authentication\"`, `max_age=300`)", body = Problem),
        (status = 403, description = "Called with an API key", body = Problem),
        (status = 422, description = "The new password breaks the rules", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn change_password(
    State(state): State<AppState>,
    principal: Principal,
    notes: AuditNotes,
    Json(request): Json<PasswordChange>,
) -> ApiResult<StatusCode> {
    require_recent_login(&principal, &notes, "auth.password_change")?;
    let auth = Arc::clone(state.auth());
    let new = auth
        .policy
        .check(&Password::new(request.new_password))
        .map_err(|e| ApiError::Invalid(e.to_string()))?;
    if request.current_password.chars().count() > MAX_MAX_CHARS {
        return Err(ApiError::BadCredentials);
    }
    let user = check_password(
        &auth,
        admit(&auth)?,
        "auth.password_change",
        &principal.username,
        request.current_password,
        &notes,
    )
    .await?;
    if user.id != principal.user_id {
        return Err(ApiError::BadCredentials);
    }
    let hasher_auth = Arc::clone(&auth);
    let hash = blocking(admit(&auth)?, move || hasher_auth.hasher.hash(&new))
        .await?
        .map_err(|e| internal("password hashing", &e))?;
    let now = OffsetDateTime::now_utc();
    if !auth
        .users
        .update_password_hash(user.id, &hash, now)
        .await
        .map_err(|e| internal("password update", &e))?
    {
        return Err(ApiError::Unauthorized);
    }
    let revoked = revoke_credentials(
        &auth,
        user.id,
        principal.session(),
        request.revoke_api_keys,
        now,
    )
    .await?;
    let (ended, revoked_keys, devices) = (revoked.sessions, revoked.api_keys, revoked.devices);
    notes.note(
        Note::new("auth.password_change", Outcome::Success)
            .user(user.id)
            .resource("user", user.id)
            .detail("sessions_ended", i64::try_from(ended).unwrap_or(i64::MAX))
            .detail(
                "api_keys_revoked",
                i64::try_from(revoked_keys).unwrap_or(i64::MAX),
            )
            .detail(
                "devices_forgotten",
                i64::try_from(devices).unwrap_or(i64::MAX),
            ),
    );
    tracing::info!(user_id = %user.id, ended, revoked_keys, devices, "password changed");
    Ok(StatusCode::NO_CONTENT)
}

/// A new password set with a reset token.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    /// The single-use token an admin handed over after a second admin approved the reset.
    pub reset_token: String,
    /// The new password (as at registration).
    #[schema(schema_with = request_schema::new_password)]
    pub new_password: String,
}

/// Sets a new password with a reset token (see `POST /admin/users/{user_id}/resets`). The
/// token works once, within a day of the approval; every refusal is the same 401.
#[utoipa::path(
    post,
    path = "/auth/password/reset",
    tag = "auth",
    request_body = PasswordReset,
    responses(
        (status = 204, description = "The new password is set; failed-login counts of the account are cleared"),
        (status = 401, description = "The token is unknown, used or expired", body = Problem),
        (status = 422, description = "The new password breaks the rules (the token is not used up)", body = Problem),
        (status = 429, description = "Too many requests from this address (`auth` policy)", body = Problem),
    )
)]
pub async fn reset_password(
    State(state): State<AppState>,
    notes: AuditNotes,
    Json(request): Json<PasswordReset>,
) -> ApiResult<StatusCode> {
    let auth = Arc::clone(state.auth());
    // The rules first, so a password they refuse does not use the token up.
    let new = auth
        .policy
        .check(&Password::new(request.new_password))
        .map_err(|e| ApiError::Invalid(e.to_string()))?;
    let admission = admit(&auth)?;
    let now = OffsetDateTime::now_utc();
    let token = request.reset_token;
    let user = if token.starts_with(super::admin::RESET_TOKEN_PREFIX) {
        auth.sessions
            .use_reset_token(&token_hash(&token), now)
            .await
            .map_err(|e| internal("reset token", &e))?
    } else {
        None
    };
    let Some(user) = user else {
        notes.note(
            Note::new("auth.password_reset", Outcome::Failure).detail("reason", "token.refused"),
        );
        return Err(ApiError::BadCredentials);
    };
    let hasher_auth = Arc::clone(&auth);
    let hash = blocking(admission, move || hasher_auth.hasher.hash(&new))
        .await?
        .map_err(|e| internal("password hashing", &e))?;
    if !auth
        .users
        .update_password_hash(user, &hash, now)
        .await
        .map_err(|e| internal("password update", &e))?
    {
        return Err(ApiError::BadCredentials);
    }
    if let Some(found) = auth
        .users
        .find_by_id(user)
        .await
        .map_err(|e| internal("user lookup", &e))?
    {
        auth.lockout()
            .recover(&account_key(&found.username))
            .await
            .map_err(|e| internal("failed-login reset", &e))?;
    }
    notes.note(
        Note::new("auth.password_reset", Outcome::Success)
            .user(user)
            .resource("user", user),
    );
    tracing::info!(user_id = %user, "password set with a reset token");
    Ok(StatusCode::NO_CONTENT)
}

/// Generates 10 backup codes for `who` and stores their hashes in place of any earlier
/// set; the codes are returned to be shown once.
async fn new_backup_codes(auth: &Auth, who: &MfaUserId) -> ApiResult<Vec<SecretString>> {
    BackupCodes::generate(&auth.backup_key, who)
        .map_err(|e| internal("backup codes", &e))?
        .store(who, &*auth.backup_codes)
        .await
        .map_err(|e| internal("backup code store", &e))
}

/// The backup codes, shown once and never cached.
fn backup_codes_response(codes: &[SecretString]) -> Response {
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(BackupCodesResponse {
            backup_codes: codes.iter().map(|c| c.expose_secret().to_owned()).collect(),
        }),
    )
        .into_response()
}

/// Replaces the caller's backup codes with 10 new ones, shown once: the old codes stop
/// working. Needs a login with the second factor within the last 5 minutes.
#[utoipa::path(
    post,
    path = "/mfa/backup-codes",
    tag = "auth",
    responses(
        (status = 200, description = "The new backup codes, shown only now; the old ones no longer work", body = BackupCodesResponse),
        (status = 401, description = "Not authenticated, or the login is not recent: a step-up challenge (`error=\"insufficient_user_authentication\"`, `max_age=300`) asks for a login with the second factor within 5 minutes", body = Problem),
        (status = 403, description = "Called with an API key", body = Problem),
        (status = 409, description = "No second factor is enabled", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn regenerate_backup_codes(
    State(state): State<AppState>,
    principal: Principal,
    notes: AuditNotes,
) -> ApiResult<Response> {
    require_recent_login(&principal, &notes, "auth.mfa_backup_codes")?;
    let auth = state.auth();
    let confirmed = matches!(
        auth.users
            .mfa_secret(principal.user_id)
            .await
            .map_err(|e| internal("totp secret lookup", &e))?,
        Some(StoredTotpSecret {
            confirmed: true,
            ..
        })
    );
    if !confirmed {
        return Err(ApiError::Conflict("no second factor is enabled".to_owned()));
    }
    let who = mfa_user(principal.user_id)?;
    let codes = new_backup_codes(auth, &who).await?;
    notes.note(
        Note::new("auth.mfa_backup_codes", Outcome::Success)
            .user(principal.user_id)
            .resource("user", principal.user_id),
    );
    tracing::info!(user_id = %principal.user_id, "backup codes regenerated");
    Ok(backup_codes_response(&codes))
}

/// Turns the caller's second factor off: the TOTP secret and every backup code are
/// deleted. Needs a login with the second factor within the last 5 minutes.
#[utoipa::path(
    delete,
    path = "/mfa",
    tag = "auth",
    responses(
        (status = 204, description = "The second factor is off; enrol again to turn it on"),
        (status = 401, description = "Not authenticated, or the login is not recent: a step-up challenge (`error=\"insufficient_user_authentication\"`, `max_age=300`) asks for a login with the second factor within 5 minutes", body = Problem),
        (status = 403, description = "Called with an API key", body = Problem),
        (status = 409, description = "No second factor is enabled", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn disable_mfa(
    State(state): State<AppState>,
    principal: Principal,
    notes: AuditNotes,
) -> ApiResult<StatusCode> {
    require_recent_login(&principal, &notes, "auth.mfa_disable")?;
    let auth = state.auth();
    if !principal.mfa_enabled {
        return Err(ApiError::Conflict("no second factor is enabled".to_owned()));
    }
    let who = mfa_user(principal.user_id)?;
    auth.backup_codes
        .replace(&who, Vec::new())
        .await
        .map_err(|e| internal("backup code store", &e))?;
    if !auth
        .users
        .disable_mfa(principal.user_id, OffsetDateTime::now_utc())
        .await
        .map_err(|e| internal("mfa disable", &e))?
    {
        return Err(ApiError::Conflict("no second factor is enabled".to_owned()));
    }
    notes.note(
        Note::new("auth.mfa_disable", Outcome::Success)
            .user(principal.user_id)
            .resource("user", principal.user_id),
    );
    tracing::info!(user_id = %principal.user_id, "second factor disabled");
    Ok(StatusCode::NO_CONTENT)
}

fn key_info(record: &finsec_auth::api_keys::ApiKeyRecord, name: String) -> ApiKeyInfo {
    ApiKeyInfo {
        id: record.id.to_string(),
        name,
        scopes: record.scopes.iter().map(ToString::to_string).collect(),
        created_at: rfc3339(record.created_at),
        expires_at: record.expires_at.map(rfc3339),
        last_used_at: record.last_used_at.map(rfc3339),
        use_count: record.use_count,
        allowed_networks: record.networks.iter().map(ToString::to_string).collect(),
    }
}

/// The networks of a key request: CIDRs or single addresses, at most
/// [`finsec_auth::api_keys::MAX_NETWORKS`].
fn allowed_networks(texts: Option<Vec<String>>) -> ApiResult<Vec<ipnet::IpNet>> {
    let texts = texts.unwrap_or_default();
    if texts.len() > finsec_auth::api_keys::MAX_NETWORKS {
        return Err(ApiError::Invalid(format!(
            "allowed_networks names at most {} networks",
            finsec_auth::api_keys::MAX_NETWORKS
        )));
    }
    texts
        .iter()
        .map(|text| {
            network(text).ok_or_else(|| {
                ApiError::Invalid(format!(
                    "allowed_networks: {:?} is not a network (CIDR) or an address",
                    text.chars().take(64).collect::<String>()
                ))
            })
        })
        .collect()
}

/// A network or a single address, in the forms the documented pattern admits: no IPv4
/// part inside an IPv6 address, a prefix of plain digits without a leading zero.
pub(crate) fn network(text: &str) -> Option<ipnet::IpNet> {
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let plain_prefix = prefix.is_none_or(|p| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && (p == "0" || !p.starts_with('0'))
    });
    if !plain_prefix || (address.contains(':') && address.contains('.')) {
        return None;
    }
    match prefix {
        Some(_) => text.parse::<ipnet::IpNet>().ok(),
        None => text
            .parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from),
    }
}

/// The caller's key `id` that is not revoked, with its record; anything else (a bad id,
/// another user's key, a revoked one) is the same 404.
async fn owned_key(
    auth: &Auth,
    principal: &Principal,
    id: &str,
) -> ApiResult<(ApiKeyId, finsec_auth::api_keys::ApiKeyRecord)> {
    let id = ApiKeyId::from_str(id).map_err(|_| ApiError::NotFound)?;
    let record = auth
        .api_keys()
        .store()
        .get(&id)
        .await
        .map_err(|e| internal("api key lookup", &e))?
        .ok_or(ApiError::NotFound)?;
    if *record.owner != *principal.user_id.to_string() || record.revoked_at.is_some() {
        return Err(ApiError::NotFound);
    }
    Ok((id, record))
}

/// Records the name `user` gave the new key `id`.
async fn name_key(
    auth: &Auth,
    id: &ApiKeyId,
    user: Uuid,
    name: &str,
    now: OffsetDateTime,
) -> ApiResult<()> {
    if auth
        .users
        .insert_key_name(id, user, name, now)
        .await
        .map_err(|e| internal("api key name insert", &e))?
    {
        Ok(())
    } else {
        Err(internal(
            "api key name insert",
            &"the new key id already has a name",
        ))
    }
}

/// When a key asked for with `expires_in_days` expires: every key expires unless the
/// operator allows otherwise, at most the configured lifetime, and that lifetime when none
/// is asked for.
fn key_expiry(
    auth: &Auth,
    expires_in_days: Option<u32>,
    now: OffsetDateTime,
) -> ApiResult<Option<OffsetDateTime>> {
    let max_days = auth.api_key_max_days.min(API_KEY_MAX_DAYS);
    let days = match expires_in_days {
        Some(days) if (1..=max_days).contains(&days) => Some(days),
        Some(_) => {
            return Err(ApiError::Invalid(format!(
                "expires_in_days must be 1 to {max_days} (this server's longest API key lifetime)"
            )));
        }
        None if auth.api_key_allow_no_expiry => None,
        None => Some(max_days),
    };
    Ok(days.map(|days| now + Duration::days(i64::from(days))))
}

/// Creates an API key for the caller (a session is required: an API key cannot create
/// API keys).
#[utoipa::path(
    post,
    path = "/api-keys",
    tag = "auth",
    request_body = NewApiKeyRequest,
    responses(
        (status = 201, description = "Created; `key` is shown only now", body = CreatedApiKey),
        (status = 401, description = "Not authenticated, or the login is not recent: a step-up challenge (`error=\"insufficient_user_authentication\"`, `max_age=300`) asks for a login within 5 minutes, with the second factor when enrolled", body = Problem),
        (status = 403, description = "Called with an API key", body = Problem),
        (status = 422, description = "A bad name, scope, network or expiry (longer than this server's longest API key lifetime)", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn create_api_key(
    State(state): State<AppState>,
    principal: Principal,
    notes: AuditNotes,
    Json(request): Json<NewApiKeyRequest>,
) -> ApiResult<Response> {
    require_recent_login(&principal, &notes, "api_key.create")?;
    let auth = state.auth();
    let now = OffsetDateTime::now_utc();
    let name = request.name;
    let chars = name.chars().count();
    if !(1..=API_KEY_NAME_MAX_CHARS).contains(&chars) || name.chars().any(char::is_control) {
        return Err(ApiError::Invalid(format!(
            "name must be 1 to {API_KEY_NAME_MAX_CHARS} characters, without control characters"
        )));
    }
    if request.scopes.is_empty() {
        return Err(ApiError::Invalid("scopes must not be empty".to_owned()));
    }
    let scopes = request
        .scopes
        .iter()
        .map(|s| {
            PermissionPattern::new(s).map_err(|e| ApiError::Invalid(format!("scope {s:?}: {e}")))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let networks = allowed_networks(request.allowed_networks)?;
    let mut new = NewApiKey::new(principal.user_id.to_string(), scopes).from_networks(networks);
    if let Some(at) = key_expiry(auth, request.expires_in_days, now)? {
        new = new.expires_at(at);
    }
    let issued = auth
        .api_keys()
        .issue_at(new, now)
        .await
        .map_err(|e| internal("api key issue", &e))?;
    name_key(auth, &issued.record.id, principal.user_id, &name, now).await?;
    tracing::info!(user_id = %principal.user_id, key_id = %issued.record.id, "api key created");
    notes.note(
        Note::new("api_key.create", Outcome::Success)
            .resource("api_key", issued.record.id.to_string())
            .detail("scopes", scopes_detail(&issued.record.scopes))
            .detail(
                "networks",
                i64::try_from(issued.record.networks.len()).unwrap_or(i64::MAX),
            ),
    );
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(CreatedApiKey {
            key: issued.printable.expose_secret().to_owned(),
            info: key_info(&issued.record, name),
        }),
    )
        .into_response())
}

/// Lists the caller's active API keys (no secrets).
#[utoipa::path(
    get,
    path = "/api-keys",
    tag = "auth",
    responses(
        (status = 200, description = "The caller's keys", body = ApiKeyList),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 403, description = "Called with an API key", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn list_api_keys(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<ApiKeyList>> {
    require_bearer(&principal)?;
    let auth = state.auth();
    let now = OffsetDateTime::now_utc();
    // This instance's uses not yet written go to the store first, so the caller sees them
    // (other instances write theirs at least every minute while their keys are in use,
    // and at shutdown). A failed write is logged; the list is still answered.
    if let Err(e) = auth.api_keys().flush_usage_at(now).await {
        tracing::warn!(error = %e, "api key usage could not be written");
    }
    let records = auth
        .api_keys()
        .store()
        .list_for_owner(&principal.user_id.to_string())
        .await
        .map_err(|e| internal("api key list", &e))?;
    let names = auth
        .users
        .key_names(principal.user_id)
        .await
        .map_err(|e| internal("api key names", &e))?;
    let keys = records
        .iter()
        .filter(|r| r.revoked_at.is_none_or(|at| at > now))
        .map(|r| {
            let name = names
                .iter()
                .find(|n| n.key_id == r.id)
                .map(|n| n.name.clone())
                .unwrap_or_default();
            key_info(r, name)
        })
        .collect();
    Ok(Json(ApiKeyList { keys }))
}

/// Rotates one of the caller's API keys: a new key with the same name and scopes (shown
/// only this once), while the old one keeps working for the overlap, so that clients can
/// move to the new one without a gap. Needs a recent login, as creating a key does.
#[utoipa::path(
    post,
    path = "/api-keys/{id}/rotate",
    tag = "auth",
    params(("id" = String, Path, pattern = "^[0-9a-f]{16}$", description = "The key id: 16 lower-case hex digits")),
    request_body = RotateApiKeyRequest,
    responses(
        (status = 201, description = "The new key (shown once) and when the old one stops", body = RotatedApiKey),
        (status = 401, description = "Not authenticated, or the login is not recent: a step-up challenge (`error=\"insufficient_user_authentication\"`, `max_age=300`) asks for a login within 5 minutes, with the second factor when enrolled", body = Problem),
        (status = 403, description = "Called with an API key", body = Problem),
        (status = 404, description = "The caller has no such key", body = Problem),
        (status = 409, description = "The key was already rotated, or has expired", body = Problem),
        (status = 422, description = "An overlap or lifetime out of range", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn rotate_api_key(
    State(state): State<AppState>,
    principal: Principal,
    notes: AuditNotes,
    Path(id): Path<String>,
    Json(Object(request)): Json<Object<RotateApiKeyRequest>>,
) -> ApiResult<Response> {
    require_recent_login(&principal, &notes, "api_key.rotate")?;
    let auth = state.auth();
    let now = OffsetDateTime::now_utc();
    let (id, _) = owned_key(auth, &principal, &id).await?;
    let overlap = request.overlap_minutes.unwrap_or(60);
    if overlap > request_schema::API_KEY_MAX_OVERLAP_MINUTES {
        return Err(ApiError::Invalid(format!(
            "overlap_minutes must be 0 to {}",
            request_schema::API_KEY_MAX_OVERLAP_MINUTES
        )));
    }
    let expires_at = key_expiry(auth, request.expires_in_days, now)?;
    let issued = match auth
        .api_keys()
        .rotate_until_at(
            &id,
            std::time::Duration::from_secs(u64::from(overlap) * 60),
            expires_at,
            now,
        )
        .await
    {
        Ok(issued) => issued,
        Err(ApiKeyError::InvalidState { state, .. }) => {
            return Err(ApiError::Conflict(format!(
                "the key cannot be rotated: it is {state}"
            )));
        }
        Err(ApiKeyError::NotFound { .. }) => return Err(ApiError::NotFound),
        Err(e) => return Err(internal("api key rotation", &e)),
    };
    let name = auth
        .users
        .key_names(principal.user_id)
        .await
        .map_err(|e| internal("api key names", &e))?
        .into_iter()
        .find(|n| n.key_id == id)
        .map(|n| n.name)
        .unwrap_or_default();
    name_key(auth, &issued.record.id, principal.user_id, &name, now).await?;
    // When the old key stops is what the rotation stored (the overlap, or its own earlier
    // expiry), read back rather than worked out again here.
    let replaced_expires_at = auth
        .api_keys()
        .store()
        .get(&id)
        .await
        .map_err(|e| internal("api key lookup", &e))?
        .and_then(|old| old.expires_at)
        .ok_or_else(|| internal("api key rotation", &"the rotated key has no expiry"))?;
    tracing::info!(user_id = %principal.user_id, old = %id, new = %issued.record.id, "api key rotated");
    notes.note(
        Note::new("api_key.rotate", Outcome::Success)
            .resource("api_key", issued.record.id.to_string())
            .detail("replaces", id.to_string())
            .detail("overlap_minutes", i64::from(overlap)),
    );
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(RotatedApiKey {
            created: CreatedApiKey {
                key: issued.printable.expose_secret().to_owned(),
                info: key_info(&issued.record, name),
            },
            replaces: id.to_string(),
            replaced_expires_at: rfc3339(replaced_expires_at),
        }),
    )
        .into_response())
}

/// Revokes one of the caller's API keys.
#[utoipa::path(
    delete,
    path = "/api-keys/{id}",
    tag = "auth",
    params(("id" = String, Path, pattern = "^[0-9a-f]{16}$", description = "The key id: 16 lower-case hex digits")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 403, description = "Called with an API key", body = Problem),
        (status = 404, description = "The caller has no such key", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn delete_api_key(
    State(state): State<AppState>,
    principal: Principal,
    notes: AuditNotes,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    require_bearer(&principal)?;
    let auth = state.auth();
    let now = OffsetDateTime::now_utc();
    let (id, _) = owned_key(auth, &principal, &id).await?;
    auth.api_keys()
        .revoke_at(&id, now)
        .await
        .map_err(|e| internal("api key revocation", &e))?;
    tracing::info!(user_id = %principal.user_id, key_id = %id, "api key revoked");
    notes.note(Note::new("api_key.revoke", Outcome::Success).resource("api_key", id.to_string()));
    Ok(StatusCode::NO_CONTENT)
}

/// `user`'s sessions that have not ended, gone idle or outlived their absolute lifetime.
async fn live_sessions(
    auth: &Auth,
    user: Uuid,
    now: OffsetDateTime,
) -> ApiResult<Vec<super::sessions::SessionInfo>> {
    auth.sessions
        .list_sessions(user, now - auth.session_idle, now - auth.session_max)
        .await
        .map_err(|e| internal("session list", &e))
}

/// The caller's sessions: each login that has not ended (logout, expiry of its absolute
/// lifetime, idle timeout, revocation), with when it began, when it last got a token and
/// from which client.
#[utoipa::path(
    get,
    path = "/sessions",
    tag = "auth",
    responses(
        (status = 200, description = "The caller's sessions, newest first", body = SessionList),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 403, description = "Called with an API key", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn list_sessions(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<SessionList>> {
    require_bearer(&principal)?;
    let auth = state.auth();
    let now = OffsetDateTime::now_utc();
    let current = principal.session();
    let sealing = auth.sealing();
    let user = principal.user_id;
    let mut sessions = Vec::new();
    for s in live_sessions(auth, user, now).await? {
        sessions.push(SessionView {
            current: current == Some(s.id.as_str()),
            client_ip: sealing
                .open_optional(user, "server_session_info.client_ip", s.client_ip)
                .await,
            user_agent: sealing
                .open_optional(user, "server_session_info.user_agent", s.user_agent)
                .await,
            id: s.id,
            created_at: rfc3339(s.created_at),
            last_used_at: rfc3339(s.last_used_at),
        });
    }
    Ok(Json(SessionList { sessions }))
}

/// Ends one of the caller's sessions: its refresh tokens stop working and its access
/// tokens are refused at their next request, on every instance.
#[utoipa::path(
    delete,
    path = "/sessions/{id}",
    tag = "auth",
    params(("id" = String, Path, pattern = "^[A-Za-z0-9_-]{43}$", description = "The session id, from `GET /sessions`")),
    responses(
        (status = 204, description = "Ended"),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 403, description = "Called with an API key", body = Problem),
        (status = 404, description = "The caller has no such session", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn delete_session(
    State(state): State<AppState>,
    principal: Principal,
    notes: AuditNotes,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    require_bearer(&principal)?;
    let auth = state.auth();
    let now = OffsetDateTime::now_utc();
    // Only a session of the caller that is still listed: another user's id, an ended one
    // and an unknown one are the same 404.
    let listed = live_sessions(auth, principal.user_id, now)
        .await?
        .iter()
        .any(|s| s.id == id);
    if !listed {
        return Err(ApiError::NotFound);
    }
    end_session(auth, &id, now).await?;
    tracing::info!(user_id = %principal.user_id, "session ended");
    notes.note(
        Note::new("auth.session_end", Outcome::Success)
            .user(principal.user_id)
            .resource("session", &id),
    );
    Ok(StatusCode::NO_CONTENT)
}

/// The caller: a bearer access token or an API key.
#[utoipa::path(
    get,
    path = "/me",
    tag = "auth",
    responses(
        (status = 200, description = "The caller", body = Me),
        (status = 401, description = "Not authenticated", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn me(principal: Principal) -> Json<Me> {
    // Authentication read the user's row for this request: no second lookup.
    let (auth, scopes) = match &principal.via {
        Via::Bearer { .. } => (AuthMethod::Bearer, None),
        Via::ApiKey { scopes, .. } => (
            AuthMethod::ApiKey,
            Some(scopes.iter().map(ToString::to_string).collect()),
        ),
    };
    Json(Me {
        id: principal.user_id.to_string(),
        username: principal.username,
        mfa_enabled: principal.mfa_enabled,
        auth,
        scopes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_network_pattern_admits_exactly_what_the_server_reads() {
        let pattern = regex::Regex::new(request_schema::NETWORK_PATTERN).unwrap();
        let samples = [
            ("10.0.0.0/8", true),
            ("10.1.2.3", true),
            ("0.0.0.0/0", true),
            ("255.255.255.255/32", true),
            ("::", true),
            ("::1", true),
            ("::/0", true),
            ("1::", true),
            ("1:2:3:4:5:6:7::", true),
            ("2001:DB8::/32", true),
            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", true),
            ("10.0.0.0/33", false),
            ("10.0.0.0/08", false),
            ("10.0.0.0/+8", false),
            ("10.0.0.0/", false),
            ("010.0.0.1", false),
            ("256.0.0.1", false),
            ("1.2.3", false),
            ("::ffff:10.0.0.1", false),
            ("fe80::1%eth0", false),
            ("2001:db8::/129", false),
            ("1::2::3", false),
            ("1:2:3:4:5:6:7:8:9", false),
            ("12345::", false),
            ("example.com", false),
            ("", false),
        ];
        for (text, valid) in samples {
            assert_eq!(pattern.is_match(text), valid, "pattern on {text:?}");
            assert_eq!(network(text).is_some(), valid, "server on {text:?}");
        }
        assert_eq!(samples.len(), 26);
        assert!(
            samples
                .iter()
                .all(|(t, _)| t.len() <= request_schema::NETWORK_MAX_CHARS)
        );
    }

    #[test]
    fn bodies_with_secrets_debug_redacted() {
        let credentials: Credentials = serde_json::from_str(
            r#"{"username":"alice","password":"hunter2-hunter2","device_token":"fsd_device"}"#,
        )
        .unwrap();
        let tokens = TokenResponse {
            access_token: "eyJ.access.sig".to_owned(),
            refresh_token: "refresh-secret".to_owned(),
            token_type: "Bearer".to_owned(),
            expires_in: 900,
            refresh_expires_in: 43_200,
            device_token: Some("fsd_secret".into()),
        };
        let verify: MfaVerifyRequest = serde_json::from_str(
            r#"{"mfa_token":"eyJ.mfa.sig","code":"123456","device_token":"fsd_device"}"#,
        )
        .unwrap();
        let created = CreatedApiKey {
            key: "fsk_0123_secret".to_owned(),
            info: ApiKeyInfo {
                id: "0123".to_owned(),
                name: "bot".to_owned(),
                scopes: vec![],
                created_at: String::new(),
                expires_at: None,
                last_used_at: None,
                use_count: 0,
                allowed_networks: vec![],
            },
        };
        let codes = BackupCodesResponse {
            backup_codes: vec!["ABCD-EFGH-JKLM".to_owned()],
        };
        let text = format!("{credentials:?} {tokens:?} {verify:?} {created:?} {codes:?}");
        for secret in [
            "hunter2",
            "eyJ",
            "refresh-secret",
            "123456",
            "fsk_",
            "ABCD",
            "fsd_",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("[REDACTED]"));
    }

    #[test]
    fn expiry_days_are_read_whatever_the_spelling_of_the_number() {
        let days = |json: &str| {
            serde_json::from_str::<NewApiKeyRequest>(&format!(
                r#"{{"name":"k","scopes":["*"],"expires_in_days":{json}}}"#
            ))
            .map(|r| r.expires_in_days)
        };
        for (json, expected) in [("30", 30), ("30.0", 30), ("3e1", 30), ("3650", 3650)] {
            assert_eq!(days(json).unwrap(), Some(expected), "{json}");
        }
        assert_eq!(days("null").unwrap(), None);
        for bad in ["30.5", "-1", "4294967296", "1e300", "\"30\"", "true"] {
            assert!(days(bad).is_err(), "{bad}");
        }
        let absent: NewApiKeyRequest =
            serde_json::from_str(r#"{"name":"k","scopes":["*"]}"#).unwrap();
        assert_eq!(absent.expires_in_days, None);
        assert!(
            serde_json::from_str::<NewApiKeyRequest>(r#"{"name":"k","scopes":["*"],"x":1}"#)
                .is_err()
        );
    }

    #[test]
    fn login_failures_are_one_answer() {
        let a = ApiError::BadCredentials.into_response();
        assert_eq!(a.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            a.headers()[header::WWW_AUTHENTICATE],
            super::super::extract::CHALLENGE
        );
    }
}
