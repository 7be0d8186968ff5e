//! `SqliteApiKeyStore` on a real SQLite file: migrations, the conformance suite, the
//! `ApiKeys` flows, and what is (not) in the table.

#![cfg(test)]

use finsec_auth::api_keys::sqlite::SqliteApiKeyStore;
use finsec_auth::api_keys::testing::{api_key_store_conformance, api_key_store_two_instances};
use finsec_auth::api_keys::{ApiKeyStore, ApiKeys, NewApiKey, RejectReason};
use finsec_auth::sqlite::migrate;
use finsec_rbac::PermissionPattern;
use finsec_testkit::SqliteTestDb;
use secrecy::ExposeSecret;
use time::macros::datetime;

async fn db() -> SqliteTestDb {
    let db = finsec_testkit::sqlite().await;
    migrate(db.pool()).await.unwrap();
    db
}

#[tokio::test]
async fn api_keys_sqlite_conformance() {
    let db = db().await;
    let store = SqliteApiKeyStore::new(db.pool().clone());
    api_key_store_conformance(&store).await;
    api_key_store_conformance(&store).await;
    let second = SqliteApiKeyStore::new(db.new_pool().await);
    api_key_store_two_instances(&store, &second).await;
}

#[tokio::test]
async fn api_keys_sqlite_migrate_is_idempotent_and_checks_rows() {
    let db = db().await;
    migrate(db.pool()).await.unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE version = 20201")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(versions, vec![20201]);
    let bad = sqlx::query(
        "INSERT INTO finsec_api_keys (key_id, owner, scopes, secret_hash, created_at) \
         VALUES ('0123456789abcdef', 'a', '[]', x'00', 0)",
    )
    .execute(db.pool())
    .await;
    assert!(bad.is_err(), "a hash that is not 32 bytes is refused");
}

#[tokio::test]
async fn api_keys_sqlite_flows_and_no_secret_in_table() {
    let db = db().await;
    let keys = ApiKeys::new(SqliteApiKeyStore::new(db.pool().clone()));
    let now = datetime!(2025-02-01 10:00:00.654321 UTC);
    let issued = keys
        .issue_at(
            NewApiKey::new("alice", vec![PermissionPattern::new("orders:*").unwrap()]),
            now,
        )
        .await
        .unwrap();
    let text = issued.printable.expose_secret().to_owned();
    keys.verify_at(&text, now)
        .await
        .unwrap()
        .into_result()
        .unwrap();
    let new = keys
        .rotate_at(&issued.record.id, std::time::Duration::from_secs(60), now)
        .await
        .unwrap();
    keys.verify_at(&text, now)
        .await
        .unwrap()
        .into_result()
        .unwrap();
    keys.verify_at(new.printable.expose_secret(), now)
        .await
        .unwrap()
        .into_result()
        .unwrap();
    let later = now + time::Duration::seconds(60);
    match keys.verify_at(&text, later).await.unwrap().into_result() {
        Err(r) => assert_eq!(r.reason(), RejectReason::Expired),
        other => panic!("expected rejection, got {other:?}"),
    }
    keys.flush_usage_at(later).await.unwrap();
    let stored = keys.store().get(&issued.record.id).await.unwrap().unwrap();
    assert_eq!(stored.use_count, 2);
    assert_eq!(stored.last_used_at, Some(now));
    assert_eq!(stored.replaced_by, Some(new.record.id));
    // The secret is nowhere in the table.
    let dump: Vec<(String, String, Vec<u8>)> =
        sqlx::query_as("SELECT key_id, scopes, secret_hash FROM finsec_api_keys")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(dump.len(), 2);
    let secret_hex = &text[21..85];
    for (id, scopes, hash) in dump {
        assert!(!id.contains(secret_hex) && !scopes.contains(secret_hex));
        assert_ne!(hex::encode(&hash), secret_hex);
    }
}
