//! Behavioural conformance suites for [`RevocationStore`] and [`RefreshTokenStore`]
//! (feature `testing`). Every implementation runs them, so all backends behave the same.
//!
//! ```
//! # async fn example() {
//! use finsec_auth::tokens::{MemoryRefreshTokenStore, MemoryRevocationStore};
//! use finsec_auth::tokens::testing::{refresh_store_conformance, revocation_store_conformance};
//!
//! revocation_store_conformance(&MemoryRevocationStore::new()).await;
//! refresh_store_conformance(&MemoryRefreshTokenStore::new()).await;
//! # }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(example());
//! ```
//!
//! The suites panic at the first deviation, naming the check. They use ids under a fresh
//! random prefix, so they can share a store with other tests.

use super::Result;
use super::store::{NextRefresh, RefreshRecord, RefreshTokenStore, RevocationStore, RotateOutcome};

use futures_util::future::join_all;
use time::{Duration, OffsetDateTime};

#[expect(clippy::panic, reason = "a conformance suite fails by panicking")]
fn fail(check: &str, detail: &str) -> ! {
    panic!("conformance check failed: {check}: {detail}")
}

fn ok<T>(check: &str, r: Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => fail(check, &e.to_string()),
    }
}

fn prefix() -> String {
    let mut b = [0u8; 6];
    if let Err(e) = finsec_crypto::fill_random(&mut b) {
        fail("a random key prefix", &e.to_string());
    }
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("conf-{hex}-")
}

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Runs the [`RevocationStore`] suite: unknown ids are not revoked; revocation holds until
/// the expiry (exclusive) and not after, for one id and for several asked at once
/// (`any_revoked`); revoking twice keeps the later expiry; purge removes only expired
/// entries.
///
/// # Panics
/// At the first deviation from the contract or on any store error.
pub async fn revocation_store_conformance<S: RevocationStore + ?Sized>(store: &S) {
    let p = prefix();
    let now = t0();
    let a = format!("{p}a");
    let b = format!("{p}b");
    if ok("is_revoked unknown", store.is_revoked(&a, now).await) {
        fail("unknown jti", "reported revoked");
    }
    ok(
        "revoke",
        store.revoke(&a, now + Duration::minutes(10)).await,
    );
    if !ok("is_revoked", store.is_revoked(&a, now).await) {
        fail("revoked jti", "not reported revoked");
    }
    if !ok(
        "is_revoked",
        store.is_revoked(&a, now + Duration::seconds(599)).await,
    ) {
        fail("revoked jti before expiry", "not reported revoked");
    }
    if ok(
        "is_revoked",
        store.is_revoked(&a, now + Duration::minutes(10)).await,
    ) {
        fail("revoked jti at expiry", "still reported revoked");
    }
    // Several ids at once: revoked if any one is, each only until its own expiry.
    let none: [&str; 0] = [];
    if ok("any_revoked of none", store.any_revoked(&none, now).await) {
        fail("any_revoked of no ids", "reported revoked");
    }
    if ok(
        "any_revoked unknown",
        store.any_revoked(&[b.as_str()], now).await,
    ) {
        fail("any_revoked of an unknown id", "reported revoked");
    }
    for ids in [[a.as_str(), b.as_str()], [b.as_str(), a.as_str()]] {
        if !ok("any_revoked", store.any_revoked(&ids, now).await) {
            fail("any_revoked with one revoked id", "not reported revoked");
        }
        if ok(
            "any_revoked at expiry",
            store.any_revoked(&ids, now + Duration::minutes(10)).await,
        ) {
            fail(
                "any_revoked at the revoked id's expiry",
                "still reported revoked",
            );
        }
    }
    let three = [b.as_str(), b.as_str(), a.as_str()];
    if !ok("any_revoked of three", store.any_revoked(&three, now).await) {
        fail(
            "any_revoked of three ids, the last revoked",
            "not reported revoked",
        );
    }
    ok(
        "revoke again later",
        store.revoke(&a, now + Duration::minutes(20)).await,
    );
    ok(
        "revoke again earlier",
        store.revoke(&a, now + Duration::minutes(5)).await,
    );
    if !ok(
        "is_revoked",
        store.is_revoked(&a, now + Duration::minutes(15)).await,
    ) {
        fail("re-revocation", "the later expiry was not kept");
    }
    ok(
        "revoke b",
        store.revoke(&b, now + Duration::minutes(1)).await,
    );
    let purged = ok(
        "purge",
        store.purge_expired(now + Duration::minutes(2)).await,
    );
    if purged < 1 {
        fail("purge", "expired entry not removed");
    }
    if !ok(
        "is_revoked after purge",
        store.is_revoked(&a, now + Duration::minutes(15)).await,
    ) {
        fail("purge", "removed a live entry");
    }
    if ok("is_revoked b", store.is_revoked(&b, now).await) {
        fail("purge", "expired entry still present");
    }
}

fn record(p: &str, name: &str, family: &str, expires_at: OffsetDateTime) -> RefreshRecord {
    RefreshRecord {
        token_hash: format!("{p}{name}"),
        family: format!("{p}{family}"),
        subject: format!("{p}user"),
        expires_at,
    }
}

fn next(p: &str, name: &str, expires_at: OffsetDateTime) -> NextRefresh {
    NextRefresh {
        token_hash: format!("{p}{name}"),
        expires_at,
    }
}

/// Runs the [`RefreshTokenStore`] suite: unknown tokens; rotation spends a token and stores
/// its successor in the family; reuse of a spent token revokes the family (successors
/// included); explicit family revocation; expiry; a successor never outliving the token it
/// replaces; duplicate inserts refused; and 8 concurrent
/// rotations of one token yielding exactly one `Rotated`.
///
/// # Panics
/// At the first deviation from the contract or on any store error.
pub async fn refresh_store_conformance<S: RefreshTokenStore + ?Sized>(store: &S) {
    let p = prefix();
    let now = t0();
    let later = now + Duration::days(1);
    let outcome = ok(
        "rotate unknown",
        store
            .rotate(&format!("{p}nope"), next(&p, "n0", later), now)
            .await,
    );
    if outcome != RotateOutcome::Unknown {
        fail("unknown token", &format!("{outcome:?}"));
    }

    // Rotation chain and reuse detection.
    ok("insert", store.insert(record(&p, "r1", "f1", later)).await);
    if store.insert(record(&p, "r1", "f1", later)).await.is_ok() {
        fail("duplicate insert", "accepted");
    }
    match ok(
        "rotate r1",
        store
            .rotate(&format!("{p}r1"), next(&p, "r2", later), now)
            .await,
    ) {
        RotateOutcome::Rotated(spent) if spent == record(&p, "r1", "f1", later) => {}
        other => fail("rotate live token", &format!("{other:?}")),
    }
    match ok(
        "rotate r2",
        store
            .rotate(&format!("{p}r2"), next(&p, "r3", later), now)
            .await,
    ) {
        RotateOutcome::Rotated(spent) if spent == record(&p, "r2", "f1", later) => {}
        other => fail("rotate successor", &format!("{other:?}")),
    }
    match ok(
        "reuse r1",
        store
            .rotate(&format!("{p}r1"), next(&p, "x1", later), now)
            .await,
    ) {
        RotateOutcome::Reused { family } if family == format!("{p}f1") => {}
        other => fail("reuse of spent token", &format!("{other:?}")),
    }
    let outcome = ok(
        "rotate r3",
        store
            .rotate(&format!("{p}r3"), next(&p, "x2", later), now)
            .await,
    );
    if outcome != RotateOutcome::FamilyRevoked {
        fail("live token of revoked family", &format!("{outcome:?}"));
    }

    // Explicit family revocation.
    ok(
        "insert g1",
        store.insert(record(&p, "g1", "f2", later)).await,
    );
    ok(
        "revoke family",
        store.revoke_family(&format!("{p}f2"), now).await,
    );
    let outcome = ok(
        "rotate g1",
        store
            .rotate(&format!("{p}g1"), next(&p, "g2", later), now)
            .await,
    );
    if outcome != RotateOutcome::FamilyRevoked {
        fail("revoked family", &format!("{outcome:?}"));
    }

    // Expiry (at the instant of expiry the token is dead).
    ok("insert e1", store.insert(record(&p, "e1", "f3", now)).await);
    let outcome = ok(
        "rotate e1",
        store
            .rotate(&format!("{p}e1"), next(&p, "e2", later), now)
            .await,
    );
    if outcome != RotateOutcome::Expired {
        fail("expired token", &format!("{outcome:?}"));
    }

    // A successor never outlives the token it replaces: asked for a day, it gets the
    // spent token's ten minutes, and is dead when they are over.
    let short = now + Duration::minutes(10);
    ok(
        "insert s1",
        store.insert(record(&p, "s1", "f5", short)).await,
    );
    match ok(
        "rotate s1",
        store
            .rotate(&format!("{p}s1"), next(&p, "s2", later), now)
            .await,
    ) {
        RotateOutcome::Rotated(_) => {}
        other => fail("rotate s1", &format!("{other:?}")),
    }
    match ok(
        "rotate s2 before the first token's expiry",
        store
            .rotate(
                &format!("{p}s2"),
                next(&p, "s3", later),
                short - Duration::seconds(1),
            )
            .await,
    ) {
        RotateOutcome::Rotated(spent) if spent.expires_at == short => {}
        other => fail(
            "successor's expiry",
            &format!("{other:?} (expected the spent token's, {short})"),
        ),
    }
    let outcome = ok(
        "rotate s3 after the first token's expiry",
        store
            .rotate(&format!("{p}s3"), next(&p, "s4", later), short)
            .await,
    );
    if outcome != RotateOutcome::Expired {
        fail(
            "a session refreshed past its first token's expiry",
            &format!("{outcome:?}"),
        );
    }

    // Concurrent rotations: exactly one wins; the others see a reuse (family revoked).
    ok(
        "insert c0",
        store.insert(record(&p, "c0", "f4", later)).await,
    );
    let names: Vec<String> = (0..8).map(|i| format!("c1-{i}")).collect();
    let c0 = format!("{p}c0");
    let futures: Vec<_> = names
        .iter()
        .map(|n| store.rotate(&c0, next(&p, n, later), now))
        .collect();
    let results = join_all(futures).await;
    let rotated = results
        .into_iter()
        .map(|r| ok("concurrent rotate", r))
        .filter(|o| matches!(o, RotateOutcome::Rotated(_)))
        .count();
    if rotated != 1 {
        fail("concurrent rotation", &format!("{rotated} winners"));
    }
}

/// The cross-instance race checks of both token stores: `a` and `b` are two instances of
/// one store (two servers on one database or one Redis). For a single store, pass it
/// twice.
///
/// Checks that a `jti` revoked on one instance is revoked on the other; that eight
/// concurrent rotations of one refresh token, alternating between the instances, leave
/// exactly one winner and report the rest as reuse; and that the family is then revoked
/// on both instances (the winner's successor no longer rotates on either).
///
/// # Panics
/// At the first deviation from the contract or on any store error.
pub async fn token_stores_two_instances<R, F>(
    revoke_a: &R,
    revoke_b: &R,
    refresh_a: &F,
    refresh_b: &F,
) where
    R: RevocationStore + ?Sized,
    F: RefreshTokenStore + ?Sized,
{
    let p = prefix();
    let now = t0();
    let later = now + Duration::hours(1);

    let jti = format!("{p}jti");
    ok("revoke on one instance", revoke_a.revoke(&jti, later).await);
    if !ok(
        "is_revoked on the other",
        revoke_b.is_revoked(&jti, now).await,
    ) {
        fail(
            "revocation across instances",
            "a jti revoked on one instance is not revoked on the other",
        );
    }

    ok(
        "insert",
        refresh_a.insert(record(&p, "x0", "fx", later)).await,
    );
    let x0 = format!("{p}x0");
    let names: Vec<String> = (0..8).map(|i| format!("x1-{i}")).collect();
    let futures: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let store = if i % 2 == 0 { refresh_a } else { refresh_b };
            store.rotate(&x0, next(&p, n, later), now)
        })
        .collect();
    let outcomes: Vec<RotateOutcome> = join_all(futures)
        .await
        .into_iter()
        .map(|r| ok("racing rotate", r))
        .collect();
    let winners: Vec<&RotateOutcome> = outcomes
        .iter()
        .filter(|o| matches!(o, RotateOutcome::Rotated(_)))
        .collect();
    if winners.len() != 1 {
        fail(
            "rotation across instances",
            &format!("{} winners of one refresh token", winners.len()),
        );
    }
    let reused = outcomes
        .iter()
        .filter(|o| {
            matches!(
                o,
                RotateOutcome::Reused { .. } | RotateOutcome::FamilyRevoked
            )
        })
        .count();
    if reused != outcomes.len() - 1 {
        fail("rotation across instances", &format!("{outcomes:?}"));
    }
    // The winner's successor belongs to a family now revoked by the reuse.
    let Some(winner) = names.iter().enumerate().find_map(|(i, n)| {
        matches!(outcomes.get(i), Some(RotateOutcome::Rotated(_))).then(|| format!("{p}{n}"))
    }) else {
        fail("rotation across instances", "no winner found");
    };
    for (name, store) in [("first", refresh_a), ("second", refresh_b)] {
        let outcome = ok(
            "rotate the successor",
            store
                .rotate(&winner, next(&p, &format!("x2-{name}"), later), now)
                .await,
        );
        if !matches!(outcome, RotateOutcome::FamilyRevoked) {
            fail(
                "family revoked across instances",
                &format!("the {name} instance rotated a successor of a reused token: {outcome:?}"),
            );
        }
    }
}
