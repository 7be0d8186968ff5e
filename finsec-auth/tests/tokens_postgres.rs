//! The token stores on a real Postgres database: migrations, both conformance suites (twice, on
//! one store, and across two pools), and the token service end to end.
#![cfg(test)]

use finsec_auth::postgres::migrate;
use finsec_auth::tokens::postgres::{PostgresRefreshTokenStore, PostgresRevocationStore};
use finsec_auth::tokens::testing::{
    refresh_store_conformance, revocation_store_conformance, token_stores_two_instances,
};
use finsec_auth::tokens::{
    Kid, Signer, SigningKey, TokenRejection, TokenService, Validation, Verifier,
};
use finsec_testkit::PgTestDb;
use std::sync::Arc;
use time::OffsetDateTime;

async fn db() -> PgTestDb {
    let db = finsec_testkit::postgres().await;
    migrate(db.pool()).await.unwrap();
    migrate(db.pool()).await.unwrap();
    db
}

#[tokio::test]
async fn tokens_postgres_revocation_conformance() {
    let db = db().await;
    let store = PostgresRevocationStore::new(db.pool().clone());
    revocation_store_conformance(&store).await;
    revocation_store_conformance(&store).await;
    let other = PostgresRevocationStore::new(db.new_pool().await);
    revocation_store_conformance(&other).await;
    db.cleanup().await;
}

#[tokio::test]
async fn tokens_postgres_refresh_conformance() {
    let db = db().await;
    let store = PostgresRefreshTokenStore::new(db.pool().clone());
    refresh_store_conformance(&store).await;
    refresh_store_conformance(&store).await;
    let other = PostgresRefreshTokenStore::new(db.new_pool().await);
    refresh_store_conformance(&other).await;
    let second = db.new_pool().await;
    token_stores_two_instances(
        &PostgresRevocationStore::new(db.pool().clone()),
        &PostgresRevocationStore::new(second.clone()),
        &store,
        &PostgresRefreshTokenStore::new(second),
    )
    .await;
    db.cleanup().await;
}

#[tokio::test]
async fn tokens_postgres_service_detects_reuse_across_instances() {
    let db = db().await;
    let service = |pool| {
        let key = SigningKey::ed25519_from_seed(Kid::new("k").unwrap(), &[3u8; 32]);
        let verifier =
            Verifier::new([key.verification_key().unwrap()], Validation::new("i", "a")).unwrap();
        TokenService::new(
            Signer::new(key),
            verifier,
            Arc::new(PostgresRevocationStore::new(Clone::clone(&pool))),
            Arc::new(PostgresRefreshTokenStore::new(pool)),
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
    db.cleanup().await;
}
