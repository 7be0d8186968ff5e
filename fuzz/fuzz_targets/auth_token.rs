//! Arbitrary text as a JWT, and arbitrary edits of a valid one: verification never panics,
//! nothing forged verifies, and arbitrary text as a JWKS never panics the verifier builder.
#![no_main]
#![forbid(unsafe_code)]

use std::sync::LazyLock;

use finsec_auth::tokens::{Claims, Kid, Signer, SigningKey, Validation, Verifier};
use jsonwebtoken::jwk::JwkSet;
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;

struct Fixture {
    verifier: Verifier,
    token: String,
    now: OffsetDateTime,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("valid time");
    let keys = [
        SigningKey::generate_ed25519(Kid::new("ed").expect("kid")).expect("ed25519 key"),
        SigningKey::generate_es256(Kid::new("es").expect("kid")).expect("es256 key"),
        SigningKey::hmac(
            Kid::new("hs").expect("kid"),
            finsec_auth::tokens::SigningAlgorithm::Hs256,
            &[7u8; 32],
        )
        .expect("hmac key"),
    ];
    let verification: Vec<_> = keys
        .iter()
        .map(|k| k.verification_key().expect("verification key"))
        .collect();
    let validation = Validation::new("https://issuer.example", "finsec");
    let verifier = Verifier::new(verification, validation).expect("verifier");
    let claims = Claims::new(
        "https://issuer.example",
        "user-1",
        "finsec",
        now,
        time::Duration::minutes(10),
        serde_json::Value::Null,
    );
    let [first, ..] = keys;
    let token = Signer::new(first).sign(&claims).expect("sign");
    Fixture { verifier, token, now }
});

fuzz_target!(|data: &[u8]| {
    let fx = &*FIXTURE;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Arbitrary text: never verifies (unless it is the fixture's own token).
    let verdict = fx.verifier.verify_at::<serde_json::Value>(text, fx.now);
    assert!(verdict.is_rejected() || text == fx.token, "forged token verified: {text:?}");

    // A valid token with the input spliced in at a position chosen by its first byte.
    if let Some((&at, rest)) = data.split_first() {
        if let Ok(insert) = std::str::from_utf8(rest) {
            let pos = usize::from(at) % (fx.token.len() + 1);
            if fx.token.is_char_boundary(pos) {
                let mut edited = String::with_capacity(fx.token.len() + insert.len());
                edited.push_str(&fx.token[..pos]);
                edited.push_str(insert);
                edited.push_str(&fx.token[pos..]);
                let verdict = fx.verifier.verify_at::<serde_json::Value>(&edited, fx.now);
                assert!(verdict.is_rejected() || edited == fx.token, "edited token verified");
            }
        }
    }

    // Text as a JWKS.
    if let Ok(jwks) = serde_json::from_str::<JwkSet>(text) {
        let _ = Verifier::from_jwks(&jwks, Validation::new("i", "a"));
    }
});
