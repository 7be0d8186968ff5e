//! finsec-auth next to the crates it wraps.
//!
//! - `passwords`: `PasswordHasher::hash` and `verify` with the default (OWASP) parameters
//!   against raw `argon2` `hash_password` / `verify_password` with the same parameters; the
//!   difference is NFKC normalisation, salt drawing and PHC parsing, small beside argon2's
//!   19 MiB of memory work. `dummy_verify` is there to show it costs what `verify` costs.
//! - `tokens`: `Signer::sign` and `Verifier::verify_at` for HS256, EdDSA and ES256 against raw
//!   `jsonwebtoken::encode` / `decode` (its `aws_lc_rs` provider, the workspace's one backend,
//!   installed at start) with the same claims, the same key material and comparable
//!   validation (`exp`, `nbf`, `iss`, `aud`, 30 s leeway). finsec adds header policy checks and
//!   duplicate-member detection; it parses each key once, where jsonwebtoken parses the key
//!   (and for ES256 checks the key pair) on every call. `raw_aws_lc_rs_sign` / `_verify` time
//!   the bare signature over the same signing input with a key parsed once: the floor under
//!   both, and the figure to read when the machine is loaded.
//! - `totp`: `Totp::verify_at` with a fresh memory replay store per iteration (accepted path,
//!   store write included), with a wrong code (all three window steps computed, no store
//!   write: the pure code check), and one `hotp` step for reference.
//! - `api_keys`: `ParsedApiKey::parse` and `ApiKeys::verify_at` on the memory store, next to
//!   raw SHA-256 of the bytes finsec hashes (domain, id and secret), raw crc32fast over the
//!   85 bytes the checksum covers and raw `const-hex` decoding of the 80 digits of id and
//!   secret: the three steps of a parse (and `hex`, which finsec used before, for scale).
#![expect(
    clippy::unwrap_used,
    reason = "benchmark setup and measured calls: any failure must abort the run"
)]

use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use finsec_auth::api_keys::format::crc32;
use finsec_auth::api_keys::{
    ApiKeyId, ApiKeyRecord, ApiKeyStore as _, ApiKeys, ClientNetworks, GeneratedKey,
    MemoryApiKeyStore, ParsedApiKey,
};
use finsec_auth::mfa::{MemoryTotpReplayStore, MfaUserId, Totp, TotpParams, TotpSecret, hotp};
use finsec_auth::passwords::{Password, PasswordHasher, PasswordPolicy};
use finsec_auth::tokens::{Claims, Kid, Signer, SigningKey, Validation, Verifier};
use finsec_rbac::PermissionPattern;
use jsonwebtoken::jwk::AlgorithmParameters;
use jsonwebtoken::{DecodingKey, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use time::{Duration, OffsetDateTime};

fn bench_passwords(c: &mut Criterion) {
    let mut group = c.benchmark_group("passwords");
    group.sample_size(20);
    let typed = "correct horse battery staple";

    let hasher = PasswordHasher::default();
    let new = PasswordPolicy::default()
        .check(&Password::new(typed))
        .unwrap();
    let stored = hasher.hash(&new).unwrap();
    group.bench_function("finsec_hash", |b| {
        b.iter(|| hasher.hash(black_box(&new)).unwrap())
    });
    group.bench_function("finsec_verify", |b| {
        b.iter(|| {
            hasher
                .verify(black_box(&Password::new(typed)), black_box(&stored))
                .unwrap()
        })
    });
    group.bench_function("finsec_dummy_verify", |b| {
        b.iter(|| hasher.dummy_verify(black_box(&Password::new(typed))))
    });

    let p = hasher.params();
    let params = Params::new(p.memory_kib(), p.iterations(), p.parallelism(), Some(32)).unwrap();
    let raw = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
    let raw_stored = raw
        .hash_password(typed.as_bytes(), &salt)
        .unwrap()
        .to_string();
    group.bench_function("raw_argon2_hash_password", |b| {
        b.iter(|| {
            raw.hash_password(black_box(typed.as_bytes()), &salt)
                .unwrap()
                .to_string()
        })
    });
    group.bench_function("raw_argon2_verify_password", |b| {
        b.iter(|| {
            let parsed = PasswordHash::new(black_box(&raw_stored)).unwrap();
            raw.verify_password(black_box(typed.as_bytes()), &parsed)
                .unwrap();
        })
    });
    group.finish();
}

/// Drives a future that never waits (the memory stores are ready at once).
fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::yield_now();
    }
}

const ISSUER: &str = "https://auth.example.com";
const AUDIENCE: &str = "payments-api";
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
const P256_PKCS8_PREFIX: [u8; 35] = [
    0x30, 0x41, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x27, 0x30, 0x25, 0x02, 0x01,
    0x01, 0x04, 0x20,
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Extra {
    role: String,
    tenant: String,
}

fn der(prefix: &[u8], key: &[u8; 32]) -> Vec<u8> {
    let mut out = prefix.to_vec();
    out.extend_from_slice(key);
    out
}

fn bench_tokens(c: &mut Criterion) {
    // jsonwebtoken's own encode/decode look up the process-wide provider; finsec does not.
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    let mut group = c.benchmark_group("tokens");
    let now = OffsetDateTime::now_utc();
    let claims = Claims::new(
        ISSUER,
        "user-42",
        AUDIENCE,
        now,
        Duration::hours(1),
        Extra {
            role: "trader".to_owned(),
            tenant: "acme".to_owned(),
        },
    )
    .with_jti("0f6c1b6e-8d7a-4f3e-9b2a-5c4d3e2f1a0b");
    let validation = Validation::new(ISSUER, AUDIENCE);

    let hs_secret = [0x11u8; 32];
    let ed_seed = [0x22u8; 32];
    let es_scalar = [0x33u8; 32];
    let cases = [
        (
            "HS256",
            SigningKey::hmac(
                Kid::new("hs-1").unwrap(),
                finsec_auth::tokens::SigningAlgorithm::Hs256,
                &hs_secret,
            )
            .unwrap(),
            jsonwebtoken::Algorithm::HS256,
            EncodingKey::from_secret(&hs_secret),
        ),
        (
            "EdDSA",
            SigningKey::ed25519_from_seed(Kid::new("ed-1").unwrap(), &ed_seed),
            jsonwebtoken::Algorithm::EdDSA,
            EncodingKey::from_ed_der(&der(&ED25519_PKCS8_PREFIX, &ed_seed)),
        ),
        (
            "ES256",
            SigningKey::es256_from_scalar(Kid::new("es-1").unwrap(), &es_scalar).unwrap(),
            jsonwebtoken::Algorithm::ES256,
            EncodingKey::from_ec_der(&der(&P256_PKCS8_PREFIX, &es_scalar)),
        ),
    ];

    let rng = aws_lc_rs::rand::SystemRandom::new();
    let ed_pair = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&ed_seed).unwrap();
    let es_pair = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &der(&P256_PKCS8_PREFIX, &es_scalar),
    )
    .unwrap();

    for (name, key, raw_alg, raw_enc) in cases {
        let vk = key.verification_key().unwrap();
        let raw_dec = match vk.to_jwk().unwrap() {
            None => DecodingKey::from_secret(&hs_secret),
            Some(jwk) => match jwk.algorithm {
                AlgorithmParameters::OctetKeyPair(p) => DecodingKey::from_ed_components(&p.x),
                AlgorithmParameters::EllipticCurve(p) => {
                    DecodingKey::from_ec_components(&p.x, &p.y)
                }
                _ => DecodingKey::from_ed_components(""),
            }
            .unwrap(),
        };
        let kid = key.kid().as_str().to_owned();
        let verifier = Verifier::new([vk], validation.clone()).unwrap();
        let signer = Signer::new(key);

        let mut raw_header = Header::new(raw_alg);
        raw_header.kid = Some(kid);
        let mut raw_validation = jsonwebtoken::Validation::new(raw_alg);
        raw_validation.leeway = 30;
        raw_validation.validate_nbf = true;
        raw_validation.set_issuer(&[ISSUER]);
        raw_validation.set_audience(&[AUDIENCE]);
        raw_validation.set_required_spec_claims(&["exp", "iss", "aud"]);

        let token = signer.sign(&claims).unwrap();
        let raw_token = jsonwebtoken::encode(&raw_header, &claims, &raw_enc).unwrap();
        // Each side accepts the other's token: same claims, same keys.
        assert_eq!(
            verifier
                .verify_at::<Extra>(&raw_token, now)
                .into_result()
                .unwrap(),
            claims
        );
        assert_eq!(
            jsonwebtoken::decode::<Claims<Extra>>(&token, &raw_dec, &raw_validation)
                .unwrap()
                .claims,
            claims
        );

        group.bench_function(BenchmarkId::new("finsec_sign", name), |b| {
            b.iter(|| signer.sign(black_box(&claims)).unwrap())
        });
        group.bench_function(BenchmarkId::new("raw_jsonwebtoken_encode", name), |b| {
            b.iter(|| jsonwebtoken::encode(&raw_header, black_box(&claims), &raw_enc).unwrap())
        });
        group.bench_function(BenchmarkId::new("finsec_verify", name), |b| {
            b.iter(|| {
                verifier
                    .verify_at::<Extra>(black_box(&token), now)
                    .into_result()
                    .unwrap()
            })
        });
        group.bench_function(BenchmarkId::new("raw_jsonwebtoken_decode", name), |b| {
            b.iter(|| {
                jsonwebtoken::decode::<Claims<Extra>>(
                    black_box(&raw_token),
                    &raw_dec,
                    &raw_validation,
                )
                .unwrap()
            })
        });

        // The bare signature primitive on the same signing input, key parsed once.
        let (input, _) = token.rsplit_once('.').unwrap();
        let input = input.as_bytes();
        let public: Option<(
            &'static dyn aws_lc_rs::signature::VerificationAlgorithm,
            Vec<u8>,
        )> = match name {
            "EdDSA" => {
                use aws_lc_rs::signature::KeyPair as _;
                Some((
                    &aws_lc_rs::signature::ED25519,
                    ed_pair.public_key().as_ref().to_vec(),
                ))
            }
            "ES256" => {
                use aws_lc_rs::signature::KeyPair as _;
                Some((
                    &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
                    es_pair.public_key().as_ref().to_vec(),
                ))
            }
            _ => None,
        };
        if let Some((alg, public)) = public {
            let parsed = aws_lc_rs::signature::ParsedPublicKey::new(alg, public).unwrap();
            let sig = if name == "EdDSA" {
                ed_pair.sign(input).as_ref().to_vec()
            } else {
                es_pair.sign(&rng, input).unwrap().as_ref().to_vec()
            };
            group.bench_function(BenchmarkId::new("raw_aws_lc_rs_sign", name), |b| {
                b.iter(|| {
                    if name == "EdDSA" {
                        ed_pair.sign(black_box(input)).as_ref().to_vec()
                    } else {
                        es_pair
                            .sign(&rng, black_box(input))
                            .unwrap()
                            .as_ref()
                            .to_vec()
                    }
                })
            });
            group.bench_function(BenchmarkId::new("raw_aws_lc_rs_verify", name), |b| {
                b.iter(|| parsed.verify_sig(black_box(input), &sig).unwrap())
            });
        }
    }
    group.finish();
}

fn bench_totp(c: &mut Criterion) {
    let mut group = c.benchmark_group("totp");
    let params = TotpParams::default();
    let secret = TotpSecret::from_bytes(vec![0x5c; TotpSecret::GENERATED_LEN]).unwrap();
    let totp = Totp::new(secret.clone(), params);
    let now = OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap();
    let step = params.step_at(now).unwrap();
    let good = totp.code_at(now).unwrap().expose();
    // A six-digit code that differs from the right one in every digit.
    let bad: String = good
        .bytes()
        .map(|d| char::from(b'0' + (d - b'0' + 5) % 10))
        .collect();
    let user = MfaUserId::new("user-42").unwrap();
    assert!(
        block_on(totp.verify_at(&user, &bad, now, &MemoryTotpReplayStore::new()))
            .unwrap()
            .is_rejected()
    );

    group.bench_function("finsec_verify_accepted_fresh_store", |b| {
        b.iter_batched_ref(
            MemoryTotpReplayStore::new,
            |store| {
                let outcome =
                    block_on(totp.verify_at(&user, black_box(&good), now, store)).unwrap();
                assert!(outcome.is_accepted());
                outcome
            },
            BatchSize::SmallInput,
        )
    });
    let store = MemoryTotpReplayStore::new();
    group.bench_function("finsec_verify_wrong_code", |b| {
        b.iter(|| block_on(totp.verify_at(&user, black_box(&bad), now, &store)).unwrap())
    });
    group.bench_function("finsec_hotp_one_step", |b| {
        b.iter(|| {
            hotp(
                &secret,
                params.algorithm(),
                params.digits(),
                black_box(step),
            )
            .unwrap()
        })
    });
    group.finish();
}

fn bench_api_keys(c: &mut Criterion) {
    let mut group = c.benchmark_group("api_keys");
    let now = OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap();
    let id = ApiKeyId::from_bytes([0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
    let secret = [0x42u8; 32];
    let generated = GeneratedKey::from_parts(id, &secret);
    let mut printable = format!("fsk_{id}_");
    for b in secret {
        printable.push_str(&format!("{b:02x}"));
    }
    let crc = crc32(printable.as_bytes());
    printable.push_str(&format!("{crc:08x}"));

    let store = MemoryApiKeyStore::new();
    block_on(store.insert(&ApiKeyRecord {
        id,
        owner: "svc-settlement".into(),
        scopes: vec![PermissionPattern::new("orders:read").unwrap()].into(),
        secret_hash: generated.hash.clone(),
        created_at: now,
        expires_at: None,
        revoked_at: None,
        replaced_by: None,
        last_used_at: None,
        use_count: 0,
        networks: ClientNetworks::default(),
    }))
    .unwrap();
    let keys = ApiKeys::new(store);
    let parsed = ParsedApiKey::parse(&printable).unwrap();
    assert_eq!(parsed.hash(), &generated.hash);
    assert_eq!(
        block_on(keys.verify_at(&printable, now))
            .unwrap()
            .into_result()
            .unwrap()
            .id(),
        id
    );

    let mut hashed = b"finsec-api-key-v1\0".to_vec();
    hashed.extend_from_slice(id.as_bytes());
    hashed.extend_from_slice(&secret);
    assert_eq!(
        <[u8; 32]>::from(Sha256::digest(&hashed)),
        *generated.hash.as_bytes()
    );

    group.bench_function("finsec_parse", |b| {
        b.iter(|| ParsedApiKey::parse(black_box(&printable)).unwrap())
    });
    group.bench_function("finsec_verify_memory_store", |b| {
        b.iter(|| block_on(keys.verify_at(black_box(&printable), now)).unwrap())
    });
    group.bench_function("raw_sha256_same_bytes", |b| {
        b.iter(|| Sha256::digest(black_box(&hashed)))
    });
    // The two other steps of a parse, each with the crate it uses: the checksum over the
    // 85 bytes before it, and the hex decoding of the id and secret (80 digits).
    let checksummed = printable.as_bytes().get(..85).unwrap();
    group.bench_function("raw_crc32fast_85_bytes", |b| {
        b.iter(|| crc32fast::hash(black_box(checksummed)))
    });
    let digits = format!("{id}{}", printable.get(21..85).unwrap());
    group.bench_function("raw_const_hex_decode_40_bytes", |b| {
        b.iter(|| {
            let mut out = [0u8; 40];
            const_hex::decode_to_slice(black_box(digits.as_bytes()), &mut out).unwrap();
            out
        })
    });
    group.bench_function("raw_hex_decode_40_bytes", |b| {
        b.iter(|| {
            let mut out = [0u8; 40];
            hex::decode_to_slice(black_box(digits.as_bytes()), &mut out).unwrap();
            out
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_passwords,
    bench_tokens,
    bench_totp,
    bench_api_keys
);
criterion_main!(benches);
