//! `MemoryApprovalStore` against the shared `ApprovalStore` conformance suite.

#![cfg(test)]

use std::sync::Arc;

use finsec_rbac::testing::{approval_store_conformance, approval_store_two_instances};
use finsec_rbac::{ApprovalStore, MemoryApprovalStore};

#[tokio::test]
async fn approval_memory_conformance() {
    let store = MemoryApprovalStore::new();
    approval_store_conformance(&store).await;
    approval_store_conformance(&store).await;
}

#[tokio::test]
async fn approval_memory_as_trait_object() {
    let store: Arc<dyn ApprovalStore> = Arc::new(MemoryApprovalStore::new());
    approval_store_conformance(store.as_ref()).await;
}

#[tokio::test]
async fn approval_memory_two_handles_race() {
    let store = Arc::new(MemoryApprovalStore::new());
    approval_store_two_instances(&store, &Arc::clone(&store)).await;
}
