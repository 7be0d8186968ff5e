//! A revocation store answered from memory, for a process that is the only writer of the
//! store behind it.
//!
//! Every authenticated request asks whether its access token was revoked. On an embedded
//! database (a SQLite file that one server process owns) that is a query per request for an
//! answer that can only change through this process: [`CachedRevocationStore`] keeps the
//! answers it has seen and updates them on every [`revoke`](RevocationStore::revoke) it
//! forwards, so a token is looked up in the store once and then answered from memory.
//!
//! **Only correct when no other process writes the store.** A revocation written by another
//! process (a second server on the same database, an operator's tool) would not be seen
//! until the entry is dropped. Shared stores (PostgreSQL used by several instances, Redis)
//! must be used directly; the constructor's name, [`CachedRevocationStore::sole_writer`],
//! says what the caller promises.

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroUsize;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{Result, RevocationStore};

/// What the store said about one token id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Revoked until this time (as written through this cache).
    RevokedUntil(OffsetDateTime),
    /// Not revoked when it was looked up, and not revoked through this cache since.
    NotRevoked,
}

#[derive(Debug, Default)]
struct State {
    answers: HashMap<String, Answer>,
    /// Bumped by every write, so that an answer read from the store before a concurrent
    /// write finished is not cached after it.
    generation: u64,
}

/// A [`RevocationStore`] that answers [`is_revoked`](RevocationStore::is_revoked) from
/// memory after the first lookup of each token id, for a process that is the only writer of
/// `inner`.
///
/// On an embedded database that one process owns (a SQLite file), every revocation goes
/// through that process, so asking the database on every request buys nothing. **Only
/// correct when no other process writes `inner`**: a revocation written elsewhere (a second
/// server on the same database, an operator's tool) would not be seen until the entry is
/// dropped. Use shared stores (PostgreSQL used by several instances, Redis) directly; the
/// constructor's name, [`sole_writer`](Self::sole_writer), says what the caller promises.
///
/// Writes go to `inner` first and then to memory; a failed write drops what memory knew
/// of that id, so the next lookup asks `inner` again. At most `capacity` answers are kept:
/// when full, every answer is dropped and the cache fills again from `inner`.
pub struct CachedRevocationStore<S> {
    inner: S,
    capacity: NonZeroUsize,
    state: Mutex<State>,
}

impl<S> fmt::Debug for CachedRevocationStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedRevocationStore")
            .field("capacity", &self.capacity)
            .field("entries", &self.state().answers.len())
            .finish_non_exhaustive()
    }
}

impl<S: RevocationStore> CachedRevocationStore<S> {
    /// `inner` with a cache of at most `capacity` answers. The caller promises that no
    /// other process writes `inner` while this exists.
    pub fn sole_writer(inner: S, capacity: NonZeroUsize) -> Self {
        Self {
            inner,
            capacity,
            state: Mutex::new(State::default()),
        }
    }

    /// The store behind the cache.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S> CachedRevocationStore<S> {
    fn state(&self) -> MutexGuard<'_, State> {
        // Every update is one insert, remove or clear plus a counter increment: the state
        // is consistent after a panic, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn remember(&self, state: &mut State, jti: &str, answer: Answer) {
        if state.answers.len() >= self.capacity.get() && !state.answers.contains_key(jti) {
            state.answers.clear();
        }
        state.answers.insert(jti.to_owned(), answer);
    }
}

#[async_trait]
impl<S: RevocationStore> RevocationStore for CachedRevocationStore<S> {
    async fn revoke(&self, jti: &str, expires_at: OffsetDateTime) -> Result<()> {
        let written = self.inner.revoke(jti, expires_at).await;
        let mut state = self.state();
        state.generation = state.generation.wrapping_add(1);
        match &written {
            Ok(()) => {
                // A later expiry extends the entry, as in the store.
                let until = match state.answers.get(jti) {
                    Some(Answer::RevokedUntil(t)) if *t > expires_at => *t,
                    _ => expires_at,
                };
                self.remember(&mut state, jti, Answer::RevokedUntil(until));
            }
            Err(_) => {
                state.answers.remove(jti);
            }
        }
        written
    }

    async fn is_revoked(&self, jti: &str, now: OffsetDateTime) -> Result<bool> {
        let generation = {
            let state = self.state();
            match state.answers.get(jti) {
                Some(Answer::RevokedUntil(until)) => return Ok(*until > now),
                Some(Answer::NotRevoked) => return Ok(false),
                None => state.generation,
            }
        };
        let revoked = self.inner.is_revoked(jti, now).await?;
        // Only "not revoked" is remembered from a lookup: the store does not say until when
        // a revocation runs, and revoked tokens are rare. A write since the lookup began
        // may have changed the answer: then it is not remembered.
        if !revoked {
            let mut state = self.state();
            if state.generation == generation {
                self.remember(&mut state, jti, Answer::NotRevoked);
            }
        }
        Ok(revoked)
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64> {
        let purged = self.inner.purge_expired(now).await?;
        self.state()
            .answers
            .retain(|_, answer| !matches!(answer, Answer::RevokedUntil(until) if *until <= now));
        Ok(purged)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use time::Duration;

    use super::*;
    use crate::TokenError;
    use crate::tokens::MemoryRevocationStore;

    /// A memory store that counts lookups and can be told to fail writes.
    #[derive(Debug, Default)]
    struct Counting {
        store: MemoryRevocationStore,
        lookups: AtomicUsize,
        fail_writes: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl RevocationStore for Counting {
        async fn revoke(&self, jti: &str, expires_at: OffsetDateTime) -> Result<()> {
            if self.fail_writes.load(Ordering::SeqCst) {
                return Err(TokenError::store("write refused"));
            }
            self.store.revoke(jti, expires_at).await
        }

        async fn is_revoked(&self, jti: &str, now: OffsetDateTime) -> Result<bool> {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            self.store.is_revoked(jti, now).await
        }

        async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64> {
            self.store.purge_expired(now).await
        }
    }

    const NOW: OffsetDateTime = time::macros::datetime!(2026-01-01 12:00 UTC);

    fn cached(capacity: usize) -> (CachedRevocationStore<Arc<Counting>>, Arc<Counting>) {
        let inner = Arc::new(Counting::default());
        let cache = CachedRevocationStore::sole_writer(
            Arc::clone(&inner),
            NonZeroUsize::new(capacity).unwrap(),
        );
        (cache, inner)
    }

    #[tokio::test]
    async fn a_token_is_looked_up_once_and_revocations_apply_at_once() {
        let (cache, inner) = cached(16);
        for _ in 0..5 {
            assert!(!cache.is_revoked("a", NOW).await.unwrap());
        }
        assert_eq!(inner.lookups.load(Ordering::SeqCst), 1);
        cache
            .revoke("a", NOW + Duration::minutes(15))
            .await
            .unwrap();
        assert!(cache.is_revoked("a", NOW).await.unwrap());
        assert!(
            inner.store.is_revoked("a", NOW).await.unwrap(),
            "written through"
        );
        // Past the revocation's expiry it no longer counts, as in the store.
        assert!(
            !cache
                .is_revoked("a", NOW + Duration::minutes(16))
                .await
                .unwrap()
        );
        assert_eq!(inner.lookups.load(Ordering::SeqCst), 1);
        // A shorter second revocation does not shorten the first.
        cache.revoke("a", NOW + Duration::minutes(1)).await.unwrap();
        assert!(
            cache
                .is_revoked("a", NOW + Duration::minutes(10))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn revocations_made_before_start_are_found_in_the_store() {
        let (cache, inner) = cached(16);
        inner
            .store
            .revoke("old", NOW + Duration::minutes(5))
            .await
            .unwrap();
        assert!(cache.is_revoked("old", NOW).await.unwrap());
        assert!(cache.is_revoked("old", NOW).await.unwrap());
        // Revoked answers from the store are not remembered (their expiry is unknown).
        assert_eq!(inner.lookups.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_write_forgets_the_answer() {
        let (cache, inner) = cached(16);
        assert!(!cache.is_revoked("a", NOW).await.unwrap());
        inner.fail_writes.store(true, Ordering::SeqCst);
        assert!(cache.revoke("a", NOW + Duration::minutes(5)).await.is_err());
        assert!(!cache.is_revoked("a", NOW).await.unwrap());
        assert_eq!(
            inner.lookups.load(Ordering::SeqCst),
            2,
            "asked the store again"
        );
    }

    #[tokio::test]
    async fn bounded_and_purged() {
        let (cache, inner) = cached(4);
        for n in 0..10 {
            assert!(!cache.is_revoked(&n.to_string(), NOW).await.unwrap());
            assert!(cache.state().answers.len() <= 4);
        }
        cache.revoke("x", NOW + Duration::minutes(1)).await.unwrap();
        let later = NOW + Duration::minutes(2);
        assert_eq!(cache.purge_expired(later).await.unwrap(), 1);
        assert!(!cache.state().answers.contains_key("x"));
        assert!(!cache.is_revoked("x", later).await.unwrap());
        assert!(inner.lookups.load(Ordering::SeqCst) >= 11);
    }

    #[tokio::test]
    async fn an_answer_read_before_a_concurrent_write_is_not_cached() {
        let (cache, _inner) = cached(16);
        // The lookup's generation is taken, then a write lands before it finishes.
        let generation = cache.state().generation;
        cache.revoke("a", NOW + Duration::minutes(5)).await.unwrap();
        {
            let mut state = cache.state();
            assert_ne!(state.generation, generation);
            // What is_revoked does with a stale "not revoked": nothing.
            if state.generation == generation {
                cache.remember(&mut state, "a", Answer::NotRevoked);
            }
        }
        assert!(cache.is_revoked("a", NOW).await.unwrap());
    }
}
