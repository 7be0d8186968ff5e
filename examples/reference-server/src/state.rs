//! Application state shared by the request handlers.

use std::fmt;
use std::sync::Arc;

use finsec_crypto::{Keyring, SubjectKeyStore, SubjectKeys};

use crate::audit::Audit;
use crate::auth::Auth;
use crate::error::Result;
use crate::http::layers::limits::RequestLimits;
use crate::keys::pii_key_name;
use crate::orders::Orders;
use crate::ratelimit::RateLimits;
use crate::redis_backend::Redis;
use crate::storage::Storage;

/// The subject-key store behind the configured database.
pub type DynSubjectKeyStore = Arc<dyn SubjectKeyStore>;

/// The server's subject-key manager: per-data-subject keys (crypto-shredding) in the
/// configured database, wrapped by the keyring's `pii` key.
pub type ServerSubjectKeys = SubjectKeys<DynSubjectKeyStore, Arc<Keyring>>;

/// Everything a request handler may need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    storage: Storage,
    redis: Option<Redis>,
    keyring: Arc<Keyring>,
    subject_keys: ServerSubjectKeys,
    auth: Arc<Auth>,
    orders: Orders,
    rate_limits: RateLimits,
    request_limits: RequestLimits,
    audit: Audit,
    compliance: Arc<crate::compliance::Compliance>,
    gdpr: Arc<crate::gdpr::Gdpr>,
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("storage", &self.inner.storage)
            .field("redis", &self.inner.redis)
            .field("subject_keys", &self.inner.subject_keys)
            .field("auth", &self.inner.auth)
            .field("orders", &self.inner.orders)
            .field("rate_limits", &self.inner.rate_limits)
            .field("request_limits", &self.inner.request_limits)
            .field("audit", &self.inner.audit)
            .field("compliance", &self.inner.compliance)
            .field("gdpr", &self.inner.gdpr)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Builds the state on a migrated database (see [`crate::capabilities::migrate`]): sets
    /// up the subject keys over it;
    /// `auth` is the authentication set up over the same database (see [`Auth::new`]);
    /// `rate_limits` the limiter (see [`RateLimits::open`]); `request_limits` the request
    /// timeouts and body limits.
    ///
    /// # Errors
    /// Never in practice: [`ServerError::Crypto`](crate::error::ServerError::Crypto) if
    /// the `pii` key name were invalid.
    #[expect(
        clippy::too_many_arguments,
        reason = "built once, in Server::connect, from each service it holds"
    )]
    pub async fn new(
        storage: Storage,
        redis: Option<Redis>,
        keyring: Arc<Keyring>,
        auth: Arc<Auth>,
        orders: Orders,
        rate_limits: RateLimits,
        request_limits: RequestLimits,
        audit: Audit,
        compliance: Arc<crate::compliance::Compliance>,
        gdpr: Arc<crate::gdpr::Gdpr>,
    ) -> Result<Self> {
        let subject_keys = subject_keys(&storage, &keyring)?;
        Ok(Self {
            inner: Arc::new(Inner {
                storage,
                redis,
                keyring,
                subject_keys,
                auth,
                orders,
                rate_limits,
                request_limits,
                audit,
                compliance,
                gdpr,
            }),
        })
    }

    /// The database.
    pub fn storage(&self) -> &Storage {
        &self.inner.storage
    }

    /// The Redis connection, if one is configured.
    pub fn redis(&self) -> Option<&Redis> {
        self.inner.redis.as_ref()
    }

    /// The keyring loaded at start (its usage counters are saved at shutdown).
    pub fn keyring(&self) -> &Arc<Keyring> {
        &self.inner.keyring
    }

    /// Order entry (and the RBAC policy it checks).
    pub fn orders(&self) -> &Orders {
        &self.inner.orders
    }

    /// The rate limiter.
    pub fn rate_limits(&self) -> &RateLimits {
        &self.inner.rate_limits
    }

    /// The request timeouts and body limits.
    pub fn request_limits(&self) -> RequestLimits {
        self.inner.request_limits
    }

    /// Authentication: users, tokens, MFA and API keys.
    pub fn auth(&self) -> &Arc<Auth> {
        &self.inner.auth
    }

    /// The audit trail.
    pub fn audit(&self) -> &Audit {
        &self.inner.audit
    }

    /// MiFID II: fills, reports, clients, best execution.
    pub fn compliance(&self) -> &Arc<crate::compliance::Compliance> {
        &self.inner.compliance
    }

    /// GDPR: requests, consent, holds, retention.
    pub fn gdpr(&self) -> &Arc<crate::gdpr::Gdpr> {
        &self.inner.gdpr
    }

    /// The subject-key manager (for the GDPR endpoints).
    pub fn subject_keys(&self) -> &ServerSubjectKeys {
        &self.inner.subject_keys
    }
}

/// The subject keys over `storage`'s key store, wrapped under the keyring's `pii` key.
///
/// # Errors
/// Never in practice: [`ServerError::Crypto`](crate::error::ServerError::Crypto) if the
/// `pii` key name were invalid.
pub fn subject_keys(storage: &Storage, keyring: &Arc<Keyring>) -> Result<ServerSubjectKeys> {
    let store = storage.stores().crates.subject_keys;
    Ok(SubjectKeys::new(
        store,
        Arc::clone(keyring),
        pii_key_name()?,
    ))
}
