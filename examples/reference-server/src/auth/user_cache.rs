//! Users answered from memory, for a server that is the only writer of its database.
//!
//! Authentication reads the user's row on every request ([`UserStore::find_by_id`]). On the
//! embedded SQLite database, which one server process owns (it holds the data directory's
//! lock, [`crate::storage::DataDirLock`]), the row changes only through this process, so
//! [`CachedUserStore`] keeps the rows it has read and drops a row whenever this process
//! writes it. With PostgreSQL, where other instances write the same rows, the store is used
//! directly.

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use finsec_auth::api_keys::ApiKeyId;
use time::OffsetDateTime;
use uuid::Uuid;

use super::users::{ApiKeyName, StoredTotpSecret, User, UserStore, Username};
use crate::storage::sql::StoreResult;

#[derive(Default)]
struct State {
    users: HashMap<Uuid, User>,
    /// Bumped by every write, so that a row read before a concurrent write finished is
    /// not cached after it.
    generation: u64,
}

/// A [`UserStore`] whose [`find_by_id`](UserStore::find_by_id) answers from memory after
/// the first read of each user, for a process that is the only writer of `inner`. Every
/// write that changes a user row drops that row; at most `capacity` rows are kept (when
/// full, all are dropped and the cache fills again).
pub struct CachedUserStore {
    inner: Arc<dyn UserStore>,
    capacity: NonZeroUsize,
    state: Mutex<State>,
}

impl fmt::Debug for CachedUserStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Counts only: the rows hold password hashes.
        f.debug_struct("CachedUserStore")
            .field("capacity", &self.capacity)
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
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Each update is one insert, remove or clear and a counter increment: consistent
        // after a panic, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets user `id` (written, or being written, by this process).
    fn forget(&self, id: Uuid) {
        let mut state = self.state();
        state.generation = state.generation.wrapping_add(1);
        state.users.remove(&id);
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
        self.forget(id);
        inserted
    }

    async fn find_by_name(&self, key: &str) -> StoreResult<Option<User>> {
        self.inner.find_by_name(key).await
    }

    async fn find_by_id(&self, id: Uuid) -> StoreResult<Option<User>> {
        let generation = {
            let state = self.state();
            if let Some(user) = state.users.get(&id) {
                return Ok(Some(user.clone()));
            }
            state.generation
        };
        let found = self.inner.find_by_id(id).await?;
        if let Some(user) = &found {
            let mut state = self.state();
            if state.generation == generation {
                if state.users.len() >= self.capacity.get() {
                    state.users.clear();
                }
                state.users.insert(id, user.clone());
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
        self.forget(id);
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
        self.forget(user);
        confirmed
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
