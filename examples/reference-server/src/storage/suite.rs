//! Every store's behavioural suite, on SQLite and on PostgreSQL: the same contract on both.

use super::{Storage, Stores};

/// Runs every capability's suite on `stores` (a migrated database of its own).
async fn run(stores: &Stores) {
    crate::auth::suite::run(stores).await;
}

#[tokio::test]
async fn sqlite() {
    let db = finsec_testkit::sqlite().await;
    let storage = Storage::Sqlite(db.pool().clone());
    crate::capabilities::migrate(&storage).await.unwrap();
    run(&storage.stores()).await;
}

#[tokio::test]
async fn postgres() {
    let db = finsec_testkit::postgres().await;
    let storage = Storage::Postgres(db.pool().clone());
    crate::capabilities::migrate(&storage).await.unwrap();
    run(&storage.stores()).await;
    db.cleanup().await;
}
