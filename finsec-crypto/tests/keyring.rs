//! Keyring: wrap/unwrap, rotation, retirement, purge, usage counters, the plaintext and
//! sealed documents, files, the locked update, merging counters, concurrency and redaction.
#![cfg(test)]

use std::path::Path;
use std::sync::{Arc, Barrier};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use finsec_crypto::keyring::{DOCUMENT_FORMAT, SEALED_FORMAT, WRAP_AAD_PREFIX, WRAPPED_DEK_LEN};
use finsec_crypto::{
    Envelope, Error, KekRef, Key256, KeyName, KeyProvider, KeyStatus, Keyring, Passphrase, Rewrap,
    RotationPolicy, SealKey,
};
use serde_json::{Value, json};
use time::macros::datetime;

fn name(s: &str) -> KeyName {
    KeyName::new(s).unwrap()
}

fn kek(n: &str, version: u32) -> KekRef {
    KekRef {
        name: name(n),
        version,
    }
}

fn dek() -> Key256 {
    Key256::generate().unwrap()
}

fn policy(rotate_after: u64, hard_limit: u64) -> RotationPolicy {
    RotationPolicy::new(rotate_after, hard_limit).unwrap()
}

fn master() -> SealKey {
    SealKey::MasterKey(Key256::from_bytes([0x42; 32]))
}

fn json_of(ring: &Keyring) -> Value {
    serde_json::from_slice(ring.to_json().unwrap().expose_secret()).unwrap()
}

// ---------------------------------------------------------------------------------------
// Wrap and unwrap
// ---------------------------------------------------------------------------------------

#[test]
fn wrap_unwrap_round_trip() {
    let ring = Keyring::new();
    let pii = name("pii");
    assert_eq!(ring.create_key(&pii).unwrap(), kek("pii", 1));
    assert_eq!(ring.primary_version(&pii).unwrap(), 1);
    for _ in 0..10 {
        let key = dek();
        let (r, wrapped) = ring.wrap_dek(&pii, &key).unwrap();
        assert_eq!(r, kek("pii", 1));
        assert_eq!(wrapped.as_bytes().len(), WRAPPED_DEK_LEN);
        assert_eq!(ring.unwrap_dek(&r, wrapped.as_bytes()).unwrap(), key);
    }
    // Same data key twice: different wrapped bytes (random nonce).
    let key = dek();
    let (_, a) = ring.wrap_dek(&pii, &key).unwrap();
    let (_, b) = ring.wrap_dek(&pii, &key).unwrap();
    assert_ne!(a, b);
    assert_eq!(WRAP_AAD_PREFIX, b"finsec/dek-wrap/v1");
}

#[test]
fn wrapped_dek_is_bound_to_name_and_version() {
    let ring = Keyring::new();
    ring.create_key(&name("a")).unwrap();
    ring.create_key(&name("b")).unwrap();
    ring.rotate(&name("a")).unwrap();
    let key = dek();
    let (r, wrapped) = ring.wrap_dek(&name("a"), &key).unwrap();
    assert_eq!(r, kek("a", 2));
    // Another version of the same name.
    assert!(matches!(
        ring.unwrap_dek(&kek("a", 1), wrapped.as_bytes()),
        Err(Error::KeyUnwrap)
    ));
    // Another name, same version number.
    ring.rotate(&name("b")).unwrap();
    assert!(matches!(
        ring.unwrap_dek(&kek("b", 2), wrapped.as_bytes()),
        Err(Error::KeyUnwrap)
    ));
    // Every flipped byte fails.
    for i in 0..wrapped.as_bytes().len() {
        let mut bytes = wrapped.as_bytes().to_vec();
        bytes[i] ^= 0x01;
        assert!(
            matches!(ring.unwrap_dek(&r, &bytes), Err(Error::KeyUnwrap)),
            "byte {i}"
        );
    }
    // Truncated and extended.
    let bytes = wrapped.as_bytes();
    assert!(matches!(
        ring.unwrap_dek(&r, &bytes[..59]),
        Err(Error::KeyUnwrap)
    ));
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(matches!(
        ring.unwrap_dek(&r, &longer),
        Err(Error::KeyUnwrap)
    ));
    assert!(matches!(ring.unwrap_dek(&r, &[]), Err(Error::KeyUnwrap)));
    assert_eq!(ring.unwrap_dek(&r, bytes).unwrap(), key);
}

#[test]
fn unknown_names_and_versions() {
    let ring = Keyring::new();
    ring.create_key(&name("pii")).unwrap();
    let (_, wrapped) = ring.wrap_dek(&name("pii"), &dek()).unwrap();
    let w = wrapped.as_bytes();
    assert!(matches!(
        ring.wrap_dek(&name("nope"), &dek()),
        Err(Error::UnknownKey { ref name, version: 0 }) if name == "nope"
    ));
    assert!(matches!(
        ring.unwrap_dek(&kek("nope", 1), w),
        Err(Error::UnknownKey { .. })
    ));
    assert!(matches!(
        ring.unwrap_dek(&kek("pii", 0), w),
        Err(Error::UnknownKey { version: 0, .. })
    ));
    assert!(matches!(
        ring.unwrap_dek(&kek("pii", 2), w),
        Err(Error::UnknownKey { version: 2, .. })
    ));
    assert!(matches!(
        ring.primary_version(&name("nope")),
        Err(Error::UnknownKey { .. })
    ));
    assert!(matches!(
        ring.rotate(&name("nope")),
        Err(Error::UnknownKey { .. })
    ));
    assert!(matches!(
        ring.retire_below(&name("nope"), 1),
        Err(Error::UnknownKey { .. })
    ));
    assert!(matches!(
        ring.purge_retired(&name("nope")),
        Err(Error::UnknownKey { .. })
    ));
}

#[test]
fn create_key_names_and_duplicates() {
    let ring = Keyring::new();
    assert!(ring.key_names().is_empty());
    ring.create_key(&name("users.email")).unwrap();
    ring.create_key(&name("audit")).unwrap();
    assert!(matches!(
        ring.create_key(&name("audit")),
        Err(Error::InvalidParameter { .. })
    ));
    assert_eq!(ring.key_names(), vec![name("audit"), name("users.email")]);
    assert!(ring.contains(&name("audit")));
    assert!(!ring.contains(&name("other")));
    assert_eq!(ring.policy(), RotationPolicy::default());
}

// ---------------------------------------------------------------------------------------
// Rotation, retirement, purge
// ---------------------------------------------------------------------------------------

#[test]
fn rotate_keeps_old_versions_and_switches_primary() {
    let ring = Keyring::new();
    let pii = name("pii");
    ring.create_key_at(&pii, datetime!(2025-01-01 0:00 UTC))
        .unwrap();
    let k1 = dek();
    let (r1, w1) = ring.wrap_dek(&pii, &k1).unwrap();
    assert_eq!(
        ring.rotate_at(&pii, datetime!(2025-02-01 0:00 UTC))
            .unwrap(),
        kek("pii", 2)
    );
    assert_eq!(ring.primary_version(&pii).unwrap(), 2);
    let k2 = dek();
    let (r2, w2) = ring.wrap_dek(&pii, &k2).unwrap();
    assert_eq!(r2, kek("pii", 2));
    assert_eq!(ring.unwrap_dek(&r1, w1.as_bytes()).unwrap(), k1);
    assert_eq!(ring.unwrap_dek(&r2, w2.as_bytes()).unwrap(), k2);
    ring.rotate(&pii).unwrap();
    assert_eq!(ring.primary_version(&pii).unwrap(), 3);
    assert_eq!(ring.unwrap_dek(&r1, w1.as_bytes()).unwrap(), k1);

    let status = ring.status();
    assert_eq!(status.len(), 3);
    assert_eq!(
        status.iter().map(|s| s.version).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(status[0].created_at, datetime!(2025-01-01 0:00 UTC));
    assert_eq!(status[1].created_at, datetime!(2025-02-01 0:00 UTC));
    assert_eq!(
        status.iter().map(|s| s.is_primary).collect::<Vec<_>>(),
        [false, false, true]
    );
    assert_eq!(
        status.iter().map(|s| s.encrypted_count).collect::<Vec<_>>(),
        [1, 1, 0]
    );
    assert!(status.iter().all(|s| !s.retired && !s.rotation_due));
}

#[test]
fn retire_below_refuses_old_versions() {
    let ring = Keyring::new();
    let pii = name("pii");
    ring.create_key(&pii).unwrap();
    let k1 = dek();
    let (r1, w1) = ring.wrap_dek(&pii, &k1).unwrap();
    ring.rotate(&pii).unwrap();
    let k2 = dek();
    let (r2, w2) = ring.wrap_dek(&pii, &k2).unwrap();

    assert!(matches!(
        ring.retire_below(&pii, 3),
        Err(Error::InvalidParameter { .. })
    ));
    ring.retire_below(&pii, 2).unwrap();
    assert_eq!(ring.min_decrypt_version(&pii).unwrap(), 2);
    assert!(matches!(
        ring.unwrap_dek(&r1, w1.as_bytes()),
        Err(Error::KeyRetired {
            version: 1,
            minimum: 2,
            ..
        })
    ));
    assert_eq!(ring.unwrap_dek(&r2, w2.as_bytes()).unwrap(), k2);
    // Never lowered; setting it again is a no-op.
    assert!(matches!(
        ring.retire_below(&pii, 1),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        ring.retire_below(&pii, 0),
        Err(Error::InvalidParameter { .. })
    ));
    ring.retire_below(&pii, 2).unwrap();
    assert_eq!(ring.min_decrypt_version(&pii).unwrap(), 2);

    let status = ring.status();
    assert!(status[0].retired && !status[0].is_primary);
    assert!(!status[1].retired && status[1].is_primary);
    // Retirement survives a JSON round trip.
    let back = Keyring::from_json(ring.to_json().unwrap().expose_secret()).unwrap();
    assert!(matches!(
        back.unwrap_dek(&r1, w1.as_bytes()),
        Err(Error::KeyRetired { .. })
    ));
}

#[test]
fn purge_drops_retired_material_for_good() {
    let ring = Keyring::new();
    let pii = name("pii");
    ring.create_key(&pii).unwrap();
    let (r1, w1) = ring.wrap_dek(&pii, &dek()).unwrap();
    ring.rotate(&pii).unwrap();
    let (r2, w2) = ring.wrap_dek(&pii, &dek()).unwrap();
    ring.rotate(&pii).unwrap();

    // Nothing retired yet: nothing purged.
    assert!(ring.purge_retired(&pii).unwrap().is_empty());
    assert_eq!(ring.status().len(), 3);

    ring.retire_below(&pii, 3).unwrap();
    assert_eq!(ring.purge_retired(&pii).unwrap(), vec![1, 2]);
    for (r, w) in [(&r1, &w1), (&r2, &w2)] {
        assert!(matches!(
            ring.unwrap_dek(r, w.as_bytes()),
            Err(Error::UnknownKey { .. })
        ));
    }
    let status = ring.status();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].version, 3);
    assert!(ring.purge_retired(&pii).unwrap().is_empty());

    // The document no longer holds the purged versions, and still loads.
    let doc = json_of(&ring);
    let versions = doc["keys"][0]["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0]["version"], 3);
    let back = Keyring::from_json(ring.to_json().unwrap().expose_secret()).unwrap();
    assert!(matches!(
        back.unwrap_dek(&r1, w1.as_bytes()),
        Err(Error::UnknownKey { .. })
    ));
    // Rotation continues after the newest version.
    assert_eq!(back.rotate(&pii).unwrap(), kek("pii", 4));
}

// ---------------------------------------------------------------------------------------
// Usage counters and policy
// ---------------------------------------------------------------------------------------

#[test]
fn counts_rotation_due_and_hard_limit() {
    let ring = Keyring::with_policy(policy(3, 5));
    let pii = name("pii");
    let other = name("other");
    ring.create_key(&pii).unwrap();
    ring.create_key(&other).unwrap();
    let mut wrapped = Vec::new();
    for i in 1..=5u64 {
        let key = dek();
        let (r, w) = ring.wrap_dek(&pii, &key).unwrap();
        wrapped.push((key, r, w));
        let due = ring.rotation_due();
        if i >= 3 {
            assert_eq!(due, vec![kek("pii", 1)], "after {i} wraps");
        } else {
            assert!(due.is_empty(), "after {i} wraps");
        }
        let st = ring.status();
        let s = st.iter().find(|s| s.name == pii).unwrap();
        assert_eq!(s.encrypted_count, i);
        assert_eq!(s.rotation_due, i >= 3);
    }
    assert!(matches!(
        ring.wrap_dek(&pii, &dek()),
        Err(Error::KeyUsageExhausted { ref name, version: 1, count: 5 }) if name == "pii"
    ));
    // A failed wrap does not count.
    assert_eq!(ring.status()[1].encrypted_count, 5);
    // Unwrapping is not limited.
    for (key, r, w) in &wrapped {
        assert_eq!(&ring.unwrap_dek(r, w.as_bytes()).unwrap(), key);
    }
    // The other key is unaffected.
    ring.wrap_dek(&other, &dek()).unwrap();

    ring.rotate(&pii).unwrap();
    assert!(ring.rotation_due().is_empty());
    let (r, _) = ring.wrap_dek(&pii, &dek()).unwrap();
    assert_eq!(r.version, 2);
    let st: Vec<KeyStatus> = ring
        .status()
        .into_iter()
        .filter(|s| s.name == pii)
        .collect();
    assert_eq!(st[0].encrypted_count, 5);
    assert!(!st[0].rotation_due, "only a primary is due");
    assert_eq!(st[1].encrypted_count, 1);
}

#[test]
fn policy_validation() {
    assert!(matches!(
        RotationPolicy::new(0, 5),
        Err(Error::InvalidParameter {
            name: "rotate_after",
            ..
        })
    ));
    assert!(matches!(
        RotationPolicy::new(6, 5),
        Err(Error::InvalidParameter {
            name: "rotate_after",
            ..
        })
    ));
    assert!(matches!(
        RotationPolicy::new(1, (1 << 32) + 1),
        Err(Error::InvalidParameter {
            name: "hard_limit",
            ..
        })
    ));
    assert!(RotationPolicy::new(0, 0).is_err());
    let p = RotationPolicy::new(1 << 32, 1 << 32).unwrap();
    assert_eq!((p.rotate_after(), p.hard_limit()), (1 << 32, 1 << 32));
    let p = RotationPolicy::new(1, 1).unwrap();
    assert_eq!((p.rotate_after(), p.hard_limit()), (1, 1));
    let d = RotationPolicy::default();
    assert_eq!(d.rotate_after(), 1 << 30);
    assert_eq!(d.hard_limit(), 1 << 32);
    assert_eq!(RotationPolicy::DEFAULT_ROTATE_AFTER, 1 << 30);
    assert_eq!(RotationPolicy::DEFAULT_HARD_LIMIT, 1 << 32);
    assert_eq!(RotationPolicy::MAX_HARD_LIMIT, 1 << 32);
}

#[test]
fn concurrent_wraps_count_exactly() {
    let ring = Arc::new(Keyring::new());
    let pii = name("pii");
    ring.create_key(&pii).unwrap();
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let ring = ring.clone();
            let pii = pii.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let key = dek();
                for _ in 0..500 {
                    let (r, w) = ring.wrap_dek(&pii, &key).unwrap();
                    assert_eq!(ring.unwrap_dek(&r, w.as_bytes()).unwrap(), key);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(ring.status()[0].encrypted_count, 8 * 500);
}

#[test]
fn concurrent_wraps_stop_exactly_at_the_hard_limit() {
    let ring = Arc::new(Keyring::with_policy(policy(50, 100)));
    let pii = name("pii");
    ring.create_key(&pii).unwrap();
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let ring = ring.clone();
            let pii = pii.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let mut ok = 0u32;
                let mut exhausted = 0u32;
                for _ in 0..50 {
                    match ring.wrap_dek(&pii, &dek()) {
                        Ok(_) => ok += 1,
                        Err(Error::KeyUsageExhausted { count: 100, .. }) => exhausted += 1,
                        Err(e) => panic!("unexpected error {e}"),
                    }
                }
                (ok, exhausted)
            })
        })
        .collect();
    let (mut ok, mut exhausted) = (0, 0);
    for h in handles {
        let (o, e) = h.join().unwrap();
        ok += o;
        exhausted += e;
    }
    assert_eq!((ok, exhausted), (100, 300));
    assert_eq!(ring.status()[0].encrypted_count, 100);
}

#[test]
fn works_as_envelope_provider_through_rotation_and_rewrap() {
    let ring = Keyring::new();
    let pii = name("pii");
    ring.create_key(&pii).unwrap();
    let env = Envelope::new(&ring, pii.clone());
    let ct = env.encrypt(b"alice@example.com", b"users/email/1").unwrap();
    ring.rotate(&pii).unwrap();
    assert_eq!(
        env.decrypt(&ct, b"users/email/1").unwrap(),
        b"alice@example.com"
    );
    let ct2 = match env.rewrap(&ct).unwrap() {
        Rewrap::Rewrapped(new) => new,
        Rewrap::Unchanged => panic!("expected a rewrap after rotation"),
    };
    ring.retire_below(&pii, 2).unwrap();
    assert!(matches!(
        env.decrypt(&ct, b"users/email/1"),
        Err(Error::KeyRetired { .. })
    ));
    assert_eq!(
        env.decrypt(&ct2, b"users/email/1").unwrap(),
        b"alice@example.com"
    );
    assert_eq!(ring.status()[1].encrypted_count, 1);
}

// ---------------------------------------------------------------------------------------
// Plaintext document
// ---------------------------------------------------------------------------------------

#[test]
fn json_round_trip_preserves_everything() {
    let ring = Keyring::with_policy(policy(7, 11));
    let pii = name("pii");
    let audit = name("audit.v2");
    ring.create_key_at(&pii, datetime!(2024-12-31 23:59:59.123456789 UTC))
        .unwrap();
    ring.create_key_at(&audit, datetime!(2025-01-01 1:00 +01:00))
        .unwrap();
    let mut wrapped = Vec::new();
    for _ in 0..4 {
        let key = dek();
        let (r, w) = ring.wrap_dek(&pii, &key).unwrap();
        wrapped.push((key, r, w));
    }
    ring.rotate_at(&pii, datetime!(2025-06-01 12:00 UTC))
        .unwrap();
    for _ in 0..2 {
        let key = dek();
        let (r, w) = ring.wrap_dek(&pii, &key).unwrap();
        wrapped.push((key, r, w));
    }
    ring.rotate(&pii).unwrap();
    ring.retire_below(&pii, 2).unwrap();
    ring.wrap_dek(&audit, &dek()).unwrap();

    let json = ring.to_json().unwrap();
    let back = Keyring::from_json(json.expose_secret()).unwrap();
    assert_eq!(back.policy(), ring.policy());
    assert_eq!(back.status(), ring.status());
    assert_eq!(back.key_names(), ring.key_names());
    assert_eq!(back.min_decrypt_version(&pii).unwrap(), 2);
    assert_eq!(back.primary_version(&pii).unwrap(), 3);
    assert_eq!(
        back.to_json().unwrap(),
        json,
        "byte-identical second serialization"
    );
    for (key, r, w) in &wrapped {
        if r.version >= 2 {
            assert_eq!(&back.unwrap_dek(r, w.as_bytes()).unwrap(), key);
        } else {
            assert!(matches!(
                back.unwrap_dek(r, w.as_bytes()),
                Err(Error::KeyRetired { .. })
            ));
        }
    }
    let status = back.status();
    let pii_status: Vec<_> = status.iter().filter(|s| s.name == pii).collect();
    assert_eq!(
        pii_status
            .iter()
            .map(|s| s.encrypted_count)
            .collect::<Vec<_>>(),
        [4, 2, 0]
    );
    assert_eq!(
        pii_status[0].created_at,
        datetime!(2024-12-31 23:59:59.123456789 UTC)
    );
    let audit_status = status.iter().find(|s| s.name == audit).unwrap();
    assert_eq!(audit_status.created_at, datetime!(2025-01-01 0:00 UTC));
    assert_eq!(audit_status.encrypted_count, 1);

    // The documented shape.
    let doc = json_of(&ring);
    assert_eq!(doc["format"], DOCUMENT_FORMAT);
    assert_eq!(doc["format"], "finsec-keyring");
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["policy"], json!({"rotate_after": 7, "hard_limit": 11}));
    let k = &doc["keys"][1];
    assert_eq!(k["name"], "pii");
    assert_eq!(k["primary"], 3);
    assert_eq!(k["min_decrypt_version"], 2);
    let v = &k["versions"][0];
    assert_eq!(v["version"], 1);
    assert_eq!(v["created_at"], "2024-12-31T23:59:59.123456789Z");
    assert_eq!(v["encrypted_count"], 4);
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(v["key"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );
    assert_eq!(v.as_object().unwrap().len(), 4);
}

#[test]
fn keys_loaded_from_json_unwrap_what_the_original_wrapped() {
    let ring = Keyring::new();
    ring.create_key(&name("pii")).unwrap();
    let key = dek();
    let (r, w) = ring.wrap_dek(&name("pii"), &key).unwrap();
    let back = Keyring::from_json(ring.to_json().unwrap().expose_secret()).unwrap();
    assert_eq!(back.unwrap_dek(&r, w.as_bytes()).unwrap(), key);
    let (r2, w2) = back.wrap_dek(&name("pii"), &key).unwrap();
    assert_eq!(ring.unwrap_dek(&r2, w2.as_bytes()).unwrap(), key);
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn base_doc() -> Value {
    json!({
        "format": "finsec-keyring",
        "version": 1,
        "policy": {"rotate_after": 3, "hard_limit": 5},
        "keys": [
            {
                "name": "pii",
                "primary": 2,
                "min_decrypt_version": 1,
                "versions": [
                    {"version": 1, "created_at": "2025-01-01T00:00:00Z", "key": b64(&[1; 32]), "encrypted_count": 5},
                    {"version": 2, "created_at": "2025-02-01T00:00:00Z", "key": b64(&[2; 32]), "encrypted_count": 0}
                ]
            },
            {
                "name": "audit",
                "primary": 1,
                "min_decrypt_version": 1,
                "versions": [
                    {"version": 1, "created_at": "2025-01-01T00:00:00Z", "key": b64(&[3; 32]), "encrypted_count": 1}
                ]
            }
        ]
    })
}

fn load_value(doc: &Value) -> Result<Keyring, Error> {
    Keyring::from_json(&serde_json::to_vec(doc).unwrap())
}

#[test]
fn base_document_is_valid() {
    let ring = load_value(&base_doc()).unwrap();
    assert_eq!(ring.key_names(), vec![name("audit"), name("pii")]);
    assert_eq!(ring.policy(), policy(3, 5));
    assert_eq!(ring.rotation_due(), vec![]);
    assert!(matches!(
        ring.wrap_dek(&name("audit"), &dek()),
        Ok((KekRef { version: 1, .. }, _))
    ));
}

#[test]
fn malformed_documents_are_refused() {
    type Mutation = Box<dyn Fn(&mut Value)>;
    // (description, mutation, text the message must contain)
    let cases: Vec<(&str, Mutation, &str)> = vec![
        (
            "wrong format",
            Box::new(|d| d["format"] = json!("other")),
            "format",
        ),
        (
            "missing format",
            Box::new(|d| {
                d.as_object_mut().unwrap().remove("format");
            }),
            "format",
        ),
        (
            "sealed format",
            Box::new(|d| d["format"] = json!("finsec-keyring-sealed")),
            "sealed",
        ),
        (
            "missing version",
            Box::new(|d| {
                d.as_object_mut().unwrap().remove("version");
            }),
            "version",
        ),
        (
            "huge version",
            Box::new(|d| d["version"] = json!(1u64 << 40)),
            "version",
        ),
        (
            "unknown top-level field",
            Box::new(|d| d["extra"] = json!(1)),
            "extra",
        ),
        (
            "unknown policy field",
            Box::new(|d| d["policy"]["extra"] = json!(1)),
            "extra",
        ),
        (
            "unknown key field",
            Box::new(|d| d["keys"][0]["extra"] = json!(1)),
            "extra",
        ),
        (
            "unknown version field",
            Box::new(|d| d["keys"][0]["versions"][0]["extra"] = json!(1)),
            "extra",
        ),
        (
            "missing keys",
            Box::new(|d| {
                d.as_object_mut().unwrap().remove("keys");
            }),
            "keys",
        ),
        (
            "missing key material",
            Box::new(|d| {
                d["keys"][0]["versions"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("key");
            }),
            "key",
        ),
        (
            "rotate_after 0",
            Box::new(|d| d["policy"]["rotate_after"] = json!(0)),
            "rotate_after",
        ),
        (
            "rotate_after above hard_limit",
            Box::new(|d| d["policy"]["rotate_after"] = json!(6)),
            "rotate_after",
        ),
        (
            "hard_limit above 2^32",
            Box::new(|d| {
                d["policy"]["hard_limit"] = json!((1u64 << 32) + 1);
            }),
            "hard_limit",
        ),
        (
            "invalid key name",
            Box::new(|d| d["keys"][0]["name"] = json!("Not Valid")),
            "keys[0]",
        ),
        (
            "duplicate key name",
            Box::new(|d| d["keys"][1]["name"] = json!("pii")),
            "duplicate key name pii",
        ),
        (
            "duplicate version",
            Box::new(|d| d["keys"][0]["versions"][1]["version"] = json!(1)),
            "key pii: duplicate version 1",
        ),
        (
            "version 0",
            Box::new(|d| d["keys"][0]["versions"][0]["version"] = json!(0)),
            "key pii: version 0",
        ),
        (
            "no versions",
            Box::new(|d| d["keys"][1]["versions"] = json!([])),
            "key audit has no versions",
        ),
        (
            "primary not among versions",
            Box::new(|d| d["keys"][0]["primary"] = json!(7)),
            "key pii: primary version 7 is not among its versions",
        ),
        (
            "primary not the newest",
            Box::new(|d| d["keys"][0]["primary"] = json!(1)),
            "key pii: primary version 1 is not the newest version 2",
        ),
        (
            "min_decrypt_version 0",
            Box::new(|d| d["keys"][0]["min_decrypt_version"] = json!(0)),
            "key pii: min_decrypt_version",
        ),
        (
            "min_decrypt_version above primary",
            Box::new(|d| d["keys"][0]["min_decrypt_version"] = json!(3)),
            "key pii: min_decrypt_version 3 is above the primary version 2",
        ),
        (
            "key of 31 bytes",
            Box::new(|d| d["keys"][0]["versions"][0]["key"] = json!(b64(&[1; 31]))),
            "key pii version 1: key material must be 32 bytes, got 31",
        ),
        (
            "key of 33 bytes",
            Box::new(|d| d["keys"][0]["versions"][1]["key"] = json!(b64(&[1; 33]))),
            "key pii version 2: key material must be 32 bytes, got 33",
        ),
        (
            "empty key",
            Box::new(|d| d["keys"][1]["versions"][0]["key"] = json!("")),
            "key audit version 1: key material must be 32 bytes, got 0",
        ),
        (
            "key not base64url",
            Box::new(|d| d["keys"][0]["versions"][0]["key"] = json!("!!!!")),
            "key pii version 1: key material is not base64url",
        ),
        (
            "key with padding",
            Box::new(|d| {
                d["keys"][0]["versions"][0]["key"] =
                    json!(base64::engine::general_purpose::URL_SAFE.encode([1u8; 32]));
            }),
            "key pii version 1: key material is not base64url",
        ),
        (
            "key in standard base64 alphabet",
            Box::new(|d| {
                d["keys"][0]["versions"][0]["key"] =
                    json!(base64::engine::general_purpose::STANDARD_NO_PAD.encode([0xfb; 32]));
            }),
            "key pii version 1: key material is not base64url",
        ),
        (
            "count over hard limit",
            Box::new(|d| d["keys"][0]["versions"][0]["encrypted_count"] = json!(6)),
            "key pii version 1: encrypted_count 6 is above the policy's hard limit 5",
        ),
        (
            "negative count",
            Box::new(|d| d["keys"][0]["versions"][0]["encrypted_count"] = json!(-1)),
            "expected u64",
        ),
        (
            "created_at not RFC 3339",
            Box::new(|d| d["keys"][0]["versions"][0]["created_at"] = json!("yesterday")),
            "line",
        ),
        (
            "created_at as number",
            Box::new(|d| d["keys"][0]["versions"][0]["created_at"] = json!(1_700_000_000)),
            "line",
        ),
        (
            "version as string",
            Box::new(|d| d["keys"][0]["versions"][0]["version"] = json!("1")),
            "line",
        ),
        (
            "keys not an array",
            Box::new(|d| d["keys"] = json!({})),
            "line",
        ),
    ];
    let count = cases.len();
    for (what, mutate, needle) in cases {
        let mut doc = base_doc();
        mutate(&mut doc);
        let err = match load_value(&doc) {
            Ok(_) => panic!("{what}: accepted"),
            Err(e) => e,
        };
        assert!(matches!(err, Error::Keyring(_)), "{what}: {err:?}");
        let msg = err.to_string();
        assert!(msg.contains(needle), "{what}: {msg:?} lacks {needle:?}");
        for secret in [b64(&[1; 32]), b64(&[2; 32]), b64(&[3; 32])] {
            assert!(!msg.contains(&secret), "{what}: {msg}");
        }
    }
    assert_eq!(count, 35);

    let mut doc = base_doc();
    doc["version"] = json!(2);
    assert!(matches!(
        load_value(&doc),
        Err(Error::UnsupportedVersion { version: 2, .. })
    ));
    let mut doc = base_doc();
    doc["version"] = json!(0);
    assert!(matches!(
        load_value(&doc),
        Err(Error::UnsupportedVersion { version: 0, .. })
    ));
    // A future version with a different shape still gets the precise error.
    let future = json!({"format": "finsec-keyring", "version": 2, "something": "else"});
    assert!(matches!(
        load_value(&future),
        Err(Error::UnsupportedVersion { version: 2, .. })
    ));

    for raw in [
        &b""[..],
        b"   ",
        b"null",
        b"[]",
        b"{",
        b"\xff\xfe",
        b"{\"format\":\"finsec-keyring\",\"version\":1}",
        b"{\"format\":\"finsec-keyring\",\"version\":1,\"policy\":{\"rotate_after\":1,\"hard_limit\":1},\"keys\":[]} trailing",
    ] {
        assert!(
            matches!(Keyring::from_json(raw), Err(Error::Keyring(_))),
            "{raw:?}"
        );
    }
    // An empty keyring is a valid document.
    let empty = Keyring::from_json(
        br#"{"format":"finsec-keyring","version":1,"policy":{"rotate_after":1,"hard_limit":1},"keys":[]}"#,
    )
    .unwrap();
    assert!(empty.key_names().is_empty());
}

#[test]
fn retired_versions_and_gaps_load() {
    // Versions below min_decrypt_version (retired, not purged) and gaps left by purging.
    let mut doc = base_doc();
    doc["keys"][0]["min_decrypt_version"] = json!(2);
    doc["keys"][0]["primary"] = json!(4);
    doc["keys"][0]["versions"][1]["version"] = json!(4);
    let ring = load_value(&doc).unwrap();
    let st = ring.status();
    let pii: Vec<_> = st.iter().filter(|s| s.name == name("pii")).collect();
    assert_eq!(pii.len(), 2);
    assert!(pii[0].retired);
    assert_eq!(pii[1].version, 4);
    assert_eq!(ring.rotate(&name("pii")).unwrap().version, 5);
}

// ---------------------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------------------

#[test]
fn from_env_missing_variable() {
    let var = "FINSEC_KEYRING_TEST_DEFINITELY_NOT_SET_4711";
    let err = Keyring::from_env(var).unwrap_err();
    assert!(matches!(err, Error::Keyring(_)));
    assert_eq!(
        err.to_string(),
        format!("invalid keyring: environment variable {var} is not set")
    );
}

/// Runs itself in a child process with the variables set (setting variables in this
/// process would need `unsafe`, which the crate forbids).
#[test]
fn from_env_reads_json_and_base64url() {
    const CHILD: &str = "FINSEC_KEYRING_TEST_CHILD";
    if std::env::var_os(CHILD).is_some() {
        let expected = std::env::var("FINSEC_KEYRING_TEST_EXPECT").unwrap();
        for var in ["FINSEC_KEYRING_TEST_JSON", "FINSEC_KEYRING_TEST_B64"] {
            let ring = Keyring::from_env(var).unwrap();
            assert_eq!(
                std::str::from_utf8(ring.to_json().unwrap().expose_secret()).unwrap(),
                expected
            );
        }
        let err = Keyring::from_env("FINSEC_KEYRING_TEST_JUNK")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cr3t-value"), "{err}");
        assert!(err.contains("FINSEC_KEYRING_TEST_JUNK"), "{err}");
        return;
    }
    let ring = Keyring::new();
    ring.create_key(&name("pii")).unwrap();
    ring.wrap_dek(&name("pii"), &dek()).unwrap();
    let json = ring.to_json().unwrap();
    let text = std::str::from_utf8(json.expose_secret()).unwrap();
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "from_env_reads_json_and_base64url",
            "--exact",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env("FINSEC_KEYRING_TEST_EXPECT", text)
        .env("FINSEC_KEYRING_TEST_JSON", text)
        .env("FINSEC_KEYRING_TEST_B64", b64(json.expose_secret()))
        .env("FINSEC_KEYRING_TEST_JUNK", "s3cr3t-value")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "child did not run the test: {stdout}"
    );
}

// ---------------------------------------------------------------------------------------
// Sealed documents
// ---------------------------------------------------------------------------------------

fn sample_ring() -> Keyring {
    let ring = Keyring::with_policy(policy(100, 1000));
    ring.create_key(&name("pii")).unwrap();
    ring.rotate(&name("pii")).unwrap();
    ring.create_key(&name("audit")).unwrap();
    for _ in 0..3 {
        ring.wrap_dek(&name("pii"), &dek()).unwrap();
    }
    ring
}

fn assert_same(a: &Keyring, b: &Keyring) {
    assert_eq!(a.to_json().unwrap(), b.to_json().unwrap());
}

#[test]
fn sealed_round_trip_with_passphrase() {
    let ring = sample_ring();
    let key = SealKey::Passphrase(Passphrase::new("correct horse battery staple"));
    let sealed = ring.seal(&key).unwrap();
    let back = Keyring::open_sealed(&sealed, &key).unwrap();
    assert_same(&ring, &back);

    let doc: Value = serde_json::from_slice(&sealed).unwrap();
    assert_eq!(doc["format"], SEALED_FORMAT);
    assert_eq!(doc["format"], "finsec-keyring-sealed");
    assert_eq!(doc["version"], 1);
    assert_eq!(
        doc["kdf"],
        json!({"alg": "argon2id", "m": 19456, "t": 2, "p": 1})
    );
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(doc["salt"].as_str().unwrap())
            .unwrap()
            .len(),
        16
    );
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(doc["nonce"].as_str().unwrap())
            .unwrap()
            .len(),
        12
    );
    assert_eq!(doc.as_object().unwrap().len(), 6);
    // No key material in the sealed document.
    let text = String::from_utf8(sealed.clone()).unwrap();
    for v in json_of(&ring)["keys"][0]["versions"].as_array().unwrap() {
        assert!(!text.contains(v["key"].as_str().unwrap()));
    }

    // Wrong passphrase.
    let wrong = SealKey::Passphrase(Passphrase::new("correct horse battery stapler"));
    assert!(matches!(
        Keyring::open_sealed(&sealed, &wrong),
        Err(Error::KeyringSeal)
    ));
    // Wrong kind of key.
    assert!(matches!(
        Keyring::open_sealed(&sealed, &master()),
        Err(Error::Keyring(_))
    ));
}

#[test]
fn sealed_passphrase_header_fields_are_bound() {
    let ring = sample_ring();
    let key = SealKey::Passphrase(Passphrase::new("pass phrase"));
    let sealed = ring.seal(&key).unwrap();
    let doc: Value = serde_json::from_slice(&sealed).unwrap();
    let open = |d: &Value| Keyring::open_sealed(&serde_json::to_vec(d).unwrap(), &key);

    // Each of these derives a different key (and different associated data).
    let mut d = doc.clone();
    d["kdf"]["t"] = json!(3);
    assert!(matches!(open(&d), Err(Error::KeyringSeal)));
    let mut d = doc.clone();
    let mut salt = URL_SAFE_NO_PAD.decode(d["salt"].as_str().unwrap()).unwrap();
    salt[7] ^= 0x01;
    d["salt"] = json!(b64(&salt));
    assert!(matches!(open(&d), Err(Error::KeyringSeal)));

    // These fail before any key derivation.
    let mut d = doc.clone();
    d["kdf"]["extra"] = json!(1);
    assert!(matches!(open(&d), Err(Error::Keyring(_))));
    let mut d = doc.clone();
    d["kdf"] = json!({"alg": "scrypt", "n": 1});
    assert!(matches!(open(&d), Err(Error::Keyring(_))));
    let mut d = doc.clone();
    d["kdf"]["m"] = json!(1);
    assert!(open(&d).is_err());
    let mut d = doc.clone();
    d["kdf"] = Value::Null;
    assert!(matches!(open(&d), Err(Error::Keyring(_))));
    let mut d = doc.clone();
    d.as_object_mut().unwrap().remove("salt");
    assert!(matches!(open(&d), Err(Error::Keyring(_))));
    let mut d = doc.clone();
    d["salt"] = json!("AAAA");
    assert!(matches!(open(&d), Err(Error::Keyring(_))));
    let mut d = doc.clone();
    d["version"] = json!(2);
    assert!(matches!(
        open(&d),
        Err(Error::UnsupportedVersion { version: 2, .. })
    ));
    let mut d = doc.clone();
    d["format"] = json!("finsec-keyring");
    assert!(matches!(open(&d), Err(Error::Keyring(_))));
    let mut d = doc.clone();
    d["extra"] = json!(true);
    assert!(matches!(open(&d), Err(Error::Keyring(_))));

    // Untouched, it still opens.
    assert_same(&ring, &open(&doc).unwrap());
}

#[test]
fn sealed_round_trip_with_master_key() {
    let ring = sample_ring();
    let sealed = ring.seal(&master()).unwrap();
    assert_same(&ring, &Keyring::open_sealed(&sealed, &master()).unwrap());
    let doc: Value = serde_json::from_slice(&sealed).unwrap();
    assert_eq!(doc["kdf"], Value::Null);
    assert_eq!(doc["salt"], Value::Null);
    // Two seals of the same keyring differ (random nonce).
    assert_ne!(sealed, ring.seal(&master()).unwrap());

    let other = SealKey::MasterKey(Key256::from_bytes([0x43; 32]));
    assert!(matches!(
        Keyring::open_sealed(&sealed, &other),
        Err(Error::KeyringSeal)
    ));
    assert!(matches!(
        Keyring::open_sealed(&sealed, &SealKey::Passphrase(Passphrase::new("x"))),
        Err(Error::Keyring(_))
    ));
    // A plaintext document is not a sealed one, and vice versa.
    assert!(matches!(
        Keyring::open_sealed(ring.to_json().unwrap().expose_secret(), &master()),
        Err(Error::Keyring(_))
    ));
    assert!(matches!(
        Keyring::from_json(&sealed),
        Err(Error::Keyring(_))
    ));
}

#[test]
fn every_flipped_byte_of_a_sealed_document_is_detected() {
    let ring = sample_ring();
    let key = master();
    let sealed = ring.seal(&key).unwrap();
    let mut checked = 0;
    for i in 0..sealed.len() {
        for mask in [0x01u8, 0x80] {
            let mut bytes = sealed.clone();
            bytes[i] ^= mask;
            assert!(
                Keyring::open_sealed(&bytes, &key).is_err(),
                "flip {mask:#x} at byte {i} ({:?}) was not detected",
                sealed[i] as char
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 2 * sealed.len());

    // Inside the decoded nonce and ciphertext: every byte flip is an authentication error.
    let doc: Value = serde_json::from_slice(&sealed).unwrap();
    for field in ["nonce", "ciphertext"] {
        let raw = URL_SAFE_NO_PAD
            .decode(doc[field].as_str().unwrap())
            .unwrap();
        for i in 0..raw.len() {
            let mut bytes = raw.clone();
            bytes[i] ^= 0x01;
            let mut d = doc.clone();
            d[field] = json!(b64(&bytes));
            assert!(
                matches!(
                    Keyring::open_sealed(&serde_json::to_vec(&d).unwrap(), &key),
                    Err(Error::KeyringSeal)
                ),
                "{field} byte {i}"
            );
        }
        // Truncated.
        let mut d = doc.clone();
        d[field] = json!(b64(&raw[..raw.len() - 1]));
        assert!(Keyring::open_sealed(&serde_json::to_vec(&d).unwrap(), &key).is_err());
    }
    let mut d = doc.clone();
    d["ciphertext"] = json!(b64(&[0; 15]));
    assert!(matches!(
        Keyring::open_sealed(&serde_json::to_vec(&d).unwrap(), &key),
        Err(Error::Keyring(_))
    ));
}

// ---------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn save_and_load_plaintext_and_sealed_files() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("keyring.json");
    let sealed = dir.path().join("keyring.sealed");
    let ring = sample_ring();

    // Pre-existing files with loose permissions are replaced by 0600 files.
    std::fs::write(&plain, b"old").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    ring.save(&plain).unwrap();
    ring.save_sealed(&sealed, &master()).unwrap();
    #[cfg(unix)]
    {
        assert_eq!(mode(&plain), 0o600);
        assert_eq!(mode(&sealed), 0o600);
    }
    assert_same(&ring, &Keyring::load(&plain).unwrap());
    assert_same(&ring, &Keyring::load_sealed(&sealed, &master()).unwrap());
    // No temporary files left behind.
    assert_eq!(dir_entries(dir.path()), ["keyring.json", "keyring.sealed"]);

    // Overwrite with a changed keyring.
    ring.rotate(&name("audit")).unwrap();
    ring.save_sealed(&sealed, &master()).unwrap();
    let back = Keyring::load_sealed(&sealed, &master()).unwrap();
    assert_eq!(back.primary_version(&name("audit")).unwrap(), 2);
    assert_eq!(dir_entries(dir.path()), ["keyring.json", "keyring.sealed"]);

    let missing = dir.path().join("missing.json");
    assert!(matches!(Keyring::load(&missing), Err(Error::Io { .. })));
    assert!(matches!(
        Keyring::load_sealed(&missing, &master()),
        Err(Error::Io { .. })
    ));
    assert!(matches!(
        ring.save(&dir.path().join("no-such-dir").join("k.json")),
        Err(Error::Io { .. })
    ));
}

#[test]
fn update_sealed_applies_changes_under_a_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.sealed");
    let key = master();

    // The file must exist.
    assert!(matches!(
        Keyring::update_sealed(&path, &key, |_| Ok(())),
        Err(Error::Io { .. })
    ));

    sample_ring().save_sealed(&path, &key).unwrap();
    let v = Keyring::update_sealed(&path, &key, |ring| ring.rotate(&name("pii")))
        .unwrap()
        .version;
    assert_eq!(v, 3);
    let loaded = Keyring::load_sealed(&path, &key).unwrap();
    assert_eq!(loaded.primary_version(&name("pii")).unwrap(), 3);
    #[cfg(unix)]
    {
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("keyring.sealed.lock")), 0o600);
    }

    // A failing closure writes nothing.
    let before = std::fs::read(&path).unwrap();
    let err = Keyring::update_sealed(&path, &key, |ring| {
        ring.rotate(&name("pii"))?;
        ring.rotate(&name("nope"))
    })
    .unwrap_err();
    assert!(matches!(err, Error::UnknownKey { .. }));
    assert_eq!(std::fs::read(&path).unwrap(), before);

    // The wrong key writes nothing either.
    let wrong = SealKey::MasterKey(Key256::from_bytes([0; 32]));
    assert!(matches!(
        Keyring::update_sealed(&path, &wrong, |_| Ok(())),
        Err(Error::KeyringSeal)
    ));
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn concurrent_update_sealed_loses_no_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let path = Arc::new(dir.path().join("keyring.sealed"));
    let ring = Keyring::new();
    ring.create_key(&name("pii")).unwrap();
    ring.save_sealed(&path, &master()).unwrap();

    const THREADS: usize = 4;
    const ROUNDS: usize = 5;
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let path = path.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let key = master();
                for _ in 0..ROUNDS {
                    Keyring::update_sealed(&path, &key, |ring| {
                        ring.rotate(&name("pii"))?;
                        ring.wrap_dek(&name("pii"), &dek())?;
                        Ok(())
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let ring = Keyring::load_sealed(&path, &master()).unwrap();
    let total = u32::try_from(THREADS * ROUNDS).unwrap();
    assert_eq!(ring.primary_version(&name("pii")).unwrap(), 1 + total);
    let status = ring.status();
    assert_eq!(status.len(), 1 + THREADS * ROUNDS);
    assert!(status.iter().skip(1).all(|s| s.encrypted_count == 1));
}

#[test]
fn concurrent_update_sealed_with_passphrase_loses_neither_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let path = Arc::new(dir.path().join("keyring.sealed"));
    let ring = Keyring::new();
    ring.create_key(&name("a")).unwrap();
    ring.create_key(&name("b")).unwrap();
    let pass = "two writers, one file";
    ring.save_sealed(&path, &SealKey::Passphrase(Passphrase::new(pass)))
        .unwrap();
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|n| {
            let path = path.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let key = SealKey::Passphrase(Passphrase::new(pass));
                barrier.wait();
                Keyring::update_sealed(&path, &key, |ring| ring.rotate(&name(n))).unwrap()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().version, 2);
    }
    let ring = Keyring::load_sealed(&path, &SealKey::Passphrase(Passphrase::new(pass))).unwrap();
    assert_eq!(ring.primary_version(&name("a")).unwrap(), 2);
    assert_eq!(ring.primary_version(&name("b")).unwrap(), 2);
}

// ---------------------------------------------------------------------------------------
// Merging counters
// ---------------------------------------------------------------------------------------

#[test]
fn merge_counts_keeps_max_and_never_drops_versions() {
    // A server loads the keyring and wraps keys; meanwhile an operator rotates on disk.
    let on_disk = sample_ring(); // pii v1 (0), v2 (3); audit v1 (0)
    let server = Keyring::from_json(on_disk.to_json().unwrap().expose_secret()).unwrap();
    for _ in 0..5 {
        server.wrap_dek(&name("pii"), &dek()).unwrap(); // pii v2: 8
    }
    server.create_key(&name("server-only")).unwrap();
    server.wrap_dek(&name("server-only"), &dek()).unwrap();

    on_disk.rotate(&name("pii")).unwrap(); // pii v3
    on_disk.wrap_dek(&name("pii"), &dek()).unwrap(); // pii v3: 1
    for _ in 0..4 {
        on_disk.wrap_dek(&name("audit"), &dek()).unwrap(); // audit v1: 4 (server: 0)
    }

    server.merge_counts_into(&on_disk);
    let counts: Vec<(String, u32, u64, bool)> = on_disk
        .status()
        .into_iter()
        .map(|s| {
            (
                s.name.to_string(),
                s.version,
                s.encrypted_count,
                s.is_primary,
            )
        })
        .collect();
    assert_eq!(
        counts,
        vec![
            ("audit".into(), 1, 4, true),
            ("pii".into(), 1, 0, false),
            ("pii".into(), 2, 8, false),
            ("pii".into(), 3, 1, true),
        ]
    );
    assert!(!on_disk.contains(&name("server-only")));
    // The server's own keyring is unchanged.
    assert_eq!(server.status()[1].encrypted_count, 0);
    assert_eq!(server.primary_version(&name("pii")).unwrap(), 2);

    // Merging again, or merging the other way, never lowers a count.
    server.merge_counts_into(&on_disk);
    on_disk.merge_counts_into(&server);
    let audit = server
        .status()
        .into_iter()
        .find(|s| s.name == name("audit"))
        .unwrap();
    assert_eq!(audit.encrypted_count, 4);

    // Counts are capped at the receiving keyring's hard limit.
    let small = Keyring::from_json(
        std::str::from_utf8(on_disk.to_json().unwrap().expose_secret())
            .unwrap()
            .replace("\"rotate_after\": 100", "\"rotate_after\": 2")
            .replace("\"hard_limit\": 1000", "\"hard_limit\": 10")
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(small.policy(), policy(2, 10));
    let big = Keyring::from_json(on_disk.to_json().unwrap().expose_secret()).unwrap();
    for _ in 0..20 {
        big.wrap_dek(&name("pii"), &dek()).unwrap();
    }
    big.merge_counts_into(&small);
    let pii3 = small
        .status()
        .into_iter()
        .find(|s| s.name == name("pii") && s.version == 3)
        .unwrap();
    assert_eq!(pii3.encrypted_count, 10);
    assert!(matches!(
        small.wrap_dek(&name("pii"), &dek()),
        Err(Error::KeyUsageExhausted { count: 10, .. })
    ));
    // And the result still saves and loads.
    Keyring::from_json(small.to_json().unwrap().expose_secret()).unwrap();
}

// ---------------------------------------------------------------------------------------
// Redaction
// ---------------------------------------------------------------------------------------

#[test]
fn debug_never_shows_key_material() {
    let key_bytes: [u8; 32] = [
        0xd3, 0x7f, 0x11, 0x9a, 0x42, 0xc0, 0xde, 0x5b, 0x77, 0x01, 0xe8, 0x3c, 0x9f, 0x20, 0xab,
        0x64, 0x18, 0xf2, 0x0d, 0x93, 0x5e, 0xb7, 0x46, 0xca, 0x2f, 0x88, 0x61, 0x0e, 0xd9, 0x34,
        0x7a, 0xc5,
    ];
    let mut doc = base_doc();
    doc["keys"][0]["versions"][1]["key"] = json!(b64(&key_bytes));
    let ring = load_value(&doc).unwrap();
    let seal_master = SealKey::MasterKey(Key256::from_bytes(key_bytes));
    let seal_pass = SealKey::Passphrase(Passphrase::new("hunter2-hunter2"));
    let rendered = format!(
        "{ring:?}\n{ring:#?}\n{:?}\n{:#?}\n{seal_master:?}\n{seal_master:#?}\n{seal_pass:?}\n{:?}",
        ring.status(),
        ring.status(),
        ring.policy()
    );
    let hex_lower = hex::encode(key_bytes);
    let hex_upper = hex_lower.to_uppercase();
    let b64url = b64(&key_bytes);
    let b64std = base64::engine::general_purpose::STANDARD.encode(key_bytes);
    for needle in [
        &hex_lower[..16],
        &hex_upper[..16],
        &b64url[..12],
        &b64std[..12],
        "211, 127, 17",
        "0xd3",
        "hunter2",
    ] {
        assert!(!rendered.contains(needle), "{needle} in {rendered}");
    }
    // Names, versions and counts are shown.
    assert!(rendered.contains("pii"));
    assert!(rendered.contains("encrypted_count"));
    assert!(rendered.contains("REDACTED"));
}
