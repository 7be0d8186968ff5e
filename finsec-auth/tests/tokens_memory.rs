//! Access/refresh pairs, `jti` revocation and the store conformance suites on the memory stores.
#![cfg(test)]

use finsec_auth::tokens::testing::{
    refresh_store_conformance, revocation_store_conformance, token_stores_two_instances,
};
use finsec_auth::tokens::{
    Claims, Kid, MemoryRefreshTokenStore, MemoryRevocationStore, Signer, SigningKey,
    TokenRejection, TokenService, Validation, Verifier,
};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct App {
    role: String,
}

fn app() -> App {
    App {
        role: "trader".into(),
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn service() -> TokenService {
    let key = SigningKey::ed25519_from_seed(Kid::new("ed-1").unwrap(), &[5u8; 32]);
    let verifier = Verifier::new(
        [key.verification_key().unwrap()],
        Validation::new("https://auth.test", "api"),
    )
    .unwrap();
    TokenService::new(
        Signer::new(key),
        verifier,
        Arc::new(MemoryRevocationStore::new()),
        Arc::new(MemoryRefreshTokenStore::new()),
    )
}

#[tokio::test]
async fn memory_revocation_store_conforms() {
    revocation_store_conformance(&MemoryRevocationStore::new()).await;
}

#[tokio::test]
async fn memory_refresh_store_conforms() {
    refresh_store_conformance(&MemoryRefreshTokenStore::new()).await;
    let (revocations, refresh) = (MemoryRevocationStore::new(), MemoryRefreshTokenStore::new());
    token_stores_two_instances(&revocations, &revocations, &refresh, &refresh).await;
}

#[tokio::test]
async fn pair_issue_verify_and_rotate() {
    let s = service();
    let pair = s.issue_pair_at("user-1", app(), now()).await.unwrap();
    let claims: Claims<App> = s
        .verify_access_at(pair.access_token.expose_secret(), now())
        .await
        .unwrap()
        .into_result()
        .unwrap();
    assert_eq!(claims.sub.as_deref(), Some("user-1"));
    assert_eq!(claims.extra, app());
    assert_eq!(claims.exp, Some(now().unix_timestamp() + 900));
    assert!(claims.jti.is_some());

    let later = now() + Duration::minutes(10);
    let second = s
        .refresh_at(&pair.refresh_token, app(), later)
        .await
        .unwrap()
        .into_result()
        .unwrap();
    assert_eq!(second.family, pair.family);
    assert_ne!(
        second.refresh_token.expose_secret(),
        pair.refresh_token.expose_secret()
    );
    let claims: Claims<App> = s
        .verify_access_at(second.access_token.expose_secret(), later)
        .await
        .unwrap()
        .into_result()
        .unwrap();
    assert_eq!(claims.sub.as_deref(), Some("user-1"));
    // The refresh token is opaque, never a JWT.
    assert_eq!(
        s.verify_access_at::<App>(second.refresh_token.expose_secret(), later)
            .await
            .unwrap()
            .into_result()
            .unwrap_err(),
        TokenRejection::Malformed("expected three segments")
    );
}

#[tokio::test]
async fn refresh_reuse_revokes_the_family() {
    let s = service();
    let pair = s.issue_pair_at("user-1", app(), now()).await.unwrap();
    let second = s
        .refresh_at(&pair.refresh_token, app(), now())
        .await
        .unwrap()
        .into_result()
        .unwrap();
    assert_eq!(
        s.refresh_at(&pair.refresh_token, app(), now())
            .await
            .unwrap()
            .into_result()
            .unwrap_err(),
        TokenRejection::RefreshReused {
            family: pair.family.clone()
        }
    );
    // The legitimate holder's newer token is dead too.
    assert_eq!(
        s.refresh_at(&second.refresh_token, app(), now())
            .await
            .unwrap()
            .into_result()
            .unwrap_err(),
        TokenRejection::RefreshFamilyRevoked
    );
    // Other families are unaffected.
    let other = s.issue_pair_at("user-2", app(), now()).await.unwrap();
    assert!(
        s.refresh_at(&other.refresh_token, app(), now())
            .await
            .unwrap()
            .into_result()
            .is_ok()
    );
}

#[tokio::test]
async fn refresh_unknown_expired_and_logged_out() {
    let s = service().with_ttls(Duration::minutes(5), Duration::hours(1));
    assert_eq!(
        s.refresh_at(&SecretString::from("nope"), app(), now())
            .await
            .unwrap()
            .into_result()
            .unwrap_err(),
        TokenRejection::UnknownRefreshToken
    );
    let pair = s.issue_pair_at("user-1", app(), now()).await.unwrap();
    assert_eq!(pair.refresh_expires_at, now() + Duration::hours(1));
    assert_eq!(
        s.refresh_at(&pair.refresh_token, app(), now() + Duration::hours(1))
            .await
            .unwrap()
            .into_result()
            .unwrap_err(),
        TokenRejection::RefreshExpired
    );
    let pair = s.issue_pair_at("user-1", app(), now()).await.unwrap();
    s.revoke_family_at(&pair.family, now()).await.unwrap();
    assert_eq!(
        s.refresh_at(&pair.refresh_token, app(), now())
            .await
            .unwrap()
            .into_result()
            .unwrap_err(),
        TokenRejection::RefreshFamilyRevoked
    );
}

#[tokio::test]
async fn access_tokens_are_revoked_by_jti_until_expiry() {
    let s = service();
    let pair = s.issue_pair_at("user-1", app(), now()).await.unwrap();
    let token = pair.access_token.expose_secret();
    let claims: Claims<App> = s
        .verify_access_at(token, now())
        .await
        .unwrap()
        .into_result()
        .unwrap();
    s.revoke(&claims).await.unwrap();
    assert_eq!(
        s.verify_access_at::<App>(token, now())
            .await
            .unwrap()
            .into_result()
            .unwrap_err(),
        TokenRejection::Revoked
    );
    // Past its expiry but within the verifier's leeway, it is still revoked (the entry
    // outlives `exp` by the leeway); after the leeway it is simply expired.
    let exp = OffsetDateTime::from_unix_timestamp(claims.exp.unwrap()).unwrap();
    let leeway = Validation::new("https://auth.test", "api").leeway();
    assert!(leeway > Duration::ZERO);
    let within = exp + leeway / 2;
    assert_eq!(
        s.verify_access_at::<App>(token, within)
            .await
            .unwrap()
            .into_result()
            .unwrap_err(),
        TokenRejection::Revoked
    );
    assert!(matches!(
        s.verify_access_at::<App>(token, exp + leeway + Duration::seconds(1))
            .await
            .unwrap()
            .into_result()
            .unwrap_err(),
        TokenRejection::Expired { .. }
    ));
    // Another token of the same user is unaffected.
    let other = s.issue_pair_at("user-1", app(), now()).await.unwrap();
    assert!(
        s.verify_access_at::<App>(other.access_token.expose_secret(), now())
            .await
            .unwrap()
            .into_result()
            .is_ok()
    );
}

#[tokio::test]
async fn pair_debug_redacts_tokens() {
    let s = service();
    let pair = s.issue_pair_at("user-1", app(), now()).await.unwrap();
    let out = format!("{pair:?} {s:?}");
    assert!(!out.contains(pair.access_token.expose_secret()));
    assert!(!out.contains(pair.refresh_token.expose_secret()));
    assert!(out.contains("[REDACTED]"));
}

/// Revoking a session (its refresh family), by logout or by a reused refresh token,
/// revokes the access tokens issued in it, and no other session's.
#[tokio::test]
async fn revoking_a_session_revokes_its_access_tokens() {
    let s = service();
    let verify = |token: SecretString, at: OffsetDateTime| {
        let s = &s;
        async move {
            s.verify_access_at::<App>(token.expose_secret(), at)
                .await
                .unwrap()
                .into_result()
        }
    };
    // Logout of one session.
    let one = s.issue_pair_at("user-1", app(), now()).await.unwrap();
    let two = s.issue_pair_at("user-1", app(), now()).await.unwrap();
    let claims = verify(one.access_token.clone(), now()).await.unwrap();
    assert_eq!(claims.sid.as_deref(), Some(one.family.as_str()));
    s.revoke_family_at(&one.family, now()).await.unwrap();
    assert_eq!(
        verify(one.access_token.clone(), now()).await.unwrap_err(),
        TokenRejection::Revoked
    );
    assert!(verify(two.access_token.clone(), now()).await.is_ok());
    // Still revoked at the last moment the token would verify (leeway included).
    let exp = OffsetDateTime::from_unix_timestamp(claims.exp.unwrap()).unwrap();
    let leeway = Validation::new("https://auth.test", "api").leeway();
    assert_eq!(
        verify(
            one.access_token.clone(),
            exp + leeway - Duration::seconds(1)
        )
        .await
        .unwrap_err(),
        TokenRejection::Revoked
    );

    // A reused refresh token: every access token of the family, old and new, is refused.
    let first = s.issue_pair_at("user-2", app(), now()).await.unwrap();
    let later = now() + Duration::minutes(1);
    let second = s
        .refresh_at(&first.refresh_token, app(), later)
        .await
        .unwrap()
        .into_result()
        .unwrap();
    assert_eq!(second.family, first.family);
    assert!(verify(second.access_token.clone(), later).await.is_ok());
    assert!(matches!(
        s.refresh_at(&first.refresh_token, app(), later)
            .await
            .unwrap()
            .into_result()
            .unwrap_err(),
        TokenRejection::RefreshReused { .. }
    ));
    for token in [first.access_token, second.access_token] {
        assert_eq!(
            verify(token, later).await.unwrap_err(),
            TokenRejection::Revoked
        );
    }
    assert!(verify(two.access_token, later).await.is_ok());
}
