//! The token stores on a real Sqlite database: migrations, both conformance suites (twice, on
//! one store, and across two pools), and the token service end to end.
#![cfg(test)]

use finsec_auth::sqlite::migrate;
use finsec_auth::tokens::sqlite::{SqliteRefreshTokenStore, SqliteRevocationStore};
use finsec_auth::tokens::testing::{
    refresh_store_conformance, revocation_store_conformance, token_stores_two_instances,
};
use finsec_auth::tokens::{
    Kid, Signer, SigningKey, TokenRejection, TokenService, Validation, Verifier,
};
use finsec_testkit::SqliteTestDb;
use std::sync::Arc;
use time::OffsetDateTime;

async fn db() -> SqliteTestDb {
    let db = finsec_testkit::sqlite().await;
    migrate(db.pool()).await.unwrap();
    migrate(db.pool()).await.unwrap();
    db
}

#[tokio::test]
async fn tokens_sqlite_revocation_conformance() {
    let db = db().await;
    let store = SqliteRevocationStore::new(db.pool().clone());
    revocation_store_conformance(&store).await;
    revocation_store_conformance(&store).await;
    let other = SqliteRevocationStore::new(db.new_pool().await);
    revocation_store_conformance(&other).await;
}

#[tokio::test]
async fn tokens_sqlite_refresh_conformance() {
    let db = db().await;
    let store = SqliteRefreshTokenStore::new(db.pool().clone());
    refresh_store_conformance(&store).await;
    refresh_store_conformance(&store).await;
    let other = SqliteRefreshTokenStore::new(db.new_pool().await);
    refresh_store_conformance(&other).await;
    let second = db.new_pool().await;
    token_stores_two_instances(
        &SqliteRevocationStore::new(db.pool().clone()),
        &SqliteRevocationStore::new(second.clone()),
        &store,
        &SqliteRefreshTokenStore::new(second),
    )
    .await;
}

#[tokio::test]
async fn tokens_sqlite_service_detects_reuse_across_instances() {
    let db = db().await;
    let service = |pool| {
        let key = SigningKey::ed25519_from_seed(Kid::new("k").unwrap(), &[3u8; 32]);
        let verifier =
            Verifier::new([key.verification_key().unwrap()], Validation::new("i", "a")).unwrap();
        TokenService::new(
            Signer::new(key),
            verifier,
            Arc::new(SqliteRevocationStore::new(Clone::clone(&pool))),
            Arc::new(SqliteRefreshTokenStore::new(pool)),
        )
    };
    let a = service(db.pool().clone());
    let b = service(db.new_pool().await);
    let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let pair = a.issue_pair_at("u", (), now).await.unwrap();
    let second = b
        .refresh_at(&pair.refresh_token, (), now)
        .await
        .unwrap()
        .into_result()
        .unwrap();
    assert_eq!(
        a.refresh_at(&pair.refresh_token, (), now)
            .await
            .unwrap()
            .into_result()
            .unwrap_err(),
        TokenRejection::RefreshReused {
            family: pair.family.clone()
        }
    );
    assert_eq!(
        b.refresh_at(&second.refresh_token, (), now)
            .await
            .unwrap()
            .into_result()
            .unwrap_err(),
        TokenRejection::RefreshFamilyRevoked
    );
}
