//! The consent ledger's behavioural suite on memory, SQLite and PostgreSQL.

#![cfg(test)]

use finsec_compliance::gdpr::consent::testing::run_consent_store_suite;
use finsec_compliance::gdpr::consent::{MemoryConsentStore, SqlConsentStore};

#[tokio::test]
async fn memory_consent_store() {
    let store = MemoryConsentStore::new();
    run_consent_store_suite(&store).await;
    run_consent_store_suite(&store).await;
}

#[tokio::test]
async fn sqlite_consent_store() {
    let db = finsec_testkit::sqlite().await;
    finsec_compliance::sqlite::migrate(db.pool()).await.unwrap();
    let store = SqlConsentStore::new(db.pool().clone());
    run_consent_store_suite(&store).await;
    run_consent_store_suite(&store).await;
}

#[tokio::test]
async fn postgres_consent_store() {
    let db = finsec_testkit::postgres().await;
    finsec_compliance::postgres::migrate(db.pool())
        .await
        .unwrap();
    let store = SqlConsentStore::new(db.pool().clone());
    run_consent_store_suite(&store).await;
    run_consent_store_suite(&store).await;
    db.cleanup().await;
}
