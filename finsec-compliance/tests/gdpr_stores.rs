//! The legal-hold, request and retention-state stores' behavioural suites on memory,
//! SQLite and PostgreSQL.

#![cfg(test)]

use finsec_compliance::gdpr::hold::testing::run_hold_store_suite;
use finsec_compliance::gdpr::hold::{MemoryHoldStore, SqlHoldStore};
use finsec_compliance::gdpr::request::testing::run_request_store_suite;
use finsec_compliance::gdpr::request::{MemoryRequestStore, SqlRequestStore};
use finsec_compliance::gdpr::retention::testing::run_retention_state_store_suite;
use finsec_compliance::gdpr::retention::{MemoryRetentionStateStore, SqlRetentionStateStore};

#[tokio::test]
async fn memory_stores() {
    let holds = MemoryHoldStore::new();
    run_hold_store_suite(&holds).await;
    run_hold_store_suite(&holds).await;
    let requests = MemoryRequestStore::new();
    run_request_store_suite(&requests).await;
    run_request_store_suite(&requests).await;
    let runs = MemoryRetentionStateStore::new();
    run_retention_state_store_suite(&runs).await;
    run_retention_state_store_suite(&runs).await;
}

#[tokio::test]
async fn sqlite_stores() {
    let db = finsec_testkit::sqlite().await;
    finsec_compliance::sqlite::migrate(db.pool()).await.unwrap();
    let holds = SqlHoldStore::new(db.pool().clone());
    run_hold_store_suite(&holds).await;
    run_hold_store_suite(&holds).await;
    let requests = SqlRequestStore::new(db.pool().clone());
    run_request_store_suite(&requests).await;
    run_request_store_suite(&requests).await;
    let runs = SqlRetentionStateStore::new(db.pool().clone());
    run_retention_state_store_suite(&runs).await;
    run_retention_state_store_suite(&runs).await;
}

#[tokio::test]
async fn postgres_stores() {
    let db = finsec_testkit::postgres().await;
    finsec_compliance::postgres::migrate(db.pool())
        .await
        .unwrap();
    let holds = SqlHoldStore::new(db.pool().clone());
    run_hold_store_suite(&holds).await;
    run_hold_store_suite(&holds).await;
    let requests = SqlRequestStore::new(db.pool().clone());
    run_request_store_suite(&requests).await;
    run_request_store_suite(&requests).await;
    let runs = SqlRetentionStateStore::new(db.pool().clone());
    run_retention_state_store_suite(&runs).await;
    run_retention_state_store_suite(&runs).await;
    db.cleanup().await;
}
