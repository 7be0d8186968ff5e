//! Redis MFA replay store: conformance suite, flows, and two connections (two servers)
//! racing.

#![cfg(test)]

mod mfa_support;

use std::sync::Arc;

use finsec_auth::mfa::TotpReplayStore;
use finsec_auth::mfa::redis::{RedisBackupCodeStore, RedisTotpReplayStore};
use finsec_auth::mfa::testing::{
    backup_code_store_conformance, mfa_stores_two_instances, totp_replay_store_conformance,
};

#[tokio::test]
async fn redis_replay_conformance_and_flows() {
    let redis = finsec_testkit::redis().await;
    let store = RedisTotpReplayStore::new(redis.conn.clone(), redis.prefix.clone());
    totp_replay_store_conformance(&store).await;
    totp_replay_store_conformance(&store).await;
    mfa_support::verify_flow(&store).await;
    let backup = RedisBackupCodeStore::new(redis.conn.clone(), redis.prefix.clone());
    backup_code_store_conformance(&backup).await;
    backup_code_store_conformance(&backup).await;
    assert!(redis.cleanup().await > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_two_connections_race() {
    let one = finsec_testkit::redis().await;
    let two = finsec_testkit::redis().await;
    let a: Arc<dyn TotpReplayStore> = Arc::new(RedisTotpReplayStore::new(
        one.conn.clone(),
        one.prefix.clone(),
    ));
    // The second "server" has its own connection but the same key prefix.
    let b: Arc<dyn TotpReplayStore> = Arc::new(RedisTotpReplayStore::new(
        two.conn.clone(),
        one.prefix.clone(),
    ));
    mfa_support::concurrent_servers(Arc::clone(&a), Arc::clone(&b), 24).await;
    mfa_stores_two_instances(
        &a,
        &b,
        &RedisBackupCodeStore::new(one.conn.clone(), one.prefix.clone()),
        &RedisBackupCodeStore::new(two.conn.clone(), one.prefix.clone()),
    )
    .await;
    one.cleanup().await;
    two.cleanup().await;
}
