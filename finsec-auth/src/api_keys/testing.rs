//! The behavioural conformance suite for [`ApiKeyStore`] implementations (feature
//! `testing`).
//!
//! ```
//! # async fn example() {
//! use finsec_auth::api_keys::MemoryApiKeyStore;
//! use finsec_auth::api_keys::testing::api_key_store_conformance;
//!
//! api_key_store_conformance(&MemoryApiKeyStore::new()).await;
//! # }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(example());
//! ```
//!
//! The suite panics (fails the test) at the first deviation, naming the check. It uses
//! fresh random key ids and a random owner, so it can share a store with other tests and
//! run several times against one store.

use futures_util::future::join_all;

use finsec_rbac::PermissionPattern;
use time::OffsetDateTime;
use time::macros::datetime;

use super::{
    ApiKeyError, ApiKeyId, ApiKeyRecord, ApiKeyStore, MAX_USE_COUNT, Result, SecretHash,
    UsageUpdate,
};

const T0: OffsetDateTime = datetime!(2024-03-01 12:00:00.123456 UTC);
const T1: OffsetDateTime = datetime!(2024-03-02 08:30:00.000001 UTC);
const T2: OffsetDateTime = datetime!(2024-03-03 00:00 UTC);
const T3: OffsetDateTime = datetime!(2024-03-04 00:00 UTC);

/// Runs the whole [`ApiKeyStore`] conformance suite against `store`.
///
/// Checks: absent ids; insert and read back unchanged (scopes in order, microsecond
/// times, [`MAX_USE_COUNT`]); duplicate ids refused without change; listing by
/// owner in creation order; revocation (idempotent, first time kept, unknown id is
/// `NotFound`); rotation (old expiry capped, `replaced_by` set, new inserted; refused for
/// unknown, revoked or already rotated keys and for a duplicate new id, changing nothing);
/// batched usage (counts add, saturate, last use only moves forward, unknown ids ignored);
/// 8 concurrent rotations of one key (exactly one wins) and 8 concurrent usage batches
/// (all counted).
///
/// # Panics
/// At the first behaviour that differs from the [`ApiKeyStore`] contract, or on any
/// unexpected store error.
pub async fn api_key_store_conformance<S: ApiKeyStore + ?Sized>(store: &S) {
    let owner = format!("conformance-{}", ok("id", ApiKeyId::random()));
    insert_get(store, &owner).await;
    revoke(store, &owner).await;
    rotate(store, &owner).await;
    usage(store, &owner).await;
    list(store, &owner).await;
    concurrent(store, store, &owner).await;
}

/// The cross-instance race checks: `a` and `b` are two instances of one store (two
/// servers on one database). For a single store, pass it twice.
///
/// Checks that a key inserted on one instance reads back unchanged on the other; that 8
/// concurrent rotations of one key and 8 concurrent usage batches, alternating between
/// the instances, leave exactly one rotation winner and count every use; and that a
/// revocation on one instance is seen by the other.
///
/// # Panics
/// At the first behaviour that differs from the [`ApiKeyStore`] contract, or on any
/// unexpected store error.
pub async fn api_key_store_two_instances<S: ApiKeyStore + ?Sized>(a: &S, b: &S) {
    let owner = format!("conformance-{}", ok("id", ApiKeyId::random()));
    let key = record(&owner, T0, 60);
    ok("insert on one instance", a.insert(&key).await);
    check(
        "a key inserted on one instance reads back unchanged on the other",
        get(b, &key.id).await == key,
    );
    concurrent(a, b, &owner).await;
    check(
        "revoke on one instance",
        ok("revoke", b.revoke(&key.id, T1).await),
    );
    check(
        "a revocation on one instance is seen by the other",
        get(a, &key.id).await.revoked_at == Some(T1),
    );
}

/// 8 concurrent rotations of one key and 8 concurrent usage batches, alternating between
/// `a` and `b` (the same store twice, or two instances of one).
async fn concurrent<S: ApiKeyStore + ?Sized>(a: &S, b: &S, owner: &str) {
    let pick = |i: usize| if i.is_multiple_of(2) { a } else { b };
    let store = a;
    // 8 concurrent rotations of one key: exactly one wins.
    let old = record(owner, T0, 20);
    ok("insert", store.insert(&old).await);
    let news: Vec<ApiKeyRecord> = (0..8).map(|i| record(owner, T1, 21 + i)).collect();
    let results = join_all(
        news.iter()
            .enumerate()
            .map(|(i, n)| pick(i).rotate(&old.id, n, T2)),
    )
    .await;
    check(
        "concurrent rotate: exactly one succeeds",
        results.iter().filter(|r| r.is_ok()).count() == 1,
    );
    check(
        "concurrent rotate: the others are InvalidState",
        results
            .iter()
            .filter(|r| matches!(r, Err(ApiKeyError::InvalidState { .. })))
            .count()
            == 7,
    );
    let winner = get(store, &old.id).await.replaced_by;
    let mut inserted = 0;
    for n in &news {
        if ok("get", store.get(&n.id).await).is_some() {
            inserted += 1;
            check("concurrent rotate: winner recorded", winner == Some(n.id));
        }
    }
    check("concurrent rotate: one new key stored", inserted == 1);
    // 8 concurrent usage batches all count.
    let a = record(owner, T0, 40);
    ok("insert", store.insert(&a).await);
    let batches: Vec<[UsageUpdate; 1]> = (0..8)
        .map(|_| {
            [UsageUpdate {
                id: a.id,
                uses: 2,
                last_used_at: T1,
            }]
        })
        .collect();
    let results = join_all(
        batches
            .iter()
            .enumerate()
            .map(|(i, batch)| pick(i).record_usage(batch)),
    )
    .await;
    check(
        "concurrent usage: all succeed",
        results.iter().all(Result::is_ok),
    );
    check(
        "concurrent usage: every use counted",
        get(store, &a.id).await.use_count == 16,
    );
}

#[expect(
    clippy::panic,
    reason = "a conformance suite fails the calling test by panicking"
)]
fn ok<T>(step: &str, result: Result<T>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("conformance: {step}: store returned an error: {e}"),
    }
}

#[expect(
    clippy::panic,
    reason = "a conformance suite fails the calling test by panicking"
)]
fn check(step: &str, cond: bool) {
    if !cond {
        panic!("conformance: {step}");
    }
}

fn pattern(s: &str) -> PermissionPattern {
    match PermissionPattern::new(s) {
        Ok(p) => p,
        Err(_) => PermissionPattern::any(),
    }
}

fn record(owner: &str, created_at: OffsetDateTime, fill: u8) -> ApiKeyRecord {
    ApiKeyRecord {
        id: ok("id", ApiKeyId::random()),
        owner: owner.into(),
        scopes: vec![pattern("orders:read"), pattern("trade:*"), pattern("*")].into(),
        secret_hash: SecretHash::from_bytes([fill; 32]),
        created_at,
        expires_at: None,
        revoked_at: None,
        replaced_by: None,
        last_used_at: None,
        use_count: 0,
        networks: super::ClientNetworks::default(),
    }
}

/// Client networks of both families, as [`ApiKeys`](super::ApiKeys) stores them.
fn networks() -> super::ClientNetworks {
    use std::net::{Ipv4Addr, Ipv6Addr};
    let v4 = ipnet::Ipv4Net::new(Ipv4Addr::new(10, 20, 0, 0), 16)
        .ok()
        .map(ipnet::IpNet::V4);
    let v6 = ipnet::Ipv6Net::new(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32)
        .ok()
        .map(ipnet::IpNet::V6);
    [v4, v6].into_iter().flatten().collect()
}

async fn get<S: ApiKeyStore + ?Sized>(store: &S, id: &ApiKeyId) -> ApiKeyRecord {
    let got = ok("get", store.get(id).await);
    match got {
        Some(r) => r,
        None => {
            check("get: a stored key is found", false);
            record("", T0, 0)
        }
    }
}

async fn insert_get<S: ApiKeyStore + ?Sized>(store: &S, owner: &str) {
    let missing = ok("id", ApiKeyId::random());
    check(
        "get: unknown id is None",
        ok("get", store.get(&missing).await).is_none(),
    );
    let mut r = record(owner, T0, 1);
    r.expires_at = Some(T2);
    r.last_used_at = Some(T1);
    r.use_count = MAX_USE_COUNT;
    r.networks = networks();
    check(
        "insert: two client networks to store",
        r.networks.len() == 2,
    );
    ok("insert", store.insert(&r).await);
    check("insert: read back unchanged", get(store, &r.id).await == r);
    let mut dup = record(owner, T1, 2);
    dup.id = r.id;
    check(
        "insert: duplicate id is DuplicateId",
        matches!(store.insert(&dup).await, Err(ApiKeyError::DuplicateId { id }) if id == r.id),
    );
    check(
        "insert: duplicate changes nothing",
        get(store, &r.id).await == r,
    );
    let mut empty = record(owner, T1, 3);
    empty.scopes = std::sync::Arc::from([]);
    ok("insert empty scopes", store.insert(&empty).await);
    check(
        "insert: empty scopes read back",
        get(store, &empty.id).await.scopes.is_empty(),
    );
}

async fn revoke<S: ApiKeyStore + ?Sized>(store: &S, owner: &str) {
    let r = record(owner, T0, 4);
    ok("insert", store.insert(&r).await);
    check(
        "revoke: first time is true",
        ok("revoke", store.revoke(&r.id, T1).await),
    );
    check(
        "revoke: second time is false",
        !ok("revoke", store.revoke(&r.id, T2).await),
    );
    check(
        "revoke: first time kept",
        get(store, &r.id).await.revoked_at == Some(T1),
    );
    let missing = ok("id", ApiKeyId::random());
    check(
        "revoke: unknown id is NotFound",
        matches!(store.revoke(&missing, T1).await, Err(ApiKeyError::NotFound { id }) if id == missing),
    );
}

async fn rotate<S: ApiKeyStore + ?Sized>(store: &S, owner: &str) {
    // No expiry: set to the end of the overlap.
    let old = record(owner, T0, 5);
    ok("insert", store.insert(&old).await);
    let new = record(owner, T1, 6);
    ok("rotate", store.rotate(&old.id, &new, T2).await);
    let got_old = get(store, &old.id).await;
    check("rotate: old expiry set", got_old.expires_at == Some(T2));
    check(
        "rotate: old replaced_by set",
        got_old.replaced_by == Some(new.id),
    );
    check("rotate: new inserted", get(store, &new.id).await == new);
    // Rotating again is refused and changes nothing.
    let again = record(owner, T1, 7);
    check(
        "rotate: already rotated is InvalidState",
        matches!(
            store.rotate(&old.id, &again, T3).await,
            Err(ApiKeyError::InvalidState { .. })
        ),
    );
    check(
        "rotate: refused rotation inserts nothing",
        ok("get", store.get(&again.id).await).is_none(),
    );
    check(
        "rotate: refused rotation keeps expiry",
        get(store, &old.id).await == got_old,
    );
    // An earlier expiry is kept.
    let mut soon = record(owner, T0, 8);
    soon.expires_at = Some(T1);
    ok("insert", store.insert(&soon).await);
    let soon_new = record(owner, T1, 9);
    ok("rotate", store.rotate(&soon.id, &soon_new, T3).await);
    check(
        "rotate: earlier expiry kept",
        get(store, &soon.id).await.expires_at == Some(T1),
    );
    // Revoked keys and unknown keys cannot be rotated.
    let revoked = record(owner, T0, 10);
    ok("insert", store.insert(&revoked).await);
    ok("revoke", store.revoke(&revoked.id, T1).await);
    let r_new = record(owner, T1, 11);
    check(
        "rotate: revoked is InvalidState",
        matches!(
            store.rotate(&revoked.id, &r_new, T2).await,
            Err(ApiKeyError::InvalidState { .. })
        ),
    );
    check(
        "rotate: revoked rotation inserts nothing",
        ok("get", store.get(&r_new.id).await).is_none(),
    );
    let missing = ok("id", ApiKeyId::random());
    check(
        "rotate: unknown is NotFound",
        matches!(
            store.rotate(&missing, &r_new, T2).await,
            Err(ApiKeyError::NotFound { .. })
        ),
    );
    // A duplicate new id is refused and the old key is unchanged.
    let fresh = record(owner, T0, 12);
    ok("insert", store.insert(&fresh).await);
    let mut dup = record(owner, T1, 13);
    dup.id = new.id;
    check(
        "rotate: duplicate new id is DuplicateId",
        matches!(
            store.rotate(&fresh.id, &dup, T2).await,
            Err(ApiKeyError::DuplicateId { .. })
        ),
    );
    check(
        "rotate: duplicate leaves old unchanged",
        get(store, &fresh.id).await == fresh,
    );
    check(
        "rotate: duplicate leaves existing new unchanged",
        get(store, &new.id).await == new,
    );
}

async fn usage<S: ApiKeyStore + ?Sized>(store: &S, owner: &str) {
    let a = record(owner, T0, 14);
    let mut b = record(owner, T0, 15);
    b.use_count = MAX_USE_COUNT - 1;
    b.last_used_at = Some(T2);
    ok("insert", store.insert(&a).await);
    ok("insert", store.insert(&b).await);
    let missing = ok("id", ApiKeyId::random());
    let batch = [
        UsageUpdate {
            id: a.id,
            uses: 3,
            last_used_at: T1,
        },
        UsageUpdate {
            id: missing,
            uses: 1,
            last_used_at: T1,
        },
        UsageUpdate {
            id: b.id,
            uses: 5,
            last_used_at: T1,
        },
    ];
    ok("record_usage", store.record_usage(&batch).await);
    let got_a = get(store, &a.id).await;
    check("usage: count added", got_a.use_count == 3);
    check("usage: last used set", got_a.last_used_at == Some(T1));
    let got_b = get(store, &b.id).await;
    check("usage: count saturates", got_b.use_count == MAX_USE_COUNT);
    check(
        "usage: last used never moves back",
        got_b.last_used_at == Some(T2),
    );
    check(
        "usage: unknown ids ignored",
        ok("get", store.get(&missing).await).is_none(),
    );
    ok(
        "record_usage",
        store
            .record_usage(&[UsageUpdate {
                id: a.id,
                uses: 2,
                last_used_at: T3,
            }])
            .await,
    );
    let got_a = get(store, &a.id).await;
    check(
        "usage: second batch adds",
        got_a.use_count == 5 && got_a.last_used_at == Some(T3),
    );
    ok("record_usage empty", store.record_usage(&[]).await);
}

async fn list<S: ApiKeyStore + ?Sized>(store: &S, owner: &str) {
    let listed = ok("list", store.list_for_owner(owner).await);
    // 2 (insert_get) + 1 (revoke) + 6 (rotate) + 2 (usage).
    check("list: every key of the owner", listed.len() == 11);
    check(
        "list: ordered by creation time then id",
        listed
            .windows(2)
            .all(|w| matches!(w, [x, y] if (x.created_at, x.id) < (y.created_at, y.id))),
    );
    check(
        "list: only this owner",
        listed.iter().all(|r| *r.owner == *owner),
    );
    let other = ok("list", store.list_for_owner("conformance-nobody-x").await);
    check("list: unknown owner is empty", other.is_empty());
}
