//! Envelope encryption: round trips, context binding, malformed input, rotation and rewrap,
//! tamper detection.
#![cfg(test)]

use std::collections::HashMap;
use std::sync::RwLock;

use finsec_crypto::envelope::{Header, TAG_LEN, aad_for};
use finsec_crypto::hazmat::{aes256gcm_open, aes256gcm_seal};
use finsec_crypto::{
    Envelope, Error, KekRef, Key256, KeyName, KeyProvider, Keyring, Result, Rewrap, RotationPolicy,
    WrappedDek, random_array,
};
use proptest::prelude::*;

/// A minimal local provider for these tests: every version of every key is an AES-256 key;
/// a wrapped DEK is `nonce || AES-256-GCM(kek, nonce, aad, dek)` with the aad binding the
/// key name and version, as the keyring does.
#[derive(Default)]
struct TestProvider {
    keys: RwLock<HashMap<KeyName, Vec<Key256>>>,
}

impl TestProvider {
    fn with_keys(names: &[&str]) -> Self {
        let p = Self::default();
        for n in names {
            p.rotate(&name(n));
        }
        p
    }

    /// Adds a version (the first one creates the key); returns the new version.
    fn rotate(&self, name: &KeyName) -> u32 {
        let mut keys = self.keys.write().unwrap();
        let versions = keys.entry(name.clone()).or_default();
        versions.push(Key256::generate().unwrap());
        versions.len() as u32
    }

    fn wrap_aad(kek: &KekRef) -> Vec<u8> {
        let mut aad = b"finsec/dek-wrap/v1".to_vec();
        aad.push(kek.name.as_str().len() as u8);
        aad.extend_from_slice(kek.name.as_str().as_bytes());
        aad.extend_from_slice(&kek.version.to_be_bytes());
        aad
    }
}

impl KeyProvider for TestProvider {
    fn wrap_dek(&self, name: &KeyName, dek: &Key256) -> Result<(KekRef, WrappedDek)> {
        let keys = self.keys.read().unwrap();
        let versions = keys.get(name).ok_or_else(|| Error::UnknownKey {
            name: name.to_string(),
            version: 0,
        })?;
        let kek = KekRef {
            name: name.clone(),
            version: versions.len() as u32,
        };
        let nonce: [u8; 12] = random_array()?;
        let ct = aes256gcm_seal(
            versions.last().unwrap().expose_secret(),
            &nonce,
            &Self::wrap_aad(&kek),
            dek.expose_secret(),
        )?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok((kek, WrappedDek::new(out)?))
    }

    fn unwrap_dek(&self, kek: &KekRef, wrapped: &[u8]) -> Result<Key256> {
        let keys = self.keys.read().unwrap();
        let key = keys
            .get(&kek.name)
            .and_then(|v| v.get((kek.version as usize).wrapping_sub(1)))
            .ok_or_else(|| Error::UnknownKey {
                name: kek.name.to_string(),
                version: kek.version,
            })?;
        if wrapped.len() != 60 {
            return Err(Error::KeyUnwrap);
        }
        let (nonce, ct) = wrapped.split_at(12);
        let dek = aes256gcm_open(key.expose_secret(), nonce, &Self::wrap_aad(kek), ct)
            .map_err(|_| Error::KeyUnwrap)?;
        Key256::try_from_slice(&dek)
    }

    fn primary_version(&self, name: &KeyName) -> Result<u32> {
        let keys = self.keys.read().unwrap();
        keys.get(name)
            .map(|v| v.len() as u32)
            .ok_or_else(|| Error::UnknownKey {
                name: name.to_string(),
                version: 0,
            })
    }
}

fn name(s: &str) -> KeyName {
    KeyName::new(s).unwrap()
}

fn envelope() -> Envelope<TestProvider> {
    Envelope::new(
        TestProvider::with_keys(&["pii", "pij", "other"]),
        name("pii"),
    )
}

/// Header length for key name `pii` and a 60-byte wrapped key.
const HEADER_LEN: usize = 23 + 3 + 60;

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

#[test]
fn envelope_is_send_sync_and_debug_shows_no_key_material() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Envelope<TestProvider>>();
    let env = envelope();
    let dbg = format!("{env:?}");
    assert!(dbg.contains("pii"), "{dbg}");
}

#[test]
fn round_trips_at_edge_sizes() {
    let env = envelope();
    for len in [0usize, 1, 15, 16, 17, 4096, 1 << 20] {
        let pt = pattern(len);
        let ct = env.encrypt(&pt, b"ctx").unwrap();
        assert_eq!(ct.len(), HEADER_LEN + len + TAG_LEN, "len {len}");
        assert_eq!(&ct[..4], b"FSE\x01");
        if len >= 16 {
            // The plaintext does not appear in the output.
            assert!(!ct.windows(16).any(|w| w == &pt[..16]));
        }
        assert_eq!(env.decrypt(&ct, b"ctx").unwrap(), pt, "len {len}");
    }
}

#[test]
fn header_describes_the_key_and_fresh_keys_and_nonces_are_used() {
    let env = envelope();
    let a = env.encrypt(b"same", b"").unwrap();
    let b = env.encrypt(b"same", b"").unwrap();
    let (ha, la) = Header::parse(&a).unwrap();
    let (hb, lb) = Header::parse(&b).unwrap();
    assert_eq!((la, lb), (HEADER_LEN, HEADER_LEN));
    assert_eq!(ha.kek().name.as_str(), "pii");
    assert_eq!(ha.kek().version, 1);
    assert_eq!(ha.version(), 1);
    assert_eq!(ha.wrapped_dek().as_bytes().len(), 60);
    assert_ne!(ha.nonce(), hb.nonce());
    assert_ne!(ha.wrapped_dek(), hb.wrapped_dek());
    assert_ne!(a[la..], b[lb..]);
}

#[test]
fn text_form_round_trips_and_rejects_bad_text() {
    let env = envelope();
    let text = env.encrypt_to_string(b"alice@example.com", b"aad").unwrap();
    assert!(
        text.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{text}"
    );
    assert!(!text.contains('='));
    assert_eq!(
        env.decrypt_str(&text, b"aad").unwrap(),
        b"alice@example.com"
    );
    assert!(matches!(env.decrypt_str("", b"aad"), Err(Error::Empty)));
    assert!(matches!(
        env.decrypt_str(&format!("{text}="), b"aad"),
        Err(Error::Base64(_))
    ));
    let mut std_alphabet = text.clone();
    std_alphabet.replace_range(0..1, "+");
    assert!(matches!(
        env.decrypt_str(&std_alphabet, b"aad"),
        Err(Error::Base64(_))
    ));
    assert!(matches!(
        env.decrypt_str("!!!!", b"aad"),
        Err(Error::Base64(_))
    ));
    assert!(matches!(
        env.decrypt_str(&text, b"other"),
        Err(Error::Decryption)
    ));
}

#[test]
fn wrong_aad_fails() {
    let env = envelope();
    let ct = env.encrypt(b"secret", b"a").unwrap();
    for aad in [&b""[..], b"b", b"a\0", b"A"] {
        assert!(matches!(env.decrypt(&ct, aad), Err(Error::Decryption)));
    }
    let ct = env.encrypt(b"secret", b"").unwrap();
    assert!(matches!(env.decrypt(&ct, b"\0"), Err(Error::Decryption)));
    assert_eq!(env.decrypt(&ct, b"").unwrap(), b"secret");
}

#[test]
fn aad_for_binds_table_column_and_row() {
    let env = envelope();
    let ct = env
        .encrypt(b"alice@example.com", &aad_for("users", "email", "42"))
        .unwrap();
    assert_eq!(
        env.decrypt(&ct, &aad_for("users", "email", "42")).unwrap(),
        b"alice@example.com"
    );
    // Moved to another row, column or table.
    for (t, c, r) in [
        ("users", "email", "43"),
        ("users", "email", "420"),
        ("users", "phone", "42"),
        ("admins", "email", "42"),
        ("users", "email4", "2"),
    ] {
        assert!(
            matches!(env.decrypt(&ct, &aad_for(t, c, r)), Err(Error::Decryption)),
            "{t}/{c}/{r}"
        );
    }
    // Length prefixes make the encoding unambiguous.
    assert_ne!(aad_for("ab", "c", "d"), aad_for("a", "bc", "d"));
    assert_ne!(aad_for("a", "", "bc"), aad_for("a", "b", "c"));
    assert_ne!(aad_for("", "", ""), aad_for("", "", "\0"));
    let a = aad_for("users", "email", "42");
    assert!(a.starts_with(b"finsec/aad/v1"));
    assert_eq!(a.len(), 13 + 3 * 8 + 5 + 5 + 2);
}

#[test]
fn unknown_and_wrong_key_names() {
    let env = envelope();
    let missing = Envelope::new(env.provider(), name("missing"));
    assert_eq!(missing.key_name().as_str(), "missing");
    assert!(matches!(
        missing.encrypt(b"x", b""),
        Err(Error::UnknownKey { ref name, .. }) if name == "missing"
    ));

    let ct = env.encrypt(b"hello", b"").unwrap();
    // The envelope's own key name does not restrict decryption: the header decides.
    assert_eq!(missing.decrypt(&ct, b"").unwrap(), b"hello");

    // A provider that lacks the key.
    let stranger = Envelope::new(TestProvider::with_keys(&["other"]), name("other"));
    assert!(matches!(
        stranger.decrypt(&ct, b""),
        Err(Error::UnknownKey { ref name, version: 1 }) if name == "pii"
    ));
    // Same name, different key material.
    let impostor = Envelope::new(TestProvider::with_keys(&["pii"]), name("pii"));
    assert!(matches!(impostor.decrypt(&ct, b""), Err(Error::KeyUnwrap)));

    // Header renamed to another existing key of the same length: the wrapped key is bound
    // to its name.
    let mut renamed = ct.clone();
    renamed[5..8].copy_from_slice(b"pij");
    assert!(matches!(env.decrypt(&renamed, b""), Err(Error::KeyUnwrap)));
    // Renamed to a name the provider does not have.
    renamed[5..8].copy_from_slice(b"xyz");
    assert!(matches!(
        env.decrypt(&renamed, b""),
        Err(Error::UnknownKey { .. })
    ));
    // Renamed to something that is not a key name.
    for bad in [&b"PII"[..], b"p i", b"-pi", b"p\xffi"] {
        renamed[5..8].copy_from_slice(bad);
        assert!(
            matches!(
                env.decrypt(&renamed, b""),
                Err(Error::InvalidHeader {
                    field: "key name",
                    ..
                })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn key_version_is_checked() {
    let env = envelope();
    let ct = env.encrypt(b"hello", b"").unwrap();
    let mut v2 = ct.clone();
    v2[8..12].copy_from_slice(&2u32.to_be_bytes());
    assert!(matches!(
        env.decrypt(&v2, b""),
        Err(Error::UnknownKey { version: 2, .. })
    ));
    // Version 2 exists after a rotation, but the wrapped key is bound to version 1.
    env.provider().rotate(&name("pii"));
    assert!(matches!(env.decrypt(&v2, b""), Err(Error::KeyUnwrap)));
    let mut v0 = ct.clone();
    v0[8..12].copy_from_slice(&0u32.to_be_bytes());
    assert!(matches!(
        env.decrypt(&v0, b""),
        Err(Error::InvalidHeader {
            field: "key version",
            ..
        })
    ));
    assert_eq!(env.decrypt(&ct, b"").unwrap(), b"hello");
}

#[test]
fn unknown_format_version_and_bad_magic() {
    let env = envelope();
    let ct = env.encrypt(b"hello", b"").unwrap();
    for v in [0u8, 2, 0x7f, 0xff] {
        let mut bad = ct.clone();
        bad[3] = v;
        assert!(
            matches!(
                env.decrypt(&bad, b""),
                Err(Error::UnsupportedVersion { format: "envelope", version }) if version == u16::from(v)
            ),
            "{v}"
        );
        assert!(matches!(
            env.rewrap(&bad),
            Err(Error::UnsupportedVersion { .. })
        ));
    }
    for (i, m) in [(0usize, b'G'), (1, b's'), (2, 0)] {
        let mut bad = ct.clone();
        bad[i] = m;
        assert!(matches!(
            env.decrypt(&bad, b""),
            Err(Error::BadMagic { .. })
        ));
    }
    assert!(matches!(
        env.decrypt(b"x", b""),
        Err(Error::BadMagic { .. })
    ));
    assert!(matches!(
        env.decrypt(b"FSX", b""),
        Err(Error::BadMagic { .. })
    ));
    assert!(matches!(env.decrypt(b"", b""), Err(Error::Empty)));
    assert!(matches!(env.rewrap(b""), Err(Error::Empty)));
    // The text form passed to the binary API.
    let text = env.encrypt_to_string(b"hello", b"").unwrap();
    assert!(matches!(
        env.decrypt(text.as_bytes(), b""),
        Err(Error::BadMagic { .. })
    ));
}

#[test]
fn every_truncation_is_an_error() {
    let env = envelope();
    let ct = env.encrypt(b"sixteen byte msg plus", b"a").unwrap();
    let fields = [
        (0usize, 3usize, "magic"),
        (3, 1, "format version"),
        (4, 1, "key name length"),
        (5, 3, "key name"),
        (8, 4, "key version"),
        (12, 2, "wrapped key length"),
        (14, 60, "wrapped key"),
        (74, 12, "nonce"),
        (86, 16, "tag"),
    ];
    for cut in 0..ct.len() {
        let err = env.decrypt(&ct[..cut], b"a").unwrap_err();
        let rewrap = env.rewrap(&ct[..cut]);
        if cut == 0 {
            assert!(matches!(err, Error::Empty));
            assert!(matches!(rewrap, Err(Error::Empty)));
            continue;
        }
        if cut >= HEADER_LEN + TAG_LEN {
            // Header and at least a tag present: the data no longer authenticates.
            assert!(matches!(err, Error::Decryption), "cut {cut}: {err}");
            continue;
        }
        let (offset, needed, field) = fields
            .iter()
            .copied()
            .find(|&(off, len, _)| cut < off + len)
            .unwrap();
        match err {
            Error::Truncated {
                field: f,
                offset: o,
                needed: n,
                available,
            } => {
                assert_eq!((f, o, n), (field, offset, needed), "cut {cut}");
                assert_eq!(available, cut - offset, "cut {cut}");
            }
            other => panic!("cut {cut}: expected Truncated, got {other}"),
        }
        assert!(
            matches!(rewrap, Err(Error::Truncated { .. })),
            "cut {cut}: {rewrap:?}"
        );
    }
    // Appended bytes are also refused.
    let mut longer = ct.clone();
    longer.push(0);
    assert!(matches!(env.decrypt(&longer, b"a"), Err(Error::Decryption)));
}

fn header_with(name_len: u8, name: &[u8], version: u32, wrapped_len: u16, rest: &[u8]) -> Vec<u8> {
    let mut v = b"FSE\x01".to_vec();
    v.push(name_len);
    v.extend_from_slice(name);
    v.extend_from_slice(&version.to_be_bytes());
    v.extend_from_slice(&wrapped_len.to_be_bytes());
    v.extend_from_slice(rest);
    v
}

#[test]
fn oversized_and_zero_header_fields_are_refused() {
    let env = envelope();
    let filler = vec![0u8; 2048];
    let field = |input: &[u8]| match env.decrypt(input, b"") {
        Err(Error::InvalidHeader { field, .. }) => field,
        other => panic!("expected InvalidHeader, got {other:?}"),
    };
    // Key name length 0 and above 64.
    for n in [0u8, 65, 200, 255] {
        let mut v = b"FSE\x01".to_vec();
        v.push(n);
        v.extend_from_slice(&filler);
        assert_eq!(field(&v), "key name length", "{n}");
    }
    // 64 is allowed but must be present.
    let mut v = b"FSE\x01\x40".to_vec();
    v.extend_from_slice(&[b'a'; 10]);
    assert!(matches!(
        env.decrypt(&v, b""),
        Err(Error::Truncated {
            field: "key name",
            offset: 5,
            needed: 64,
            available: 10
        })
    ));
    // Wrapped key length 0 and above 1024.
    for w in [0u16, 1025, 4096, u16::MAX] {
        assert_eq!(
            field(&header_with(3, b"pii", 1, w, &filler)),
            "wrapped key length",
            "{w}"
        );
    }
    // 1024 is allowed: too short input is truncation, enough input reaches the provider.
    assert!(matches!(
        env.decrypt(&header_with(3, b"pii", 1, 1024, &[0; 100]), b""),
        Err(Error::Truncated {
            field: "wrapped key",
            ..
        })
    ));
    assert!(matches!(
        env.decrypt(&header_with(3, b"pii", 1, 1024, &filler), b""),
        Err(Error::KeyUnwrap)
    ));
    // Version 0.
    assert_eq!(
        field(&header_with(3, b"pii", 0, 60, &filler)),
        "key version"
    );
}

#[test]
fn tampered_wrapped_key_nonce_and_data_fail() {
    let env = envelope();
    let ct = env.encrypt(b"payload!", b"x").unwrap();
    for i in [14usize, 40, 73] {
        let mut bad = ct.clone();
        bad[i] ^= 0x80;
        assert!(
            matches!(env.decrypt(&bad, b"x"), Err(Error::KeyUnwrap)),
            "{i}"
        );
        assert!(matches!(env.rewrap(&bad), Ok(Rewrap::Unchanged)));
    }
    // Wrapped length changed (the provider sees a key of the wrong size).
    let mut bad = ct.clone();
    bad[13] = 59;
    assert!(env.decrypt(&bad, b"x").is_err());
    for i in [74usize, 85, 86, 93, ct.len() - 1] {
        let mut bad = ct.clone();
        bad[i] ^= 1;
        assert!(
            matches!(env.decrypt(&bad, b"x"), Err(Error::Decryption)),
            "{i}"
        );
    }
}

#[test]
fn rewrap_after_rotation_keeps_data_bytes() {
    let env = envelope();
    let pii = name("pii");
    let aad = aad_for("users", "email", "42");
    let ct = env.encrypt(b"alice@example.com", &aad).unwrap();
    assert_eq!(env.rewrap(&ct).unwrap(), Rewrap::Unchanged);

    assert_eq!(env.provider().rotate(&pii), 2);
    let (old_header, old_len) = Header::parse(&ct).unwrap();
    let new = match env.rewrap(&ct).unwrap() {
        Rewrap::Rewrapped(new) => new,
        Rewrap::Unchanged => panic!("expected a rewrap after rotation"),
    };
    let (new_header, new_len) = Header::parse(&new).unwrap();
    assert_eq!(new_header.kek().version, 2);
    assert_eq!(new_header.kek().name, pii);
    assert_eq!(new_header.nonce(), old_header.nonce());
    assert_ne!(new_header.wrapped_dek(), old_header.wrapped_dek());
    // The data part (after the header) is byte-identical.
    assert_eq!(&new[new_len..], &ct[old_len..]);
    assert_eq!(env.decrypt(&new, &aad).unwrap(), b"alice@example.com");
    assert_eq!(env.decrypt(&ct, &aad).unwrap(), b"alice@example.com");
    assert_eq!(env.rewrap(&new).unwrap(), Rewrap::Unchanged);

    // New messages use the new primary.
    let fresh = env.encrypt(b"bob", &aad).unwrap();
    assert_eq!(Header::parse(&fresh).unwrap().0.kek().version, 2);

    // Two rotations later, both the original and the rewrapped ciphertext move to v4.
    env.provider().rotate(&pii);
    env.provider().rotate(&pii);
    for c in [&ct, &new] {
        let Rewrap::Rewrapped(v4) = env.rewrap(c).unwrap() else {
            panic!("expected a rewrap");
        };
        assert_eq!(Header::parse(&v4).unwrap().0.kek().version, 4);
        assert_eq!(env.decrypt(&v4, &aad).unwrap(), b"alice@example.com");
    }

    // A ciphertext under a key the provider does not know cannot be rewrapped.
    let other = Envelope::new(TestProvider::with_keys(&["pii"]), pii.clone());
    assert_eq!(other.rewrap(&ct).unwrap(), Rewrap::Unchanged);
    other.provider().rotate(&pii);
    assert!(matches!(other.rewrap(&ct), Err(Error::KeyUnwrap)));
    let none = Envelope::new(TestProvider::default(), pii);
    assert!(matches!(none.rewrap(&ct), Err(Error::UnknownKey { .. })));
}

#[test]
fn rewrap_str_moves_the_text_form() {
    let env = envelope();
    let pii = name("pii");
    let aad = aad_for("users", "phone", "7");
    let text = env.encrypt_to_string(b"+44 20 7946 0000", &aad).unwrap();
    assert_eq!(env.rewrap_str(&text).unwrap(), Rewrap::Unchanged);
    env.provider().rotate(&pii);
    let Rewrap::Rewrapped(new) = env.rewrap_str(&text).unwrap() else {
        panic!("expected a rewrap after rotation");
    };
    assert_ne!(new, text);
    assert_eq!(env.decrypt_str(&new, &aad).unwrap(), b"+44 20 7946 0000");
    assert_eq!(env.rewrap_str(&new).unwrap(), Rewrap::Unchanged);
    assert!(matches!(env.rewrap_str(""), Err(Error::Empty)));
    assert!(matches!(
        env.rewrap_str("not base64!"),
        Err(Error::Base64(_))
    ));
}

#[test]
fn exhaustive_single_bit_flips_are_rejected() {
    let env = envelope();
    let pt = pattern(40);
    let ct = env.encrypt(&pt, b"row-1").unwrap();
    assert_eq!(ct.len(), HEADER_LEN + 40 + TAG_LEN);
    let mut flips = 0;
    for i in 0..ct.len() {
        for bit in 0..8 {
            let mut bad = ct.clone();
            bad[i] ^= 1 << bit;
            assert!(
                env.decrypt(&bad, b"row-1").is_err(),
                "flip of bit {bit} in byte {i} was accepted"
            );
            flips += 1;
        }
    }
    assert_eq!(flips, ct.len() * 8);
    assert_eq!(flips, 142 * 8);
    assert_eq!(env.decrypt(&ct, b"row-1").unwrap(), pt);
}

// The same properties with the local `Keyring` as the provider.

fn keyring_envelope() -> Envelope<Keyring> {
    let ring = Keyring::new();
    ring.create_key(&name("pii")).unwrap();
    ring.create_key(&name("pij")).unwrap();
    Envelope::new(ring, name("pii"))
}

#[test]
fn keyring_round_trips_and_binds_context() {
    let env = keyring_envelope();
    for len in [0usize, 1, 1 << 20] {
        let pt = pattern(len);
        let aad = aad_for("users", "email", "42");
        let ct = env.encrypt(&pt, &aad).unwrap();
        assert_eq!(ct.len(), HEADER_LEN + len + TAG_LEN);
        assert_eq!(env.decrypt(&ct, &aad).unwrap(), pt);
        assert!(matches!(
            env.decrypt(&ct, &aad_for("users", "email", "43")),
            Err(Error::Decryption)
        ));
    }
    let text = env.encrypt_to_string(b"x", b"").unwrap();
    assert_eq!(env.decrypt_str(&text, b"").unwrap(), b"x");

    // Renaming the header to another key of the keyring fails at unwrap.
    let mut renamed = env.encrypt(b"hello", b"").unwrap();
    renamed[5..8].copy_from_slice(b"pij");
    assert!(matches!(env.decrypt(&renamed, b""), Err(Error::KeyUnwrap)));
    let missing = Envelope::new(env.provider(), name("missing"));
    assert!(matches!(
        missing.encrypt(b"x", b""),
        Err(Error::UnknownKey { .. })
    ));
}

#[test]
fn keyring_rotation_rewrap_and_retirement() {
    let env = keyring_envelope();
    let pii = name("pii");
    let aad = aad_for("accounts", "iban", "7");
    let v1 = env.encrypt(b"GB82WEST12345698765432", &aad).unwrap();
    assert_eq!(env.rewrap(&v1).unwrap(), Rewrap::Unchanged);

    assert_eq!(env.provider().rotate(&pii).unwrap().version, 2);
    let Rewrap::Rewrapped(v2) = env.rewrap(&v1).unwrap() else {
        panic!("expected a rewrap after rotation");
    };
    let (h1, l1) = Header::parse(&v1).unwrap();
    let (h2, l2) = Header::parse(&v2).unwrap();
    assert_eq!((h1.kek().version, h2.kek().version), (1, 2));
    assert_eq!(h1.nonce(), h2.nonce());
    assert_eq!(&v1[l1..], &v2[l2..], "data bytes must be untouched");
    assert_eq!(env.decrypt(&v2, &aad).unwrap(), b"GB82WEST12345698765432");
    assert_eq!(env.rewrap(&v2).unwrap(), Rewrap::Unchanged);

    // Once version 1 is retired, only the rewrapped value still decrypts.
    env.provider().retire_below(&pii, 2).unwrap();
    assert!(matches!(
        env.decrypt(&v1, &aad),
        Err(Error::KeyRetired {
            version: 1,
            minimum: 2,
            ..
        })
    ));
    assert!(matches!(env.rewrap(&v1), Err(Error::KeyRetired { .. })));
    assert_eq!(env.decrypt(&v2, &aad).unwrap(), b"GB82WEST12345698765432");
}

#[test]
fn keyring_usage_limit_stops_encryption_until_rotation() {
    let ring = Keyring::with_policy(RotationPolicy::new(2, 3).unwrap());
    ring.create_key(&name("pii")).unwrap();
    let env = Envelope::new(&ring, name("pii"));
    let cts: Vec<_> = (0..3).map(|i| env.encrypt(&[i], b"").unwrap()).collect();
    assert!(matches!(
        env.encrypt(b"one too many", b""),
        Err(Error::KeyUsageExhausted {
            version: 1,
            count: 3,
            ..
        })
    ));
    // Decryption is not limited.
    for (i, ct) in cts.iter().enumerate() {
        assert_eq!(env.decrypt(ct, b"").unwrap(), [i as u8]);
    }
    ring.rotate(&name("pii")).unwrap();
    let ct = env.encrypt(b"after rotation", b"").unwrap();
    assert_eq!(Header::parse(&ct).unwrap().0.kek().version, 2);
}

#[test]
fn keyring_exhaustive_single_bit_flips_are_rejected() {
    let env = keyring_envelope();
    let pt = pattern(40);
    let ct = env.encrypt(&pt, b"row-1").unwrap();
    for i in 0..ct.len() {
        for bit in 0..8 {
            let mut bad = ct.clone();
            bad[i] ^= 1 << bit;
            assert!(
                env.decrypt(&bad, b"row-1").is_err(),
                "flip of bit {bit} in byte {i} was accepted"
            );
        }
    }
    assert_eq!(env.decrypt(&ct, b"row-1").unwrap(), pt);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn prop_round_trip(payload in proptest::collection::vec(any::<u8>(), 0..2048),
                       aad in proptest::collection::vec(any::<u8>(), 0..300)) {
        let env = envelope();
        let ct = env.encrypt(&payload, &aad).unwrap();
        prop_assert_eq!(ct.len(), HEADER_LEN + payload.len() + TAG_LEN);
        prop_assert_eq!(env.decrypt(&ct, &aad).unwrap(), payload.clone());
        let text = env.encrypt_to_string(&payload, &aad).unwrap();
        prop_assert_eq!(env.decrypt_str(&text, &aad).unwrap(), payload.clone());
        let ring = keyring_envelope();
        let ct = ring.encrypt(&payload, &aad).unwrap();
        prop_assert_eq!(ring.decrypt(&ct, &aad).unwrap(), payload);
    }

    #[test]
    fn prop_single_bit_flip_is_rejected(payload in proptest::collection::vec(any::<u8>(), 0..512),
                                        aad in proptest::collection::vec(any::<u8>(), 0..64),
                                        pos in any::<proptest::sample::Index>(),
                                        bit in 0u8..8) {
        let env = envelope();
        let mut ct = env.encrypt(&payload, &aad).unwrap();
        let i = pos.index(ct.len());
        ct[i] ^= 1 << bit;
        prop_assert!(env.decrypt(&ct, &aad).is_err());
    }

    #[test]
    fn prop_arbitrary_input_never_panics(input in proptest::collection::vec(any::<u8>(), 0..256)) {
        let env = envelope();
        prop_assert!(env.decrypt(&input, b"").is_err());
        let _ = env.rewrap(&input);
    }

    #[test]
    fn prop_arbitrary_header_after_magic_never_panics(rest in proptest::collection::vec(any::<u8>(), 0..200)) {
        let env = envelope();
        let mut input = b"FSE\x01".to_vec();
        input.extend_from_slice(&rest);
        prop_assert!(env.decrypt(&input, b"").is_err());
        let _ = env.rewrap(&input);
    }
}

#[test]
fn move_to_own_key_moves_a_value_between_keys_without_its_aad() {
    let provider = TestProvider::with_keys(&["pii", "other"]);
    let shared = Envelope::new(&provider, name("pii"));
    let own = Envelope::new(&provider, name("other"));
    let aad = aad_for("server_secrets", "value", "backup-codes");
    let ct = shared.encrypt(b"server secret", &aad).unwrap();
    let (old_header, old_len) = Header::parse(&ct).unwrap();

    let Rewrap::Rewrapped(moved) = own.move_to_own_key(&ct).unwrap() else {
        panic!("expected the value to move to `other`");
    };
    let (new_header, new_len) = Header::parse(&moved).unwrap();
    assert_eq!(new_header.kek().name, name("other"));
    assert_eq!(new_header.kek().version, 1);
    assert_eq!(new_header.nonce(), old_header.nonce());
    // The data part is untouched; only the data key moved.
    assert_eq!(&moved[new_len..], &ct[old_len..]);
    // Either envelope decrypts it (the header names the key), with the original AAD only.
    assert_eq!(own.decrypt(&moved, &aad).unwrap(), b"server secret");
    assert_eq!(shared.decrypt(&moved, &aad).unwrap(), b"server secret");
    assert!(own.decrypt(&moved, b"another row").is_err());
    assert_eq!(own.move_to_own_key(&moved).unwrap(), Rewrap::Unchanged);
    // `rewrap` keeps a value under the key its header names.
    assert_eq!(shared.rewrap(&ct).unwrap(), Rewrap::Unchanged);

    // After a rotation of the target key, a value already under it moves to the new primary.
    provider.rotate(&name("other"));
    let Rewrap::Rewrapped(v2) = own.move_to_own_key(&moved).unwrap() else {
        panic!("expected a rewrap to version 2");
    };
    assert_eq!(Header::parse(&v2).unwrap().0.kek().version, 2);
    assert_eq!(own.decrypt(&v2, &aad).unwrap(), b"server secret");

    // A target key the provider does not have is an error, and so is a tampered wrapped key.
    let missing = Envelope::new(&provider, name("missing"));
    assert!(matches!(
        missing.move_to_own_key(&ct),
        Err(Error::UnknownKey { .. })
    ));
    let wrapped = old_header.wrapped_dek().as_bytes();
    let at = ct
        .windows(wrapped.len())
        .position(|w| w == wrapped)
        .unwrap();
    let mut bad = ct.clone();
    bad[at + wrapped.len() / 2] ^= 1;
    assert!(own.move_to_own_key(&bad).is_err());
}

#[test]
fn move_to_own_key_str_moves_the_text_form() {
    let provider = TestProvider::with_keys(&["pii", "other"]);
    let shared = Envelope::new(&provider, name("pii"));
    let own = Envelope::new(&provider, name("other"));
    let aad = aad_for("server_jwt_keys", "seed", "ed25519-1");
    let text = shared.encrypt_to_string(b"seed", &aad).unwrap();
    let Rewrap::Rewrapped(moved) = own.move_to_own_key_str(&text).unwrap() else {
        panic!("expected the text to move");
    };
    assert_eq!(own.decrypt_str(&moved, &aad).unwrap(), b"seed");
    assert_eq!(own.move_to_own_key_str(&moved).unwrap(), Rewrap::Unchanged);
    assert!(matches!(own.move_to_own_key_str(""), Err(Error::Empty)));
    assert!(matches!(
        own.move_to_own_key_str("not base64!"),
        Err(Error::Base64(_))
    ));
}
