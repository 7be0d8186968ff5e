//! `SubjectKeys` manager flows shared by the subject key backend tests: each backend test
//! (`subject_memory.rs`, `subject_sqlite.rs`, `subject_postgres.rs`) runs all of them
//! against its own store.

#![cfg(test)]

use std::sync::Arc;

use finsec_crypto::subject::{SubjectId, SubjectKeyState, SubjectKeyStore, SubjectKeys};
use finsec_crypto::{Error, KeyName, Keyring};
use time::macros::datetime;
use tokio::sync::Barrier;

pub(crate) fn kek() -> KeyName {
    KeyName::new("subjects").unwrap()
}

/// A keyring holding the subject KEK (version 1).
pub(crate) fn keyring() -> Arc<Keyring> {
    let keyring = Keyring::new();
    keyring.create_key(&kek()).unwrap();
    Arc::new(keyring)
}

pub(crate) fn sid(s: &str) -> SubjectId {
    SubjectId::new(s).unwrap()
}

/// Keys are created on first use, reused afterwards, and bound to subject and context.
pub(crate) async fn encrypt_decrypt<S: SubjectKeyStore>(store: S) {
    let keys = SubjectKeys::new(store, keyring(), kek());
    let alice = sid("flow:alice");
    let bob = sid("flow:bob");
    assert_eq!(
        keys.key_state(&alice).await.unwrap(),
        SubjectKeyState::Absent
    );

    let now = datetime!(2025-06-01 10:00:00.123456 UTC);
    let ct = keys
        .encrypt_at(&alice, b"alice@example.com", b"users.email", now)
        .await
        .unwrap();
    let SubjectKeyState::Active(first) = keys.key_state(&alice).await.unwrap() else {
        panic!("first encrypt must create a key");
    };
    assert_eq!(first.created_at, now);
    assert_eq!(
        (first.kek.name.as_str(), first.kek.version),
        ("subjects", 1)
    );

    let ct2 = keys
        .encrypt(&alice, b"+44 20 7946 0000", b"users.phone")
        .await
        .unwrap();
    assert_eq!(
        keys.key_state(&alice).await.unwrap(),
        SubjectKeyState::Active(first.clone()),
        "a second encrypt must reuse the key"
    );
    assert_eq!(
        keys.decrypt(&alice, &ct, b"users.email").await.unwrap(),
        b"alice@example.com"
    );
    assert_eq!(
        keys.decrypt(&alice, &ct2, b"users.phone").await.unwrap(),
        b"+44 20 7946 0000"
    );

    // Bound to the context and the subject.
    assert!(matches!(
        keys.decrypt(&alice, &ct, b"users.phone").await,
        Err(Error::Decryption)
    ));
    keys.encrypt(&bob, b"bob", b"").await.unwrap();
    assert!(matches!(
        keys.decrypt(&bob, &ct, b"users.email").await,
        Err(Error::Decryption)
    ));
    // Decrypting never creates a key.
    let carol = sid("flow:carol");
    assert!(matches!(
        keys.decrypt(&carol, &ct, b"users.email").await,
        Err(Error::Decryption)
    ));
    assert_eq!(
        keys.key_state(&carol).await.unwrap(),
        SubjectKeyState::Absent
    );

    // A large value.
    let big = vec![0x5a_u8; 1 << 20];
    let ct_big = keys.encrypt(&bob, &big, b"blob").await.unwrap();
    assert_eq!(ct_big.len(), big.len() + 32);
    assert_eq!(keys.decrypt(&bob, &ct_big, b"blob").await.unwrap(), big);
}

/// Shredding makes every ciphertext of the subject unreadable, for good; other subjects
/// are untouched.
pub(crate) async fn shred<S: SubjectKeyStore>(store: S) {
    let keys = SubjectKeys::new(store, keyring(), kek());
    let alice = sid("shred:alice");
    let bob = sid("shred:bob");
    let mut alice_cts = Vec::new();
    for i in 0..3 {
        let ct = keys
            .encrypt(&alice, format!("record {i}").as_bytes(), b"trades.note")
            .await
            .unwrap();
        alice_cts.push(ct);
    }
    let bob_ct = keys
        .encrypt(&bob, b"bob's record", b"trades.note")
        .await
        .unwrap();

    let at = datetime!(2025-07-01 09:00:00.5 UTC);
    assert!(keys.shred_at(&alice, at).await.unwrap());
    assert_eq!(
        keys.key_state(&alice).await.unwrap(),
        SubjectKeyState::Destroyed { destroyed_at: at }
    );
    for ct in &alice_cts {
        match keys.decrypt(&alice, ct, b"trades.note").await {
            Err(Error::SubjectErased { subject }) => assert_eq!(subject, "shred:alice"),
            other => panic!("expected SubjectErased, got {other:?}"),
        }
    }
    assert!(matches!(
        keys.encrypt(&alice, b"new data", b"trades.note").await,
        Err(Error::SubjectErased { .. })
    ));
    assert!(
        !keys.shred(&alice).await.unwrap(),
        "second shred destroys nothing"
    );
    assert_eq!(
        keys.key_state(&alice).await.unwrap(),
        SubjectKeyState::Destroyed { destroyed_at: at },
        "the first erasure time stays"
    );
    assert_eq!(
        keys.decrypt(&bob, &bob_ct, b"trades.note").await.unwrap(),
        b"bob's record"
    );

    // Erasure before the first write is final too.
    let dave = sid("shred:dave");
    assert!(!keys.shred(&dave).await.unwrap());
    assert!(matches!(
        keys.encrypt(&dave, b"x", b"").await,
        Err(Error::SubjectErased { .. })
    ));
}

/// Rotation: re-wrap everything under the new primary, retire and purge the old version,
/// and every ciphertext still decrypts. Retiring before re-wrapping is reported per key.
pub(crate) async fn rewrap_after_rotation<S: SubjectKeyStore>(store: S) {
    let keyring = keyring();
    let keys = SubjectKeys::new(store, keyring.clone(), kek());
    let mut data = Vec::new();
    for i in 0..25 {
        let s = sid(&format!("rot:v1:{i:03}"));
        let ct = keys
            .encrypt(&s, format!("v1 value {i}").as_bytes(), b"aad")
            .await
            .unwrap();
        data.push((s, ct, format!("v1 value {i}")));
    }
    let erased = sid("rot:v1:erased");
    keys.encrypt(&erased, b"gone", b"aad").await.unwrap();
    keys.shred(&erased).await.unwrap();

    keyring.rotate(&kek()).unwrap();
    for i in 0..5 {
        let s = sid(&format!("rot:v2:{i:03}"));
        let ct = keys
            .encrypt(&s, format!("v2 value {i}").as_bytes(), b"aad")
            .await
            .unwrap();
        data.push((s, ct, format!("v2 value {i}")));
    }

    let report = keys.rewrap_all(7).await.unwrap();
    assert_eq!(report.scanned, 30, "{report:?}");
    assert_eq!(report.rewrapped, 25, "{report:?}");
    assert_eq!(report.already_current, 5, "{report:?}");
    assert_eq!(report.changed_concurrently, 0, "{report:?}");
    assert!(report.failed.is_empty(), "{report:?}");
    assert!(report.is_complete());
    for (s, _, _) in &data {
        let SubjectKeyState::Active(stored) = keys.key_state(s).await.unwrap() else {
            panic!("{s} must be active");
        };
        assert_eq!(stored.kek.version, 2, "{s}");
    }

    // A second run has nothing to do.
    let again = keys.rewrap_all(1000).await.unwrap();
    assert_eq!(
        (again.scanned, again.rewrapped, again.already_current),
        (30, 0, 30)
    );

    keyring.retire_below(&kek(), 2).unwrap();
    assert_eq!(keyring.purge_retired(&kek()).unwrap(), vec![1]);
    for (s, ct, plain) in &data {
        assert_eq!(
            keys.decrypt(s, ct, b"aad").await.unwrap(),
            plain.as_bytes(),
            "{s} after retiring v1"
        );
    }

    // Retiring before re-wrapping: the affected keys fail with KeyRetired, are reported,
    // and the rest of the run goes on.
    let late = sid("rot:late");
    let late_ct = keys.encrypt(&late, b"late", b"aad").await.unwrap();
    keyring.rotate(&kek()).unwrap();
    keyring.retire_below(&kek(), 3).unwrap();
    assert!(matches!(
        keys.decrypt(&late, &late_ct, b"aad").await,
        Err(Error::KeyRetired {
            version: 2,
            minimum: 3,
            ..
        })
    ));
    let report = keys.rewrap_all(4).await.unwrap();
    assert_eq!(report.scanned, 31);
    assert_eq!(report.rewrapped, 0);
    assert_eq!(report.failed.len(), 31);
    assert!(!report.is_complete());
    let failure = report.failed.iter().find(|f| f.subject == late).unwrap();
    assert_eq!(failure.kek.version, 2);
    assert!(matches!(
        failure.error,
        Error::KeyRetired { version: 2, .. }
    ));
    assert!(matches!(
        keys.rewrap_all(0).await,
        Err(Error::InvalidParameter { name: "batch", .. })
    ));
}

/// Two instances (`store_a`, `store_b` share one database; each has its own manager) and
/// 16 tasks encrypt for the same new subject at once: one key is created, every
/// ciphertext decrypts on both instances.
pub(crate) async fn concurrent_first_use<S: SubjectKeyStore + 'static>(store_a: S, store_b: S) {
    let keyring = keyring();
    let a = Arc::new(SubjectKeys::new(store_a, keyring.clone(), kek()));
    let b = Arc::new(SubjectKeys::new(store_b, keyring, kek()));
    let subject = sid("concurrent:new-subject");
    let barrier = Arc::new(Barrier::new(16));
    let mut tasks = Vec::new();
    for i in 0..16_u32 {
        let manager = if i % 2 == 0 { a.clone() } else { b.clone() };
        let (subject, barrier) = (subject.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let plain = format!("message {i}");
            barrier.wait().await;
            let ct = manager
                .encrypt(&subject, plain.as_bytes(), b"ctx")
                .await
                .unwrap();
            (plain, ct)
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let SubjectKeyState::Active(stored) = a.key_state(&subject).await.unwrap() else {
        panic!("the subject must have a key");
    };
    assert_eq!(
        b.key_state(&subject).await.unwrap(),
        SubjectKeyState::Active(stored.clone())
    );
    let listed: Vec<_> = a
        .store()
        .list_active(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.subject == subject)
        .collect();
    assert_eq!(listed, vec![stored], "exactly one key for the subject");
    for (plain, ct) in &results {
        for manager in [&a, &b] {
            assert_eq!(
                manager.decrypt(&subject, ct, b"ctx").await.unwrap(),
                plain.as_bytes()
            );
        }
    }
}

/// Erasure racing first use: whatever the order, once the shred returned the subject is
/// erased for good and nothing encrypted for it stays readable.
pub(crate) async fn shred_races_first_use<S: SubjectKeyStore + 'static>(store_a: S, store_b: S) {
    let keyring = keyring();
    let a = Arc::new(SubjectKeys::new(store_a, keyring.clone(), kek()));
    let b = Arc::new(SubjectKeys::new(store_b, keyring, kek()));
    let subject = sid("race:erase-vs-write");
    let barrier = Arc::new(Barrier::new(9));
    let mut writers = Vec::new();
    for i in 0..8_u32 {
        let manager = if i % 2 == 0 { a.clone() } else { b.clone() };
        let (subject, barrier) = (subject.clone(), barrier.clone());
        writers.push(tokio::spawn(async move {
            barrier.wait().await;
            manager.encrypt(&subject, b"data", b"").await
        }));
    }
    let shredder = {
        let (b, subject, barrier) = (b.clone(), subject.clone(), barrier.clone());
        tokio::spawn(async move {
            barrier.wait().await;
            b.shred(&subject).await.unwrap()
        })
    };
    let mut written = Vec::new();
    for w in writers {
        match w.await.unwrap() {
            Ok(ct) => written.push(ct),
            Err(Error::SubjectErased { .. }) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    shredder.await.unwrap();
    assert!(matches!(
        a.key_state(&subject).await.unwrap(),
        SubjectKeyState::Destroyed { .. }
    ));
    for ct in &written {
        assert!(matches!(
            a.decrypt(&subject, ct, b"").await,
            Err(Error::SubjectErased { .. })
        ));
    }
    assert!(matches!(
        b.encrypt(&subject, b"more", b"").await,
        Err(Error::SubjectErased { .. })
    ));
}
