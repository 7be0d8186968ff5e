//! The token stores on a real Redis server: both conformance suites and the service end to end.
#![cfg(test)]

use finsec_auth::tokens::redis::{RedisRefreshTokenStore, RedisRevocationStore};
use finsec_auth::tokens::testing::{
    refresh_store_conformance, revocation_store_conformance, token_stores_two_instances,
};
use finsec_auth::tokens::{
    Kid, Signer, SigningKey, TokenRejection, TokenService, Validation, Verifier,
};
use std::sync::Arc;
use time::OffsetDateTime;

#[tokio::test]
async fn tokens_redis_revocation_conformance() {
    let r = finsec_testkit::redis().await;
    let store = RedisRevocationStore::new(r.conn.clone(), &r.prefix);
    revocation_store_conformance(&store).await;
    revocation_store_conformance(&store).await;
    assert!(r.cleanup().await >= 1);
}

#[tokio::test]
async fn tokens_redis_refresh_conformance() {
    let r = finsec_testkit::redis().await;
    let store = RedisRefreshTokenStore::new(r.conn.clone(), r.prefix.clone());
    refresh_store_conformance(&store).await;
    refresh_store_conformance(&store).await;
    // A second server: its own connection, the same key prefix.
    let other = finsec_testkit::redis().await;
    token_stores_two_instances(
        &RedisRevocationStore::new(r.conn.clone(), &r.prefix),
        &RedisRevocationStore::new(other.conn.clone(), &r.prefix),
        &store,
        &RedisRefreshTokenStore::new(other.conn.clone(), r.prefix.clone()),
    )
    .await;
    other.cleanup().await;
    assert!(r.cleanup().await >= 1);
}

#[tokio::test]
async fn tokens_redis_service_detects_reuse() {
    let r = finsec_testkit::redis().await;
    let key = SigningKey::ed25519_from_seed(Kid::new("k").unwrap(), &[3u8; 32]);
    let verifier =
        Verifier::new([key.verification_key().unwrap()], Validation::new("i", "a")).unwrap();
    let s = TokenService::new(
        Signer::new(key),
        verifier,
        Arc::new(RedisRevocationStore::new(r.conn.clone(), &r.prefix)),
        Arc::new(RedisRefreshTokenStore::new(
            r.conn.clone(),
            r.prefix.clone(),
        )),
    );
    let now = OffsetDateTime::now_utc();
    let pair = s.issue_pair_at("u", (), now).await.unwrap();
    let second = s
        .refresh_at(&pair.refresh_token, (), now)
        .await
        .unwrap()
        .into_result()
        .unwrap();
    assert_eq!(
        s.refresh_at(&pair.refresh_token, (), now)
            .await
            .unwrap()
            .into_result()
            .unwrap_err(),
        TokenRejection::RefreshReused {
            family: pair.family.clone()
        }
    );
    assert_eq!(
        s.refresh_at(&second.refresh_token, (), now)
            .await
            .unwrap()
            .into_result()
            .unwrap_err(),
        TokenRejection::RefreshFamilyRevoked
    );
    r.cleanup().await;
}
