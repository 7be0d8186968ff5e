//! finsec-crypto next to the RustCrypto crates it wraps.
//!
//! - `envelope_encrypt` / `envelope_decrypt`: `Envelope` over a `Keyring` (fresh data key
//!   and nonce per message, the data key wrapped by the keyring's KEK) against
//!   `aes_gcm::Aes256Gcm` created once, encrypting with a fixed nonce into a new `Vec` (the
//!   raw baseline: the cheapest possible AES-GCM call, and unsafe to use this way), and
//!   against the same cipher with a fresh `OsRng` nonce per message (`raw_aes_gcm_os_nonce`,
//!   how aes-gcm's documentation uses it). `os_random` times one OS randomness call.
//!   `finsec` uses the default RustCrypto backend; `finsec_aws_lc` the `aws-lc-rs` feature's
//!   backend, next to `raw_aws_lc` (an `aws_lc_rs::aead::LessSafeKey` created once, fixed
//!   nonce, sealing into a new `Vec`).
//! - `stream_encrypt`: `StreamEncryptor` (64 KiB chunks) on each backend.
//! - `kdf`: `PassphraseKdf` against raw `pbkdf2` and `argon2` with the same parameters.
//! - `hkdf`: `hazmat::hkdf_sha256` and `kdf::derive_subkey` against raw `hkdf`.
//! - `blind_index`: `BlindIndex::compute` (e-mail normalisation, HMAC-SHA256, truncation)
//!   against raw `hmac` over the same, already normalised, bytes.
#![expect(
    clippy::unwrap_used,
    reason = "benchmark setup and measured calls: any failure must abort the run"
)]

use std::hint::black_box;
use std::sync::Arc;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use finsec_crypto::blind_index::{BlindIndex, Normalizer};
use finsec_crypto::envelope::aad_for;
use finsec_crypto::hazmat::hkdf_sha256;
use finsec_crypto::kdf::{PassphraseKdf, SUBKEY_SALT, derive_subkey};
use finsec_crypto::{
    AeadBackend, Envelope, Key256, KeyName, Keyring, Passphrase, Salt, StreamEncryptor,
    StreamOptions, fill_random,
};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const SIZES: [usize; 4] = [64, 1024, 64 * 1024, 1024 * 1024];

fn envelope() -> Envelope<Arc<Keyring>> {
    let name = KeyName::new("pii").unwrap();
    let keyring = Keyring::new();
    keyring.create_key(&name).unwrap();
    Envelope::new(Arc::new(keyring), name).with_backend(AeadBackend::RustCrypto)
}

fn raw_aws_lc() -> aws_lc_rs::aead::LessSafeKey {
    let key = Key256::generate().unwrap();
    let unbound =
        aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, key.expose_secret())
            .unwrap();
    aws_lc_rs::aead::LessSafeKey::new(unbound)
}

fn aws_lc_seal(key: &aws_lc_rs::aead::LessSafeKey, pt: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pt.len() + 16);
    out.extend_from_slice(pt);
    key.seal_in_place_append_tag(
        aws_lc_rs::aead::Nonce::assume_unique_for_key([7; 12]),
        aws_lc_rs::aead::Aad::from(aad),
        &mut out,
    )
    .unwrap();
    out
}

fn raw_cipher() -> Aes256Gcm {
    Aes256Gcm::new(Key256::generate().unwrap().expose_secret().into())
}

fn bench_envelope(c: &mut Criterion) {
    let env = envelope();
    let env_aws = env.clone().with_backend(AeadBackend::AwsLc);
    let raw = raw_cipher();
    let raw_aws = raw_aws_lc();
    let nonce = Nonce::from_slice(&[7u8; 12]);
    let aad = aad_for("users", "email", "42");

    let mut group = c.benchmark_group("envelope_encrypt");
    for size in SIZES {
        let pt = vec![0x5a_u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("finsec", size), &pt, |b, pt| {
            b.iter(|| env.encrypt(black_box(pt), black_box(&aad)).unwrap());
        });
        group.bench_with_input(BenchmarkId::new("finsec_aws_lc", size), &pt, |b, pt| {
            b.iter(|| env_aws.encrypt(black_box(pt), black_box(&aad)).unwrap());
        });
        group.bench_with_input(BenchmarkId::new("raw_aws_lc", size), &pt, |b, pt| {
            b.iter(|| aws_lc_seal(&raw_aws, black_box(pt), black_box(&aad)));
        });
        group.bench_with_input(BenchmarkId::new("raw_aes_gcm", size), &pt, |b, pt| {
            b.iter(|| {
                raw.encrypt(
                    black_box(nonce),
                    Payload {
                        msg: black_box(pt),
                        aad: black_box(&aad),
                    },
                )
                .unwrap()
            });
        });
        // Raw aes-gcm as its documentation uses it: a fresh nonce from the OS per message.
        group.bench_with_input(
            BenchmarkId::new("raw_aes_gcm_os_nonce", size),
            &pt,
            |b, pt| {
                b.iter(|| {
                    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
                    raw.encrypt(
                        &nonce,
                        Payload {
                            msg: black_box(pt),
                            aad: black_box(&aad),
                        },
                    )
                    .unwrap()
                });
            },
        );
    }
    group.finish();

    // What one OS randomness call costs here: an envelope encryption makes one (data key,
    // data nonce and wrapping nonce together).
    let mut group = c.benchmark_group("os_random");
    group.bench_function("fill_random_56", |b| {
        b.iter(|| {
            let mut buf = [0u8; 56];
            fill_random(black_box(&mut buf)).unwrap();
            buf
        });
    });
    group.finish();

    let mut group = c.benchmark_group("envelope_decrypt");
    for size in SIZES {
        let pt = vec![0x5a_u8; size];
        let ct = env.encrypt(&pt, &aad).unwrap();
        let raw_ct = raw
            .encrypt(
                nonce,
                Payload {
                    msg: &pt,
                    aad: &aad,
                },
            )
            .unwrap();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("finsec", size), &ct, |b, ct| {
            b.iter(|| env.decrypt(black_box(ct), black_box(&aad)).unwrap());
        });
        group.bench_with_input(BenchmarkId::new("finsec_aws_lc", size), &ct, |b, ct| {
            b.iter(|| env_aws.decrypt(black_box(ct), black_box(&aad)).unwrap());
        });
        let aws_ct = aws_lc_seal(&raw_aws, &pt, &aad);
        group.bench_with_input(BenchmarkId::new("raw_aws_lc", size), &aws_ct, |b, ct| {
            b.iter(|| {
                let mut buf = black_box(ct).clone();
                raw_aws
                    .open_in_place(
                        aws_lc_rs::aead::Nonce::assume_unique_for_key([7; 12]),
                        aws_lc_rs::aead::Aad::from(black_box(&aad)),
                        &mut buf,
                    )
                    .unwrap()
                    .len()
            });
        });
        group.bench_with_input(BenchmarkId::new("raw_aes_gcm", size), &raw_ct, |b, ct| {
            b.iter(|| {
                raw.decrypt(
                    black_box(nonce),
                    Payload {
                        msg: black_box(ct),
                        aad: black_box(&aad),
                    },
                )
                .unwrap()
            });
        });
    }
    group.finish();
}

fn bench_stream(c: &mut Criterion) {
    let name = KeyName::new("files").unwrap();
    let keyring = Keyring::new();
    keyring.create_key(&name).unwrap();
    let mut group = c.benchmark_group("stream_encrypt");
    for size in [64 * 1024, 1024 * 1024] {
        let pt = vec![0x5a_u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        for backend in [AeadBackend::RustCrypto, AeadBackend::AwsLc] {
            let options = StreamOptions::default().backend(backend);
            group.bench_with_input(BenchmarkId::new(backend.name(), size), &pt, |b, pt| {
                b.iter(|| {
                    let out = Vec::with_capacity(size + 1024);
                    let mut enc =
                        StreamEncryptor::with_options(&keyring, &name, b"file", options, out)
                            .unwrap();
                    enc.update(black_box(pt)).unwrap();
                    enc.finish().unwrap()
                });
            });
        }
    }
    group.finish();
}

fn bench_kdf(c: &mut Criterion) {
    let passphrase = Passphrase::new("correct horse battery staple");
    let salt = Salt::from_bytes([0x42; 16]);
    let mut group = c.benchmark_group("kdf");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);

    let pbkdf2 = PassphraseKdf::pbkdf2_default();
    let PassphraseKdf::Pbkdf2Sha256 { iterations } = pbkdf2 else {
        unreachable!("pbkdf2_default is PBKDF2")
    };
    group.bench_function(BenchmarkId::new("finsec", "pbkdf2_sha256_600k"), |b| {
        b.iter(|| {
            pbkdf2
                .derive(black_box(&passphrase), black_box(&salt))
                .unwrap()
        });
    });
    group.bench_function(BenchmarkId::new("raw", "pbkdf2_sha256_600k"), |b| {
        b.iter(|| {
            let mut out = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<Sha256>(
                black_box(passphrase.expose_secret().as_bytes()),
                black_box(salt.as_bytes()),
                iterations,
                &mut out,
            );
            out
        });
    });

    let argon = PassphraseKdf::argon2id_default();
    let PassphraseKdf::Argon2id {
        memory_kib,
        iterations,
        parallelism,
    } = argon
    else {
        unreachable!("argon2id_default is Argon2id")
    };
    group.bench_function(BenchmarkId::new("finsec", "argon2id_default"), |b| {
        b.iter(|| {
            argon
                .derive(black_box(&passphrase), black_box(&salt))
                .unwrap()
        });
    });
    let params = argon2::Params::new(memory_kib, iterations, parallelism, Some(32)).unwrap();
    let raw = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    group.bench_function(BenchmarkId::new("raw", "argon2id_default"), |b| {
        b.iter(|| {
            let mut out = [0u8; 32];
            raw.hash_password_into(
                black_box(passphrase.expose_secret().as_bytes()),
                black_box(salt.as_bytes()),
                &mut out,
            )
            .unwrap();
            out
        });
    });
    group.finish();
}

fn bench_hkdf(c: &mut Criterion) {
    let ikm = [0x0b_u8; 32];
    let salt = [0x5a_u8; 16];
    let info = b"finsec bench context";
    let master = Key256::from_bytes(ikm);
    let mut group = c.benchmark_group("hkdf");

    group.bench_function(BenchmarkId::new("finsec", "hkdf_sha256_32"), |b| {
        b.iter(|| hkdf_sha256(black_box(&ikm), black_box(&salt), black_box(info), 32).unwrap());
    });
    group.bench_function(BenchmarkId::new("raw", "hkdf_sha256_32"), |b| {
        b.iter(|| {
            let mut out = [0u8; 32];
            hkdf::Hkdf::<Sha256>::new(Some(black_box(&salt)), black_box(&ikm))
                .expand(black_box(info), &mut out)
                .unwrap();
            out
        });
    });

    group.bench_function(BenchmarkId::new("finsec", "derive_subkey"), |b| {
        b.iter(|| derive_subkey(black_box(&master), black_box("users.email")).unwrap());
    });
    group.bench_function(BenchmarkId::new("raw", "derive_subkey"), |b| {
        b.iter(|| {
            let mut out = [0u8; 32];
            hkdf::Hkdf::<Sha256>::new(Some(SUBKEY_SALT), black_box(&ikm))
                .expand(black_box(b"users.email"), &mut out)
                .unwrap();
            out
        });
    });
    group.finish();
}

fn bench_blind_index(c: &mut Criterion) {
    let master = Key256::from_bytes([0x0b; 32]);
    let index = BlindIndex::new(&master, "users.email", Normalizer::Email, 16).unwrap();
    let column_key = derive_subkey(&master, "finsec/blind-index/v1/users.email").unwrap();
    let mut group = c.benchmark_group("blind_index");
    group.bench_function(BenchmarkId::new("finsec", "email_16"), |b| {
        b.iter(|| index.compute(black_box("Alice.Smith@Example.com")).unwrap());
    });
    group.bench_function(BenchmarkId::new("raw_hmac", "email_16"), |b| {
        b.iter(|| {
            let mut mac =
                <Hmac<Sha256> as Mac>::new_from_slice(column_key.expose_secret()).unwrap();
            mac.update(black_box(b"alice.smith@example.com"));
            let full = mac.finalize().into_bytes();
            full.get(..16).unwrap().to_vec()
        });
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_envelope,
    bench_stream,
    bench_kdf,
    bench_hkdf,
    bench_blind_index
);
criterion_main!(benches);
