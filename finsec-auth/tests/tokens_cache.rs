//! The verified-token cache of `Verifier::with_cache`: a hit skips only the signature
//! check; expiry, the other claims and revocation are checked on every call; the cache
//! never holds more than its capacity nor a token that failed a check.
#![cfg(test)]

use std::num::NonZeroUsize;
use std::sync::Arc;

use finsec_auth::tokens::{
    CacheStats, Claims, Kid, MemoryRefreshTokenStore, MemoryRevocationStore, Signer, SigningKey,
    TokenRejection, TokenService, Validation, Verifier,
};
use secrecy::ExposeSecret as _;
use time::{Duration, OffsetDateTime};

const ISSUER: &str = "https://auth.test";

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn key() -> SigningKey {
    SigningKey::ed25519_from_seed(Kid::new("ed-1").unwrap(), &[9u8; 32])
}

fn verifier(capacity: usize) -> Verifier {
    Verifier::new(
        [key().verification_key().unwrap()],
        Validation::new(ISSUER, "api"),
    )
    .unwrap()
    .with_cache(NonZeroUsize::new(capacity).unwrap())
}

fn token(subject: &str, ttl: Duration) -> String {
    Signer::new(key())
        .sign(&Claims::new(ISSUER, subject, "api", now(), ttl, ()).with_jti(subject))
        .unwrap()
}

fn stats(v: &Verifier) -> CacheStats {
    v.cache_stats().unwrap()
}

#[test]
fn a_second_verification_is_a_hit_with_the_same_claims() {
    let v = verifier(8);
    let t = token("alice", Duration::minutes(15));
    let first: Claims<()> = v.verify_at(&t, now()).into_result().unwrap();
    assert_eq!(
        stats(&v),
        CacheStats {
            entries: 1,
            capacity: 8,
            hits: 0,
            misses: 1
        }
    );
    let second: Claims<()> = v
        .verify_at(&t, now() + Duration::seconds(5))
        .into_result()
        .unwrap();
    assert_eq!(first, second);
    assert_eq!((stats(&v).hits, stats(&v).misses), (1, 1));
    // A clone shares the cache.
    let clone = v.clone();
    let _: Claims<()> = clone.verify_at(&t, now()).into_result().unwrap();
    assert_eq!(stats(&v).hits, 2);
    // Without a cache there are no counters.
    let plain = Verifier::new(
        [key().verification_key().unwrap()],
        Validation::new(ISSUER, "api"),
    )
    .unwrap();
    assert_eq!(plain.cache_stats(), None);
}

#[test]
fn expiry_is_enforced_on_a_hit_and_drops_the_entry() {
    let v = verifier(8);
    let t = token("bob", Duration::minutes(1));
    let _: Claims<()> = v.verify_at(&t, now()).into_result().unwrap();
    let _: Claims<()> = v.verify_at(&t, now()).into_result().unwrap();
    assert_eq!(stats(&v).hits, 1);
    let later = now() + Duration::minutes(2);
    let refused = v.verify_at::<()>(&t, later).into_result().unwrap_err();
    assert!(
        matches!(refused, TokenRejection::Expired { .. }),
        "{refused:?}"
    );
    assert_eq!(stats(&v).entries, 0);
    // Still refused afterwards (now a miss, and not cached again).
    let refused = v.verify_at::<()>(&t, later).into_result().unwrap_err();
    assert!(
        matches!(refused, TokenRejection::Expired { .. }),
        "{refused:?}"
    );
    assert_eq!(stats(&v).entries, 0);
}

#[test]
fn refused_tokens_are_never_cached() {
    let v = verifier(8);
    let t = token("carol", Duration::minutes(15));
    // A changed signature byte, a token for another audience, an expired token, one too
    // large: refused every time, and none is remembered.
    let mut forged = t.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let other_audience = Signer::new(key())
        .sign(&Claims::new(ISSUER, "carol", "admin", now(), Duration::minutes(5), ()).with_jti("x"))
        .unwrap();
    let expired = token("old", Duration::seconds(1));
    let large = "a".repeat(9 * 1024);
    for _ in 0..2 {
        assert!(v.verify_at::<()>(&forged, now()).into_result().is_err());
        assert!(matches!(
            v.verify_at::<()>(&other_audience, now()).into_result(),
            Err(TokenRejection::WrongAudience)
        ));
        assert!(matches!(
            v.verify_at::<()>(&expired, now() + Duration::minutes(1))
                .into_result(),
            Err(TokenRejection::Expired { .. })
        ));
        assert!(matches!(
            v.verify_at::<()>(&large, now()).into_result(),
            Err(TokenRejection::TooLarge { .. })
        ));
    }
    assert_eq!(stats(&v).entries, 0);
    assert_eq!(stats(&v).hits, 0);
    // The genuine token is accepted after all of that.
    let _: Claims<()> = v.verify_at(&t, now()).into_result().unwrap();
    assert_eq!(stats(&v).entries, 1);
}

#[test]
fn memory_is_bounded() {
    let v = verifier(4);
    let tokens: Vec<String> = (0..20)
        .map(|n| token(&format!("user-{n}"), Duration::minutes(15)))
        .collect();
    for t in &tokens {
        let _: Claims<()> = v.verify_at(t, now()).into_result().unwrap();
        assert!(stats(&v).entries <= 4);
    }
    assert_eq!(stats(&v).entries, 4);
    // The newest four are held; older ones are verified again (and still accepted).
    for t in &tokens[16..] {
        let _: Claims<()> = v.verify_at(t, now()).into_result().unwrap();
    }
    assert_eq!(stats(&v).hits, 4);
    let _: Claims<()> = v.verify_at(&tokens[0], now()).into_result().unwrap();
    assert_eq!(stats(&v).hits, 4);
    assert_eq!(stats(&v).entries, 4);
}

#[tokio::test]
async fn revocation_is_checked_on_every_call() {
    let service = TokenService::new(
        Signer::new(key()),
        verifier(8),
        Arc::new(MemoryRevocationStore::new()),
        Arc::new(MemoryRefreshTokenStore::new()),
    );
    let pair = service.issue_pair_at("dave", (), now()).await.unwrap();
    let access = pair.access_token.expose_secret();
    let claims: Claims<()> = service
        .verify_access_at(access, now())
        .await
        .unwrap()
        .into_result()
        .unwrap();
    let _: Claims<()> = service
        .verify_access_at(access, now())
        .await
        .unwrap()
        .into_result()
        .unwrap();
    service.revoke(&claims).await.unwrap();
    assert_eq!(
        service
            .verify_access_at::<()>(access, now())
            .await
            .unwrap()
            .into_result(),
        Err(TokenRejection::Revoked)
    );
}
