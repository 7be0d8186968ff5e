//! API keys: printable keys with a prefix, id, 256-bit secret and checksum; only a hash
//! is stored; scopes, expiry, revocation, rotation with an overlap window and batched
//! last-used tracking.
//!
//! ```
//! # async fn example() -> finsec_auth::api_keys::Result<()> {
//! use finsec_auth::api_keys::{ApiKeys, MemoryApiKeyStore, NewApiKey, RejectReason};
//! use finsec_auth::outcome::CredentialOutcome;
//! use finsec_rbac::{Permission, PermissionPattern};
//! use secrecy::ExposeSecret;
//! use time::OffsetDateTime;
//!
//! let keys = ApiKeys::new(MemoryApiKeyStore::new());
//! let now = OffsetDateTime::now_utc();
//! let scope = PermissionPattern::new("orders:read").unwrap();
//! let issued = keys.issue_at(NewApiKey::new("alice", vec![scope]), now).await?;
//! // Show `issued.printable` to the user once; it is never stored.
//! match keys.verify_at(issued.printable.expose_secret(), now).await? {
//!     CredentialOutcome::Accepted(key) => {
//!         assert!(key.allows(&Permission::new("orders:read").unwrap()));
//!     }
//!     CredentialOutcome::Rejected(why) => panic!("{:?}", why.reason()),
//! }
//! // A typo fails the checksum, without a store lookup; the reason is for the audit log.
//! let outcome = keys.verify_at("fsk_0123", now).await?;
//! assert_eq!(outcome.rejection().map(|r| r.reason()), Some(RejectReason::Malformed));
//! # Ok(())
//! # }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(example()).unwrap();
//! ```
//!
//! # Format
//!
//! See [`format`](mod@format): `fsk_<16 hex id>_<64 hex secret><8 hex CRC-32>`, 93 ASCII bytes,
//! matched by [`format::SCANNER_REGEX`]. A typo or truncated key fails the checksum and
//! is rejected without a store lookup.
//!
//! # Storage
//!
//! A store ([`ApiKeyStore`]) keeps one [`ApiKeyRecord`] per key id: owner, scopes
//! ([`PermissionPattern`]s), `SHA-256("finsec-api-key-v1\0" || id || secret)` (see
//! [`SecretHash`] for why a fast hash is right for 256-bit random secrets), creation,
//! optional expiry, revocation, the key that replaced it, last use and use count. Times
//! are kept at microsecond precision (UTC). Implementations: [`MemoryApiKeyStore`],
//! `sqlite::SqliteApiKeyStore` (feature `sqlite`), `postgres::PgApiKeyStore` (feature
//! `postgres`; both aliases of one generic `SqlApiKeyStore`), all running one conformance
//! suite (`testing`, feature `testing`).
//!
//! # Rotation
//!
//! [`ApiKeys::rotate_at`] issues a new key with the same owner and scopes and sets the old
//! key's expiry to `now + overlap` (or keeps its earlier expiry), so both work during the
//! overlap and clients can switch without downtime. A key is rotated at most once
//! (rotating the replacement continues the chain); revoked keys cannot be rotated.
//!
//! # Usage tracking (batched)
//!
//! Verifying a key does not write to the store. Successful verifications are counted in
//! an in-memory accumulator ([`UsageBatcher`]) that is flushed, as one batched store call,
//! when **either** [`UsageConfig::max_pending_uses`] verifications are pending (default
//! 1000) **or** [`UsageConfig::max_interval`] has passed since the last flush (default
//! 60 s), checked at each verification with the `now` passed in, and whenever the
//! application calls [`ApiKeys::flush_usage_at`] (do so from a periodic task and at
//! shutdown). A failed write keeps its counts pending (and never fails a verification);
//! a crash loses at most the pending counts: last-used data is informational, never a
//! security decision.
//!
//! # Threat model
//!
//! Defends against: theft of the key table (only hashes of 256-bit secrets, which cannot
//! be reversed or brute-forced); timing attacks on the comparison (constant-time compare
//! via `subtle`, and a dummy hash comparison for unknown ids); probing (unknown id, wrong
//! secret, revoked, expired and malformed keys all reach the caller as one rejected
//! [`ApiKeyOutcome`] with the same message; the [`RejectReason`] is available for the
//! audit log via [`ApiKeyRejection::reason`]); secrets leaking into logs (no type holding a
//! secret prints it in `Debug`/`Display`, and errors never contain the input); leaked keys
//! in repositories (fixed prefix and scanner regex); a hash row copied to another id (the
//! id is hashed in); a stolen key used from elsewhere, for a key limited to client networks
//! ([`NewApiKey::from_networks`], checked by [`ApiKeys::verify_from_at`]; without the
//! client's address such a key is refused, so forgetting to pass it fails closed).
//!
//! Does not defend against: a stolen printable key used before it is revoked or expires
//! from inside its networks, or from anywhere for a key without them (scope keys narrowly,
//! limit them to networks and give them expiries); a client address forged upstream of the
//! caller (the caller resolves it); an attacker who can write to the store;
//! a compromised host process. Usage counts are best-effort.

pub mod format;
mod store;
mod usage;

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use sql::SqlApiKeyStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use finsec_rbac::{Permission, PermissionPattern};
use ipnet::IpNet;
use secrecy::SecretString;
use time::OffsetDateTime;

use crate::outcome::{CredentialOutcome, CredentialRejection};

pub use format::{ApiKeyId, GeneratedKey, ParsedApiKey, SecretHash};
pub use store::{
    ApiKeyRecord, ApiKeyStore, ClientNetworks, MAX_USE_COUNT, MemoryApiKeyStore, UsageUpdate,
};
pub use usage::{UsageBatcher, UsageConfig};

/// Errors of the API key module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiKeyError {
    /// A key id string was not 16 lowercase hex digits.
    #[error("invalid api key id of {len} bytes: expected 16 lowercase hex digits")]
    InvalidId {
        /// The input's length (the input is not echoed: it may be a whole key).
        len: usize,
    },
    /// No key with this id (administrative operations only; verification rejects).
    #[error("api key {id} not found")]
    NotFound {
        /// The id.
        id: ApiKeyId,
    },
    /// A key with this id already exists.
    #[error("api key {id} already exists")]
    DuplicateId {
        /// The id.
        id: ApiKeyId,
    },
    /// The operation does not apply to the key in its current state.
    #[error("api key {id} cannot be {operation}: it is {state}")]
    InvalidState {
        /// The id.
        id: ApiKeyId,
        /// What was attempted (`"rotated"`).
        operation: &'static str,
        /// Why not (`"revoked"`, `"already rotated"`, `"expired"`).
        state: &'static str,
    },
    /// An expiry not after the issue time.
    #[error("api key expiry {expires_at} is not after the issue time {now}")]
    InvalidExpiry {
        /// The requested expiry.
        expires_at: OffsetDateTime,
        /// The issue time.
        now: OffsetDateTime,
    },
    /// The owner was empty or longer than [`MAX_OWNER_LEN`] bytes.
    #[error("api key owner must be 1 to {MAX_OWNER_LEN} bytes, got {len}")]
    InvalidOwner {
        /// Its length in bytes.
        len: usize,
    },
    /// A time outside the range a store can hold.
    #[error("time {0} is out of the storable range")]
    TimeOutOfRange(OffsetDateTime),
    /// The operating system's random source failed.
    #[error("random number generator failed")]
    Random,
    /// A stored row could not be decoded.
    #[error("corrupt api key row {id}: {detail}")]
    Corrupt {
        /// The key id column as text.
        id: String,
        /// What was wrong.
        detail: String,
    },
    /// More client networks than [`MAX_NETWORKS`].
    #[error("an api key may name at most {MAX_NETWORKS} client networks, got {count}")]
    TooManyNetworks {
        /// How many were given.
        count: usize,
    },
    /// The store failed (a database, or any store of your own); its error is the source.
    #[error("api key store: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl ApiKeyError {
    /// A [`Store`](Self::Store) error from a store's own failure (any error type, or a
    /// message).
    pub fn store(source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self::Store(source.into())
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl From<sqlx::Error> for ApiKeyError {
    fn from(e: sqlx::Error) -> Self {
        Self::store(e)
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl From<sqlx::migrate::MigrateError> for ApiKeyError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Self::store(e)
    }
}

/// Result alias of the API key module.
pub type Result<T, E = ApiKeyError> = std::result::Result<T, E>;

/// Longest owner (principal) name, in bytes.
pub const MAX_OWNER_LEN: usize = 256;

/// The most client networks one key may be limited to.
pub const MAX_NETWORKS: usize = 32;

/// Why a presented key was rejected, for the audit log only: never tell the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// Wrong length, prefix, separator or alphabet.
    Malformed,
    /// The checksum did not match (typo or truncation).
    BadChecksum,
    /// No key with this id.
    UnknownId,
    /// The secret does not match the stored hash.
    WrongSecret,
    /// The key was revoked.
    Revoked,
    /// The key expired (or its rotation overlap ended).
    Expired,
    /// The key is limited to client networks, and the client is in none of them (or its
    /// address was not given: [`ApiKeys::verify_at`]).
    AddressNotAllowed,
}

/// Why a presented key was refused: one message for every reason, with the detail kept
/// for auditing ([`reason`](Self::reason), [`key_id`](Self::key_id) and
/// [`code`](CredentialRejection::code)).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyRejection {
    reason: RejectReason,
    id: Option<ApiKeyId>,
}

impl ApiKeyRejection {
    fn new(reason: RejectReason, id: Option<ApiKeyId>) -> Self {
        Self { reason, id }
    }

    /// Why the key was rejected (for the audit log, not for the client).
    pub fn reason(&self) -> RejectReason {
        self.reason
    }

    /// The key id presented, if the key parsed (for the audit log).
    pub fn key_id(&self) -> Option<ApiKeyId> {
        self.id
    }
}

impl fmt::Debug for ApiKeyRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeyRejection(..)")
    }
}

impl fmt::Display for ApiKeyRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("api key rejected")
    }
}

impl std::error::Error for ApiKeyRejection {}

impl CredentialRejection for ApiKeyRejection {
    fn code(&self) -> &'static str {
        match self.reason {
            RejectReason::Malformed => "api_key.malformed",
            RejectReason::BadChecksum => "api_key.bad_checksum",
            RejectReason::UnknownId => "api_key.unknown_id",
            RejectReason::WrongSecret => "api_key.wrong_secret",
            RejectReason::Revoked => "api_key.revoked",
            RejectReason::Expired => "api_key.expired",
            RejectReason::AddressNotAllowed => "api_key.address_not_allowed",
        }
    }
}

/// The result of verifying a presented API key.
pub type ApiKeyOutcome = CredentialOutcome<VerifiedApiKey, ApiKeyRejection>;

/// What to issue: owner, scopes and optional expiry.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    owner: String,
    scopes: Vec<PermissionPattern>,
    expires_at: Option<OffsetDateTime>,
    networks: Vec<IpNet>,
}

impl NewApiKey {
    /// A key for `owner` with `scopes` and no expiry.
    pub fn new(owner: impl Into<String>, scopes: Vec<PermissionPattern>) -> Self {
        Self {
            owner: owner.into(),
            scopes,
            expires_at: None,
            networks: Vec::new(),
        }
    }

    /// Sets an expiry.
    #[must_use]
    pub fn expires_at(mut self, at: OffsetDateTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Limits the key to clients in `networks` (at most [`MAX_NETWORKS`]; duplicates and
    /// host bits are dropped, IPv4-mapped IPv6 networks become IPv4). Such a key verifies
    /// only with [`ApiKeys::verify_from_at`] and a client address inside one of them.
    #[must_use]
    pub fn from_networks(mut self, networks: impl IntoIterator<Item = IpNet>) -> Self {
        self.networks = networks.into_iter().collect();
        self
    }
}

/// `networks` in canonical form: IPv4-mapped IPv6 as IPv4, host bits cleared, sorted,
/// without duplicates.
fn canonical_networks(networks: Vec<IpNet>) -> Vec<IpNet> {
    let mut out: Vec<IpNet> = networks
        .into_iter()
        .map(|net| match net {
            IpNet::V6(v6) => match v6.addr().to_ipv4_mapped() {
                Some(v4) if v6.prefix_len() >= 96 => {
                    ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(net, IpNet::V4)
                }
                _ => net,
            },
            IpNet::V4(_) => net,
        })
        .map(|net| net.trunc())
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// A newly issued key: the printable form (show it once) and the stored record.
pub struct IssuedApiKey {
    /// The printable key. Hand it to the user once; it cannot be recovered.
    pub printable: SecretString,
    /// The record as stored.
    pub record: ApiKeyRecord,
}

impl fmt::Debug for IssuedApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedApiKey")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

/// A key that verified: who it belongs to and what it may do.
#[derive(Debug, Clone)]
pub struct VerifiedApiKey {
    id: ApiKeyId,
    owner: Arc<str>,
    scopes: Arc<[PermissionPattern]>,
}

impl VerifiedApiKey {
    /// The key id.
    pub fn id(&self) -> ApiKeyId {
        self.id
    }

    /// The owner (principal).
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The scopes.
    pub fn scopes(&self) -> &[PermissionPattern] {
        &self.scopes
    }

    /// Whether one of the key's scopes matches `permission`.
    pub fn allows(&self, permission: &Permission) -> bool {
        self.scopes.iter().any(|s| s.matches(permission))
    }
}

/// Issues, verifies, revokes and rotates API keys on a store, with batched usage tracking.
#[derive(Debug)]
pub struct ApiKeys<S> {
    store: S,
    usage: UsageBatcher,
    dummy: SecretHash,
}

/// Truncates to microseconds, the precision every store keeps.
fn micros(t: OffsetDateTime) -> OffsetDateTime {
    let nanos = t.nanosecond();
    t.replace_nanosecond(nanos - nanos % 1000).unwrap_or(t)
}

impl<S: ApiKeyStore> ApiKeys<S> {
    /// API keys on `store` with the default [`UsageConfig`].
    pub fn new(store: S) -> Self {
        Self::with_usage_config(store, UsageConfig::default())
    }

    /// API keys on `store` with a usage batching configuration.
    pub fn with_usage_config(store: S, config: UsageConfig) -> Self {
        Self {
            store,
            usage: UsageBatcher::new(config),
            dummy: SecretHash::from_bytes([0x5a; 32]),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Issues a new key at `now`.
    ///
    /// # Errors
    /// [`ApiKeyError::InvalidOwner`], [`ApiKeyError::InvalidExpiry`],
    /// [`ApiKeyError::Random`], or a store error.
    pub async fn issue_at(&self, new: NewApiKey, now: OffsetDateTime) -> Result<IssuedApiKey> {
        let now = micros(now);
        if new.owner.is_empty() || new.owner.len() > MAX_OWNER_LEN {
            return Err(ApiKeyError::InvalidOwner {
                len: new.owner.len(),
            });
        }
        let expires_at = new.expires_at.map(micros);
        if let Some(expires_at) = expires_at
            && expires_at <= now
        {
            return Err(ApiKeyError::InvalidExpiry { expires_at, now });
        }
        let networks = canonical_networks(new.networks);
        if networks.len() > MAX_NETWORKS {
            return Err(ApiKeyError::TooManyNetworks {
                count: networks.len(),
            });
        }
        let generated = GeneratedKey::generate()?;
        let record = ApiKeyRecord {
            id: generated.id,
            owner: new.owner.into(),
            scopes: new.scopes.into(),
            secret_hash: generated.hash,
            created_at: now,
            expires_at,
            revoked_at: None,
            replaced_by: None,
            last_used_at: None,
            use_count: 0,
            networks: ClientNetworks::new(networks),
        };
        self.store.insert(&record).await?;
        Ok(IssuedApiKey {
            printable: generated.printable,
            record,
        })
    }

    /// Verifies a presented key at `now`: format and checksum, lookup by id,
    /// constant-time hash compare, revocation and expiry. Counts the use (batched).
    ///
    /// Every kind of bad key is [`Rejected`](CredentialOutcome::Rejected) with one message;
    /// the reason is in [`ApiKeyRejection::reason`].
    ///
    /// A key limited to client networks is rejected here
    /// ([`RejectReason::AddressNotAllowed`]): the client's address is unknown. Use
    /// [`verify_from_at`](Self::verify_from_at) where it is known.
    ///
    /// # Errors
    /// A store error from the lookup. A failed usage write does not fail verification: its
    /// counts stay pending for the next flush.
    pub async fn verify_at(&self, presented: &str, now: OffsetDateTime) -> Result<ApiKeyOutcome> {
        self.verify(presented, None, now).await
    }

    /// [`verify_at`](Self::verify_at) for a request from `client`: a key limited to client
    /// networks is accepted only if `client` is in one of them (an IPv4-mapped IPv6
    /// address counts as the IPv4 address). Pass the address of the client itself, as
    /// resolved through proxies you trust, not a header the client wrote.
    ///
    /// # Errors
    /// As [`verify_at`](Self::verify_at).
    pub async fn verify_from_at(
        &self,
        presented: &str,
        client: IpAddr,
        now: OffsetDateTime,
    ) -> Result<ApiKeyOutcome> {
        self.verify(presented, Some(client), now).await
    }

    async fn verify(
        &self,
        presented: &str,
        client: Option<IpAddr>,
        now: OffsetDateTime,
    ) -> Result<ApiKeyOutcome> {
        let now = micros(now);
        let parsed = match ParsedApiKey::parse(presented) {
            Ok(parsed) => parsed,
            Err(rejection) => return Ok(CredentialOutcome::Rejected(rejection)),
        };
        let id = parsed.id();
        let reject = |reason| {
            Ok(CredentialOutcome::Rejected(ApiKeyRejection::new(
                reason,
                Some(id),
            )))
        };
        let Some(record) = self.store.get(&id).await? else {
            // Same work as a wrong secret, so timing does not reveal which ids exist.
            let _ = parsed.hash().ct_eq(&self.dummy);
            return reject(RejectReason::UnknownId);
        };
        if !parsed.hash().ct_eq(&record.secret_hash) {
            return reject(RejectReason::WrongSecret);
        }
        if record.revoked_at.is_some_and(|at| at <= now) {
            return reject(RejectReason::Revoked);
        }
        if record.expires_at.is_some_and(|at| at <= now) {
            return reject(RejectReason::Expired);
        }
        if !record.networks.is_empty()
            && !client.is_some_and(|client| record.networks.contain(client))
        {
            return reject(RejectReason::AddressNotAllowed);
        }
        if let Some(batch) = self.usage.record(id, now)
            && self.store.record_usage(&batch).await.is_err()
        {
            // The key is valid; a failed usage write must not deny it. The counts are kept
            // and the error surfaces at the next `flush_usage_at`.
            self.usage.restore(batch);
        }
        Ok(CredentialOutcome::Accepted(VerifiedApiKey {
            id,
            owner: record.owner,
            scopes: record.scopes,
        }))
    }

    /// Writes all pending usage counts to the store now (call periodically and at
    /// shutdown).
    ///
    /// # Errors
    /// A store error; the counts of the failed batch are kept for the next flush.
    pub async fn flush_usage_at(&self, now: OffsetDateTime) -> Result<()> {
        let batch = self.usage.take(micros(now));
        if batch.is_empty() {
            return Ok(());
        }
        match self.store.record_usage(&batch).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.usage.restore(batch);
                Err(e)
            }
        }
    }

    /// Uses counted in memory and not yet written to the store.
    pub fn pending_uses(&self) -> u64 {
        self.usage.pending_uses()
    }

    /// Revokes a key at `now`. Returns `false` if it was already revoked.
    ///
    /// # Errors
    /// [`ApiKeyError::NotFound`] or a store error.
    pub async fn revoke_at(&self, id: &ApiKeyId, now: OffsetDateTime) -> Result<bool> {
        self.store.revoke(id, micros(now)).await
    }

    /// Rotates a key at `now`: issues a replacement with the same owner and scopes, for the
    /// same term as the old key (a key issued for 90 days is replaced by one that expires 90
    /// days from `now`; a key without expiry by one without expiry), and makes the old key
    /// expire at `now + overlap` unless it expires sooner. A rotation never lengthens what a
    /// key was issued for; [`rotate_until_at`](Self::rotate_until_at) sets the replacement's
    /// expiry explicitly.
    ///
    /// # Errors
    /// [`ApiKeyError::NotFound`]; [`ApiKeyError::InvalidState`] if the old key is revoked,
    /// expired or already rotated; [`ApiKeyError::TimeOutOfRange`]; a store error.
    pub async fn rotate_at(
        &self,
        old: &ApiKeyId,
        overlap: Duration,
        now: OffsetDateTime,
    ) -> Result<IssuedApiKey> {
        self.rotate_inner(old, overlap, None, now).await
    }

    /// [`rotate_at`](Self::rotate_at) with the replacement expiring at `expires_at`
    /// (`None`: never).
    ///
    /// # Errors
    /// As [`rotate_at`](Self::rotate_at), and [`ApiKeyError::TimeOutOfRange`] if
    /// `expires_at` is not after `now`.
    pub async fn rotate_until_at(
        &self,
        old: &ApiKeyId,
        overlap: Duration,
        expires_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<IssuedApiKey> {
        if let Some(at) = expires_at
            && at <= now
        {
            return Err(ApiKeyError::TimeOutOfRange(at));
        }
        self.rotate_inner(old, overlap, Some(expires_at.map(micros)), now)
            .await
    }

    /// Rotates `old`; the replacement expires at `expires_at` when given, otherwise after
    /// the old key's term.
    async fn rotate_inner(
        &self,
        old: &ApiKeyId,
        overlap: Duration,
        expires_at: Option<Option<OffsetDateTime>>,
        now: OffsetDateTime,
    ) -> Result<IssuedApiKey> {
        let now = micros(now);
        let record = self
            .store
            .get(old)
            .await?
            .ok_or(ApiKeyError::NotFound { id: *old })?;
        let new_expiry = match expires_at {
            Some(explicit) => explicit,
            None => match record.expires_at {
                Some(old_expiry) => Some(
                    now.checked_add(old_expiry - record.created_at)
                        .ok_or(ApiKeyError::TimeOutOfRange(now))?,
                ),
                None => None,
            },
        };
        if record.expires_at.is_some_and(|at| at <= now) {
            return Err(ApiKeyError::InvalidState {
                id: *old,
                operation: "rotated",
                state: "expired",
            });
        }
        let until = time::Duration::try_from(overlap)
            .ok()
            .and_then(|d| now.checked_add(d))
            .ok_or(ApiKeyError::TimeOutOfRange(now))?;
        let generated = GeneratedKey::generate()?;
        let new = ApiKeyRecord {
            id: generated.id,
            owner: record.owner,
            scopes: record.scopes,
            secret_hash: generated.hash,
            created_at: now,
            expires_at: new_expiry,
            revoked_at: None,
            replaced_by: None,
            last_used_at: None,
            use_count: 0,
            networks: record.networks,
        };
        self.store.rotate(old, &new, micros(until)).await?;
        Ok(IssuedApiKey {
            printable: generated.printable,
            record: new,
        })
    }
}
