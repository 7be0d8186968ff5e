//! Every capability store's behavioural suite, run on SQLite and on PostgreSQL: the same
//! contract checks on both backends, through the store traits [`Storage::stores`] builds.

use time::OffsetDateTime;
use uuid::Uuid;

use super::Storage;
use crate::auth::users::Username;

/// Creates a user through the user store (the roles and orders tables refer to users) and
/// returns its id. The name is derived from the id, so it is unique.
pub(crate) async fn new_user(storage: &Storage) -> Uuid {
    let id = Uuid::now_v7();
    let name = Username::parse(&format!("u{}", id.simple())).unwrap();
    let created = storage
        .stores()
        .users
        .insert_user(id, &name, "not-a-hash", OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert!(created, "a fresh name was taken");
    id
}

/// Migrates `storage` and runs every capability's suite on it.
async fn run_all(storage: &Storage) {
    crate::capabilities::migrate(storage).await.unwrap();
    let stores = storage.stores();
    crate::auth::suite::run(&stores).await;
    crate::rbac::suite::run(&stores, storage).await;
    crate::orders::suite::run(&stores, storage).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    let db = finsec_testkit::sqlite().await;
    run_all(&Storage::Sqlite(db.pool().clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    let db = finsec_testkit::postgres().await;
    run_all(&Storage::Postgres(db.pool().clone())).await;
    db.cleanup().await;
}
