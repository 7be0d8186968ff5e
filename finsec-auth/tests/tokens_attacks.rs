//! Attack suite for `finsec_auth::tokens`: every forged or out-of-policy token is refused with
//! the precise error. No test installs a jsonwebtoken `CryptoProvider`: the module works with no
//! global setup.
#![cfg(test)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use finsec_auth::tokens::{
    Claims, Kid, Signer, SigningAlgorithm, SigningKey, TokenError, TokenRejection, Validation,
    VerificationKey, Verifier,
};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

const ISS: &str = "https://auth.finsec.test";
const AUD: &str = "finsec-api";
const HS_SECRET: [u8; 32] = [7u8; 32];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct App {
    role: String,
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn kid(s: &str) -> Kid {
    Kid::new(s).unwrap()
}

struct Fixture {
    hs: Signer,
    ed: Signer,
    es: Signer,
    verifier: Verifier,
    ed_public: [u8; 32],
    es_public: (Vec<u8>, Vec<u8>),
}

fn fixture() -> Fixture {
    let hs = SigningKey::hmac(kid("hs-1"), SigningAlgorithm::Hs256, &HS_SECRET).unwrap();
    let ed = SigningKey::ed25519_from_seed(kid("ed-1"), &[1u8; 32]);
    let es = SigningKey::es256_from_scalar(kid("es-1"), &[2u8; 32]).unwrap();
    let keys = vec![
        hs.verification_key().unwrap(),
        ed.verification_key().unwrap(),
        es.verification_key().unwrap(),
    ];
    let jwks = Verifier::new(keys.clone(), Validation::new(ISS, AUD))
        .unwrap()
        .jwks()
        .unwrap();
    let json = serde_json::to_value(&jwks).unwrap();
    let ed_x = json["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == "ed-1")
        .unwrap()["x"]
        .as_str()
        .unwrap()
        .to_owned();
    let es_jwk = json["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == "es-1")
        .unwrap()
        .clone();
    let ed_public: [u8; 32] = URL_SAFE_NO_PAD.decode(ed_x).unwrap().try_into().unwrap();
    let es_public = (
        URL_SAFE_NO_PAD
            .decode(es_jwk["x"].as_str().unwrap())
            .unwrap(),
        URL_SAFE_NO_PAD
            .decode(es_jwk["y"].as_str().unwrap())
            .unwrap(),
    );
    Fixture {
        hs: Signer::new(hs),
        ed: Signer::new(ed),
        es: Signer::new(es),
        verifier: Verifier::new(keys, Validation::new(ISS, AUD)).unwrap(),
        ed_public,
        es_public,
    }
}

fn claims() -> Claims<App> {
    Claims::new(
        ISS,
        "user-42",
        AUD,
        now(),
        Duration::minutes(15),
        App {
            role: "trader".into(),
        },
    )
    .with_jti("jti-1")
}

fn b64(s: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

/// A compact HS256 token over raw header/payload JSON, MAC keyed with `key`.
fn forge_hs256(header: &str, payload: &str, key: &[u8]) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(&mac.finalize().into_bytes()))
}

fn good_payload() -> String {
    serde_json::to_string(&claims()).unwrap()
}

fn verify(f: &Fixture, token: &str) -> Result<Claims<App>, TokenRejection> {
    f.verifier.verify_at::<App>(token, now()).into_result()
}

#[test]
fn round_trip_every_algorithm() {
    let f = fixture();
    for signer in [&f.hs, &f.ed, &f.es] {
        let token = signer.sign(&claims()).unwrap();
        assert_eq!(verify(&f, &token).unwrap(), claims());
    }
    for alg in [
        SigningAlgorithm::Hs256,
        SigningAlgorithm::Hs384,
        SigningAlgorithm::Hs512,
    ] {
        let key = SigningKey::generate_hmac(kid("h"), alg).unwrap();
        let v =
            Verifier::new([key.verification_key().unwrap()], Validation::new(ISS, AUD)).unwrap();
        let token = Signer::new(key).sign(&claims()).unwrap();
        let header: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], alg.as_str());
        assert_eq!(
            v.verify_at::<App>(&token, now()).into_result().unwrap(),
            claims()
        );
    }
}

#[test]
fn generated_keys_rotate_and_round_trip_through_jwks() {
    let old = SigningKey::generate_ed25519(kid("2026-01")).unwrap();
    let new = SigningKey::generate_es256(kid("2026-02")).unwrap();
    let old_token = Signer::new(SigningKey::ed25519_from_seed(kid("x"), &[0u8; 32]))
        .sign(&claims())
        .unwrap();
    let keys = [
        old.verification_key().unwrap(),
        new.verification_key().unwrap(),
    ];
    let published = Verifier::new(keys, Validation::new(ISS, AUD))
        .unwrap()
        .jwks()
        .unwrap();
    assert_eq!(published.keys.len(), 2);
    let json = serde_json::to_string(&published).unwrap();
    let parsed: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&json).unwrap();
    let v = Verifier::from_jwks(&parsed, Validation::new(ISS, AUD)).unwrap();
    for key in [old, new] {
        let token = Signer::new(key).sign(&claims()).unwrap();
        assert_eq!(
            v.verify_at::<App>(&token, now()).into_result().unwrap(),
            claims()
        );
    }
    assert_eq!(
        v.verify_at::<App>(&old_token, now()).into_result(),
        Err(TokenRejection::UnknownKid("x".into()))
    );
}

#[test]
fn jwks_never_exports_hmac_secrets_and_refuses_oct_keys() {
    let f = fixture();
    let jwks = f.verifier.jwks().unwrap();
    assert_eq!(jwks.keys.len(), 2);
    let json = serde_json::to_string(&jwks).unwrap();
    assert!(!json.contains("\"k\""));
    assert!(!json.contains("\"d\""));
    let oct: jsonwebtoken::jwk::JwkSet = serde_json::from_value(serde_json::json!({
        "keys": [{"kty": "oct", "kid": "s", "alg": "HS256", "k": b64(&HS_SECRET)}]
    }))
    .unwrap();
    assert!(matches!(
        Verifier::from_jwks(&oct, Validation::new(ISS, AUD)),
        Err(TokenError::UnsupportedJwk(_))
    ));
}

#[test]
fn duplicate_kids_are_refused() {
    let a = SigningKey::generate_ed25519(kid("same")).unwrap();
    let b = SigningKey::generate_ed25519(kid("same")).unwrap();
    assert_eq!(
        Verifier::new(
            [a.verification_key().unwrap(), b.verification_key().unwrap()],
            Validation::new(ISS, AUD)
        )
        .unwrap_err(),
        TokenError::DuplicateKid("same".into())
    );
}

#[test]
fn alg_none_in_every_casing_is_refused() {
    let f = fixture();
    let mut ran = 0;
    for alg in ["none", "None", "NONE", "nOnE", "NoNe"] {
        for sig in ["", "e30"] {
            let header = format!(r#"{{"alg":"{alg}","kid":"hs-1"}}"#);
            let token = format!(
                "{}.{}.{sig}",
                b64(header.as_bytes()),
                b64(good_payload().as_bytes())
            );
            assert_eq!(verify(&f, &token), Err(TokenRejection::AlgNone), "{alg}");
            ran += 1;
        }
    }
    assert_eq!(ran, 10);
}

#[test]
fn hs256_keyed_with_a_public_key_is_refused() {
    let f = fixture();
    let mut sec1 = vec![4u8];
    sec1.extend_from_slice(&f.es_public.0);
    sec1.extend_from_slice(&f.es_public.1);
    let cases = [
        ("ed-1", f.ed_public.to_vec(), SigningAlgorithm::EdDsa),
        ("es-1", sec1, SigningAlgorithm::Es256),
    ];
    for (kid, public, key_alg) in cases {
        let header = format!(r#"{{"alg":"HS256","kid":"{kid}"}}"#);
        let token = forge_hs256(&header, &good_payload(), &public);
        assert_eq!(
            verify(&f, &token),
            Err(TokenRejection::AlgorithmMismatch {
                header: "HS256".into(),
                key: key_alg
            })
        );
    }
    // The reverse: an EdDSA header pointing at the HMAC key.
    let header = r#"{"alg":"EdDSA","kid":"hs-1"}"#;
    let token = forge_hs256(header, &good_payload(), &HS_SECRET);
    assert!(matches!(
        verify(&f, &token),
        Err(TokenRejection::AlgorithmMismatch { .. })
    ));
}

#[test]
fn unknown_and_hostile_kids_are_refused() {
    let f = fixture();
    let token = forge_hs256(
        r#"{"alg":"HS256","kid":"hs-2"}"#,
        &good_payload(),
        &HS_SECRET,
    );
    assert_eq!(
        verify(&f, &token),
        Err(TokenRejection::UnknownKid("hs-2".into()))
    );
    for hostile in [
        "../../etc/passwd",
        "/dev/null",
        "..",
        "hs-1' OR '1'='1",
        "hs-1; DROP TABLE keys;--",
        "hs-1\u{0}",
        "",
        "hs 1",
        &"a".repeat(65),
    ] {
        let header = serde_json::json!({"alg": "HS256", "kid": hostile}).to_string();
        let token = forge_hs256(&header, &good_payload(), &HS_SECRET);
        assert_eq!(
            verify(&f, &token),
            Err(TokenRejection::InvalidKid),
            "{hostile:?}"
        );
    }
    let token = forge_hs256(r#"{"alg":"HS256","kid":7}"#, &good_payload(), &HS_SECRET);
    assert_eq!(verify(&f, &token), Err(TokenRejection::InvalidKid));
}

#[test]
fn missing_kid_with_several_keys_is_refused_and_accepted_with_one() {
    let f = fixture();
    let token = forge_hs256(r#"{"alg":"HS256"}"#, &good_payload(), &HS_SECRET);
    assert_eq!(verify(&f, &token), Err(TokenRejection::MissingKid));
    let single = Verifier::new(
        [VerificationKey::hmac(kid("only"), SigningAlgorithm::Hs256, &HS_SECRET).unwrap()],
        Validation::new(ISS, AUD),
    )
    .unwrap();
    assert_eq!(
        single
            .verify_at::<App>(&token, now())
            .into_result()
            .unwrap(),
        claims()
    );
}

#[test]
fn time_claims_are_enforced_with_leeway() {
    let f = fixture();
    let token = f.ed.sign(&claims()).unwrap();
    let exp = claims().exp.unwrap();
    let at = |secs: i64| OffsetDateTime::from_unix_timestamp(secs).unwrap();
    assert!(
        f.verifier
            .verify_at::<App>(&token, at(exp + 29))
            .into_result()
            .is_ok()
    );
    assert_eq!(
        f.verifier
            .verify_at::<App>(&token, at(exp + 30))
            .into_result(),
        Err(TokenRejection::Expired { exp })
    );
    let nbf = claims().nbf.unwrap();
    assert!(
        f.verifier
            .verify_at::<App>(&token, at(nbf - 30))
            .into_result()
            .is_ok()
    );
    assert_eq!(
        f.verifier
            .verify_at::<App>(&token, at(nbf - 31))
            .into_result(),
        Err(TokenRejection::NotYetValid { nbf })
    );
    let strict = Verifier::new(
        [SigningKey::ed25519_from_seed(kid("ed-1"), &[1u8; 32])
            .verification_key()
            .unwrap()],
        Validation::new(ISS, AUD).with_leeway(Duration::ZERO),
    )
    .unwrap();
    assert_eq!(
        strict.verify_at::<App>(&token, at(exp)).into_result(),
        Err(TokenRejection::Expired { exp })
    );
    assert!(
        strict
            .verify_at::<App>(&token, at(exp - 1))
            .into_result()
            .is_ok()
    );
}

#[test]
fn missing_exp_wrong_iss_wrong_aud_are_refused() {
    let f = fixture();
    let mut c = claims();
    c.exp = None;
    assert_eq!(
        verify(&f, &f.hs.sign(&c).unwrap()),
        Err(TokenRejection::MissingClaim("exp"))
    );
    let mut c = claims();
    c.iss = Some("https://evil.test".into());
    assert_eq!(
        verify(&f, &f.hs.sign(&c).unwrap()),
        Err(TokenRejection::WrongIssuer("https://evil.test".into()))
    );
    let mut c = claims();
    c.iss = None;
    assert_eq!(
        verify(&f, &f.hs.sign(&c).unwrap()),
        Err(TokenRejection::MissingClaim("iss"))
    );
    let mut c = claims();
    c.aud = Some(finsec_auth::tokens::Audience::One("other-api".into()));
    assert_eq!(
        verify(&f, &f.hs.sign(&c).unwrap()),
        Err(TokenRejection::WrongAudience)
    );
    let mut c = claims();
    c.aud = None;
    assert_eq!(
        verify(&f, &f.hs.sign(&c).unwrap()),
        Err(TokenRejection::MissingClaim("aud"))
    );
    let mut c = claims();
    c.aud = Some(finsec_auth::tokens::Audience::Many(vec![
        "other".into(),
        AUD.into(),
    ]));
    assert!(verify(&f, &f.hs.sign(&c).unwrap()).is_ok());
}

#[test]
fn tampering_is_detected() {
    let f = fixture();
    for signer in [&f.hs, &f.ed, &f.es] {
        let token = signer.sign(&claims()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let mut evil = claims();
        evil.extra.role = "admin".into();
        let evil_payload = b64(serde_json::to_string(&evil).unwrap().as_bytes());
        let changed = format!("{}.{evil_payload}.{}", parts[0], parts[2]);
        assert_eq!(verify(&f, &changed), Err(TokenRejection::InvalidSignature));
        let stripped = format!("{}.{}.", parts[0], parts[1]);
        assert_eq!(verify(&f, &stripped), Err(TokenRejection::InvalidSignature));
        let two = format!("{}.{}", parts[0], parts[1]);
        assert!(matches!(
            verify(&f, &two),
            Err(TokenRejection::Malformed(_))
        ));
        let four = format!("{token}.{}", parts[2]);
        assert!(matches!(
            verify(&f, &four),
            Err(TokenRejection::Malformed(_))
        ));
    }
}

#[test]
fn signature_from_another_key_with_the_same_kid_is_refused() {
    let f = fixture();
    let cases = [
        SigningKey::hmac(kid("hs-1"), SigningAlgorithm::Hs256, &[8u8; 32]).unwrap(),
        SigningKey::ed25519_from_seed(kid("ed-1"), &[9u8; 32]),
        SigningKey::es256_from_scalar(kid("es-1"), &[3u8; 32]).unwrap(),
    ];
    for key in cases {
        let token = Signer::new(key).sign(&claims()).unwrap();
        assert_eq!(verify(&f, &token), Err(TokenRejection::InvalidSignature));
    }
}

#[test]
fn oversized_tokens_are_refused_before_parsing() {
    let f = fixture();
    let token = "a".repeat(8 * 1024 + 1);
    assert_eq!(
        verify(&f, &token),
        Err(TokenRejection::TooLarge {
            len: 8193,
            max: 8192
        })
    );
    let small = Verifier::new(
        [VerificationKey::hmac(kid("hs-1"), SigningAlgorithm::Hs256, &HS_SECRET).unwrap()],
        Validation::new(ISS, AUD).with_max_token_bytes(64),
    )
    .unwrap();
    let token = f.hs.sign(&claims()).unwrap();
    assert!(matches!(
        small.verify_at::<App>(&token, now()).into_result(),
        Err(TokenRejection::TooLarge { max: 64, .. })
    ));
}

#[test]
fn malformed_base64_and_json_are_refused() {
    let f = fixture();
    let token = f.hs.sign(&claims()).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let cases = [
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}=", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}", parts[0].replace('e', "+"), parts[1], parts[2]),
        format!("!!.{}.{}", parts[1], parts[2]),
        format!("{}.{}.{}", b64(b"{not json"), parts[1], parts[2]),
        format!("{}.{}.{}", b64(b"[1,2]"), parts[1], parts[2]),
        format!("{}.{}.{}", b64(br#"{"kid":"hs-1"}"#), parts[1], parts[2]),
        forge_hs256(r#"{"alg":"HS256","kid":"hs-1"}"#, "{not json", &HS_SECRET),
        forge_hs256(r#"{"alg":"HS256","kid":"hs-1"}"#, "[1]", &HS_SECRET),
        String::new(),
        "..".into(),
    ];
    for case in &cases {
        let err = verify(&f, case).unwrap_err();
        assert!(
            matches!(
                err,
                TokenRejection::Malformed(_) | TokenRejection::InvalidClaims(_)
            ),
            "{case}: {err:?}"
        );
    }
    // A payload that is JSON but not our claims shape.
    let token = forge_hs256(
        r#"{"alg":"HS256","kid":"hs-1"}"#,
        r#"{"exp":"tomorrow","role":"x"}"#,
        &HS_SECRET,
    );
    assert!(matches!(
        verify(&f, &token),
        Err(TokenRejection::InvalidClaims(_))
    ));
}

#[test]
fn duplicate_json_members_are_refused() {
    // serde_json itself accepts duplicates (keeps the last), hence the explicit check.
    let v: serde_json::Value = serde_json::from_str(r#"{"a":1,"a":2}"#).unwrap();
    assert_eq!(v["a"], 2);
    let f = fixture();
    let header = r#"{"alg":"HS256","kid":"hs-1","alg":"HS256"}"#;
    let token = forge_hs256(header, &good_payload(), &HS_SECRET);
    assert_eq!(
        verify(&f, &token),
        Err(TokenRejection::DuplicateMember {
            part: "header",
            name: "alg".into()
        })
    );
    let exp = claims().exp.unwrap();
    let payload = format!(
        r#"{{"iss":"{ISS}","aud":"{AUD}","exp":{exp},"role":"trader","sub":"a","sub":"b"}}"#
    );
    let token = forge_hs256(r#"{"alg":"HS256","kid":"hs-1"}"#, &payload, &HS_SECRET);
    assert_eq!(
        verify(&f, &token),
        Err(TokenRejection::DuplicateMember {
            part: "payload",
            name: "sub".into()
        })
    );
    let nested = format!(
        r#"{{"iss":"{ISS}","aud":"{AUD}","exp":{exp},"role":"trader","x":{{"y":1,"y":2}}}}"#
    );
    let token = forge_hs256(r#"{"alg":"HS256","kid":"hs-1"}"#, &nested, &HS_SECRET);
    assert!(matches!(
        verify(&f, &token),
        Err(TokenRejection::DuplicateMember {
            part: "payload",
            ..
        })
    ));
}

#[test]
fn crit_and_key_carrying_headers_are_refused() {
    let f = fixture();
    let crit = r#"{"alg":"HS256","kid":"hs-1","crit":["exp"],"exp":1}"#;
    assert_eq!(
        verify(&f, &forge_hs256(crit, &good_payload(), &HS_SECRET)),
        Err(TokenRejection::UnsupportedCrit("exp".into()))
    );
    let b64crit = r#"{"alg":"HS256","kid":"hs-1","crit":["b64"],"b64":false}"#;
    assert_eq!(
        verify(&f, &forge_hs256(b64crit, &good_payload(), &HS_SECRET)),
        Err(TokenRejection::UnsupportedCrit("b64".into()))
    );
    for (name, value) in [
        ("jku", serde_json::json!("https://evil.test/jwks.json")),
        ("x5u", serde_json::json!("https://evil.test/cert.pem")),
        ("x5c", serde_json::json!(["MIIB"])),
        (
            "jwk",
            serde_json::json!({"kty": "oct", "k": b64(&HS_SECRET)}),
        ),
    ] {
        let mut header = serde_json::json!({"alg": "HS256", "kid": "hs-1"});
        header[name] = value;
        let token = forge_hs256(&header.to_string(), &good_payload(), &HS_SECRET);
        assert_eq!(
            verify(&f, &token),
            Err(TokenRejection::ForbiddenHeader(name))
        );
    }
}

#[test]
fn debug_never_shows_key_material() {
    let secret = [0xabu8; 32];
    let key = SigningKey::hmac(kid("dbg"), SigningAlgorithm::Hs256, &secret).unwrap();
    let seed = [0xcdu8; 32];
    let ed = SigningKey::ed25519_from_seed(kid("dbg-ed"), &seed);
    let es = SigningKey::es256_from_scalar(kid("dbg-es"), &[0x11u8; 32]).unwrap();
    let outputs = [
        format!("{key:?}"),
        format!("{:?}", key.verification_key().unwrap()),
        format!("{ed:?}"),
        format!("{es:?}"),
        format!(
            "{:?}",
            Signer::new(SigningKey::hmac(kid("d"), SigningAlgorithm::Hs256, &secret).unwrap())
        ),
        format!(
            "{:?}",
            Verifier::new([key.verification_key().unwrap()], Validation::new(ISS, AUD)).unwrap()
        ),
    ];
    for out in &outputs {
        for needle in [
            hex::encode(secret),
            hex::encode(seed),
            hex::encode([0x11u8; 32]),
            "171".into(),
            "205".into(),
            b64(&secret),
        ] {
            assert!(!out.contains(&needle), "{out}");
        }
    }
    assert!(outputs[0].contains("[REDACTED]"));
    assert!(outputs[1].contains("[REDACTED]"));
}

#[test]
fn weak_or_mismatched_keys_are_refused() {
    assert!(matches!(
        SigningKey::hmac(kid("k"), SigningAlgorithm::Hs256, &[1u8; 31]),
        Err(TokenError::InvalidKey(_))
    ));
    assert!(matches!(
        SigningKey::hmac(kid("k"), SigningAlgorithm::Hs512, &[1u8; 63]),
        Err(TokenError::InvalidKey(_))
    ));
    assert!(matches!(
        SigningKey::hmac(kid("k"), SigningAlgorithm::EdDsa, &[1u8; 64]),
        Err(TokenError::InvalidKey(_))
    ));
    assert!(matches!(
        SigningKey::es256_from_scalar(kid("k"), &[0u8; 32]),
        Err(TokenError::InvalidKey(_))
    ));
    assert!(matches!(
        SigningKey::es256_from_scalar(kid("k"), &[0xffu8; 32]),
        Err(TokenError::InvalidKey(_))
    ));
    assert!(matches!(
        VerificationKey::es256(kid("k"), &[1u8; 32], &[2u8; 32]),
        Err(TokenError::InvalidKey(_))
    ));
}

static FIXTURE: std::sync::LazyLock<(Fixture, String)> = std::sync::LazyLock::new(|| {
    let f = fixture();
    let token = f.es.sign(&claims()).unwrap();
    (f, token)
});

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ";

proptest::proptest! {
    #[test]
    fn arbitrary_input_never_panics(s in "\\PC{0,600}") {
        let (f, _) = &*FIXTURE;
        let _ = verify(f, &s);
    }

    #[test]
    fn any_single_character_change_is_refused(pos in 0usize..10_000, pick in 0usize..ALPHABET.len()) {
        let (f, token) = &*FIXTURE;
        let mut bytes = token.clone().into_bytes();
        let i = pos % bytes.len();
        let new = ALPHABET[pick];
        proptest::prop_assume!(bytes[i] != new);
        bytes[i] = new;
        let changed = String::from_utf8(bytes).unwrap();
        proptest::prop_assert!(verify(f, &changed).is_err());
    }
}
