//! `PostgresSubjectKeyStore` on a real PostgreSQL schema: migrations, the conformance suite, the
//! `SubjectKeys` flows, and two pools standing for two application instances.

#![cfg(test)]

mod subject_support;

use finsec_crypto::postgres::migrate;
use finsec_crypto::subject::SubjectKeys;
use finsec_crypto::subject::postgres::PostgresSubjectKeyStore;
use finsec_crypto::testing::{subject_key_store_conformance, subject_key_store_two_instances};
use finsec_testkit::PgTestDb;
use sqlx::Row;

async fn db() -> PgTestDb {
    let db = finsec_testkit::postgres().await;
    migrate(db.pool()).await.unwrap();
    db
}

#[tokio::test]
async fn subject_postgres_conformance() {
    let db = db().await;
    let store = PostgresSubjectKeyStore::new(db.pool().clone());
    subject_key_store_conformance(&store).await;
    subject_key_store_conformance(&store).await;
    db.cleanup().await;
}

#[tokio::test]
async fn subject_postgres_migrate_is_idempotent_and_shares_the_migrations_table() {
    let db = db().await;
    migrate(db.pool()).await.unwrap();
    // Another finsec crate's migration recorded in the same table is not an error.
    sqlx::query(
        "INSERT INTO _sqlx_migrations \
         (version, description, success, checksum, execution_time) \
         VALUES (20001, 'other crate', true, '\\x00'::bytea, 0)",
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
    assert_eq!(versions, vec![10001, 20001]);
    // The schema refuses rows that break the invariants (a live row without a key).
    let bad = sqlx::query(
        "INSERT INTO finsec_subject_keys (subject_id, kek_name, kek_version, created_at) \
         VALUES ('x', 'k', 1, 0)",
    )
    .execute(db.pool())
    .await;
    assert!(bad.is_err());
    db.cleanup().await;
}

#[tokio::test]
async fn subject_postgres_encrypt_decrypt() {
    let db = db().await;
    subject_support::encrypt_decrypt(PostgresSubjectKeyStore::new(db.pool().clone())).await;
    db.cleanup().await;
}

#[tokio::test]
async fn subject_postgres_shred() {
    let db = db().await;
    subject_support::shred(PostgresSubjectKeyStore::new(db.pool().clone())).await;
    // The wrapped key bytes are gone from the database, not just hidden.
    let row = sqlx::query(
        "SELECT wrapped_key, kek_name, destroyed_at FROM finsec_subject_keys \
         WHERE subject_id = 'shred:alice'",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(row.get::<Option<Vec<u8>>, _>("wrapped_key"), None);
    assert_eq!(
        row.get::<Option<String>, _>("kek_name").as_deref(),
        Some("subjects")
    );
    assert!(row.get::<Option<i64>, _>("destroyed_at").is_some());
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM finsec_subject_keys WHERE wrapped_key IS NOT NULL",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(live, 1, "only bob's key is left");
    db.cleanup().await;
}

#[tokio::test]
async fn subject_postgres_rewrap_after_rotation() {
    let db = db().await;
    subject_support::rewrap_after_rotation(PostgresSubjectKeyStore::new(db.pool().clone())).await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subject_postgres_concurrent_first_use_two_pools() {
    let db = db().await;
    let other = db.new_pool().await;
    subject_support::concurrent_first_use(
        PostgresSubjectKeyStore::new(db.pool().clone()),
        PostgresSubjectKeyStore::new(other.clone()),
    )
    .await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM finsec_subject_keys")
        .fetch_one(&other)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    subject_key_store_two_instances(
        &PostgresSubjectKeyStore::new(db.pool().clone()),
        &PostgresSubjectKeyStore::new(other.clone()),
    )
    .await;
    other.close().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subject_postgres_shred_races_first_use_two_pools() {
    let db = db().await;
    let other = db.new_pool().await;
    subject_support::shred_races_first_use(
        PostgresSubjectKeyStore::new(db.pool().clone()),
        PostgresSubjectKeyStore::new(other.clone()),
    )
    .await;
    other.close().await;
    db.cleanup().await;
}

#[tokio::test]
async fn subject_postgres_migrations_run_concurrently_from_two_instances() {
    let db = finsec_testkit::postgres().await;
    let other = db.new_pool().await;
    let (a, b) = tokio::join!(migrate(db.pool()), migrate(&other));
    a.unwrap();
    b.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(n, 1);
    other.close().await;
    db.cleanup().await;
}

#[tokio::test]
async fn subject_postgres_keys_visible_to_a_new_pool() {
    let db = db().await;
    let keyring = subject_support::keyring();
    let alice = subject_support::sid("durable:alice");
    let ct = {
        let keys = SubjectKeys::new(
            PostgresSubjectKeyStore::new(db.pool().clone()),
            keyring.clone(),
            subject_support::kek(),
        );
        keys.encrypt(&alice, b"kept", b"").await.unwrap()
    };
    let fresh = db.new_pool().await;
    let keys = SubjectKeys::new(
        PostgresSubjectKeyStore::new(fresh.clone()),
        keyring,
        subject_support::kek(),
    );
    assert_eq!(keys.decrypt(&alice, &ct, b"").await.unwrap(), b"kept");
    fresh.close().await;
    db.cleanup().await;
}
