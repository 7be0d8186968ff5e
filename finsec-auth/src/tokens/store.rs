//! Storage traits for revocation and refresh-token rotation, with in-memory implementations.

use super::{Result, TokenError};
use async_trait::async_trait;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Mutex;
use time::OffsetDateTime;

/// Revoked `jti`s, each kept until the token it names expires.
#[async_trait]
pub trait RevocationStore: Send + Sync + fmt::Debug {
    /// Revokes `jti` until `expires_at` (idempotent; a later expiry extends the entry).
    ///
    /// # Errors
    /// [`TokenError::Store`] on a backend failure.
    async fn revoke(&self, jti: &str, expires_at: OffsetDateTime) -> Result<()>;

    /// Whether `jti` is revoked at `now` (entries past their expiry no longer count).
    ///
    /// # Errors
    /// [`TokenError::Store`] on a backend failure.
    async fn is_revoked(&self, jti: &str, now: OffsetDateTime) -> Result<bool>;

    /// Whether any of `jtis` is revoked at `now` (an access token's own `jti` and its
    /// session's entry are checked together). The default asks [`is_revoked`](Self::is_revoked)
    /// for each in turn; a store over a network answers in one round trip.
    ///
    /// # Errors
    /// [`TokenError::Store`] on a backend failure.
    async fn any_revoked(&self, jtis: &[&str], now: OffsetDateTime) -> Result<bool> {
        for jti in jtis {
            if self.is_revoked(jti, now).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Deletes entries expired at `now`; returns how many were removed.
    ///
    /// # Errors
    /// [`TokenError::Store`] on a backend failure.
    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64>;
}

/// One refresh token as stored: only the SHA-256 of the token, never the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    /// Hex SHA-256 of the opaque refresh token.
    pub token_hash: String,
    /// Family id: every token obtained by rotating from one login shares it.
    pub family: String,
    /// The subject the family belongs to.
    pub subject: String,
    /// Expiry of this refresh token.
    pub expires_at: OffsetDateTime,
}

/// The successor stored by a successful [`RefreshTokenStore::rotate`] (same family and
/// subject as the spent token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextRefresh {
    /// Hex SHA-256 of the new opaque refresh token.
    pub token_hash: String,
    /// Expiry of the new token (the store keeps the spent token's, if earlier).
    pub expires_at: OffsetDateTime,
}

/// The result of presenting a refresh token to [`RefreshTokenStore::rotate`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotateOutcome {
    /// The token was live; it is now spent and `next` is stored. Carries the spent record.
    Rotated(RefreshRecord),
    /// The token had already been spent: the whole family is now revoked.
    Reused {
        /// The revoked family.
        family: String,
    },
    /// The token's family was revoked earlier.
    FamilyRevoked,
    /// The token is past its expiry.
    Expired,
    /// No such token.
    Unknown,
}

/// Refresh tokens with single use and family revocation. Implementations make
/// [`Self::rotate`] atomic: of two concurrent rotations of one token exactly one gets
/// [`RotateOutcome::Rotated`].
#[async_trait]
pub trait RefreshTokenStore: Send + Sync + fmt::Debug {
    /// Stores a fresh token (the first of a family, at login).
    ///
    /// # Errors
    /// [`TokenError::Store`] on a backend failure or if the hash already exists.
    async fn insert(&self, record: RefreshRecord) -> Result<()>;

    /// Atomically spends `token_hash` and stores `next` in its family when the token is live;
    /// on reuse of a spent token revokes the family. Checks in order: unknown, family revoked,
    /// already spent (then revokes the family), expired.
    ///
    /// The successor never outlives the spent token: it expires at `next.expires_at` or the
    /// spent token's expiry, whichever is earlier, so refreshing never extends a session
    /// past the lifetime its first token was given at login.
    ///
    /// # Errors
    /// [`TokenError::Store`] on a backend failure.
    async fn rotate(
        &self,
        token_hash: &str,
        next: NextRefresh,
        now: OffsetDateTime,
    ) -> Result<RotateOutcome>;

    /// Revokes every token of `family` (logout everywhere for that session), recording
    /// `at` as the time of revocation where the store keeps one. Stores never read the
    /// clock themselves: the caller passes the time, as everywhere in finsec.
    ///
    /// # Errors
    /// [`TokenError::Store`] on a backend failure.
    async fn revoke_family(&self, family: &str, at: OffsetDateTime) -> Result<()>;
}

/// Forwards both store traits through each smart pointer or reference type given, so that
/// `&S`, `Arc<S>` and `Box<S>` (and `dyn` stores behind them) are stores too; for example an
/// `Arc<dyn RevocationStore>` can be wrapped by
/// [`CachedRevocationStore`](super::CachedRevocationStore).
macro_rules! forward_stores {
    ($($ty:ty),*) => {$(
        #[async_trait]
        impl<S: RevocationStore + ?Sized> RevocationStore for $ty {
            async fn revoke(&self, jti: &str, expires_at: OffsetDateTime) -> Result<()> {
                (**self).revoke(jti, expires_at).await
            }
            async fn is_revoked(&self, jti: &str, now: OffsetDateTime) -> Result<bool> {
                (**self).is_revoked(jti, now).await
            }
            async fn any_revoked(&self, jtis: &[&str], now: OffsetDateTime) -> Result<bool> {
                (**self).any_revoked(jtis, now).await
            }
            async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64> {
                (**self).purge_expired(now).await
            }
        }

        #[async_trait]
        impl<S: RefreshTokenStore + ?Sized> RefreshTokenStore for $ty {
            async fn insert(&self, record: RefreshRecord) -> Result<()> {
                (**self).insert(record).await
            }
            async fn rotate(
                &self,
                token_hash: &str,
                next: NextRefresh,
                now: OffsetDateTime,
            ) -> Result<RotateOutcome> {
                (**self).rotate(token_hash, next, now).await
            }
            async fn revoke_family(&self, family: &str, at: OffsetDateTime) -> Result<()> {
                (**self).revoke_family(family, at).await
            }
        }
    )*};
}

forward_stores!(&S, std::sync::Arc<S>, Box<S>);

/// Compile-time check that the forwarding impls cover every pointer shape.
#[cfg(test)]
const _: () = {
    fn is_revocation<S: RevocationStore>() {}
    fn is_refresh<S: RefreshTokenStore>() {}
    fn shapes() {
        is_revocation::<&MemoryRevocationStore>();
        is_revocation::<std::sync::Arc<dyn RevocationStore>>();
        is_revocation::<Box<dyn RevocationStore>>();
        is_refresh::<&MemoryRefreshTokenStore>();
        is_refresh::<std::sync::Arc<dyn RefreshTokenStore>>();
        is_refresh::<Box<dyn RefreshTokenStore>>();
    }
    let _ = shapes;
};

fn poisoned<T>(_: T) -> TokenError {
    TokenError::store("memory store lock poisoned")
}

/// In-memory [`RevocationStore`] (one process; lost on restart).
#[derive(Debug, Default)]
pub struct MemoryRevocationStore {
    entries: Mutex<HashMap<String, OffsetDateTime>>,
}

impl MemoryRevocationStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl RevocationStore for MemoryRevocationStore {
    async fn revoke(&self, jti: &str, expires_at: OffsetDateTime) -> Result<()> {
        let mut map = self.entries.lock().map_err(poisoned)?;
        let entry = map.entry(jti.to_owned()).or_insert(expires_at);
        if *entry < expires_at {
            *entry = expires_at;
        }
        Ok(())
    }

    async fn is_revoked(&self, jti: &str, now: OffsetDateTime) -> Result<bool> {
        let map = self.entries.lock().map_err(poisoned)?;
        Ok(map.get(jti).is_some_and(|exp| *exp > now))
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64> {
        let mut map = self.entries.lock().map_err(poisoned)?;
        let before = map.len();
        map.retain(|_, exp| *exp > now);
        Ok(u64::try_from(before.saturating_sub(map.len())).unwrap_or(u64::MAX))
    }
}

#[derive(Debug, Default)]
struct RefreshState {
    tokens: HashMap<String, (RefreshRecord, bool)>,
    revoked_families: HashSet<String>,
}

/// In-memory [`RefreshTokenStore`] (one process; lost on restart).
#[derive(Debug, Default)]
pub struct MemoryRefreshTokenStore {
    state: Mutex<RefreshState>,
}

impl MemoryRefreshTokenStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl RefreshTokenStore for MemoryRefreshTokenStore {
    async fn insert(&self, record: RefreshRecord) -> Result<()> {
        let mut state = self.state.lock().map_err(poisoned)?;
        if state.tokens.contains_key(&record.token_hash) {
            return Err(TokenError::store("refresh token hash already exists"));
        }
        state
            .tokens
            .insert(record.token_hash.clone(), (record, false));
        Ok(())
    }

    async fn rotate(
        &self,
        token_hash: &str,
        next: NextRefresh,
        now: OffsetDateTime,
    ) -> Result<RotateOutcome> {
        let mut state = self.state.lock().map_err(poisoned)?;
        let Some((record, used)) = state.tokens.get(token_hash).cloned() else {
            return Ok(RotateOutcome::Unknown);
        };
        if state.revoked_families.contains(&record.family) {
            return Ok(RotateOutcome::FamilyRevoked);
        }
        if used {
            state.revoked_families.insert(record.family.clone());
            return Ok(RotateOutcome::Reused {
                family: record.family,
            });
        }
        if record.expires_at <= now {
            return Ok(RotateOutcome::Expired);
        }
        if state.tokens.contains_key(&next.token_hash) {
            return Err(TokenError::store("refresh token hash already exists"));
        }
        if let Some(entry) = state.tokens.get_mut(token_hash) {
            entry.1 = true;
        }
        let successor = RefreshRecord {
            token_hash: next.token_hash.clone(),
            family: record.family.clone(),
            subject: record.subject.clone(),
            expires_at: next.expires_at.min(record.expires_at),
        };
        state.tokens.insert(next.token_hash, (successor, false));
        Ok(RotateOutcome::Rotated(record))
    }

    async fn revoke_family(&self, family: &str, _at: OffsetDateTime) -> Result<()> {
        let mut state = self.state.lock().map_err(poisoned)?;
        state.revoked_families.insert(family.to_owned());
        Ok(())
    }
}
