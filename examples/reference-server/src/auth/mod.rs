//! Authentication: users, passwords, JWT sessions, TOTP second factor and API keys, built
//! on finsec-auth.
//!
//! - Passwords follow finsec-auth's [`PasswordPolicy`] (NIST SP 800-63B) and are hashed
//!   with argon2id and a pepper kept out of the database (see [`secrets::load_pepper`]).
//!   Legacy bcrypt hashes are accepted and replaced on the next successful login.
//! - Login refuses a password longer than any policy allows (1,024 characters) with a 422
//!   before it looks the account up, and every refused login (unknown name, wrong password
//!   against any kind of stored hash) waits until it took as long as the slowest recent
//!   password check (finsec-auth's [`FailureFloor`](finsec_auth::passwords::FailureFloor)),
//!   so neither the answer nor its timing tells whether an account exists.
//! - Sessions are an EdDSA access JWT and an opaque refresh token (finsec-auth
//!   [`TokenService`]: rotation, reuse detection, `jti` revocation). The signing keys live
//!   in the database, envelope-encrypted with the keyring's `server-secrets` key, so every instance
//!   on the same database and keyring signs and verifies with the same keys.
//! - A user with confirmed TOTP gets a short-lived `mfa_token` from a password login,
//!   signed for a distinct audience so it is never an access token (and the reverse).
//! - API keys (`fsk_…`) carry finsec-rbac permission patterns as scopes.
//! - Credentials are checked once per request by the authentication layer
//!   ([`crate::http::layers::authenticate`]); [`extract::Principal`] is the extractor every
//!   protected route uses, and only reads that layer's outcome.
//!
//! Token revocation, refresh families and TOTP replay state live in the database, or in
//! Redis when `--redis-url` is given (shared by every instance).

pub mod admin;
pub mod extract;
pub mod hashing;
pub mod request_schema;
pub mod routes;
pub mod secrets;
pub mod sessions;
pub mod sql;
pub mod user_cache;
pub mod users;

#[cfg(test)]
pub(crate) mod suite;
#[cfg(test)]
pub mod testing;

use std::fmt;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use finsec_auth::api_keys::{ApiKeyStore, ApiKeys};
use finsec_auth::lockout::{Backoff, FailureStore, Lockout, LockoutPolicy};
use finsec_auth::mfa::{BackupCodeKey, BackupCodeStore, TotpReplayStore};
use finsec_auth::passwords::{Argon2Params, PasswordHasher, PasswordPolicy};
use finsec_auth::tokens::{
    CachedRevocationStore, RefreshTokenStore, RevocationStore, Signer, TokenService, Validation,
    Verifier,
};
use finsec_crypto::{Envelope, Keyring};
use time::Duration;

use crate::config::Config;
use crate::error::{Result, ServerError};
use crate::keys::secrets_key_name;
use crate::redis_backend::Redis;
use crate::storage::{CrateStores, DataDirLock, Storage};

use self::sessions::SessionStore;
use self::users::UserStore;

/// How long an `mfa_token` is valid.
pub const MFA_TOKEN_TTL: Duration = Duration::minutes(5);

/// How many second-factor attempts one `mfa_token` allows (five wrong codes end it).
pub const MFA_MAX_FAILURES: u32 = 5;

/// How many consecutive wrong second-factor codes an account may have (over any number of
/// logins, on every instance, across restarts) before its second factor is locked.
pub const MFA_LOCK_AFTER: u32 = 10;

/// The first lock after [`MFA_LOCK_AFTER`] wrong codes; each further wrong code once a
/// lock is over doubles it, up to [`MFA_LOCK_MAX`]. A correct code clears the count.
pub const MFA_LOCK_FIRST: Duration = Duration::minutes(15);

/// The longest second-factor lock.
pub const MFA_LOCK_MAX: Duration = Duration::hours(24);

/// How long `failures` consecutive wrong codes lock an account's second factor: nothing
/// below [`MFA_LOCK_AFTER`], then [`MFA_LOCK_FIRST`] doubled per failure past it, at most
/// [`MFA_LOCK_MAX`]. So guessing stops: after the tenth wrong code, a day allows a handful
/// more.
pub fn mfa_lock(failures: u32) -> Option<Duration> {
    let past = failures.checked_sub(MFA_LOCK_AFTER)?;
    let factor = 1i32.checked_shl(past.min(30)).unwrap_or(i32::MAX);
    Some(MFA_LOCK_FIRST.saturating_mul(factor).min(MFA_LOCK_MAX))
}

/// How many verified access tokens are remembered, so a token sent again skips the EdDSA
/// signature check (expiry and revocation are still checked on every request); a few
/// hundred bytes each.
pub const ACCESS_TOKEN_CACHE: NonZeroUsize = NonZeroUsize::MIN.saturating_add(16_383);

/// How many users, and how many token ids' revocation answers, a server that owns its
/// database keeps in memory (see [`Auth::new`]); when full, the cache is emptied and fills
/// again.
pub const MEMORY_CACHE: NonZeroUsize = NonZeroUsize::MIN.saturating_add(65_535);

/// The issuer shown in authenticator apps.
pub const TOTP_ISSUER: &str = "finsec";

/// Authentication settings.
#[derive(Debug, Clone, Args)]
pub struct AuthConfig {
    /// Access-token lifetime in seconds.
    #[arg(
        long,
        env = "FINSEC_ACCESS_TOKEN_TTL_SECS",
        default_value_t = 900,
        value_parser = clap::value_parser!(u32).range(1..=86_400),
        global = true
    )]
    pub access_token_ttl_secs: u32,

    /// A session's whole lifetime in hours, from its login: refreshing never extends it
    /// (each refresh token expires when the one it replaced did).
    #[arg(
        long,
        env = "FINSEC_SESSION_MAX_HOURS",
        default_value_t = 12,
        value_parser = clap::value_parser!(u32).range(1..=8760),
        global = true
    )]
    pub session_max_hours: u32,

    /// Minutes a session may go without a new access token (a login or a refresh) before
    /// its next refresh is refused and the session ended; never less than the access-token
    /// lifetime plus a minute, so a client refreshing as its token expires stays in.
    #[arg(
        long,
        env = "FINSEC_SESSION_IDLE_MINUTES",
        default_value_t = 60,
        value_parser = clap::value_parser!(u32).range(1..=10_080),
        global = true
    )]
    pub session_idle_minutes: u32,

    /// The `iss` of issued tokens.
    #[arg(
        long,
        env = "FINSEC_JWT_ISSUER",
        default_value = "finsec-reference-server",
        global = true
    )]
    pub jwt_issuer: String,

    /// The `aud` of access tokens (`mfa_token`s use this with `:mfa` appended).
    #[arg(
        long,
        env = "FINSEC_JWT_AUDIENCE",
        default_value = "finsec-api",
        global = true
    )]
    pub jwt_audience: String,

    /// File holding the password pepper (16 to 64 bytes, mode 0600); default
    /// `pepper.key` in the data directory, generated on first start.
    #[arg(long, env = "FINSEC_PASSWORD_PEPPER_FILE", global = true)]
    pub password_pepper_file: Option<PathBuf>,

    /// Prefix of every Redis key the server writes.
    #[arg(
        long,
        env = "FINSEC_REDIS_PREFIX",
        default_value = "finsec:",
        global = true
    )]
    pub redis_prefix: String,

    /// The longest API key lifetime in days: a longer `expires_in_days` is refused, and a
    /// key asked for without one gets this lifetime.
    #[arg(
        long,
        env = "FINSEC_API_KEY_MAX_DAYS",
        default_value_t = 90,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(request_schema::API_KEY_MAX_DAYS)),
        global = true
    )]
    pub api_key_max_days: u32,

    /// Lets a key asked for without `expires_in_days` never expire (otherwise it gets
    /// `--api-key-max-days`). A key that never expires outlives every session and every
    /// audit of who holds it: allow it only where keys are rotated by other means.
    #[arg(long, env = "FINSEC_API_KEY_ALLOW_NO_EXPIRY", global = true)]
    pub api_key_allow_no_expiry: bool,

    /// Failed logins of one account from one client address (IPv6 by /64) before that
    /// address waits for it (`--login-backoff-secs`, doubling with each further failure).
    #[arg(
        long,
        env = "FINSEC_LOGIN_FAILURES_PER_ADDRESS",
        default_value_t = 5,
        value_parser = clap::value_parser!(u32).range(1..=10_000),
        global = true
    )]
    pub login_failures_per_address: u32,

    /// Failed logins of one account from anywhere before every device without a remembered-
    /// device token waits for it (remembered devices never do).
    #[arg(
        long,
        env = "FINSEC_LOGIN_FAILURES_PER_ACCOUNT",
        default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..=10_000),
        global = true
    )]
    pub login_failures_per_account: u32,

    /// The first wait, in seconds, once failures reach a limit; 0 turns waiting off (the
    /// failures are still counted for `--login-recovery-after`).
    #[arg(
        long,
        env = "FINSEC_LOGIN_BACKOFF_SECS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u32).range(0..=86_400),
        global = true
    )]
    pub login_backoff_secs: u32,

    /// The longest wait, in seconds, however many failures.
    #[arg(
        long,
        env = "FINSEC_LOGIN_BACKOFF_MAX_SECS",
        default_value_t = 900,
        value_parser = clap::value_parser!(u32).range(0..=86_400),
        global = true
    )]
    pub login_backoff_max_secs: u32,

    /// Failed logins in a row after which the account needs recovery (an administrator, or a
    /// login from a remembered device); NIST SP 800-63B allows at most 100.
    #[arg(
        long,
        env = "FINSEC_LOGIN_RECOVERY_AFTER",
        default_value_t = 100,
        value_parser = clap::value_parser!(u32).range(1..=100),
        global = true
    )]
    pub login_recovery_after: u32,

    /// Days a remembered-device token (issued at each complete login, second factor
    /// included when enrolled) exempts its device from the per-account wait.
    #[arg(
        long,
        env = "FINSEC_REMEMBERED_DEVICE_DAYS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u32).range(1..=365),
        global = true
    )]
    pub remembered_device_days: u32,

    /// Who may create accounts at `POST /auth/register`: `uniform` (anyone; every
    /// well-formed request gets the same 202, whether the name was free or taken, so the
    /// answer tells nobody which names exist), `closed` (nobody: admins create accounts at
    /// `POST /admin/users`, operators with `users create`), or `open` (201 with the id, 409
    /// for a taken name: for development and tests, since it tells which names exist).
    #[arg(
        long,
        env = "FINSEC_REGISTRATION",
        value_enum,
        default_value_t = RegistrationMode::Uniform,
        global = true
    )]
    pub registration: RegistrationMode,
}

/// Who may create accounts at `POST /auth/register` (see [`AuthConfig::registration`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum RegistrationMode {
    /// Anyone, with one answer for free and taken names.
    #[default]
    Uniform,
    /// Nobody: admins and operators create accounts.
    Closed,
    /// Anyone, with 201 or 409 (tells which names exist).
    Open,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            access_token_ttl_secs: 900,
            session_max_hours: 12,
            session_idle_minutes: 60,
            jwt_issuer: "finsec-reference-server".to_owned(),
            jwt_audience: "finsec-api".to_owned(),
            password_pepper_file: None,
            redis_prefix: "finsec:".to_owned(),
            api_key_max_days: 90,
            api_key_allow_no_expiry: false,
            login_failures_per_address: 5,
            login_failures_per_account: 10,
            login_backoff_secs: 30,
            login_backoff_max_secs: 900,
            login_recovery_after: 100,
            remembered_device_days: 30,
            registration: RegistrationMode::Uniform,
        }
    }
}

impl AuthConfig {
    /// The pepper file: the configured one or `pepper.key` in the data directory.
    pub fn pepper_path(&self, config: &Config) -> PathBuf {
        self.password_pepper_file
            .clone()
            .unwrap_or_else(|| config.data_dir().join("pepper.key"))
    }

    /// The access-token lifetime.
    pub fn access_ttl(&self) -> Duration {
        Duration::seconds(i64::from(self.access_token_ttl_secs))
    }

    /// How long a session may go without a new access token: the configured minutes, at
    /// least the access-token lifetime plus a minute.
    pub fn session_idle(&self) -> Duration {
        Duration::minutes(i64::from(self.session_idle_minutes))
            .max(self.access_ttl() + Duration::minutes(1))
    }

    /// The refresh-token lifetime.
    pub fn refresh_ttl(&self) -> Duration {
        Duration::hours(i64::from(self.session_max_hours))
    }

    /// The login lockout policy these settings describe.
    ///
    /// # Errors
    /// [`ServerError::Config`] if the longest wait is shorter than the first.
    pub fn lockout_policy(&self) -> Result<LockoutPolicy> {
        let bad = |e: finsec_auth::lockout::LockoutError| {
            ServerError::Config(format!(
                "--login-backoff-secs / --login-backoff-max-secs: {e}"
            ))
        };
        let first = Duration::seconds(i64::from(self.login_backoff_secs));
        let max = Duration::seconds(i64::from(self.login_backoff_max_secs));
        let pair = Backoff::new(self.login_failures_per_address, first, max).map_err(bad)?;
        let account = Backoff::new(self.login_failures_per_account, first, max).map_err(bad)?;
        LockoutPolicy::new(pair, account, self.login_recovery_after, Duration::days(30))
            .map_err(bad)
    }
}

/// The stores behind token revocation, refresh families and TOTP replay: Redis's when
/// `--redis-url` is given (shared by every instance, fast), otherwise the database's.
type SharedStores = (
    Arc<dyn RevocationStore>,
    Arc<dyn RefreshTokenStore>,
    Arc<dyn TotpReplayStore>,
);

fn shared_stores(stores: &CrateStores, redis: Option<&Redis>, prefix: &str) -> SharedStores {
    use finsec_auth::mfa::redis as mfa_redis;
    use finsec_auth::tokens::redis as tok_redis;
    match redis {
        Some(redis) => {
            let conn = redis.connection();
            (
                Arc::new(tok_redis::RedisRevocationStore::new(conn.clone(), prefix)),
                Arc::new(tok_redis::RedisRefreshTokenStore::new(conn.clone(), prefix)),
                Arc::new(mfa_redis::RedisTotpReplayStore::new(conn, prefix)),
            )
        }
        None => (
            Arc::clone(&stores.revocations),
            Arc::clone(&stores.refresh_tokens),
            Arc::clone(&stores.totp_replay),
        ),
    }
}

/// Everything the authentication endpoints and the [`extract::Principal`] extractor use.
pub struct Auth {
    users: Arc<dyn UserStore>,
    sealing: crate::gdpr::sealing::UserSealing,
    sessions: Arc<dyn SessionStore>,
    hasher: PasswordHasher,
    hashing: hashing::HashingQueue,
    policy: PasswordPolicy,
    tokens: TokenService,
    mfa_signer: Signer,
    mfa_verifier: Verifier,
    api_keys: ApiKeys<Arc<dyn ApiKeyStore>>,
    replay: Arc<dyn TotpReplayStore>,
    backup_codes: Arc<dyn BackupCodeStore>,
    backup_key: BackupCodeKey,
    envelope: Envelope<Arc<Keyring>>,
    access_ttl: Duration,
    /// Refused logins all take as long as the slowest recent password check.
    failure_floor: finsec_auth::passwords::FailureFloor,
    /// The longest API key lifetime, in days, and the lifetime of a key asked for without one.
    api_key_max_days: u32,
    /// Whether a key asked for without a lifetime never expires.
    api_key_allow_no_expiry: bool,
    /// How long a session may go without a new access token.
    session_idle: Duration,
    /// How long a session lasts at most from its login (its refresh tokens' lifetime).
    session_max: Duration,
    /// Failed logins, per account and per account at one address.
    lockout: Lockout<Arc<dyn FailureStore>>,
    /// How long a remembered-device token is honoured.
    remembered_device_ttl: Duration,
    /// Who may register.
    registration: RegistrationMode,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("tokens", &self.tokens)
            .field("access_ttl", &self.access_ttl)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Sets up authentication on a migrated database (see [`crate::capabilities::migrate`]): loads or creates
    /// the pepper, the JWT signing key and the backup-code key, and opens the stores.
    ///
    /// `owner` is the lock of the embedded database when this process holds it: the
    /// process is then the only writer of the users table and (without Redis) of token
    /// revocations, and answers both from memory after the first read of each user and
    /// token ([`user_cache::CachedUserStore`], finsec-auth's [`CachedRevocationStore`]),
    /// which takes every database query off an authenticated request. Without it (a
    /// database other instances share) but with Redis, user rows are kept in memory and
    /// checked against a version every write stamps in Redis
    /// ([`user_cache::CachedUserStore::shared`]); with neither, every request reads the
    /// user's row.
    ///
    /// # Errors
    /// [`ServerError::Config`] for a bad pepper file or settings; [`ServerError::Store`]
    /// if the database fails; [`ServerError::Crypto`] if a stored key does not decrypt.
    pub async fn new(
        config: &Config,
        storage: &Storage,
        redis: Option<&Redis>,
        keyring: Arc<Keyring>,
        owner: Option<&DataDirLock>,
    ) -> Result<Self> {
        let auth = &config.auth;
        if auth.jwt_issuer.is_empty() || auth.jwt_audience.is_empty() {
            return Err(ServerError::Config(
                "--jwt-issuer and --jwt-audience must not be empty".to_owned(),
            ));
        }
        let pepper = secrets::load_pepper(&auth.pepper_path(config))?;
        let hasher = PasswordHasher::new(Argon2Params::default(), Some(pepper))
            .map_err(|e| ServerError::Config(format!("password hasher: {e}")))?;
        let envelope = Envelope::new(Arc::clone(&keyring), secrets_key_name()?);
        let now = time::OffsetDateTime::now_utc();
        let stores = storage.stores();
        let keys = secrets::signing_keys(&*stores.secrets, &envelope, now).await?;
        let token_err = |e: finsec_auth::TokenError| ServerError::Config(format!("jwt keys: {e}"));
        let verification = keys.verification_keys().to_vec();
        let access_validation = Validation::new(&auth.jwt_issuer, &auth.jwt_audience);
        let mfa_validation =
            Validation::new(&auth.jwt_issuer, format!("{}:mfa", auth.jwt_audience));
        let verifier = Verifier::new(verification.clone(), access_validation)
            .map_err(token_err)?
            .with_cache(ACCESS_TOKEN_CACHE);
        let mfa_verifier = Verifier::new(verification, mfa_validation).map_err(token_err)?;
        let (mut revocations, refresh, replay) =
            shared_stores(&stores.crates, redis, &auth.redis_prefix);
        // Names are sealed under each user's subject key; rows from before are sealed now.
        let sealing = crate::gdpr::sealing::UserSealing::load(storage, &keyring).await?;
        sealing.seal_plain_rows(&*stores.users).await?;
        let mut users: Arc<dyn UserStore> = Arc::new(crate::gdpr::sealing::SealedUserStore::new(
            Arc::clone(&stores.users),
            sealing.clone(),
        ));
        if owner.is_some() {
            users = Arc::new(user_cache::CachedUserStore::sole_writer(
                users,
                MEMORY_CACHE,
            ));
        } else if let Some(redis) = redis {
            users = Arc::new(user_cache::CachedUserStore::shared(
                users,
                MEMORY_CACHE,
                redis.connection(),
                &auth.redis_prefix,
            ));
        }
        if owner.is_some() && redis.is_none() {
            revocations = Arc::new(CachedRevocationStore::sole_writer(
                revocations,
                MEMORY_CACHE,
            ));
        }
        let tokens = TokenService::new(Signer::new(keys.current()), verifier, revocations, refresh)
            .with_ttls(auth.access_ttl(), auth.refresh_ttl());
        let api_store = Arc::clone(&stores.crates.api_keys);
        let backup_codes = Arc::clone(&stores.crates.backup_codes);
        let backup_key = BackupCodeKey::new(
            *secrets::server_secret(&*stores.secrets, &envelope, "backup_code_key", now).await?,
        );
        Ok(Self {
            users,
            sealing,
            sessions: Arc::clone(&stores.sessions),
            hasher,
            hashing: hashing::HashingQueue::from_config(&config.limits).map_err(|e| {
                ServerError::Config(format!("cannot start the password hashing threads: {e}"))
            })?,
            // The bundled list of the 30,000 most common passwords (SP 800-63B 5.1.1.2).
            policy: PasswordPolicy::default()
                .with_deny_list(Arc::new(finsec_auth::passwords::CommonPasswords::new())),
            tokens,
            mfa_signer: Signer::new(keys.current()),
            mfa_verifier,
            api_keys: ApiKeys::new(api_store),
            replay,
            backup_codes,
            backup_key,
            envelope,
            access_ttl: auth.access_ttl(),
            failure_floor: finsec_auth::passwords::FailureFloor::default(),
            api_key_max_days: auth.api_key_max_days,
            api_key_allow_no_expiry: auth.api_key_allow_no_expiry,
            session_idle: auth.session_idle(),
            session_max: auth.refresh_ttl(),
            lockout: Lockout::new(
                Arc::clone(&stores.crates.login_failures),
                auth.lockout_policy()?,
            ),
            remembered_device_ttl: Duration::days(i64::from(auth.remembered_device_days)),
            registration: auth.registration,
        })
    }

    /// The users, with names sealed under each user's subject key (and cached in memory
    /// where this process may).
    pub fn users(&self) -> &Arc<dyn UserStore> {
        &self.users
    }

    /// Access-token sessions, session details and MFA challenges.
    pub fn sessions(&self) -> &Arc<dyn SessionStore> {
        &self.sessions
    }

    /// How users' personal data is sealed.
    pub fn sealing(&self) -> &crate::gdpr::sealing::UserSealing {
        &self.sealing
    }

    /// The failed-login counts and their policy.
    pub fn lockout(&self) -> &Lockout<Arc<dyn FailureStore>> {
        &self.lockout
    }

    /// The bounded queue every password hash of a request goes through.
    pub fn hashing(&self) -> &hashing::HashingQueue {
        &self.hashing
    }

    /// The token service (access and refresh tokens).
    pub fn tokens(&self) -> &TokenService {
        &self.tokens
    }

    /// The API keys.
    pub fn api_keys(&self) -> &ApiKeys<Arc<dyn ApiKeyStore>> {
        &self.api_keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_factor_lock_grows_from_the_tenth_wrong_code_to_a_day() {
        assert_eq!(mfa_lock(0), None);
        assert_eq!(mfa_lock(MFA_LOCK_AFTER - 1), None);
        assert_eq!(mfa_lock(MFA_LOCK_AFTER), Some(Duration::minutes(15)));
        assert_eq!(mfa_lock(MFA_LOCK_AFTER + 1), Some(Duration::minutes(30)));
        assert_eq!(mfa_lock(MFA_LOCK_AFTER + 6), Some(Duration::hours(16)));
        assert_eq!(mfa_lock(MFA_LOCK_AFTER + 7), Some(MFA_LOCK_MAX));
        assert_eq!(mfa_lock(u32::MAX), Some(MFA_LOCK_MAX));
    }
}
