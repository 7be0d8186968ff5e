//! Wycheproof AES-GCM vectors against `hazmat::aes256gcm_seal_with` / `aes256gcm_open_with`,
//! once for every backend compiled in (RustCrypto always; AWS-LC with the `aws-lc-rs`
//! feature).
//!
//! Groups with a 256-bit key, a 96-bit nonce and a 128-bit tag are run in full; for every
//! other group the functions must refuse the parameters with `Error::InvalidLength`.
#![cfg(test)]

use finsec_crypto::hazmat::{aes256gcm_open_with, aes256gcm_seal_with};
use finsec_crypto::{AeadBackend, Error};
use serde::Deserialize;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testdata/wycheproof/aes_gcm_test.json"
);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct File {
    algorithm: String,
    number_of_tests: usize,
    test_groups: Vec<Group>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Group {
    key_size: usize,
    iv_size: usize,
    tag_size: usize,
    tests: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Case {
    tc_id: u32,
    key: String,
    iv: String,
    aad: String,
    msg: String,
    ct: String,
    tag: String,
    result: String,
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

#[test]
fn wycheproof_aes_gcm_every_backend() {
    for &backend in AeadBackend::ALL {
        run(backend);
    }
    #[cfg(feature = "aws-lc-rs")]
    assert_eq!(AeadBackend::ALL.len(), 2);
}

fn run(backend: AeadBackend) {
    let aes256gcm_seal =
        |k: &[u8], n: &[u8], a: &[u8], m: &[u8]| aes256gcm_seal_with(backend, k, n, a, m);
    let aes256gcm_open =
        |k: &[u8], n: &[u8], a: &[u8], c: &[u8]| aes256gcm_open_with(backend, k, n, a, c);
    let text =
        std::fs::read_to_string(VECTORS).unwrap_or_else(|e| panic!("cannot read {VECTORS}: {e}"));
    let file: File = serde_json::from_str(&text).unwrap();
    assert_eq!(file.algorithm, "AES-GCM");

    let (mut valid, mut invalid, mut refused) = (0usize, 0usize, 0usize);
    for group in &file.test_groups {
        let supported = group.key_size == 256 && group.iv_size == 96 && group.tag_size == 128;
        for case in &group.tests {
            let id = case.tc_id;
            let (key, iv, aad, msg) = (
                unhex(&case.key),
                unhex(&case.iv),
                unhex(&case.aad),
                unhex(&case.msg),
            );
            let mut ct_tag = unhex(&case.ct);
            ct_tag.extend_from_slice(&unhex(&case.tag));

            if !supported {
                // Our functions accept only AES-256, 96-bit nonces and 128-bit tags.
                let what = if group.key_size != 256 {
                    "key"
                } else if group.iv_size != 96 {
                    "nonce"
                } else {
                    "tag"
                };
                let sealed = aes256gcm_seal(&key, &iv, &aad, &msg);
                assert!(
                    matches!(sealed, Err(Error::InvalidLength { what: w, .. }) if w == what),
                    "{backend} tc {id}: seal should refuse the {what}: {sealed:?}"
                );
                let opened = aes256gcm_open(&key, &iv, &aad, &ct_tag);
                assert!(
                    matches!(opened, Err(Error::InvalidLength { what: w, .. }) if w == what),
                    "{backend} tc {id}: open should refuse the {what}: {opened:?}"
                );
                refused += 1;
                continue;
            }

            match case.result.as_str() {
                "valid" => {
                    let sealed = aes256gcm_seal(&key, &iv, &aad, &msg).unwrap();
                    assert_eq!(
                        hex::encode(&sealed),
                        hex::encode(&ct_tag),
                        "{backend} tc {id}: seal"
                    );
                    let opened = aes256gcm_open(&key, &iv, &aad, &ct_tag).unwrap();
                    assert_eq!(opened, msg, "{backend} tc {id}: open");
                    valid += 1;
                }
                "invalid" => {
                    let opened = aes256gcm_open(&key, &iv, &aad, &ct_tag);
                    assert!(
                        matches!(opened, Err(Error::Decryption)),
                        "{backend} tc {id}: invalid vector accepted: {opened:?}"
                    );
                    invalid += 1;
                }
                other => panic!("{backend} tc {id}: unexpected result {other:?}"),
            }
        }
    }

    println!(
        "wycheproof aes_gcm on {backend}: {valid} valid + {invalid} invalid run (AES-256/96/128), \
         {refused} refused (other sizes)"
    );
    assert!(valid > 0 && invalid > 0 && refused > 0);
    assert_eq!(valid, 39);
    assert_eq!(invalid, 27);
    assert_eq!(refused, 250);
    assert_eq!(valid + invalid + refused, file.number_of_tests);
}
