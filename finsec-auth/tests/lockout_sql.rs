//! The SQL failure store on SQLite and PostgreSQL: conformance suite, and two pools (two
//! server instances) guessing at one account together.

#![cfg(test)]

use std::net::IpAddr;
use std::sync::Arc;

use finsec_auth::lockout::testing::failure_store_conformance;
use finsec_auth::lockout::{
    Admission, Backoff, Device, FailureStore, Lockout, LockoutPolicy, SqlFailureStore,
};
use futures_util::future::join_all;
use time::{Duration, OffsetDateTime};

/// Two instances (each its own pool) admit attempts on one account from many addresses at
/// once: the account's free failures are shared, not doubled.
async fn two_instances(a: Arc<dyn FailureStore>, b: Arc<dyn FailureStore>) {
    let policy = LockoutPolicy::new(
        Backoff::new(100, Duration::hours(1), Duration::hours(1)).unwrap(),
        Backoff::new(6, Duration::hours(1), Duration::hours(1)).unwrap(),
        1_000,
        Duration::days(2),
    )
    .unwrap();
    let one = Lockout::new(a, policy);
    let two = Lockout::new(b, policy);
    let account = format!("two-instances-{}", uuid_like());
    let now = OffsetDateTime::now_utc();
    let attempts = (0..24u8).map(|i| {
        let lockout = if i % 2 == 0 { &one } else { &two };
        let account = &account;
        async move {
            let from = IpAddr::from([203, 0, 113, i]);
            lockout.admit(account, from, Device::Unknown, now).await
        }
    });
    let admitted = join_all(attempts)
        .await
        .into_iter()
        .filter(|r| matches!(r, Ok(Admission::Allowed)))
        .count();
    assert_eq!(
        admitted, 6,
        "the account's free failures across two instances"
    );
    assert_eq!(one.status(&account, now).await.unwrap().failures, 6);
    assert!(
        two.status(&account, now)
            .await
            .unwrap()
            .blocked_until
            .is_some()
    );
}

fn uuid_like() -> String {
    let mut b = [0u8; 8];
    finsec_crypto::fill_random(&mut b).unwrap();
    hex::encode(b)
}

#[tokio::test]
async fn sqlite_failure_store() {
    let db = finsec_testkit::sqlite().await;
    finsec_auth::sqlite::migrate(db.pool()).await.unwrap();
    let store = SqlFailureStore::new(db.pool().clone());
    failure_store_conformance(&store).await;
    failure_store_conformance(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_pools() {
    let db = finsec_testkit::sqlite().await;
    finsec_auth::sqlite::migrate(db.pool()).await.unwrap();
    let other = db.new_pool().await;
    two_instances(
        Arc::new(SqlFailureStore::new(db.pool().clone())),
        Arc::new(SqlFailureStore::new(other)),
    )
    .await;
}

#[tokio::test]
async fn postgres_failure_store() {
    let db = finsec_testkit::postgres().await;
    finsec_auth::postgres::migrate(db.pool()).await.unwrap();
    let store = SqlFailureStore::new(db.pool().clone());
    failure_store_conformance(&store).await;
    failure_store_conformance(&store).await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_pools() {
    let db = finsec_testkit::postgres().await;
    finsec_auth::postgres::migrate(db.pool()).await.unwrap();
    let other = db.new_pool().await;
    two_instances(
        Arc::new(SqlFailureStore::new(db.pool().clone())),
        Arc::new(SqlFailureStore::new(other)),
    )
    .await;
    db.cleanup().await;
}
