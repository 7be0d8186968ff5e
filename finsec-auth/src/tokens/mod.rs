//! JSON Web Tokens (JWS compact serialisation): issue and verify with strict defaults.
//!
//! # Algorithms and the crypto backend
//!
//! HS256, HS384, HS512, EdDSA (Ed25519) and ES256. The backend is aws-lc-rs, the one behind
//! `jsonwebtoken` 11's `aws_lc_rs` feature, which is the only crypto feature this crate enables
//! on jsonwebtoken (jsonwebtoken is used for its JWK types). RustCrypto's P-256 signs about
//! ten times slower than aws-lc's; see the workspace README for the figures.
//!
//! Keys are parsed once, when created ([`SigningKey`], [`VerificationKey`]), and used through
//! aws-lc-rs **directly**, never through the process-wide provider that
//! `jsonwebtoken::encode`/`decode` look up. So this module needs no global setup and cannot
//! hit jsonwebtoken's "could not determine the process-level CryptoProvider" panic: not when
//! nothing was installed, not when an application installs a provider of its own, and not
//! when a downstream crate also enables `rust_crypto` (cargo unifies features, both backends
//! are then compiled, and jsonwebtoken's own `encode`/`decode` would panic unless that crate
//! calls `CryptoProvider::install_default`; this module is unaffected). jsonwebtoken's
//! default features (`use_pem`) add no backend, so a crate using it with defaults gets the
//! aws-lc backend through this crate, and its own `encode`/`decode` work without setup.
//!
//! # Policy
//!
//! - The algorithm comes from the key, never from the token: a key is created for exactly one
//!   [`SigningAlgorithm`] and a token whose header `alg` differs is refused
//!   ([`TokenRejection::AlgorithmMismatch`]). `alg: none` in any casing is refused
//!   ([`TokenRejection::AlgNone`]). An HMAC key can never verify an EdDSA/ES256 token and
//!   vice versa.
//! - Keys are chosen by `kid` only. A token without `kid` is accepted only when the verifier
//!   holds exactly one key. A `kid` outside `[A-Za-z0-9._-]{1,64}` is refused before any lookup.
//! - Headers `jku`, `x5u`, `x5c` and `jwk` (keys chosen or supplied by the token) are refused,
//!   not ignored ([`TokenRejection::ForbiddenHeader`]): no key is ever taken from a token.
//!   Any `crit` header is refused: this module implements no JWS extension.
//! - Claims: `exp` required; `nbf` honoured when present; `iss` must equal the configured
//!   issuer; `aud` must contain the configured audience. Leeway defaults to
//!   [`DEFAULT_LEEWAY`] (30 s). Tokens longer than [`DEFAULT_MAX_TOKEN_BYTES`] (8 KiB) are
//!   refused before decoding.
//! - Base64url must be unpadded and canonical. Duplicate JSON member names in header or payload
//!   (at any depth) are refused: `serde_json` silently keeps the last one, so they are
//!   detected here before typed parsing.
//! - Time is a parameter: [`Verifier::verify_at`] takes `now`; [`Verifier::verify`] reads the
//!   system clock.
//!
//! # Step-up
//!
//! [`StepUp`] decides whether the login behind a token (its `auth_time` and `amr`) is recent
//! and strong enough for a sensitive action, and writes the RFC 9470 challenge when it is
//! not.
//!
//! # Access and refresh tokens
//!
//! [`TokenService`] issues an access JWT (with a random `jti`) and an opaque 256-bit refresh
//! token. Only the SHA-256 of a refresh token is stored ([`RefreshTokenStore`]). Each refresh
//! spends the presented token and returns a new pair in the same family; presenting a spent
//! token again revokes the whole family (reuse detection, as in OAuth 2.0 Security BCP
//! §4.14). Refresh tokens are never JWTs, so one can never pass as an access token. Access
//! tokens can be revoked by `jti` until they expire ([`RevocationStore`]); revoking a family
//! does not revoke access tokens already issued from it, which stay valid until their short
//! expiry unless revoked by `jti`.
//!
//! # Storage
//!
//! [`RevocationStore`] and [`RefreshTokenStore`] are object-safe `async-trait` traits with
//! atomic operations. Memory implementations are always available; `sqlite`, `postgres`
//! (sqlx, migrations version 20001 via `migrate`) and `redis` (Lua scripts, caller-chosen key
//! prefix) are behind features. Every implementation passes the suites in `testing`
//! (feature `testing`).
//!
//! # Claims
//!
//! [`Claims<T>`] holds the registered claims and flattens an application type `T` into the
//! same JSON object; `T` must not declare fields named like registered claims. A token
//! without `kid` is accepted only by a verifier holding exactly one key (RFC 7515 examples
//! have none); issued tokens always carry one.
//!
//! # Threat model
//!
//! Defends against forged and altered tokens, algorithm confusion (`none`, HMAC keyed with a
//! public key), key injection through headers, replay after expiry, tokens for another issuer
//! or audience, parser differentials (duplicate members, non-canonical base64) and memory
//! exhaustion by oversized tokens. Does not defend against theft of a valid token before it
//! expires (keep lifetimes short), nor against a compromised signing key (rotate it: several
//! verification keys can be active at once). Secret key material is zeroized on drop and never
//! printed by `Debug`.

mod cache;
mod claims;
mod json;
mod keys;
mod pair;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
mod sole_writer;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;
pub mod step_up;
mod store;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

pub use cache::CacheStats;
pub use claims::{Audience, Claims};
pub use keys::{Kid, SigningAlgorithm, SigningKey, VerificationKey};
pub use pair::{TokenPair, TokenService};
pub use sole_writer::CachedRevocationStore;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use sql::{SqlRefreshTokenStore, SqlRevocationStore};
pub use step_up::{AMR_MFA, DEFAULT_STEP_UP_MAX_AGE, StepUp, StepUpRejection};
pub use store::{
    MemoryRefreshTokenStore, MemoryRevocationStore, NextRefresh, RefreshRecord, RefreshTokenStore,
    RevocationStore, RotateOutcome,
};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroUsize;
use std::ops::Deref as _;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

use crate::outcome::{CredentialOutcome, CredentialRejection};

/// Default clock-skew leeway applied to `exp` and `nbf`.
pub const DEFAULT_LEEWAY: Duration = Duration::seconds(30);
/// Default maximum length of a compact token, in bytes.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Maximum length of a `kid`, in bytes.
pub const MAX_KID_LEN: usize = 64;

/// Errors of the tokens module: what stops an operation from being carried out (keys,
/// signing, randomness, stores). A token that is refused is not an error: it is a
/// [`TokenRejection`] inside a rejected [`CredentialOutcome`].
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// Claims to sign repeat a JSON member name (an application type naming a member like a
    /// registered claim, or a map with repeated keys).
    #[error("duplicate json member {name:?} in {part}")]
    DuplicateMember {
        /// `payload`.
        part: &'static str,
        /// The repeated member name.
        name: String,
    },
    /// A `kid` is not a valid key id (charset or length).
    #[error("invalid kid")]
    InvalidKid,
    /// Claims to sign do not serialise to a JSON object, or a claim to act on is out of
    /// range.
    #[error("invalid claims: {0}")]
    InvalidClaims(String),
    /// A claim the operation needs is missing (for example `jti` to revoke a token).
    #[error("missing required claim {0:?}")]
    MissingClaim(&'static str),
    /// Key material could not be used.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// Two keys share one `kid`.
    #[error("duplicate kid {0:?}")]
    DuplicateKid(String),
    /// A JWK could not be turned into a verification key.
    #[error("unsupported jwk: {0}")]
    UnsupportedJwk(String),
    /// A store operation failed; the store's own error is the source.
    #[error("token store: {0}")]
    Store(#[source] StoreFailure),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Signing(String),
    /// The operating system's random number generator failed (no key, token id or
    /// refresh token was made).
    #[error("the operating system's random number generator failed")]
    Random,
}

/// Why a token was refused, for the audit log; tell the client only that it was not
/// accepted. [`code`](CredentialRejection::code) gives the stable `token.*` code of each.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenRejection {
    /// The token is longer than the configured maximum.
    #[error("token is {len} bytes, more than the maximum {max}")]
    TooLarge {
        /// Length of the token.
        len: usize,
        /// Configured maximum.
        max: usize,
    },
    /// The token is not three base64url segments, or a segment is not valid JSON.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// A JSON object in the header or payload has the same member twice.
    #[error("duplicate json member {name:?} in {part}")]
    DuplicateMember {
        /// `header` or `payload`.
        part: &'static str,
        /// The repeated member name.
        name: String,
    },
    /// The header says `alg: none` (in some casing).
    #[error("unsecured token (alg none) refused")]
    AlgNone,
    /// The header `alg` is not the algorithm of the key chosen by `kid`.
    #[error("header alg {header:?} does not match key algorithm {key}")]
    AlgorithmMismatch {
        /// The `alg` the token claims.
        header: String,
        /// The key's algorithm.
        key: SigningAlgorithm,
    },
    /// The header carries a member that could pick or embed a key (`jku`, `x5u`, `x5c`, `jwk`).
    #[error("header member {0:?} is not accepted")]
    ForbiddenHeader(&'static str),
    /// The header lists critical extensions this module does not implement.
    #[error("unsupported critical header extension {0:?}")]
    UnsupportedCrit(String),
    /// The `kid` is not a valid key id (charset or length).
    #[error("invalid kid")]
    InvalidKid,
    /// No key with this `kid`.
    #[error("unknown kid {0:?}")]
    UnknownKid(String),
    /// The token has no `kid` and the verifier holds several keys.
    #[error("token has no kid and several keys are active")]
    MissingKid,
    /// The signature does not verify under the chosen key.
    #[error("invalid signature")]
    InvalidSignature,
    /// The payload is not a valid claims object.
    #[error("invalid claims: {0}")]
    InvalidClaims(String),
    /// A required claim is missing.
    #[error("missing required claim {0:?}")]
    MissingClaim(&'static str),
    /// `exp` is in the past (beyond leeway).
    #[error("token expired at {exp}")]
    Expired {
        /// The token's `exp`, unix seconds.
        exp: i64,
    },
    /// `nbf` is in the future (beyond leeway).
    #[error("token not valid before {nbf}")]
    NotYetValid {
        /// The token's `nbf`, unix seconds.
        nbf: i64,
    },
    /// `iss` is not the expected issuer.
    #[error("wrong issuer {0:?}")]
    WrongIssuer(String),
    /// `aud` does not contain the expected audience.
    #[error("audience does not include the expected one")]
    WrongAudience,
    /// The access token's `jti` is revoked.
    #[error("token revoked")]
    Revoked,
    /// The refresh token is not known.
    #[error("unknown refresh token")]
    UnknownRefreshToken,
    /// The refresh token is past its expiry.
    #[error("refresh token expired")]
    RefreshExpired,
    /// The refresh token was already used: its whole family is now revoked.
    #[error("refresh token reused, family {family} revoked")]
    RefreshReused {
        /// The revoked family.
        family: String,
    },
    /// The refresh token's family was revoked.
    #[error("refresh token family revoked")]
    RefreshFamilyRevoked,
}

impl CredentialRejection for TokenRejection {
    fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "token.too_large",
            Self::Malformed(_) => "token.malformed",
            Self::DuplicateMember { .. } => "token.duplicate_member",
            Self::AlgNone => "token.alg_none",
            Self::AlgorithmMismatch { .. } => "token.algorithm_mismatch",
            Self::ForbiddenHeader(_) => "token.forbidden_header",
            Self::UnsupportedCrit(_) => "token.unsupported_crit",
            Self::InvalidKid => "token.invalid_kid",
            Self::UnknownKid(_) => "token.unknown_kid",
            Self::MissingKid => "token.missing_kid",
            Self::InvalidSignature => "token.invalid_signature",
            Self::InvalidClaims(_) => "token.invalid_claims",
            Self::MissingClaim(_) => "token.missing_claim",
            Self::Expired { .. } => "token.expired",
            Self::NotYetValid { .. } => "token.not_yet_valid",
            Self::WrongIssuer(_) => "token.wrong_issuer",
            Self::WrongAudience => "token.wrong_audience",
            Self::Revoked => "token.revoked",
            Self::UnknownRefreshToken => "token.unknown_refresh_token",
            Self::RefreshExpired => "token.refresh_expired",
            Self::RefreshReused { .. } => "token.refresh_reused",
            Self::RefreshFamilyRevoked => "token.refresh_family_revoked",
        }
    }
}

/// The result of verifying a token: its claims, or why it was refused.
pub type TokenOutcome<T> = CredentialOutcome<Claims<T>, TokenRejection>;

impl TokenError {
    /// A [`Store`](Self::Store) error from a store's own failure (any error type, or a
    /// message).
    pub fn store(source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self::Store(StoreFailure(Arc::from(source.into())))
    }
}

/// A token store's own error, kept whole inside [`TokenError::Store`] (its `Display` and
/// `source()` are the store error's).
///
/// Shared, so that [`TokenError`] stays `Clone`; two `StoreFailure`s are equal only when
/// they are clones of one failure.
#[derive(Clone)]
pub struct StoreFailure(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl StoreFailure {
    /// The store's error, for downcasting to the backend's error type.
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl fmt::Debug for StoreFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for StoreFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl std::error::Error for StoreFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for StoreFailure {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for StoreFailure {}

/// Result alias of this module.
pub type Result<T, E = TokenError> = std::result::Result<T, E>;

/// Claim checks applied by a [`Verifier`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    issuer: String,
    audience: String,
    leeway: Duration,
    max_token_bytes: usize,
}

impl Validation {
    /// Strict defaults: `iss` and `aud` must match, `exp` required, 30 s leeway, 8 KiB maximum.
    #[must_use]
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            leeway: DEFAULT_LEEWAY,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
        }
    }

    /// Sets the leeway for `exp`/`nbf`; negative values count as zero.
    #[must_use]
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = if leeway.is_negative() {
            Duration::ZERO
        } else {
            leeway
        };
        self
    }

    /// Sets the maximum token length in bytes.
    #[must_use]
    pub fn with_max_token_bytes(mut self, max: usize) -> Self {
        self.max_token_bytes = max;
        self
    }

    /// The expected issuer.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The expected audience.
    #[must_use]
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The leeway.
    #[must_use]
    pub fn leeway(&self) -> Duration {
        self.leeway
    }
}

/// A token whose signature was verified, before any claim check (see
/// [`Verifier::verify_signature`]).
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedJws {
    kid: Option<Kid>,
    algorithm: SigningAlgorithm,
    payload: Vec<u8>,
}

impl fmt::Debug for VerifiedJws {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedJws")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

impl VerifiedJws {
    /// The `kid` of the key that verified it (absent if the token had none).
    #[must_use]
    pub fn kid(&self) -> Option<&Kid> {
        self.kid.as_ref()
    }

    /// The algorithm of the key that verified it.
    #[must_use]
    pub fn algorithm(&self) -> SigningAlgorithm {
        self.algorithm
    }

    /// The verified payload bytes.
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
}

/// Verifies tokens against a set of keys (several may be active, for rotation).
#[derive(Debug, Clone)]
pub struct Verifier {
    /// Keyed by the `kid` string, so a header's `kid` is looked up without allocating.
    keys: BTreeMap<String, VerificationKey>,
    validation: Validation,
    /// Tokens already verified, when enabled with [`Verifier::with_cache`]; clones share it
    /// (they hold the same keys and validation).
    cache: Option<cache::VerifiedCache>,
}

impl Verifier {
    /// Builds a verifier from keys with distinct `kid`s.
    ///
    /// # Errors
    /// [`TokenError::DuplicateKid`] if two keys share a `kid`.
    pub fn new(
        keys: impl IntoIterator<Item = VerificationKey>,
        validation: Validation,
    ) -> Result<Self> {
        let mut map = BTreeMap::new();
        for key in keys {
            let kid = key.kid().as_str().to_owned();
            if map.insert(kid.clone(), key).is_some() {
                return Err(TokenError::DuplicateKid(kid));
            }
        }
        Ok(Self {
            keys: map,
            validation,
            cache: None,
        })
    }

    /// Remembers up to `capacity` tokens that [`Self::verify_at`] accepted, keyed by their
    /// SHA-256, so that a token presented again skips the signature check (about 46 µs for
    /// EdDSA). The claims are still checked on every call, so an expired token is refused
    /// as before; revocation is checked by [`TokenService::verify_access_at`] on every call.
    /// Only tokens that passed every check are remembered; when full, the oldest is
    /// dropped. Each entry holds the token's payload (a few hundred bytes for typical
    /// access tokens, at most the validation's maximum token size).
    #[must_use]
    pub fn with_cache(mut self, capacity: NonZeroUsize) -> Self {
        self.cache = Some(cache::VerifiedCache::new(capacity));
        self
    }

    /// The counters of the cache set by [`Self::with_cache`] (`None` without one).
    #[must_use]
    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.cache.as_ref().map(cache::VerifiedCache::stats)
    }

    /// Builds a verifier from a JWKS (public keys only: `oct` keys are refused). Each key needs
    /// a `kid`; its algorithm is derived from the key type and curve (Ed25519 → EdDSA,
    /// P-256 → ES256) and must agree with `alg` when present.
    ///
    /// # Errors
    /// [`TokenError::UnsupportedJwk`], [`TokenError::InvalidKid`], [`TokenError::DuplicateKid`].
    pub fn from_jwks(jwks: &JwkSet, validation: Validation) -> Result<Self> {
        let keys = jwks
            .keys
            .iter()
            .map(VerificationKey::from_jwk)
            .collect::<Result<Vec<_>>>()?;
        Self::new(keys, validation)
    }

    /// The public keys as a JWKS (HMAC keys are secret and never exported).
    ///
    /// # Errors
    /// [`TokenError::InvalidKey`] if a key cannot be expressed as a JWK.
    pub fn jwks(&self) -> Result<JwkSet> {
        let keys = self
            .keys
            .values()
            .filter_map(|k| k.to_jwk().transpose())
            .collect::<Result<Vec<_>>>()?;
        Ok(JwkSet { keys })
    }

    /// The validation settings.
    #[must_use]
    pub fn validation(&self) -> &Validation {
        &self.validation
    }

    /// Checks size, structure, header and signature, but no claims. Use [`Self::verify_at`]
    /// for tokens; this is for raw JWS payloads.
    ///
    /// Every structural, header and signature failure is a [`TokenRejection`].
    pub fn verify_signature(&self, token: &str) -> CredentialOutcome<VerifiedJws, TokenRejection> {
        self.check_signature(token).into()
    }

    fn check_signature(&self, token: &str) -> Result<VerifiedJws, TokenRejection> {
        let max = self.validation.max_token_bytes;
        if token.len() > max {
            return Err(TokenRejection::TooLarge {
                len: token.len(),
                max,
            });
        }
        let mut parts = token.split('.');
        let (Some(h64), Some(p64), Some(s64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenRejection::Malformed("expected three segments"));
        };
        let header_bytes = b64(h64, "header is not base64url")?;
        // One pass: duplicate members anywhere, object shape, and the members used below.
        let header = json::parse_header(&header_bytes)?;
        let alg = match &header.alg {
            Some(json::StrValue::Str(a)) => a.deref(),
            _ => {
                return Err(TokenRejection::Malformed(
                    "header alg missing or not a string",
                ));
            }
        };
        if alg.eq_ignore_ascii_case("none") {
            return Err(TokenRejection::AlgNone);
        }
        for (present, name) in header.key_members.iter().zip(json::KEY_MEMBERS) {
            if *present {
                return Err(TokenRejection::ForbiddenHeader(name));
            }
        }
        if let Some(crit) = &header.crit {
            let name = match crit {
                json::Crit::Array(Some(json::StrValue::Str(s))) => s.deref().to_owned(),
                json::Crit::Array(Some(json::StrValue::NotString)) => {
                    return Err(TokenRejection::Malformed("crit entry not a string"));
                }
                json::Crit::Array(None) => String::new(),
                json::Crit::NotArray => {
                    return Err(TokenRejection::Malformed("crit is not an array"));
                }
            };
            return Err(TokenRejection::UnsupportedCrit(name));
        }
        let key = match &header.kid {
            Some(json::StrValue::Str(kid)) => {
                if !Kid::is_valid(kid) {
                    return Err(TokenRejection::InvalidKid);
                }
                self.keys
                    .get(kid.deref())
                    .ok_or_else(|| TokenRejection::UnknownKid(kid.deref().to_owned()))?
            }
            Some(json::StrValue::NotString) => return Err(TokenRejection::InvalidKid),
            None => {
                let mut all = self.keys.values();
                match (all.next(), all.next()) {
                    (Some(only), None) => only,
                    _ => return Err(TokenRejection::MissingKid),
                }
            }
        };
        if alg != key.algorithm().as_str() {
            return Err(TokenRejection::AlgorithmMismatch {
                header: alg.to_owned(),
                key: key.algorithm(),
            });
        }
        if s64.is_empty() {
            return Err(TokenRejection::InvalidSignature);
        }
        let signature = b64(s64, "signature is not base64url")?;
        let signing_input_len = h64.len() + 1 + p64.len();
        let signing_input = token
            .get(..signing_input_len)
            .ok_or(TokenRejection::Malformed("signing input"))?;
        key.verify_bytes(signing_input.as_bytes(), &signature)?;
        let payload = b64(p64, "payload is not base64url")?;
        Ok(VerifiedJws {
            kid: header.kid.is_some().then(|| key.kid().clone()),
            algorithm: key.algorithm(),
            payload,
        })
    }

    /// Verifies a token and its claims at time `now`. A refused token is a
    /// [`TokenRejection`] saying why.
    pub fn verify_at<T: DeserializeOwned>(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> TokenOutcome<T> {
        self.check_at(token, now).into()
    }

    pub(super) fn check_at<T: DeserializeOwned>(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Claims<T>, TokenRejection> {
        let Some(cache) = &self.cache else {
            let jws = self.check_signature(token)?;
            return self.checked_claims(&jws.payload, now);
        };
        let max = self.validation.max_token_bytes;
        if token.len() > max {
            return Err(TokenRejection::TooLarge {
                len: token.len(),
                max,
            });
        }
        let hash = cache::token_hash(token);
        if let Some(payload) = cache.get(&hash) {
            let claims = self.checked_claims(&payload, now);
            if claims.is_err() {
                cache.remove(&hash);
            }
            return claims;
        }
        let jws = self.check_signature(token)?;
        let claims = self.checked_claims(&jws.payload, now)?;
        cache.insert(hash, Arc::from(jws.payload));
        Ok(claims)
    }

    /// Parses and checks the claims of a payload whose signature was verified.
    fn checked_claims<T: DeserializeOwned>(
        &self,
        payload: &[u8],
        now: OffsetDateTime,
    ) -> Result<Claims<T>, TokenRejection> {
        json::check_no_duplicates(payload, "payload")?;
        let claims: Claims<T> = serde_json::from_slice(payload)
            .map_err(|e| TokenRejection::InvalidClaims(e.to_string()))?;
        claims.check(&self.validation, now)?;
        Ok(claims)
    }

    /// [`Self::verify_at`] with the system clock.
    pub fn verify<T: DeserializeOwned>(&self, token: &str) -> TokenOutcome<T> {
        self.verify_at(token, OffsetDateTime::now_utc())
    }
}

/// Signs tokens with one key; its `kid` and algorithm go into the header.
#[derive(Debug)]
pub struct Signer {
    key: SigningKey,
    /// The encoded header and its trailing dot, which are the same for every token.
    header_b64: String,
}

impl Signer {
    /// A signer for `key`.
    #[must_use]
    pub fn new(key: SigningKey) -> Self {
        // `{"alg","kid","typ"}` in this order; a `kid` is `[A-Za-z0-9._-]` and an algorithm
        // name is alphanumeric, so neither needs JSON escaping.
        let header = format!(
            r#"{{"alg":"{}","kid":"{}","typ":"JWT"}}"#,
            key.algorithm().as_str(),
            key.kid().as_str()
        );
        let mut header_b64 = URL_SAFE_NO_PAD.encode(header);
        header_b64.push('.');
        Self { key, header_b64 }
    }

    /// The signing key's `kid`.
    #[must_use]
    pub fn kid(&self) -> &Kid {
        self.key.kid()
    }

    /// Signs `claims` as a compact JWT with header `{"alg","kid","typ":"JWT"}`.
    ///
    /// # Errors
    /// [`TokenError::InvalidClaims`] if the claims do not serialise to a JSON object,
    /// [`TokenError::Signing`] if the backend fails.
    pub fn sign<T: Serialize>(&self, claims: &Claims<T>) -> Result<String> {
        // An application type can name a member like a registered claim, or serialise a
        // map with repeated keys: never sign a token a verifier would refuse. The check runs
        // while the claims are written, not as a second parse.
        let mut payload = Vec::with_capacity(256);
        json::to_writer_no_duplicates(&mut payload, claims)?;
        if payload.first() != Some(&b'{') {
            return Err(TokenError::InvalidClaims(
                "claims are not a json object".into(),
            ));
        }
        self.sign_payload(&payload)
    }

    /// Signs arbitrary payload bytes (JWS).
    ///
    /// # Errors
    /// [`TokenError::Signing`] if the backend fails.
    pub fn sign_payload(&self, payload: &[u8]) -> Result<String> {
        // Header, payload and a signature of at most 64 bytes, in one allocation.
        let mut out = String::with_capacity(
            self.header_b64.len() + payload.len().div_ceil(3).saturating_mul(4) + 1 + 86,
        );
        out.push_str(&self.header_b64);
        URL_SAFE_NO_PAD.encode_string(payload, &mut out);
        self.key.append_signature(&mut out)?;
        Ok(out)
    }
}

fn b64(s: &str, what: &'static str) -> Result<Vec<u8>, TokenRejection> {
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| TokenRejection::Malformed(what))
}
