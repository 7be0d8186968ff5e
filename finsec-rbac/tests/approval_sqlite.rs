//! `SqliteApprovalStore` on a real SQLite file: migrations, the conformance suite, a full
//! maker-checker flow, and two pools standing for two processes.

#![cfg(test)]

use finsec_rbac::approval::sqlite::SqliteApprovalStore;
use finsec_rbac::sqlite::migrate;
use finsec_rbac::testing::{approval_store_conformance, approval_store_two_instances};
use finsec_testkit::SqliteTestDb;

mod approval_support;

async fn db() -> SqliteTestDb {
    let db = finsec_testkit::sqlite().await;
    migrate(db.pool()).await.unwrap();
    db
}

#[tokio::test]
async fn approval_sqlite_conformance() {
    let db = db().await;
    let store = SqliteApprovalStore::new(db.pool().clone());
    approval_store_conformance(&store).await;
    approval_store_conformance(&store).await;
}

#[tokio::test]
async fn approval_sqlite_migrate_is_idempotent_and_shares_the_migrations_table() {
    let db = db().await;
    migrate(db.pool()).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations \
         (version, description, success, checksum, execution_time) \
         VALUES (10001, 'other crate', 1, x'00', 0)",
    )
    .execute(db.pool())
    .await
    .unwrap();
    migrate(db.pool()).await.unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(versions, vec![10001, 30001, 30101]);
    // The schema refuses a quorum out of range.
    let bad = sqlx::query(
        "INSERT INTO finsec_rbac_approval_requests \
         (id, initiator, action, subject, approver, quorum, created_at, expires_at) \
         VALUES ('0123456789abcdef0123456789abcdef', 'm', 'a', 's', 'b', 0, 0, 1)",
    )
    .execute(db.pool())
    .await;
    assert!(bad.is_err());
}

#[tokio::test]
async fn approval_sqlite_maker_checker_flow() {
    let db = db().await;
    approval_support::flow(&SqliteApprovalStore::new(db.pool().clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approval_sqlite_two_pools_consume_once() {
    let db = db().await;
    let other = db.new_pool().await;
    approval_store_two_instances(
        &SqliteApprovalStore::new(db.pool().clone()),
        &SqliteApprovalStore::new(other.clone()),
    )
    .await;
    other.close().await;
}
