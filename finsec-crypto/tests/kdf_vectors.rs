//! Known-answer tests for the KDF and MAC functions: Wycheproof HKDF-SHA256, HMAC-SHA256
//! and PBKDF2-HMAC-SHA256, RFC 5869, RFC 9106 (Argon2id), and the passphrase KDF built on
//! them. Every vector in each file runs; each test asserts the exact number of cases.

#![cfg(test)]

use std::fs;

use finsec_crypto::hazmat::{
    hkdf_sha256, hkdf_sha256_extract, hmac_sha256, hmac_sha256_verify, pbkdf2_hmac_sha256,
};
use finsec_crypto::kdf::{self, DerivedKey, KdfParams, PassphraseKdf, Salt, derive_subkey};
use finsec_crypto::{Error, Key256, Passphrase};
use serde::Deserialize;

macro_rules! vector_path {
    ($file:literal) => {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/", $file)
    };
}

fn load<T: for<'de> Deserialize<'de>>(path: &str) -> T {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"))
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

#[derive(Deserialize)]
struct WycheproofFile<G> {
    #[serde(rename = "numberOfTests")]
    number_of_tests: usize,
    #[serde(rename = "testGroups")]
    test_groups: Vec<G>,
}

// ---------------------------------------------------------------------------------------
// HKDF-SHA256

#[derive(Deserialize)]
struct HkdfGroup {
    tests: Vec<HkdfCase>,
}

#[derive(Deserialize)]
struct HkdfCase {
    #[serde(rename = "tcId")]
    tc_id: u32,
    ikm: String,
    salt: String,
    info: String,
    size: usize,
    okm: String,
    result: String,
}

#[test]
fn wycheproof_hkdf_sha256() {
    let file: WycheproofFile<HkdfGroup> = load(vector_path!("wycheproof/hkdf_sha256_test.json"));
    let (mut valid, mut invalid) = (0usize, 0usize);
    for case in file.test_groups.iter().flat_map(|g| &g.tests) {
        let id = case.tc_id;
        let out = hkdf_sha256(
            &unhex(&case.ikm),
            &unhex(&case.salt),
            &unhex(&case.info),
            case.size,
        );
        match case.result.as_str() {
            "valid" => {
                let okm = out.unwrap_or_else(|e| panic!("tcId {id}: {e}"));
                assert_eq!(hex::encode(okm.expose_secret()), case.okm, "tcId {id}");
                valid += 1;
            }
            "invalid" => {
                assert!(
                    matches!(out, Err(Error::InvalidParameter { .. })),
                    "tcId {id}: size {} must be refused",
                    case.size
                );
                invalid += 1;
            }
            other => panic!("tcId {id}: unexpected result {other}"),
        }
    }
    assert!(valid > 0 && invalid > 0);
    assert_eq!((valid, invalid), (83, 3));
    assert_eq!(valid + invalid, file.number_of_tests);
}

#[derive(Deserialize)]
struct Rfc5869File {
    tests: Vec<Rfc5869Case>,
}

#[derive(Deserialize)]
struct Rfc5869Case {
    id: String,
    ikm: String,
    salt: String,
    info: String,
    #[serde(rename = "L")]
    len: usize,
    prk: String,
    okm: String,
}

#[test]
fn rfc5869_hkdf_sha256() {
    let file: Rfc5869File = load(vector_path!("hkdf/rfc5869_hkdf_sha256.json"));
    let mut ran = 0usize;
    for case in &file.tests {
        let (ikm, salt, info) = (unhex(&case.ikm), unhex(&case.salt), unhex(&case.info));
        let prk = hkdf_sha256_extract(&salt, &ikm);
        assert_eq!(
            hex::encode(prk.expose_secret()),
            case.prk,
            "{} PRK",
            case.id
        );
        let okm = hkdf_sha256(&ikm, &salt, &info, case.len).unwrap();
        assert_eq!(
            hex::encode(okm.expose_secret()),
            case.okm,
            "{} OKM",
            case.id
        );
        ran += 1;
    }
    assert!(ran > 0);
    assert_eq!(ran, 3);
}

// ---------------------------------------------------------------------------------------
// HMAC-SHA256

#[derive(Deserialize)]
struct MacGroup {
    #[serde(rename = "tagSize")]
    tag_size: usize,
    tests: Vec<MacCase>,
}

#[derive(Deserialize)]
struct MacCase {
    #[serde(rename = "tcId")]
    tc_id: u32,
    key: String,
    msg: String,
    tag: String,
    result: String,
}

#[test]
fn wycheproof_hmac_sha256() {
    let file: WycheproofFile<MacGroup> = load(vector_path!("wycheproof/hmac_sha256_test.json"));
    // Cases per path: full 256-bit tags, truncated tags verify accepts (128..=248 bits), and
    // tags below 128 bits, which verify refuses and which are checked by prefix instead.
    let (mut full, mut truncated, mut short) = (0usize, 0usize, 0usize);
    let (mut valid, mut invalid) = (0usize, 0usize);
    for group in &file.test_groups {
        assert_eq!(group.tag_size % 8, 0);
        let tag_len = group.tag_size / 8;
        for case in &group.tests {
            let id = case.tc_id;
            let (key, msg, tag) = (unhex(&case.key), unhex(&case.msg), unhex(&case.tag));
            assert_eq!(tag.len(), tag_len, "tcId {id}");
            let expect_valid = match case.result.as_str() {
                "valid" => true,
                "invalid" => false,
                other => panic!("tcId {id}: unexpected result {other}"),
            };
            let computed = hmac_sha256(&key, &msg);
            let prefix_matches = computed.get(..tag_len) == Some(tag.as_slice());
            assert_eq!(prefix_matches, expect_valid, "tcId {id}: computed MAC");
            let verified = hmac_sha256_verify(&key, &msg, &tag);
            if tag_len < 16 {
                assert!(
                    matches!(verified, Err(Error::InvalidLength { .. })),
                    "tcId {id}: a {tag_len}-byte tag must be refused"
                );
                short += 1;
            } else {
                if expect_valid {
                    verified.unwrap_or_else(|e| panic!("tcId {id}: {e}"));
                } else {
                    assert!(
                        matches!(verified, Err(Error::Decryption)),
                        "tcId {id}: modified tag must not verify"
                    );
                }
                if tag_len == 32 {
                    full += 1;
                } else {
                    truncated += 1;
                }
            }
            if expect_valid {
                valid += 1;
            } else {
                invalid += 1;
            }
        }
    }
    assert!(full > 0 && truncated > 0 && valid > 0 && invalid > 0);
    // This file has no group with tags below 128 bits; the short-tag path is covered by
    // `hmac_verify_refuses_short_and_long_tags`.
    assert_eq!((full, truncated, short), (87, 87, 0));
    assert_eq!((valid, invalid), (66, 108));
    assert_eq!(valid + invalid, file.number_of_tests);
}

#[test]
fn hmac_verify_refuses_short_and_long_tags() {
    let tag = hmac_sha256(b"key", b"msg");
    for len in 0..16 {
        assert!(
            matches!(
                hmac_sha256_verify(b"key", b"msg", &tag[..len]),
                Err(Error::InvalidLength { .. })
            ),
            "{len}"
        );
    }
    for len in 16..=32 {
        hmac_sha256_verify(b"key", b"msg", &tag[..len]).unwrap();
        let mut bad = tag[..len].to_vec();
        bad[len - 1] ^= 1;
        assert!(matches!(
            hmac_sha256_verify(b"key", b"msg", &bad),
            Err(Error::Decryption)
        ));
    }
    let mut long = tag.to_vec();
    long.push(0);
    assert!(matches!(
        hmac_sha256_verify(b"key", b"msg", &long),
        Err(Error::InvalidLength { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// PBKDF2-HMAC-SHA256

#[derive(Deserialize)]
struct PbkdfGroup {
    tests: Vec<PbkdfCase>,
}

#[derive(Deserialize)]
struct PbkdfCase {
    #[serde(rename = "tcId")]
    tc_id: u32,
    password: String,
    salt: String,
    #[serde(rename = "iterationCount")]
    iteration_count: u32,
    #[serde(rename = "dkLen")]
    dk_len: usize,
    dk: String,
    result: String,
}

#[test]
fn wycheproof_pbkdf2_hmac_sha256() {
    let file: WycheproofFile<PbkdfGroup> =
        load(vector_path!("wycheproof/pbkdf2_hmacsha256_test.json"));
    let mut ran = 0usize;
    for case in file.test_groups.iter().flat_map(|g| &g.tests) {
        let id = case.tc_id;
        assert_eq!(
            case.result, "valid",
            "tcId {id}: this file has only valid cases"
        );
        let dk = pbkdf2_hmac_sha256(
            &unhex(&case.password),
            &unhex(&case.salt),
            case.iteration_count,
            case.dk_len,
        )
        .unwrap_or_else(|e| panic!("tcId {id}: {e}"));
        assert_eq!(hex::encode(dk.expose_secret()), case.dk, "tcId {id}");
        ran += 1;
    }
    assert!(ran > 0);
    assert_eq!(ran, 60);
    assert_eq!(ran, file.number_of_tests);
}

// ---------------------------------------------------------------------------------------
// Passphrase KDF

/// Expected values computed independently with Python's `hashlib.pbkdf2_hmac` (OpenSSL).
#[test]
fn passphrase_pbkdf2_known_answers() {
    let cases: [(&str, [u8; 16], u32, &str); 2] = [
        (
            "correct horse battery staple",
            core::array::from_fn(|i| i as u8),
            600_000,
            "ef177144eec9420cbc1093d2a8b344a92bc506d0d4ec9c028dd19f8324d8c1e6",
        ),
        (
            "pässwörd",
            [0xfb; 16],
            10_000,
            "d8de4866df4f4760ee17a58670910bfbbd7ee39cfa3ab629ec33cb169457d3c5",
        ),
    ];
    let mut ran = 0usize;
    for (passphrase, salt, iterations, expected) in cases {
        let kdf = PassphraseKdf::Pbkdf2Sha256 { iterations };
        let key = kdf
            .derive(&Passphrase::new(passphrase), &Salt::from_bytes(salt))
            .unwrap();
        assert_eq!(hex::encode(key.expose_secret()), expected);
        // The raw function agrees (checked on the cheap case only: 600,000 iterations take
        // seconds in a debug build).
        if iterations < 100_000 {
            let raw = pbkdf2_hmac_sha256(passphrase.as_bytes(), &salt, iterations, 32).unwrap();
            assert_eq!(key.expose_secret().as_slice(), raw.expose_secret());
        }
        ran += 1;
    }
    assert_eq!(ran, 2);
}

#[derive(Deserialize)]
struct Argon2File {
    tests: Vec<Argon2Case>,
}

#[derive(Deserialize)]
struct Argon2Case {
    id: String,
    variant: String,
    version: u32,
    memory_kib: u32,
    passes: u32,
    parallelism: u32,
    tag_length: usize,
    password: String,
    salt: String,
    secret: String,
    associated_data: String,
    tag: String,
}

/// The `argon2` crate that the passphrase KDF calls reproduces RFC 9106 section 5.3.
#[test]
fn rfc9106_argon2id_raw() {
    use argon2::{Algorithm, Argon2, AssociatedData, ParamsBuilder, Version};
    let file: Argon2File = load(vector_path!("argon2/rfc9106_argon2.json"));
    let mut ran = 0usize;
    for case in file.tests.iter().filter(|c| c.variant == "argon2id") {
        assert_eq!(case.version, 0x13);
        let ad = unhex(&case.associated_data);
        let params = ParamsBuilder::new()
            .m_cost(case.memory_kib)
            .t_cost(case.passes)
            .p_cost(case.parallelism)
            .output_len(case.tag_length)
            .data(AssociatedData::new(&ad).unwrap())
            .build()
            .unwrap();
        let secret = unhex(&case.secret);
        let argon =
            Argon2::new_with_secret(&secret, Algorithm::Argon2id, Version::V0x13, params).unwrap();
        let mut out = vec![0u8; case.tag_length];
        argon
            .hash_password_into(&unhex(&case.password), &unhex(&case.salt), &mut out)
            .unwrap();
        assert_eq!(hex::encode(&out), case.tag, "{}", case.id);
        ran += 1;
    }
    assert_eq!(ran, 1);
}

/// `PassphraseKdf::Argon2id` passes m, t and p to Argon2id v0x13 in the right places (the
/// parameters are all different so a mix-up changes the output).
#[test]
fn passphrase_argon2id_equals_raw_argon2() {
    use argon2::{Algorithm, Argon2, Params, Version};
    let salt = Salt::from_bytes(*b"0123456789abcdef");
    let passphrase = Passphrase::new("correct horse battery staple");
    let mut ran = 0usize;
    for (m, t, p) in [(19_456, 2, 1), (8_192, 3, 2), (20_000, 1, 4)] {
        let kdf = PassphraseKdf::Argon2id {
            memory_kib: m,
            iterations: t,
            parallelism: p,
        };
        let key = kdf.derive(&passphrase, &salt).unwrap();
        let mut raw = [0u8; 32];
        Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(m, t, p, Some(32)).unwrap(),
        )
        .hash_password_into(
            passphrase.expose_secret().as_bytes(),
            salt.as_bytes(),
            &mut raw,
        )
        .unwrap();
        assert_eq!(key.expose_secret(), &raw, "m={m} t={t} p={p}");
        ran += 1;
    }
    assert_eq!(ran, 3);
}

#[test]
fn defaults_and_minimums() {
    assert_eq!(
        PassphraseKdf::default(),
        PassphraseKdf::Argon2id {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1
        }
    );
    assert_eq!(
        PassphraseKdf::pbkdf2_default(),
        PassphraseKdf::Pbkdf2Sha256 {
            iterations: 600_000
        }
    );
    PassphraseKdf::default().validate().unwrap();
    PassphraseKdf::pbkdf2_default().validate().unwrap();
    assert_eq!(kdf::MIN_PBKDF2_ITERATIONS, 600_000);
    assert_eq!(kdf::MIN_ARGON2_MEMORY_KIB, 19_456);
    assert_eq!(kdf::MIN_ARGON2_ITERATIONS, 2);
    assert_eq!(kdf::MIN_ARGON2_PARALLELISM, 1);
}

#[test]
fn validate_refuses_weak_and_absurd_parameters() {
    let argon = |memory_kib, iterations, parallelism| PassphraseKdf::Argon2id {
        memory_kib,
        iterations,
        parallelism,
    };
    let pbkdf2 = |iterations| PassphraseKdf::Pbkdf2Sha256 { iterations };
    let too_weak_to_create = [
        pbkdf2(599_999),
        pbkdf2(10_000),
        argon(19_455, 2, 1),
        argon(19_456, 1, 1),
        argon(65_536, 1, 1),
    ];
    let too_weak_to_derive = [
        pbkdf2(0),
        pbkdf2(1),
        pbkdf2(9_999),
        argon(8_191, 2, 1),
        argon(19_456, 0, 1),
        argon(19_456, 2, 0),
    ];
    let too_large = [
        pbkdf2(kdf::MAX_PBKDF2_ITERATIONS + 1),
        argon(kdf::MAX_ARGON2_MEMORY_KIB + 1, 2, 1),
        argon(19_456, kdf::MAX_ARGON2_ITERATIONS + 1, 1),
        argon(19_456, 2, kdf::MAX_ARGON2_PARALLELISM + 1),
        argon(u32::MAX, u32::MAX, u32::MAX),
    ];
    let passphrase = Passphrase::new("pw");
    let salt = Salt::from_bytes([1; 16]);
    for k in too_weak_to_create
        .iter()
        .chain(&too_weak_to_derive)
        .chain(&too_large)
    {
        assert!(
            matches!(k.validate(), Err(Error::InvalidParameter { .. })),
            "{k:?}"
        );
        assert!(
            matches!(
                k.derive_new(&passphrase),
                Err(Error::InvalidParameter { .. })
            ),
            "{k:?}"
        );
    }
    for k in too_weak_to_derive.iter().chain(&too_large) {
        assert!(
            matches!(
                k.derive(&passphrase, &salt),
                Err(Error::InvalidParameter { .. })
            ),
            "{k:?}"
        );
    }
    // Stored parameters from an older, weaker policy still derive (so old files open).
    for k in [pbkdf2(10_000), argon(8_192, 1, 1)] {
        k.validate_stored().unwrap();
        k.derive(&passphrase, &salt).unwrap();
    }
}

#[test]
fn derive_new_uses_a_fresh_salt_and_round_trips_through_params() {
    let kdf = PassphraseKdf::default();
    let passphrase = Passphrase::new("a long and unguessable passphrase");
    let a: DerivedKey = kdf.derive_new(&passphrase).unwrap();
    let b = kdf.derive_new(&passphrase).unwrap();
    assert_ne!(a.salt, b.salt);
    assert_ne!(a.key, b.key);
    assert_eq!(a.kdf, kdf);

    let stored = serde_json::to_string(&a.params()).unwrap();
    let params: KdfParams = serde_json::from_str(&stored).unwrap();
    assert_eq!(params.derive(&passphrase).unwrap(), a.key);
    assert_ne!(params.derive(&Passphrase::new("wrong")).unwrap(), a.key);
    assert!(!format!("{a:?}").contains("unguessable"));
}

#[test]
fn subkeys_are_hkdf_with_the_documented_salt() {
    let master = Key256::from_bytes([0x42; 32]);
    let sub = derive_subkey(&master, "blind-index/email").unwrap();
    let raw = hkdf_sha256(
        master.expose_secret(),
        b"finsec-subkey-v1",
        b"blind-index/email",
        32,
    )
    .unwrap();
    assert_eq!(sub.expose_secret().as_slice(), raw.expose_secret());
    assert_ne!(sub, derive_subkey(&master, "blind-index/phone").unwrap());
}
