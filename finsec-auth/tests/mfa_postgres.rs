//! PostgreSQL MFA replay store: conformance suite, flows, and two pools (two servers)
//! racing on one database.

#![cfg(test)]

mod mfa_support;

use std::sync::Arc;

use finsec_auth::mfa::TotpReplayStore;
use finsec_auth::mfa::postgres::{PgBackupCodeStore, PgTotpReplayStore};
use finsec_auth::mfa::testing::{
    backup_code_store_conformance, mfa_stores_two_instances, totp_replay_store_conformance,
};
use finsec_auth::postgres::migrate;

#[tokio::test]
async fn postgres_replay_conformance_and_flows() {
    let db = finsec_testkit::postgres().await;
    migrate(db.pool()).await.unwrap();
    migrate(db.pool()).await.unwrap(); // idempotent
    let store = PgTotpReplayStore::new(db.pool().clone());
    totp_replay_store_conformance(&store).await;
    totp_replay_store_conformance(&store).await;
    mfa_support::verify_flow(&store).await;
    let backup = PgBackupCodeStore::new(db.pool().clone());
    backup_code_store_conformance(&backup).await;
    backup_code_store_conformance(&backup).await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_pools_race() {
    let db = finsec_testkit::postgres().await;
    migrate(db.pool()).await.unwrap();
    let a: Arc<dyn TotpReplayStore> = Arc::new(PgTotpReplayStore::new(db.pool().clone()));
    let other = db.new_pool().await;
    let b: Arc<dyn TotpReplayStore> = Arc::new(PgTotpReplayStore::new(other.clone()));
    mfa_support::concurrent_servers(Arc::clone(&a), Arc::clone(&b), 24).await;
    mfa_stores_two_instances(
        &a,
        &b,
        &PgBackupCodeStore::new(db.pool().clone()),
        &PgBackupCodeStore::new(other),
    )
    .await;
    drop(b);
    db.cleanup().await;
}
