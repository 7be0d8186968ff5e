//! RFC 4226 Appendix D (HOTP) and RFC 6238 Appendix B (TOTP) test vectors, loaded from
//! `testdata/otp`.

#![cfg(test)]

use finsec_auth::mfa::{Digits, Totp, TotpAlgorithm, TotpParams, TotpSecret, hotp};
use serde::Deserialize;
use time::OffsetDateTime;

const HOTP: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testdata/otp/rfc4226_hotp.json"
));
const TOTP: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testdata/otp/rfc6238_totp.json"
));

#[derive(Deserialize)]
struct Secret {
    hex: String,
    base32_unpadded: String,
}

#[derive(Deserialize)]
struct HotpFile {
    secret: Secret,
    tests: Vec<HotpCase>,
}

#[derive(Deserialize)]
struct HotpCase {
    counter: u64,
    truncated_dec: u32,
    hotp: String,
}

#[derive(Deserialize)]
struct TotpSecrets {
    #[serde(rename = "SHA1")]
    sha1: Secret,
    #[serde(rename = "SHA256")]
    sha256: Secret,
    #[serde(rename = "SHA512")]
    sha512: Secret,
}

#[derive(Deserialize)]
struct TotpFile {
    step_seconds: u32,
    digits: u32,
    secrets: TotpSecrets,
    tests: Vec<TotpCase>,
}

#[derive(Deserialize)]
struct TotpCase {
    time: i64,
    t_hex: String,
    algorithm: String,
    totp: String,
}

fn secret(s: &Secret) -> TotpSecret {
    let from_hex = TotpSecret::from_bytes(hex::decode(&s.hex).unwrap()).unwrap();
    let from_b32 = TotpSecret::from_base32(&s.base32_unpadded).unwrap();
    assert_eq!(from_hex.expose_secret(), from_b32.expose_secret());
    from_hex
}

#[test]
fn rfc4226_hotp_vectors() {
    let file: HotpFile = serde_json::from_str(HOTP).unwrap();
    let key = secret(&file.secret);
    let mut ran = 0;
    for case in &file.tests {
        let code = hotp(&key, TotpAlgorithm::Sha1, Digits::Six, case.counter).unwrap();
        assert_eq!(code.expose(), case.hotp, "counter {}", case.counter);
        assert_eq!(
            format!("{:06}", case.truncated_dec % 1_000_000),
            case.hotp,
            "table 2 consistency, counter {}",
            case.counter
        );
        ran += 1;
    }
    assert_eq!(ran, 10);
}

#[test]
fn rfc6238_totp_vectors_8_and_6_digits() {
    let file: TotpFile = serde_json::from_str(TOTP).unwrap();
    assert_eq!((file.step_seconds, file.digits), (30, 8));
    let mut ran = 0;
    for case in &file.tests {
        let (algorithm, key) = match case.algorithm.as_str() {
            "SHA1" => (TotpAlgorithm::Sha1, secret(&file.secrets.sha1)),
            "SHA256" => (TotpAlgorithm::Sha256, secret(&file.secrets.sha256)),
            "SHA512" => (TotpAlgorithm::Sha512, secret(&file.secrets.sha512)),
            other => panic!("unknown algorithm {other}"),
        };
        let now = OffsetDateTime::from_unix_timestamp(case.time).unwrap();
        let eight = TotpParams::new(algorithm, Digits::Eight, 30).unwrap();
        assert_eq!(
            eight.step_at(now).unwrap(),
            u64::from_str_radix(&case.t_hex, 16).unwrap(),
            "T at {}",
            case.time
        );
        let totp8 = Totp::new(key.clone(), eight);
        assert_eq!(
            totp8.code_at(now).unwrap().expose(),
            case.totp,
            "{case:?}",
            case = case.time
        );
        let six = TotpParams::new(algorithm, Digits::Six, 30).unwrap();
        let totp6 = Totp::new(key, six);
        assert_eq!(
            totp6.code_at(now).unwrap().expose(),
            case.totp[2..],
            "6-digit form at {} {}",
            case.time,
            case.algorithm
        );
        ran += 1;
    }
    assert_eq!(ran, 18);
}
