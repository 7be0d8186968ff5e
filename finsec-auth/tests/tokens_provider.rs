//! The tokens module never uses jsonwebtoken's process-wide `CryptoProvider`.
//!
//! This test binary installs a global provider whose every factory fails — the state a
//! downstream application is in when it selects another provider, and the stand-in for the
//! panicking fallback jsonwebtoken uses when cargo unifies `aws_lc_rs` with `rust_crypto`
//! (a downstream crate enabling `rust_crypto`). jsonwebtoken's own `encode` then fails, while
//! finsec's tokens keep signing and verifying, because they use aws-lc-rs keys directly.
//! It is its own test binary because the global can be set only once per process. The
//! default-features case is `tokens_provider_defaults`.
#![cfg(test)]

use finsec_auth::tokens::{Claims, Kid, Signer, SigningKey, Validation, Verifier};
use jsonwebtoken::crypto::{CryptoProvider, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result as JwtResult};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use time::Duration;

fn refuse_signer(
    _: &Algorithm,
    _: &EncodingKey,
) -> JwtResult<Box<dyn jsonwebtoken::crypto::JwtSigner>> {
    Err(ErrorKind::InvalidAlgorithm.into())
}

fn refuse_verifier(
    _: &Algorithm,
    _: &DecodingKey,
) -> JwtResult<Box<dyn jsonwebtoken::crypto::JwtVerifier>> {
    Err(ErrorKind::InvalidAlgorithm.into())
}

static REFUSING: CryptoProvider = CryptoProvider {
    signer_factory: refuse_signer,
    verifier_factory: refuse_verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

#[test]
fn tokens_ignore_the_global_crypto_provider() {
    REFUSING.install_default().unwrap();
    // The global provider is now useless for jsonwebtoken's own API...
    assert!(
        jsonwebtoken::encode(
            &Header::default(),
            &serde_json::json!({"a": 1}),
            &EncodingKey::from_secret(&[1u8; 32])
        )
        .is_err()
    );
    // ...and finsec's tokens are unaffected, for every algorithm.
    let keys = [
        SigningKey::generate_hmac(
            Kid::new("h").unwrap(),
            finsec_auth::tokens::SigningAlgorithm::Hs512,
        )
        .unwrap(),
        SigningKey::generate_ed25519(Kid::new("e").unwrap()).unwrap(),
        SigningKey::generate_es256(Kid::new("p").unwrap()).unwrap(),
    ];
    let verifier = Verifier::new(
        keys.iter().map(|k| k.verification_key().unwrap()),
        Validation::new("iss", "aud"),
    )
    .unwrap();
    let now = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    for key in keys {
        let claims = Claims::new("iss", "sub", "aud", now, Duration::minutes(1), ());
        let token = Signer::new(key).sign(&claims).unwrap();
        assert_eq!(
            verifier.verify_at::<()>(&token, now).into_result().unwrap(),
            claims
        );
    }
}
