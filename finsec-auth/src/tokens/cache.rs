//! A bounded cache of tokens whose signature a [`Verifier`](super::Verifier) has checked.
//!
//! Checking an EdDSA signature costs about 46 µs, more than everything else a request to an
//! authenticated route does on a fast backend; a client sends the same access token with
//! every request until it expires. The cache remembers, for each token whose signature and
//! claims were valid, its verified payload, keyed by the SHA-256 of the whole token: the
//! same bytes under the same keys always verify the same way, so a hit skips only the
//! signature check. Everything that can change with time is still checked on every call:
//! the claims (`exp`, `nbf`, `iss`, `aud`) by [`Verifier::verify_at`](super::Verifier::verify_at),
//! revocation by [`TokenService::verify_access_at`](super::TokenService::verify_access_at).
//!
//! Only tokens that passed every check enter it (a forged or malformed token never does, so
//! it cannot be filled by an attacker without a signing key), and it holds at most its
//! capacity: when full, the oldest entry is dropped; an entry whose claims no longer pass
//! (expired) is dropped when it is next looked up.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use sha2::{Digest, Sha256};

/// The SHA-256 of a token: the cache key (the token itself is never kept).
pub(super) type TokenHash = [u8; 32];

/// The SHA-256 of `token`.
pub(super) fn token_hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// Counters of a verified-token cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Tokens held now.
    pub entries: usize,
    /// The most tokens it holds.
    pub capacity: usize,
    /// Lookups that found the token (its signature was not checked again).
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
}

/// The cache shared by a verifier and its clones (they hold the same keys and validation).
#[derive(Clone)]
pub(super) struct VerifiedCache {
    inner: Arc<Inner>,
}

struct Inner {
    capacity: NonZeroUsize,
    state: Mutex<State>,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Default)]
struct State {
    /// Verified payloads by token hash.
    payloads: HashMap<TokenHash, Arc<[u8]>>,
    /// The keys of `payloads` oldest first (each exactly once).
    order: VecDeque<TokenHash>,
}

impl fmt::Debug for VerifiedCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Counts only: token hashes are not secret, but have no use in a log.
        f.debug_struct("VerifiedCache")
            .field("stats", &self.stats())
            .finish()
    }
}

impl VerifiedCache {
    /// An empty cache of at most `capacity` tokens.
    pub(super) fn new(capacity: NonZeroUsize) -> Self {
        Self {
            inner: Arc::new(Inner {
                capacity,
                state: Mutex::new(State::default()),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is consistent after any panic (every update is a single insert or
        // remove on both parts), so a poisoned lock is still usable.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The verified payload of the token hashed to `hash`, if cached.
    pub(super) fn get(&self, hash: &TokenHash) -> Option<Arc<[u8]>> {
        let found = self.state().payloads.get(hash).cloned();
        let counter = if found.is_some() {
            &self.inner.hits
        } else {
            &self.inner.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Remembers the verified `payload` of the token hashed to `hash`, dropping the oldest
    /// entry when full.
    pub(super) fn insert(&self, hash: TokenHash, payload: Arc<[u8]>) {
        let mut state = self.state();
        if state.payloads.contains_key(&hash) {
            return;
        }
        while state.payloads.len() >= self.inner.capacity.get() {
            let Some(oldest) = state.order.pop_front() else {
                break;
            };
            state.payloads.remove(&oldest);
        }
        state.payloads.insert(hash, payload);
        state.order.push_back(hash);
    }

    /// Forgets the token hashed to `hash` (its claims no longer pass).
    pub(super) fn remove(&self, hash: &TokenHash) {
        let mut state = self.state();
        if state.payloads.remove(hash).is_some() {
            state.order.retain(|h| h != hash);
        }
    }

    /// The counters.
    pub(super) fn stats(&self) -> CacheStats {
        CacheStats {
            entries: self.state().payloads.len(),
            capacity: self.inner.capacity.get(),
            hits: self.inner.hits.load(Ordering::Relaxed),
            misses: self.inner.misses.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(n: u8) -> Arc<[u8]> {
        Arc::from(vec![n; 4])
    }

    #[test]
    fn bounded_oldest_out_first() {
        let cache = VerifiedCache::new(NonZeroUsize::new(3).unwrap());
        for n in 0..10u8 {
            cache.insert(token_hash(&n.to_string()), payload(n));
            assert!(cache.stats().entries <= 3);
        }
        let state = cache.state();
        assert_eq!(state.payloads.len(), 3);
        assert_eq!(state.order.len(), 3);
        drop(state);
        for n in 0..7u8 {
            assert!(cache.get(&token_hash(&n.to_string())).is_none(), "{n}");
        }
        for n in 7..10u8 {
            assert_eq!(cache.get(&token_hash(&n.to_string())), Some(payload(n)));
        }
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.capacity), (3, 7, 3));
    }

    #[test]
    fn insert_twice_and_remove() {
        let cache = VerifiedCache::new(NonZeroUsize::new(2).unwrap());
        let (a, b, c) = (token_hash("a"), token_hash("b"), token_hash("c"));
        cache.insert(a, payload(1));
        cache.insert(a, payload(1));
        cache.insert(b, payload(2));
        assert_eq!(cache.state().order.len(), 2);
        cache.remove(&a);
        cache.remove(&a);
        assert_eq!(cache.stats().entries, 1);
        assert_eq!(cache.state().order.len(), 1);
        // Room for c without dropping b.
        cache.insert(c, payload(3));
        assert!(cache.get(&b).is_some() && cache.get(&c).is_some());
    }
}
