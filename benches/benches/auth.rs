//! finsec-auth next to the crates it wraps.
//!
//! - `passwords`: `PasswordHasher::hash` and `verify` with the default (OWASP) parameters
//!   against raw `argon2` `hash_password` / `verify_password` with the same parameters; the
//!   difference is NFKC normalisation, salt drawing and PHC parsing, small beside argon2's
//!   19 MiB of memory work. `dummy_verify` is there to show it costs what `verify` costs.
#![expect(
    clippy::unwrap_used,
    reason = "benchmark setup and measured calls: any failure must abort the run"
)]

use std::hint::black_box;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use criterion::{Criterion, criterion_group, criterion_main};
use finsec_auth::passwords::{Password, PasswordHasher, PasswordPolicy};

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

criterion_group!(benches, bench_passwords);
criterion_main!(benches);
