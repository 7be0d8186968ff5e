//! Behavioural conformance suites for the crate's storage traits (feature `testing`).
//!
//! Every [`SubjectKeyStore`] implementation, the ones in this crate and any written
//! elsewhere (a KMS-backed store, another database), runs
//! [`subject_key_store_conformance`] from its tests, so all of them behave the same:
//!
//! ```
//! # async fn example() {
//! use finsec_crypto::subject::MemorySubjectKeyStore;
//! use finsec_crypto::testing::subject_key_store_conformance;
//!
//! subject_key_store_conformance(&MemorySubjectKeyStore::new()).await;
//! # }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(example());
//! ```
//!
//! The suite panics (fails the test) at the first deviation, naming the check. It only
//! touches subjects under a fresh random id prefix, so it can share a store with other
//! tests and run several times against one store.

use futures_util::future::join_all;

use time::OffsetDateTime;
use time::macros::datetime;

use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::provider::{KekRef, KeyName, KeyProvider, MAX_WRAPPED_DEK_LEN, WrapNonce, WrappedDek};
use crate::secret::{Key256, random_array};
use crate::subject::{StoredSubjectKey, SubjectId, SubjectKeyState, SubjectKeyStore};

/// Runs the whole [`SubjectKeyStore`] conformance suite against `store`.
///
/// Checks, in order: absent subjects; insert-if-absent (first writer wins, the stored value
/// comes back unchanged, timestamps are truncated to microseconds); extreme values (128-byte
/// ids, KEK version `u32::MAX`, 1024-byte wrapped keys); compare-and-set re-wrapping;
/// destruction and tombstones (also for subjects that never had a key); keyset pagination
/// in byte order of the subject id, skipping tombstones, and refusing a page size of 0;
/// and 16 concurrent `insert_if_absent` calls for one subject all returning the same key.
///
/// # Panics
/// At the first behaviour that differs from the [`SubjectKeyStore`] contract, or on any
/// store error.
pub async fn subject_key_store_conformance<S: SubjectKeyStore + ?Sized>(store: &S) {
    let ids = Ids::new();
    absent(store, &ids).await;
    insert_if_absent(store, &ids).await;
    extreme_values(store, &ids).await;
    replace_wrapped(store, &ids).await;
    destroy(store, &ids).await;
    destroy_without_key(store, &ids).await;
    list_active(store, &ids).await;
    concurrent_insert(store, &ids).await;
}

/// Fresh subject ids under a random prefix, so runs never collide.
struct Ids {
    prefix: String,
}

impl Ids {
    fn new() -> Self {
        let random: [u8; 6] = ok("random prefix", random_array());
        let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
        Self {
            prefix: format!("conformance-{hex}-"),
        }
    }

    fn id(&self, name: &str) -> SubjectId {
        ok(
            "subject id",
            SubjectId::new(format!("{}{name}", self.prefix)),
        )
    }
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

fn kek(version: u32) -> KekRef {
    KekRef {
        name: ok("kek name", KeyName::new("conformance-kek")),
        version,
    }
}

fn wrapped(fill: u8, len: usize) -> WrappedDek {
    ok("wrapped key", WrappedDek::new(vec![fill; len]))
}

fn key(
    subject: &SubjectId,
    version: u32,
    fill: u8,
    created_at: OffsetDateTime,
) -> StoredSubjectKey {
    StoredSubjectKey {
        subject: subject.clone(),
        kek: kek(version),
        wrapped: wrapped(fill, 60),
        created_at,
    }
}

const T0: OffsetDateTime = datetime!(2024-03-01 12:00:00.123456 UTC);
const T1: OffsetDateTime = datetime!(2024-03-02 08:30:00.000001 UTC);
const T2: OffsetDateTime = datetime!(2024-03-03 00:00 UTC);

async fn absent<S: SubjectKeyStore + ?Sized>(store: &S, ids: &Ids) {
    let nobody = ids.id("absent");
    assert_eq!(
        ok("get absent", store.get(&nobody).await),
        SubjectKeyState::Absent,
        "conformance: a subject never written must be Absent"
    );
    assert!(
        !ok(
            "replace_wrapped on absent",
            store
                .replace_wrapped(&nobody, &kek(1), kek(2), wrapped(2, 60))
                .await
        ),
        "conformance: replace_wrapped on an absent subject must return false"
    );
    assert_eq!(
        ok("get absent again", store.get(&nobody).await),
        SubjectKeyState::Absent,
        "conformance: replace_wrapped must not create a row"
    );
}

async fn insert_if_absent<S: SubjectKeyStore + ?Sized>(store: &S, ids: &Ids) {
    let alice = ids.id("insert");
    let first = key(&alice, 1, 0xA1, T0);
    let stored = ok("insert", store.insert_if_absent(first.clone()).await);
    assert_eq!(
        stored,
        SubjectKeyState::Active(first.clone()),
        "conformance: insert_if_absent must return the key it stored"
    );
    assert_eq!(
        ok("get after insert", store.get(&alice).await),
        SubjectKeyState::Active(first.clone()),
        "conformance: get must return the inserted key unchanged"
    );

    let second = key(&alice, 2, 0xB2, T1);
    assert_eq!(
        ok("second insert", store.insert_if_absent(second).await),
        SubjectKeyState::Active(first.clone()),
        "conformance: insert_if_absent on an existing subject must return the existing key"
    );
    assert_eq!(
        ok("get after second insert", store.get(&alice).await),
        SubjectKeyState::Active(first),
        "conformance: the first key must win"
    );

    // Sub-microsecond parts are truncated (towards the past), by every store alike.
    let precise = ids.id("precise-time");
    let mut k = key(&precise, 1, 3, datetime!(2024-05-06 07:08:09.123456789 UTC));
    let state = ok("insert precise", store.insert_if_absent(k.clone()).await);
    k.created_at = datetime!(2024-05-06 07:08:09.123456 UTC);
    assert_eq!(
        state,
        SubjectKeyState::Active(k.clone()),
        "conformance: created_at must be kept to the microsecond (truncated)"
    );
    assert_eq!(
        ok("get precise", store.get(&precise).await),
        SubjectKeyState::Active(k),
        "conformance: created_at must read back truncated to the microsecond"
    );
}

async fn extreme_values<S: SubjectKeyStore + ?Sized>(store: &S, ids: &Ids) {
    // A 128-byte id using the whole allowed alphabet's edges.
    let pad = 128 - ids.prefix.len();
    let long = ids.id(&format!("!~{}", "z".repeat(pad - 2)));
    assert_eq!(long.as_str().len(), 128);
    let k = StoredSubjectKey {
        subject: long.clone(),
        kek: kek(u32::MAX),
        wrapped: wrapped(0xFF, MAX_WRAPPED_DEK_LEN),
        created_at: datetime!(1969-07-20 20:17:40.000001 UTC),
    };
    assert_eq!(
        ok("insert extreme", store.insert_if_absent(k.clone()).await),
        SubjectKeyState::Active(k.clone()),
        "conformance: 128-byte ids, version u32::MAX, 1024-byte wrapped keys and times \
         before 1970 must round-trip"
    );
    assert_eq!(
        ok("get extreme", store.get(&long).await),
        SubjectKeyState::Active(k)
    );
    let one_byte = ids.id("one-byte-wrap");
    let k = StoredSubjectKey {
        subject: one_byte.clone(),
        kek: kek(1),
        wrapped: wrapped(0, 1),
        created_at: T0,
    };
    ok("insert 1-byte", store.insert_if_absent(k.clone()).await);
    assert_eq!(
        ok("get 1-byte", store.get(&one_byte).await),
        SubjectKeyState::Active(k),
        "conformance: a 1-byte wrapped key (all zero) must round-trip"
    );
}

async fn replace_wrapped<S: SubjectKeyStore + ?Sized>(store: &S, ids: &Ids) {
    let bob = ids.id("rewrap");
    let original = key(&bob, 1, 0x11, T0);
    ok("insert", store.insert_if_absent(original.clone()).await);

    // Stale expectation (wrong version, then wrong name): nothing changes.
    let other_name = KekRef {
        name: ok("kek name", KeyName::new("conformance-other")),
        version: 1,
    };
    for stale in [kek(2), other_name] {
        assert!(
            !ok(
                "replace_wrapped stale",
                store
                    .replace_wrapped(&bob, &stale, kek(3), wrapped(0x33, 60))
                    .await
            ),
            "conformance: replace_wrapped must refuse when the current KEK is not `old` ({stale})"
        );
    }
    assert_eq!(
        ok("get after stale replace", store.get(&bob).await),
        SubjectKeyState::Active(original.clone()),
        "conformance: a refused replace_wrapped must change nothing"
    );

    assert!(
        ok(
            "replace_wrapped",
            store
                .replace_wrapped(&bob, &kek(1), kek(2), wrapped(0x22, 61))
                .await
        ),
        "conformance: replace_wrapped with the current KEK must succeed"
    );
    let mut expected = original;
    expected.kek = kek(2);
    expected.wrapped = wrapped(0x22, 61);
    assert_eq!(
        ok("get after replace", store.get(&bob).await),
        SubjectKeyState::Active(expected.clone()),
        "conformance: replace_wrapped must change only the KEK and the wrapped key"
    );
    assert!(
        !ok(
            "replace_wrapped repeated",
            store
                .replace_wrapped(&bob, &kek(1), kek(3), wrapped(0x33, 60))
                .await
        ),
        "conformance: a second compare-and-set from the old KEK must fail"
    );
    assert_eq!(
        ok("get after repeated replace", store.get(&bob).await),
        SubjectKeyState::Active(expected)
    );
}

async fn destroy<S: SubjectKeyStore + ?Sized>(store: &S, ids: &Ids) {
    let carol = ids.id("destroy");
    ok(
        "insert",
        store.insert_if_absent(key(&carol, 1, 0xC0, T0)).await,
    );
    assert!(
        ok("destroy", store.destroy(&carol, T1).await),
        "conformance: destroying an active key must return true"
    );
    let tombstone = SubjectKeyState::Destroyed { destroyed_at: T1 };
    assert_eq!(
        ok("get destroyed", store.get(&carol).await),
        tombstone,
        "conformance: a destroyed key must read as Destroyed with its time"
    );
    assert!(
        !ok("destroy again", store.destroy(&carol, T2).await),
        "conformance: destroying twice must return false"
    );
    assert_eq!(
        ok("get destroyed again", store.get(&carol).await),
        tombstone,
        "conformance: the first destruction time must stay"
    );
    assert_eq!(
        ok(
            "insert after destroy",
            store.insert_if_absent(key(&carol, 1, 0xC1, T2)).await
        ),
        tombstone,
        "conformance: a destroyed subject must never get a new key"
    );
    assert!(
        !ok(
            "replace_wrapped destroyed",
            store
                .replace_wrapped(&carol, &kek(1), kek(2), wrapped(0xC2, 60))
                .await
        ),
        "conformance: replace_wrapped must not resurrect a destroyed key"
    );
    assert_eq!(
        ok("get after all", store.get(&carol).await),
        tombstone,
        "conformance: the tombstone must survive insert and replace attempts"
    );

    let precise = ids.id("destroy-precise");
    ok(
        "insert",
        store.insert_if_absent(key(&precise, 1, 1, T0)).await,
    );
    ok(
        "destroy precise",
        store
            .destroy(&precise, datetime!(2024-03-04 05:06:07.999999999 UTC))
            .await,
    );
    assert_eq!(
        ok("get destroyed precise", store.get(&precise).await),
        SubjectKeyState::Destroyed {
            destroyed_at: datetime!(2024-03-04 05:06:07.999999 UTC)
        },
        "conformance: destroyed_at must be kept to the microsecond (truncated)"
    );
}

async fn destroy_without_key<S: SubjectKeyStore + ?Sized>(store: &S, ids: &Ids) {
    let dave = ids.id("erased-before-key");
    assert!(
        !ok("destroy absent", store.destroy(&dave, T1).await),
        "conformance: destroying a subject without a key must return false"
    );
    let tombstone = SubjectKeyState::Destroyed { destroyed_at: T1 };
    assert_eq!(
        ok("get tombstone", store.get(&dave).await),
        tombstone,
        "conformance: destroying a subject without a key must leave a tombstone"
    );
    assert_eq!(
        ok(
            "insert after tombstone",
            store.insert_if_absent(key(&dave, 1, 0xD0, T2)).await
        ),
        tombstone,
        "conformance: a subject erased before having a key must never get one"
    );
}

async fn list_active<S: SubjectKeyStore + ?Sized>(store: &S, ids: &Ids) {
    // Names chosen so that byte order differs from case-insensitive or locale order.
    let names = [
        "list-B", "list-a", "list-Z", "list-_", "list-0", "list-~", "list-b", "list-A",
    ];
    let mut expected = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let subject = ids.id(name);
        let fill = u8::try_from(i).unwrap_or(0);
        let k = key(&subject, 1, fill, T0);
        ok("insert for list", store.insert_if_absent(k.clone()).await);
        expected.push(k);
    }
    // Two tombstones among them must not be listed.
    let gone = ids.id("list-M");
    ok(
        "insert for list",
        store.insert_if_absent(key(&gone, 1, 9, T0)).await,
    );
    ok("destroy for list", store.destroy(&gone, T1).await);
    ok(
        "tombstone for list",
        store.destroy(&ids.id("list-c"), T1).await,
    );
    expected.sort_by(|a, b| {
        a.subject
            .as_str()
            .as_bytes()
            .cmp(b.subject.as_str().as_bytes())
    });

    // Start just below our first id; only our ids are compared.
    let start = ids.id("list-");
    let mine = |page: Vec<StoredSubjectKey>| -> Vec<StoredSubjectKey> {
        page.into_iter()
            .filter(|k| k.subject.as_str().starts_with(start.as_str()))
            .collect()
    };

    for limit in [1_u32, 3, 8, 100] {
        let mut seen: Vec<StoredSubjectKey> = Vec::new();
        let mut after = start.clone();
        loop {
            let page = ok("list_active", store.list_active(Some(&after), limit).await);
            if let Some(first) = page.first() {
                assert!(
                    first.subject.as_str().as_bytes() > after.as_str().as_bytes(),
                    "conformance: list_active(after={after}) must list only subjects greater \
                     than `after`, got {}",
                    first.subject
                );
            }
            assert!(
                page.len() <= usize::try_from(limit).unwrap_or(usize::MAX),
                "conformance: list_active returned more than limit={limit} keys"
            );
            for pair in page.windows(2) {
                if let [a, b] = pair {
                    assert!(
                        a.subject.as_str().as_bytes() < b.subject.as_str().as_bytes(),
                        "conformance: list_active must be in ascending byte order ({} then {})",
                        a.subject,
                        b.subject
                    );
                }
            }
            let Some(last) = page.last().map(|k| k.subject.clone()) else {
                break;
            };
            let done = !last.as_str().starts_with(start.as_str());
            seen.extend(mine(page));
            if done {
                break;
            }
            after = last;
        }
        assert_eq!(
            seen, expected,
            "conformance: paging with limit={limit} must list every active key once, in byte \
             order of the subject id, without tombstones"
        );
    }

    // Without `after`, our keys appear in the same order (the store may hold others).
    let all = {
        let mut all = Vec::new();
        let mut after: Option<SubjectId> = None;
        loop {
            let page = ok(
                "list_active from start",
                store.list_active(after.as_ref(), 50).await,
            );
            let full = page.len() == 50;
            after = page.last().map(|k| k.subject.clone());
            all.extend(mine(page));
            if !full {
                break all;
            }
        }
    };
    assert_eq!(
        all, expected,
        "conformance: list_active(None, ..) must start at the smallest subject id"
    );

    assert!(
        matches!(
            store.list_active(None, 0).await,
            Err(Error::InvalidParameter { name: "limit", .. })
        ),
        "conformance: list_active with limit 0 must fail with InvalidParameter(limit)"
    );
}

/// The cross-instance race checks: `a` and `b` are two instances of one store (two
/// processes on one database, say two pools). For a single store, pass it twice.
///
/// Checks, with every racing call alternating between the instances:
/// - 16 concurrent `insert_if_absent` calls for one new subject all return the one key
///   that was stored, and both instances then read it;
/// - two concurrent `replace_wrapped` calls from the same old KEK version: exactly one
///   succeeds, and both instances read its result;
/// - `destroy` on one instance racing 8 `insert_if_absent` calls: once it returned, both
///   instances read `Destroyed`, and inserting on either is refused with `Destroyed`.
///
/// # Panics
/// At the first behaviour that differs from the [`SubjectKeyStore`] contract, or on any
/// store error.
pub async fn subject_key_store_two_instances<A, B>(a: &A, b: &B)
where
    A: SubjectKeyStore + ?Sized,
    B: SubjectKeyStore + ?Sized,
{
    let ids = Ids::new();

    let first = ids.id("two-instances-first-use");
    let inserts = (0..16_u8).map(|i| {
        let candidate = key(&first, 1, i, T0);
        async move {
            if i % 2 == 0 {
                a.insert_if_absent(candidate).await
            } else {
                b.insert_if_absent(candidate).await
            }
        }
    });
    let results = join_all(inserts).await;
    let stored = ok("get on the first instance", a.get(&first).await);
    assert!(
        matches!(stored, SubjectKeyState::Active(_)),
        "conformance: after racing inserts the subject must have an active key"
    );
    assert_eq!(
        ok("get on the second instance", b.get(&first).await),
        stored,
        "conformance: both instances must read the one stored key"
    );
    for result in results {
        assert_eq!(
            ok("racing insert", result),
            stored,
            "conformance: every racing insert_if_absent, on either instance, must return the one stored key"
        );
    }

    let rewrap = ids.id("two-instances-rewrap");
    ok(
        "insert",
        a.insert_if_absent(key(&rewrap, 1, 0x21, T0)).await,
    );
    let (x, y) = futures_util::future::join(
        a.replace_wrapped(&rewrap, &kek(1), kek(2), wrapped(0x22, 60)),
        b.replace_wrapped(&rewrap, &kek(1), kek(3), wrapped(0x23, 60)),
    )
    .await;
    let (x, y) = (ok("racing rewrap", x), ok("racing rewrap", y));
    assert!(
        x != y,
        "conformance: of two racing replace_wrapped calls from one version, exactly one must win"
    );
    let winner = if x { kek(2) } else { kek(3) };
    for (name, state) in [
        ("first", ok("get", a.get(&rewrap).await)),
        ("second", ok("get", b.get(&rewrap).await)),
    ] {
        let SubjectKeyState::Active(now) = state else {
            unreachable_state(&state);
        };
        assert_eq!(
            now.kek, winner,
            "conformance: the {name} instance must read the winning re-wrap"
        );
    }

    let erased = ids.id("two-instances-erase");
    let writers = (0..8_u8).map(|i| {
        let candidate = key(&erased, 1, i, T0);
        async move {
            if i % 2 == 0 {
                a.insert_if_absent(candidate).await
            } else {
                b.insert_if_absent(candidate).await
            }
        }
    });
    let (written, destroyed) =
        futures_util::future::join(join_all(writers), b.destroy(&erased, T1)).await;
    ok("racing destroy", destroyed);
    for result in written {
        ok("insert racing destroy", result);
    }
    for (name, state) in [
        ("first", ok("get", a.get(&erased).await)),
        ("second", ok("get", b.get(&erased).await)),
    ] {
        assert!(
            matches!(state, SubjectKeyState::Destroyed { .. }),
            "conformance: after destroy returned, the {name} instance must read Destroyed, found {state:?}"
        );
    }
    for (name, result) in [
        ("first", a.insert_if_absent(key(&erased, 1, 0x30, T2)).await),
        (
            "second",
            b.insert_if_absent(key(&erased, 1, 0x31, T2)).await,
        ),
    ] {
        assert!(
            matches!(
                ok("insert after destroy", result),
                SubjectKeyState::Destroyed { .. }
            ),
            "conformance: a destroyed subject must never get a key again (on the {name} instance)"
        );
    }
}

async fn concurrent_insert<S: SubjectKeyStore + ?Sized>(store: &S, ids: &Ids) {
    let eve = ids.id("concurrent");
    let attempts: Vec<_> = (0..16_u8)
        .map(|i| store.insert_if_absent(key(&eve, 1, i, T0)))
        .collect();
    let results = join_all(attempts).await;
    let stored = ok("get after concurrent inserts", store.get(&eve).await);
    let SubjectKeyState::Active(winner) = &stored else {
        unreachable_state(&stored);
    };
    for result in results {
        assert_eq!(
            ok("concurrent insert", result),
            stored,
            "conformance: every concurrent insert_if_absent must return the one stored key"
        );
    }
    assert_eq!(winner.subject, eve);
}

#[expect(
    clippy::panic,
    reason = "a conformance suite fails the calling test by panicking"
)]
fn unreachable_state(state: &SubjectKeyState) -> ! {
    panic!("conformance: the subject's key must be Active here, found {state:?}")
}

/// Runs the [`KeyProvider`] conformance suite against `provider`, which must hold the two
/// distinct keys `key` and `other` (created by the caller; a KMS-backed provider points
/// them at two test keys).
///
/// Checks: the primary version is at least 1; a wrapped data key names `key` and its
/// primary version and unwraps to the same bytes, by [`KeyProvider::wrap_dek`] and by
/// [`KeyProvider::wrap_dek_with_nonce`]; a wrapped key unwrapped under the other key's
/// name, or under a version that does not exist, fails; every single-bit change of the
/// wrapped bytes fails with [`Error::KeyUnwrap`], as does every truncation; a name the
/// provider does not hold is [`Error::UnknownKey`] for wrapping, unwrapping and the
/// primary version; and an [`Envelope`] over the provider round trips.
///
/// # Panics
/// At the first behaviour that differs from the [`KeyProvider`] contract, or on any
/// unexpected provider error.
pub fn key_provider_conformance<P: KeyProvider + ?Sized>(
    provider: &P,
    key: &KeyName,
    other: &KeyName,
) {
    assert_ne!(key, other, "conformance: pass two distinct key names");
    let primary = ok("primary_version", provider.primary_version(key));
    assert!(primary >= 1, "conformance: key versions start at 1");

    let dek = ok("data key", Key256::generate());
    let wrapped_plain = ok("wrap_dek", provider.wrap_dek(key, &dek));
    let nonce = ok("wrap nonce", WrapNonce::random());
    let wrapped_nonce = ok(
        "wrap_dek_with_nonce",
        provider.wrap_dek_with_nonce(key, &dek, nonce),
    );
    for (how, (kek, wrapped)) in [
        ("wrap_dek", &wrapped_plain),
        ("wrap_dek_with_nonce", &wrapped_nonce),
    ] {
        assert_eq!(
            (&kek.name, kek.version),
            (key, primary),
            "conformance: {how} must name the key and its primary version"
        );
        let back = ok("unwrap_dek", provider.unwrap_dek(kek, wrapped.as_bytes()));
        assert_eq!(
            back.expose_secret(),
            dek.expose_secret(),
            "conformance: {how} then unwrap_dek must give the data key back"
        );
    }

    let (kek, wrapped) = &wrapped_plain;
    let bytes = wrapped.as_bytes();
    let moved_name = KekRef {
        name: other.clone(),
        version: ok("primary_version", provider.primary_version(other)),
    };
    let moved_version = KekRef {
        name: kek.name.clone(),
        version: kek.version.saturating_add(1_000),
    };
    for (what, moved) in [
        ("another key's name", moved_name),
        ("a version that does not exist", moved_version),
    ] {
        assert!(
            provider.unwrap_dek(&moved, bytes).is_err(),
            "conformance: a wrapped key unwrapped under {what} must fail"
        );
    }

    let mut flips = 0;
    for index in 0..bytes.len() {
        for bit in 0..8 {
            let mut altered = bytes.to_vec();
            if let Some(byte) = altered.get_mut(index) {
                *byte ^= 1 << bit;
            }
            assert!(
                matches!(provider.unwrap_dek(kek, &altered), Err(Error::KeyUnwrap)),
                "conformance: flipping bit {bit} of byte {index} of a wrapped key must fail with KeyUnwrap"
            );
            flips += 1;
        }
    }
    assert_eq!(flips, bytes.len() * 8);
    for len in 0..bytes.len() {
        assert!(
            matches!(
                provider.unwrap_dek(kek, bytes.get(..len).unwrap_or_default()),
                Err(Error::KeyUnwrap)
            ),
            "conformance: a wrapped key cut to {len} bytes must fail with KeyUnwrap"
        );
    }

    let unknown = ok("key name", KeyName::new("conformance-no-such-key"));
    assert!(
        matches!(
            provider.primary_version(&unknown),
            Err(Error::UnknownKey { .. })
        ),
        "conformance: primary_version of an unknown key must be UnknownKey"
    );
    assert!(
        matches!(
            provider.wrap_dek(&unknown, &dek),
            Err(Error::UnknownKey { .. })
        ),
        "conformance: wrapping under an unknown key must be UnknownKey"
    );
    let unknown_ref = KekRef {
        name: unknown,
        version: 1,
    };
    assert!(
        matches!(
            provider.unwrap_dek(&unknown_ref, bytes),
            Err(Error::UnknownKey { .. })
        ),
        "conformance: unwrapping under an unknown key must be UnknownKey"
    );

    let envelope = Envelope::new(provider, key.clone());
    let sealed = ok("envelope encrypt", envelope.encrypt(b"conformance", b"aad"));
    assert_eq!(
        ok("envelope decrypt", envelope.decrypt(&sealed, b"aad")),
        b"conformance",
        "conformance: an envelope over the provider must round trip"
    );
}
