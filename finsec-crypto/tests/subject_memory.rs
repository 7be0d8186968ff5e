//! `MemorySubjectKeyStore`: the conformance suite and the `SubjectKeys` flows.

#![cfg(test)]

mod subject_support;

use std::sync::Arc;

use finsec_crypto::subject::{MemorySubjectKeyStore, SubjectKeyStore};
use finsec_crypto::testing::{subject_key_store_conformance, subject_key_store_two_instances};

#[tokio::test]
async fn subject_memory_conformance() {
    let store = MemorySubjectKeyStore::new();
    subject_key_store_conformance(&store).await;
    // Runs again on the same store (fresh id prefix), and through the forwarding impls.
    subject_key_store_conformance(&store).await;
    let shared: Arc<dyn SubjectKeyStore> = Arc::new(MemorySubjectKeyStore::new());
    subject_key_store_conformance(&shared).await;
    let boxed: Box<dyn SubjectKeyStore> = Box::new(MemorySubjectKeyStore::new());
    subject_key_store_conformance(&boxed).await;
}

#[tokio::test]
async fn subject_memory_encrypt_decrypt() {
    subject_support::encrypt_decrypt(MemorySubjectKeyStore::new()).await;
}

#[tokio::test]
async fn subject_memory_shred() {
    let store = Arc::new(MemorySubjectKeyStore::new());
    subject_support::shred(store.clone()).await;
    // The destroyed key is gone from memory: only tombstones and live keys remain.
    assert_eq!(store.len(), 3);
}

#[tokio::test]
async fn subject_memory_rewrap_after_rotation() {
    subject_support::rewrap_after_rotation(MemorySubjectKeyStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subject_memory_concurrent_first_use() {
    let store = Arc::new(MemorySubjectKeyStore::new());
    subject_support::concurrent_first_use(store.clone(), store.clone()).await;
    assert_eq!(store.len(), 1);
    subject_key_store_two_instances(&store, &Arc::clone(&store)).await;
    assert_eq!(
        store.len(),
        4,
        "one key more per racing subject, and one tombstone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subject_memory_shred_races_first_use() {
    let store = Arc::new(MemorySubjectKeyStore::new());
    subject_support::shred_races_first_use(store.clone(), store).await;
}
