//! The [`ApiKeyStore`] trait and the in-memory store.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use finsec_rbac::PermissionPattern;
use ipnet::IpNet;
use time::OffsetDateTime;

use super::{ApiKeyError, ApiKeyId, Result, SecretHash};

/// The largest use count a store keeps (`i64::MAX`, what SQL `BIGINT` holds); counts
/// saturate there.
pub const MAX_USE_COUNT: u64 = u64::MAX >> 1;

/// One stored API key. Holds the hash of the secret, never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// The key id.
    pub id: ApiKeyId,
    /// The owner (principal) the key acts for. Shared, so that handing out a record (each
    /// verification does) does not copy it.
    pub owner: Arc<str>,
    /// What the key may do (shared, as `owner` is).
    pub scopes: Arc<[PermissionPattern]>,
    /// The hash of the secret.
    pub secret_hash: SecretHash,
    /// When it was issued.
    pub created_at: OffsetDateTime,
    /// When it stops working, if ever (set by rotation to the end of the overlap).
    pub expires_at: Option<OffsetDateTime>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<OffsetDateTime>,
    /// The key that replaced it by rotation.
    pub replaced_by: Option<ApiKeyId>,
    /// The latest use recorded in the store (batched, so possibly behind).
    pub last_used_at: Option<OffsetDateTime>,
    /// Uses recorded in the store (batched, so possibly behind; at most [`MAX_USE_COUNT`]).
    pub use_count: u64,
    /// The client networks the key may be used from (at most
    /// [`MAX_NETWORKS`](super::MAX_NETWORKS)); empty: from anywhere.
    pub networks: ClientNetworks,
}

/// The client networks a key may be used from; empty means anywhere. Derefs to the slice.
/// Shared when there are some (cloning a record, as every verification does, copies a
/// pointer), and nothing at all when there are none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientNetworks(Option<Arc<[IpNet]>>);

impl ClientNetworks {
    /// `networks` as given (an empty list is "anywhere").
    pub fn new(networks: Vec<IpNet>) -> Self {
        if networks.is_empty() {
            Self(None)
        } else {
            Self(Some(networks.into()))
        }
    }

    /// Whether `client` is in one of the networks (an IPv4-mapped IPv6 address counts as
    /// the IPv4 address); `false` when there are none.
    pub fn contain(&self, client: std::net::IpAddr) -> bool {
        let client = client.to_canonical();
        self.iter().any(|net| net.contains(&client))
    }
}

impl std::ops::Deref for ClientNetworks {
    type Target = [IpNet];

    fn deref(&self) -> &[IpNet] {
        self.0.as_deref().unwrap_or(&[])
    }
}

impl FromIterator<IpNet> for ClientNetworks {
    fn from_iter<I: IntoIterator<Item = IpNet>>(iter: I) -> Self {
        Self::new(iter.into_iter().collect())
    }
}

/// Uses of one key accumulated since the last flush.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageUpdate {
    /// The key.
    pub id: ApiKeyId,
    /// How many uses to add.
    pub uses: u64,
    /// The latest use in the batch.
    pub last_used_at: OffsetDateTime,
}

/// Storage of API key records. Object safe: `Box<dyn ApiKeyStore>` works.
///
/// Every implementation runs the conformance suite in the `testing` module (feature
/// `testing`). Timestamps are stored at microsecond precision.
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Stores a new record.
    ///
    /// # Errors
    /// [`ApiKeyError::DuplicateId`] if the id exists (nothing is changed), or a store error.
    async fn insert(&self, record: &ApiKeyRecord) -> Result<()>;

    /// The record with this id, if any.
    ///
    /// # Errors
    /// A store error.
    async fn get(&self, id: &ApiKeyId) -> Result<Option<ApiKeyRecord>>;

    /// All records of an owner, ordered by creation time, then id.
    ///
    /// # Errors
    /// A store error.
    async fn list_for_owner(&self, owner: &str) -> Result<Vec<ApiKeyRecord>>;

    /// Marks a key revoked at `at`. Returns `false` (and keeps the first time) if it was
    /// already revoked.
    ///
    /// # Errors
    /// [`ApiKeyError::NotFound`] or a store error.
    async fn revoke(&self, id: &ApiKeyId, at: OffsetDateTime) -> Result<bool>;

    /// Atomically records that `old` is replaced by `new`, sets `old`'s expiry to
    /// `old_valid_until` unless it already expires sooner, and inserts `new`.
    ///
    /// # Errors
    /// [`ApiKeyError::NotFound`] for an unknown `old`; [`ApiKeyError::InvalidState`] if it
    /// is revoked or already replaced; [`ApiKeyError::DuplicateId`] if `new`'s id exists.
    /// On error nothing is changed.
    async fn rotate(
        &self,
        old: &ApiKeyId,
        new: &ApiKeyRecord,
        old_valid_until: OffsetDateTime,
    ) -> Result<()>;

    /// Adds batched uses: `use_count += uses` (saturating at [`MAX_USE_COUNT`]) and `last_used_at` becomes the
    /// later of the stored and the batch's time. Unknown ids are ignored (the key may have
    /// been deleted meanwhile).
    ///
    /// # Errors
    /// A store error.
    async fn record_usage(&self, batch: &[UsageUpdate]) -> Result<()>;
}

/// An [`ApiKeyStore`] in process memory, for tests and single-process deployments.
#[derive(Default)]
pub struct MemoryApiKeyStore {
    rows: Mutex<Rows>,
}

/// Keyed by ids this crate generated (random), so a caller can look up any id it likes but
/// cannot make stored keys collide: a fast hash is safe here.
type Rows = HashMap<ApiKeyId, ApiKeyRecord, foldhash::fast::RandomState>;

impl fmt::Debug for MemoryApiKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryApiKeyStore")
            .field("keys", &self.lock().len())
            .finish()
    }
}

impl MemoryApiKeyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Rows> {
        // Every update below is applied whole under the lock, so a poisoned map is intact.
        self.rows.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl ApiKeyStore for MemoryApiKeyStore {
    async fn insert(&self, record: &ApiKeyRecord) -> Result<()> {
        let mut rows = self.lock();
        if rows.contains_key(&record.id) {
            return Err(ApiKeyError::DuplicateId { id: record.id });
        }
        rows.insert(record.id, record.clone());
        Ok(())
    }

    async fn get(&self, id: &ApiKeyId) -> Result<Option<ApiKeyRecord>> {
        Ok(self.lock().get(id).cloned())
    }

    async fn list_for_owner(&self, owner: &str) -> Result<Vec<ApiKeyRecord>> {
        let mut out: Vec<ApiKeyRecord> = self
            .lock()
            .values()
            .filter(|r| *r.owner == *owner)
            .cloned()
            .collect();
        out.sort_by_key(|r| (r.created_at, r.id));
        Ok(out)
    }

    async fn revoke(&self, id: &ApiKeyId, at: OffsetDateTime) -> Result<bool> {
        let mut rows = self.lock();
        let row = rows.get_mut(id).ok_or(ApiKeyError::NotFound { id: *id })?;
        if row.revoked_at.is_some() {
            return Ok(false);
        }
        row.revoked_at = Some(at);
        Ok(true)
    }

    async fn rotate(
        &self,
        old: &ApiKeyId,
        new: &ApiKeyRecord,
        old_valid_until: OffsetDateTime,
    ) -> Result<()> {
        let mut rows = self.lock();
        if rows.contains_key(&new.id) {
            return Err(ApiKeyError::DuplicateId { id: new.id });
        }
        let row = rows
            .get_mut(old)
            .ok_or(ApiKeyError::NotFound { id: *old })?;
        check_rotatable(row)?;
        row.replaced_by = Some(new.id);
        row.expires_at = Some(match row.expires_at {
            Some(at) if at < old_valid_until => at,
            _ => old_valid_until,
        });
        rows.insert(new.id, new.clone());
        Ok(())
    }

    async fn record_usage(&self, batch: &[UsageUpdate]) -> Result<()> {
        let mut rows = self.lock();
        for update in batch {
            if let Some(row) = rows.get_mut(&update.id) {
                row.use_count = row.use_count.saturating_add(update.uses).min(MAX_USE_COUNT);
                if row.last_used_at.is_none_or(|at| at < update.last_used_at) {
                    row.last_used_at = Some(update.last_used_at);
                }
            }
        }
        Ok(())
    }
}

/// Refuses to rotate a revoked or already replaced key.
pub(crate) fn check_rotatable(row: &ApiKeyRecord) -> Result<()> {
    let state = if row.revoked_at.is_some() {
        "revoked"
    } else if row.replaced_by.is_some() {
        "already rotated"
    } else {
        return Ok(());
    };
    Err(ApiKeyError::InvalidState {
        id: row.id,
        operation: "rotated",
        state,
    })
}

/// Forwards [`ApiKeyStore`] through each smart pointer or reference type given.
macro_rules! forward_store {
    ($($ty:ty),*) => {$(
        #[async_trait]
        impl<S: ApiKeyStore + ?Sized> ApiKeyStore for $ty {
            async fn insert(&self, record: &ApiKeyRecord) -> Result<()> {
                (**self).insert(record).await
            }

            async fn get(&self, id: &ApiKeyId) -> Result<Option<ApiKeyRecord>> {
                (**self).get(id).await
            }

            async fn list_for_owner(&self, owner: &str) -> Result<Vec<ApiKeyRecord>> {
                (**self).list_for_owner(owner).await
            }

            async fn revoke(&self, id: &ApiKeyId, at: OffsetDateTime) -> Result<bool> {
                (**self).revoke(id, at).await
            }

            async fn rotate(
                &self,
                old: &ApiKeyId,
                new: &ApiKeyRecord,
                old_valid_until: OffsetDateTime,
            ) -> Result<()> {
                (**self).rotate(old, new, old_valid_until).await
            }

            async fn record_usage(&self, batch: &[UsageUpdate]) -> Result<()> {
                (**self).record_usage(batch).await
            }
        }
    )*};
}

// `ApiKeys<&S>`, `ApiKeys<Box<dyn ApiKeyStore>>` and `ApiKeys<Arc<S>>` work.
forward_store!(&S, Box<S>, Arc<S>);

/// Compile-time check that the forwarding impls cover every pointer shape.
#[cfg(test)]
const _: () = {
    fn is_store<S: ApiKeyStore>() {}
    fn shapes() {
        is_store::<&dyn ApiKeyStore>();
        is_store::<Arc<dyn ApiKeyStore>>();
        is_store::<Box<dyn ApiKeyStore>>();
    }
    let _ = shapes;
};
