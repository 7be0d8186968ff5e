//! A downstream crate that adds jsonwebtoken with its default features next to finsec-auth.
//!
//! This package's dev-dependency on jsonwebtoken enables the default feature set
//! (`use_pem`, which selects no backend), so cargo builds this test binary with the features
//! such a crate unifies to: finsec-auth's `aws_lc_rs` plus `use_pem`. Nothing installs a
//! `CryptoProvider` here. jsonwebtoken then finds exactly one backend among its features, so
//! its own `encode`/`decode` work without setup, and finsec's tokens and jsonwebtoken's accept
//! each other. It is its own test binary because the process-wide provider is chosen once.
#![cfg(test)]

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use finsec_auth::tokens::{
    Claims, Kid, Signer, SigningAlgorithm, SigningKey, Validation, Verifier,
};
use jsonwebtoken::jwk::AlgorithmParameters;
use jsonwebtoken::{DecodingKey, EncodingKey, Header};
use time::{Duration, OffsetDateTime};

const P256_PKCS8_PREFIX: [u8; 35] = [
    0x30, 0x41, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x27, 0x30, 0x25, 0x02, 0x01,
    0x01, 0x04, 0x20,
];

fn raw_validation(alg: jsonwebtoken::Algorithm) -> jsonwebtoken::Validation {
    let mut v = jsonwebtoken::Validation::new(alg);
    v.set_issuer(&["iss"]);
    v.set_audience(&["aud"]);
    v.set_required_spec_claims(&["exp", "iss", "aud"]);
    v
}

#[test]
fn default_features_unify_to_one_backend_and_nothing_panics() {
    let now = OffsetDateTime::now_utc();
    let claims = Claims::new("iss", "sub", "aud", now, Duration::minutes(5), ());

    // ES256, the private key given to jsonwebtoken as PEM: `from_ec_pem` exists only with
    // the default `use_pem` feature, so this line compiling shows the defaults are enabled.
    let scalar = [0x5au8; 32];
    let mut der = P256_PKCS8_PREFIX.to_vec();
    der.extend_from_slice(&scalar);
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(&der)
    );
    let raw_es = EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
    let es = SigningKey::es256_from_scalar(Kid::new("es").unwrap(), &scalar).unwrap();

    let hs_secret = [0x42u8; 32];
    let raw_hs = EncodingKey::from_secret(&hs_secret);
    let hs =
        SigningKey::hmac(Kid::new("hs").unwrap(), SigningAlgorithm::Hs256, &hs_secret).unwrap();

    for (key, raw_enc, raw_alg) in [
        (es, raw_es, jsonwebtoken::Algorithm::ES256),
        (hs, raw_hs, jsonwebtoken::Algorithm::HS256),
    ] {
        let vk = key.verification_key().unwrap();
        let raw_dec = match vk.to_jwk().unwrap() {
            None => DecodingKey::from_secret(&hs_secret),
            Some(jwk) => match jwk.algorithm {
                AlgorithmParameters::EllipticCurve(p) => {
                    DecodingKey::from_ec_components(&p.x, &p.y).unwrap()
                }
                other => panic!("unexpected jwk {other:?}"),
            },
        };
        let mut header = Header::new(raw_alg);
        header.kid = Some(key.kid().as_str().to_owned());
        let verifier = Verifier::new([vk], Validation::new("iss", "aud")).unwrap();
        let signer = Signer::new(key);

        // finsec first: it never consults the process-wide provider.
        let token = signer.sign(&claims).unwrap();
        assert_eq!(
            verifier.verify_at::<()>(&token, now).into_result().unwrap(),
            claims
        );

        // jsonwebtoken's own API, on the provider it picks from its features: no panic.
        // (Had a second backend been unified, this call would panic here.)
        let raw_token = jsonwebtoken::encode(&header, &claims, &raw_enc).unwrap();
        assert_eq!(
            verifier
                .verify_at::<()>(&raw_token, now)
                .into_result()
                .unwrap(),
            claims
        );

        let decoded =
            jsonwebtoken::decode::<Claims<()>>(&token, &raw_dec, &raw_validation(raw_alg)).unwrap();
        assert_eq!(decoded.claims, claims);

        // And a token signed by the other side with a flipped signature byte is refused by both.
        let (input, sig) = token.rsplit_once('.').unwrap();
        let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        sig[0] ^= 1;
        let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&sig));
        assert!(
            verifier
                .verify_at::<()>(&forged, now)
                .into_result()
                .is_err()
        );
        assert!(
            jsonwebtoken::decode::<Claims<()>>(&forged, &raw_dec, &raw_validation(raw_alg))
                .is_err()
        );
    }
}
