//! Every capability store's behavioural suite, run on SQLite and on PostgreSQL: the same
//! contract checks on both backends, through the store traits [`Storage::stores`] builds.

use uuid::Uuid;

use super::Storage;
use super::sql::ServerDb;

/// Inserts a user row (the roles and orders tables refer to users) and returns its id.
/// One SQL text on both backends; the name is derived from the id, so it is unique.
pub(crate) async fn new_user(storage: &Storage) -> Uuid {
    const SQL: &str = "INSERT INTO server_users \
         (id, username, username_key, password_hash, created_at, updated_at) \
         VALUES ($1, $2, $2, 'not-a-hash', 0, 0)";
    let id = Uuid::now_v7();
    let name = format!("u{}", id.simple());
    let done = match storage {
        Storage::Sqlite(pool) => sqlx::query(SQL)
            .bind(<sqlx::Sqlite as ServerDb>::uuid(id))
            .bind(&name)
            .execute(pool)
            .await
            .unwrap()
            .rows_affected(),
        Storage::Postgres(pool) => sqlx::query(SQL)
            .bind(<sqlx::Postgres as ServerDb>::uuid(id))
            .bind(&name)
            .execute(pool)
            .await
            .unwrap()
            .rows_affected(),
    };
    assert_eq!(done, 1);
    id
}

/// Migrates `storage` and runs every suite on its stores.
async fn run_all(storage: &Storage) {
    crate::capabilities::migrate(storage).await.unwrap();
    let stores = storage.stores();
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
