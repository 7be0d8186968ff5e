//! Users answered from memory, so an authenticated request reads no user row.
//!
//! Authentication reads the user's row on every request ([`UserStore::find_by_id`]).
//! [`CachedUserStore`] keeps the rows it has read, and knows a kept row is still current in
//! one of two ways:
//!
//! - [`sole_writer`](CachedUserStore::sole_writer): on the embedded SQLite database, which
//!   one server process owns (it holds the data directory's lock,
//!   [`crate::storage::DataDirLock`]), rows change only through this process, which drops a
//!   row whenever it writes it.
//! - [`shared`](CachedUserStore::shared): with PostgreSQL and Redis, where other instances
//!   write the same rows, every write through any instance stamps the user with a new
//!   random version in Redis (`<prefix>user:<id>:version`) once the write is done. A read
//!   fetches the user's version (one Redis `GET`, much cheaper than the row) and uses the
//!   kept row only if it was read under that same version. The version is fetched before
//!   the row, so a row is never kept under a version newer than itself: a write on another
//!   instance is seen at the next request after it returned. Should stamping fail (Redis
//!   down after the database wrote), kept rows are also refused once they are older than
//!   [`SHARED_MAX_AGE`], which bounds how long another instance can serve the old row.
//!
//! With PostgreSQL and no Redis, the store is used directly.

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use finsec_auth::api_keys::ApiKeyId;
use redis::aio::ConnectionManager;
use time::OffsetDateTime;
use uuid::Uuid;

use super::users::{ApiKeyName, StoredName, StoredTotpSecret, User, UserStore, Username};
use crate::storage::sql::{StoreError, StoreResult};

/// How long a shared cache keeps using a row, whatever the versions say: the bound on
/// staleness if a write's version stamp was lost.
pub const SHARED_MAX_AGE: Duration = Duration::from_secs(30);

/// How long a version stamp lives in Redis after the user's last write. Far longer than
/// [`SHARED_MAX_AGE`]: once it is gone, rows are read under "no version" until the next
/// write stamps a new one.
const VERSION_TTL_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// How long a shared cache waits for Redis.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

struct Entry {
    user: User,
    /// The version the row was read under (`None`: no stamp in Redis; always `None` for a
    /// sole writer).
    version: Option<u64>,
    read_at: Instant,
}

#[derive(Default)]
struct State {
    users: HashMap<Uuid, Entry>,
    /// Bumped by every write through this process, so that a row read before a concurrent
    /// write finished is not kept after it.
    generation: u64,
}

/// Where the versions of a shared cache live.
struct Versions {
    conn: ConnectionManager,
    prefix: String,
}

impl Versions {
    fn key(&self, id: Uuid) -> String {
        format!("{}user:{}:version", self.prefix, id.as_simple())
    }

    async fn get(&self, id: Uuid) -> StoreResult<Option<u64>> {
        let mut conn = self.conn.clone();
        let cmd = redis::cmd("GET").arg(self.key(id)).to_owned();
        bounded(cmd.query_async::<Option<u64>>(&mut conn)).await
    }

    async fn stamp(&self, id: Uuid) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        let version = finsec_crypto::secret::random_array::<8>()
            .map(u64::from_le_bytes)
            .map_err(|e| StoreError::Cache(format!("no random version: {e}")))?;
        let cmd = redis::cmd("SET")
            .arg(self.key(id))
            .arg(version)
            .arg("PX")
            .arg(VERSION_TTL_MS)
            .to_owned();
        bounded(cmd.query_async::<()>(&mut conn)).await
    }
}

async fn bounded<T>(call: impl Future<Output = redis::RedisResult<T>>) -> StoreResult<T> {
    match tokio::time::timeout(REDIS_TIMEOUT, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(StoreError::Cache(format!("redis: {e}"))),
        Err(_) => Err(StoreError::Cache(format!(
            "redis did not answer within {REDIS_TIMEOUT:?}"
        ))),
    }
}

/// A [`UserStore`] whose [`find_by_id`](UserStore::find_by_id) answers from memory while a
/// row it has read is known to be current (see the [module documentation](self)). Every
/// write that changes a user row goes through it; at most `capacity` rows are kept (when
/// full, all are dropped and the cache fills again).
pub struct CachedUserStore {
    inner: Arc<dyn UserStore>,
    capacity: NonZeroUsize,
    versions: Option<Versions>,
    max_age: Duration,
    state: Mutex<State>,
}

impl fmt::Debug for CachedUserStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Counts only: the rows hold password hashes.
        f.debug_struct("CachedUserStore")
            .field("capacity", &self.capacity)
            .field("shared", &self.versions.is_some())
            .field("entries", &self.state().users.len())
            .finish_non_exhaustive()
    }
}

impl CachedUserStore {
    /// `inner` with a cache of at most `capacity` users. The caller promises that no other
    /// process writes the users table while this exists.
    pub fn sole_writer(inner: Arc<dyn UserStore>, capacity: NonZeroUsize) -> Self {
        Self {
            inner,
            capacity,
            versions: None,
            max_age: Duration::MAX,
            state: Mutex::new(State::default()),
        }
    }

    /// `inner` with a cache of at most `capacity` users, shared with other instances that
    /// write the same table: each write stamps a version under `prefix` in Redis, and each
    /// read checks it. Every instance writing the table must use this with the same Redis
    /// and prefix.
    pub fn shared(
        inner: Arc<dyn UserStore>,
        capacity: NonZeroUsize,
        conn: ConnectionManager,
        prefix: &str,
    ) -> Self {
        Self {
            inner,
            capacity,
            versions: Some(Versions {
                conn,
                prefix: prefix.to_owned(),
            }),
            max_age: SHARED_MAX_AGE,
            state: Mutex::new(State::default()),
        }
    }

    /// The same cache, refusing kept rows older than `max_age` (a shared cache's default
    /// is [`SHARED_MAX_AGE`]; a sole writer's rows never age).
    #[must_use]
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Each update is one insert, remove or clear and a counter increment: consistent
        // after a panic, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Called after a write to user `id` through this process, whatever its outcome (a
    /// failed write may still have reached the database): drops the local row and, when
    /// shared, stamps a new version for the other instances. A failed stamp is logged and
    /// otherwise ignored (the write itself is done; [`SHARED_MAX_AGE`] bounds the rest).
    async fn written(&self, id: Uuid) {
        {
            let mut state = self.state();
            state.generation = state.generation.wrapping_add(1);
            state.users.remove(&id);
        }
        if let Some(versions) = &self.versions
            && let Err(e) = versions.stamp(id).await
        {
            tracing::error!(error = %e, "could not stamp a user's new version; other instances may serve the old row for up to {SHARED_MAX_AGE:?}");
        }
    }
}

#[async_trait]
impl UserStore for CachedUserStore {
    async fn insert_user(
        &self,
        id: Uuid,
        name: &Username,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let inserted = self.inner.insert_user(id, name, password_hash, now).await;
        self.written(id).await;
        inserted
    }

    async fn find_by_name(&self, key: &str) -> StoreResult<Option<User>> {
        self.inner.find_by_name(key).await
    }

    async fn find_by_id(&self, id: Uuid) -> StoreResult<Option<User>> {
        let version = match &self.versions {
            Some(versions) => versions.get(id).await?,
            None => None,
        };
        let generation = {
            let state = self.state();
            if let Some(entry) = state.users.get(&id)
                && entry.version == version
                && entry.read_at.elapsed() < self.max_age
            {
                return Ok(Some(entry.user.clone()));
            }
            state.generation
        };
        let read_at = Instant::now();
        let found = self.inner.find_by_id(id).await?;
        if let Some(user) = &found {
            let mut state = self.state();
            if state.generation == generation {
                if state.users.len() >= self.capacity.get() {
                    state.users.clear();
                }
                state.users.insert(
                    id,
                    Entry {
                        user: user.clone(),
                        version,
                        read_at,
                    },
                );
            }
        }
        Ok(found)
    }

    async fn update_password_hash(
        &self,
        id: Uuid,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let updated = self
            .inner
            .update_password_hash(id, password_hash, now)
            .await;
        self.written(id).await;
        updated
    }

    async fn put_pending_secret(
        &self,
        user: Uuid,
        sealed: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.inner.put_pending_secret(user, sealed, now).await
    }

    async fn mfa_secret(&self, user: Uuid) -> StoreResult<Option<StoredTotpSecret>> {
        self.inner.mfa_secret(user).await
    }

    async fn confirm_mfa(&self, user: Uuid, now: OffsetDateTime) -> StoreResult<bool> {
        let confirmed = self.inner.confirm_mfa(user, now).await;
        self.written(user).await;
        confirmed
    }

    async fn mfa_failed(&self, user: Uuid) -> StoreResult<u32> {
        self.inner.mfa_failed(user).await
    }

    async fn lock_mfa(&self, user: Uuid, until: OffsetDateTime) -> StoreResult<()> {
        self.inner.lock_mfa(user, until).await
    }

    async fn mfa_locked_until(&self, user: Uuid) -> StoreResult<Option<OffsetDateTime>> {
        self.inner.mfa_locked_until(user).await
    }

    async fn mfa_succeeded(&self, user: Uuid) -> StoreResult<()> {
        self.inner.mfa_succeeded(user).await
    }

    async fn disable_mfa(&self, user: Uuid, now: OffsetDateTime) -> StoreResult<bool> {
        let disabled = self.inner.disable_mfa(user, now).await;
        self.written(user).await;
        disabled
    }

    async fn insert_key_name(
        &self,
        key_id: &ApiKeyId,
        user: Uuid,
        name: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.inner.insert_key_name(key_id, user, name, now).await
    }

    async fn key_names(&self, user: Uuid) -> StoreResult<Vec<ApiKeyName>> {
        self.inner.key_names(user).await
    }

    async fn stored_names(&self, after: Option<Uuid>, limit: u32) -> StoreResult<Vec<StoredName>> {
        self.inner.stored_names(after, limit).await
    }

    async fn replace_name(&self, id: Uuid, old: &str, name: &str, key: &str) -> StoreResult<bool> {
        let replaced = self.inner.replace_name(id, old, name, key).await;
        self.written(id).await;
        replaced
    }

    async fn erase_user(
        &self,
        id: Uuid,
        tombstone: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let erased = self.inner.erase_user(id, tombstone, now).await;
        self.written(id).await;
        erased
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Storage;

    #[tokio::test]
    async fn rows_are_read_once_and_writes_apply_at_once() {
        let db = finsec_testkit::sqlite().await;
        let storage = Storage::Sqlite(db.pool().clone());
        crate::capabilities::migrate(&storage).await.unwrap();
        let inner = storage.stores().users;
        let cache = CachedUserStore::sole_writer(Arc::clone(&inner), NonZeroUsize::MIN);
        let now = OffsetDateTime::now_utc();
        let id = Uuid::now_v7();
        let name = Username::parse("carol").unwrap();
        assert!(cache.find_by_id(id).await.unwrap().is_none());
        assert!(cache.insert_user(id, &name, "$h1", now).await.unwrap());
        let first = cache.find_by_id(id).await.unwrap().unwrap();
        assert_eq!(first.password_hash, "$h1");
        assert_eq!(cache.state().users.len(), 1);

        // A change behind the cache's back is not seen: it is the only writer.
        inner.update_password_hash(id, "$h2", now).await.unwrap();
        assert_eq!(
            cache.find_by_id(id).await.unwrap().unwrap().password_hash,
            "$h1"
        );
        // A change through it is.
        assert!(cache.update_password_hash(id, "$h3", now).await.unwrap());
        assert_eq!(
            cache.find_by_id(id).await.unwrap().unwrap().password_hash,
            "$h3"
        );
        assert!(cache.put_pending_secret(id, "sealed", now).await.unwrap());
        assert!(!cache.find_by_id(id).await.unwrap().unwrap().mfa_enabled);
        assert!(cache.confirm_mfa(id, now).await.unwrap());
        assert!(cache.find_by_id(id).await.unwrap().unwrap().mfa_enabled);

        // Bounded: a second user replaces the first (capacity 1).
        let other = Uuid::now_v7();
        let name = Username::parse("dave").unwrap();
        assert!(cache.insert_user(other, &name, "$h", now).await.unwrap());
        cache.find_by_id(other).await.unwrap().unwrap();
        let state = cache.state();
        assert_eq!(state.users.len(), 1);
        assert!(state.users.contains_key(&other));
    }

    /// Two instances over one table and one Redis: a write through either is seen by the
    /// other at its next read, a write behind both is not (the rows are kept), and kept
    /// rows past their maximum age are read again.
    #[tokio::test]
    async fn shared_caches_see_each_others_writes_at_the_next_read() {
        let db = finsec_testkit::sqlite().await;
        let redis = finsec_testkit::redis().await;
        let storage = Storage::Sqlite(db.pool().clone());
        crate::capabilities::migrate(&storage).await.unwrap();
        let inner = storage.stores().users;
        let shared = |inner: &Arc<dyn UserStore>| {
            CachedUserStore::shared(
                Arc::clone(inner),
                NonZeroUsize::MIN.saturating_add(7),
                redis.conn.clone(),
                &redis.prefix,
            )
        };
        let (a, b) = (shared(&inner), shared(&inner));
        let now = OffsetDateTime::now_utc();
        let id = Uuid::now_v7();
        assert!(b.find_by_id(id).await.unwrap().is_none());
        let name = Username::parse("frank").unwrap();
        assert!(a.insert_user(id, &name, "$h1", now).await.unwrap());
        assert_eq!(
            b.find_by_id(id).await.unwrap().unwrap().password_hash,
            "$h1"
        );
        assert_eq!(b.state().users.len(), 1);

        // Behind both caches' backs: B keeps answering the row it read.
        inner.update_password_hash(id, "$h2", now).await.unwrap();
        assert_eq!(
            b.find_by_id(id).await.unwrap().unwrap().password_hash,
            "$h1"
        );
        // Through A: B reads the row again at once.
        assert!(a.update_password_hash(id, "$h3", now).await.unwrap());
        assert_eq!(
            b.find_by_id(id).await.unwrap().unwrap().password_hash,
            "$h3"
        );
        assert!(a.put_pending_secret(id, "sealed", now).await.unwrap());
        assert!(!b.find_by_id(id).await.unwrap().unwrap().mfa_enabled);
        assert!(a.confirm_mfa(id, now).await.unwrap());
        assert!(b.find_by_id(id).await.unwrap().unwrap().mfa_enabled);
        // And the other way round.
        assert_eq!(
            a.find_by_id(id).await.unwrap().unwrap().password_hash,
            "$h3"
        );
        assert!(b.update_password_hash(id, "$h4", now).await.unwrap());
        assert_eq!(
            a.find_by_id(id).await.unwrap().unwrap().password_hash,
            "$h4"
        );

        // A kept row past its age is read again even when no version changed.
        let c = shared(&inner).with_max_age(Duration::ZERO);
        assert_eq!(
            c.find_by_id(id).await.unwrap().unwrap().password_hash,
            "$h4"
        );
        inner.update_password_hash(id, "$h5", now).await.unwrap();
        assert_eq!(
            c.find_by_id(id).await.unwrap().unwrap().password_hash,
            "$h5"
        );
        assert_eq!(
            a.find_by_id(id).await.unwrap().unwrap().password_hash,
            "$h4"
        );

        // The versions live under the prefix, and only there.
        assert_eq!(
            redis.keys("*").await,
            [redis.key(&format!("user:{}:version", id.as_simple()))]
        );
        assert_eq!(redis.cleanup().await, 1);
    }

    #[tokio::test]
    async fn debug_shows_no_row() {
        let db = finsec_testkit::sqlite().await;
        let storage = Storage::Sqlite(db.pool().clone());
        crate::capabilities::migrate(&storage).await.unwrap();
        let cache = CachedUserStore::sole_writer(storage.stores().users, NonZeroUsize::MIN);
        let id = Uuid::now_v7();
        let name = Username::parse("eve").unwrap();
        let now = OffsetDateTime::now_utc();
        assert!(
            cache
                .insert_user(id, &name, "$argon2id$secret-hash", now)
                .await
                .unwrap()
        );
        cache.find_by_id(id).await.unwrap().unwrap();
        let text = format!("{cache:?}");
        assert!(text.contains("entries: 1"), "{text}");
        assert!(
            !text.contains("secret-hash") && !text.contains("eve"),
            "{text}"
        );
    }
}
