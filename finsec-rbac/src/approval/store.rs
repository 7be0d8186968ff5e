//! The [`ApprovalStore`] trait and its in-memory implementation.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{ApprovalId, ApprovalRecord, ApprovalRequest};
use crate::error::{Error, Result};

/// Where approval requests and their approvals live.
///
/// Object safe (`Arc<dyn ApprovalStore>` works). Every implementation must behave like
/// [`MemoryApprovalStore`]; the `testing` feature's
/// `approval_store_conformance` checks that. The contract:
///
/// - `create` stores a new request and fails if its id exists;
/// - `add_approval` records one approval per approver: it returns `true` when this
///   approver is new and `false` when it had already approved (so a quorum counts each
///   approver once), and [`Error::ApprovalNotFound`] for an unknown id;
/// - `consume` marks a request as used, atomically: exactly one caller gets `true`;
/// - `get` returns the request, its approvals in the order they were recorded, and when it
///   was used.
#[async_trait]
pub trait ApprovalStore: Send + Sync + fmt::Debug {
    /// Stores a new request.
    ///
    /// # Errors
    /// [`Error::Store`] if the id exists or the backend fails.
    async fn create(&self, request: &ApprovalRequest) -> Result<()>;

    /// The request `id` with its approvals, if it exists.
    ///
    /// # Errors
    /// [`Error::Store`] if the backend fails.
    async fn get(&self, id: &ApprovalId) -> Result<Option<ApprovalRecord>>;

    /// Records that `approver` approved `id` at `at`. `true` if newly recorded.
    ///
    /// # Errors
    /// [`Error::ApprovalNotFound`], or [`Error::Store`] if the backend fails.
    async fn add_approval(
        &self,
        id: &ApprovalId,
        approver: &str,
        at: OffsetDateTime,
    ) -> Result<bool>;

    /// Marks `id` as used at `at`. `true` if this call did it, `false` if it was used.
    ///
    /// # Errors
    /// [`Error::ApprovalNotFound`], or [`Error::Store`] if the backend fails.
    async fn consume(&self, id: &ApprovalId, at: OffsetDateTime) -> Result<bool>;
}

/// Forwards [`ApprovalStore`] through each smart pointer or reference type given, so that
/// `&S`, `Arc<S>` and `Box<S>` (and `dyn ApprovalStore` behind them) are stores too.
macro_rules! forward_store {
    ($($ty:ty),*) => {$(
        #[async_trait]
        impl<S: ApprovalStore + ?Sized> ApprovalStore for $ty {
            async fn create(&self, request: &ApprovalRequest) -> Result<()> {
                (**self).create(request).await
            }
            async fn get(&self, id: &ApprovalId) -> Result<Option<ApprovalRecord>> {
                (**self).get(id).await
            }
            async fn add_approval(
                &self,
                id: &ApprovalId,
                approver: &str,
                at: OffsetDateTime,
            ) -> Result<bool> {
                (**self).add_approval(id, approver, at).await
            }
            async fn consume(&self, id: &ApprovalId, at: OffsetDateTime) -> Result<bool> {
                (**self).consume(id, at).await
            }
        }
    )*};
}

forward_store!(&S, std::sync::Arc<S>, Box<S>);

/// Compile-time check that the forwarding impls cover every pointer shape.
#[cfg(test)]
const _: () = {
    fn is_store<S: ApprovalStore>() {}
    fn shapes() {
        is_store::<&MemoryApprovalStore>();
        is_store::<std::sync::Arc<dyn ApprovalStore>>();
        is_store::<Box<dyn ApprovalStore>>();
        is_store::<&dyn ApprovalStore>();
    }
    let _ = shapes;
};

/// An [`ApprovalStore`] in process memory (lost on restart; for tests and single-process
/// deployments).
#[derive(Debug, Default)]
pub struct MemoryApprovalStore {
    records: Mutex<HashMap<ApprovalId, ApprovalRecord>>,
}

#[derive(Debug)]
struct Poisoned;

impl fmt::Display for Poisoned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("memory approval store lock poisoned")
    }
}

impl std::error::Error for Poisoned {}

impl MemoryApprovalStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, HashMap<ApprovalId, ApprovalRecord>>> {
        self.records
            .lock()
            .map_err(|_| Error::Store(Box::new(Poisoned)))
    }
}

#[derive(Debug)]
struct Duplicate(String);

impl fmt::Display for Duplicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "approval request {} already exists", self.0)
    }
}

impl std::error::Error for Duplicate {}

#[async_trait]
impl ApprovalStore for MemoryApprovalStore {
    async fn create(&self, request: &ApprovalRequest) -> Result<()> {
        let mut records = self.lock()?;
        if records.contains_key(&request.id) {
            return Err(Error::Store(Box::new(Duplicate(request.id.to_string()))));
        }
        records.insert(
            request.id.clone(),
            ApprovalRecord {
                request: request.clone(),
                approvals: Vec::new(),
                consumed_at: None,
            },
        );
        Ok(())
    }

    async fn get(&self, id: &ApprovalId) -> Result<Option<ApprovalRecord>> {
        Ok(self.lock()?.get(id).cloned())
    }

    async fn add_approval(
        &self,
        id: &ApprovalId,
        approver: &str,
        at: OffsetDateTime,
    ) -> Result<bool> {
        let mut records = self.lock()?;
        let record = records
            .get_mut(id)
            .ok_or_else(|| Error::ApprovalNotFound { id: id.to_string() })?;
        if record.approvals.iter().any(|(a, _)| a == approver) {
            return Ok(false);
        }
        record.approvals.push((approver.to_owned(), at));
        Ok(true)
    }

    async fn consume(&self, id: &ApprovalId, at: OffsetDateTime) -> Result<bool> {
        let mut records = self.lock()?;
        let record = records
            .get_mut(id)
            .ok_or_else(|| Error::ApprovalNotFound { id: id.to_string() })?;
        if record.consumed_at.is_some() {
            return Ok(false);
        }
        record.consumed_at = Some(at);
        Ok(true)
    }
}
