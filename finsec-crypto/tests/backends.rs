//! The AES-GCM backends are interchangeable: every envelope, stream, subject and `hazmat`
//! ciphertext one backend writes opens with every other, and tampering is caught by each.
//!
//! Without the `aws-lc-rs` feature only the RustCrypto backend is compiled in and these
//! tests check it against itself; CI runs them with `--all-features`, where both are.

#![cfg(test)]

use std::io::Write;

use finsec_crypto::hazmat::{aes256gcm_open_with, aes256gcm_seal_with};
use finsec_crypto::{
    AeadBackend, Envelope, Error, KeyName, Keyring, MemorySubjectKeyStore, StreamDecryptor,
    StreamEncryptor, StreamOptions, SubjectId, SubjectKeys, random_array,
};

/// Lengths around the AES block, GHASH and chunk edges, up to past 64 KiB.
const LENGTHS: &[usize] = &[0, 1, 15, 16, 17, 63, 64, 255, 1024, 4096 + 7, 65_536 + 3];

fn keyring() -> (Keyring, KeyName) {
    let keyring = Keyring::new();
    let name = KeyName::new("backends").unwrap();
    keyring.create_key(&name).unwrap();
    (keyring, name)
}

fn data(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8)
        .collect()
}

/// Every (writer, reader) pair of compiled-in backends.
fn pairs() -> Vec<(AeadBackend, AeadBackend)> {
    let all = AeadBackend::ALL;
    #[cfg(feature = "aws-lc-rs")]
    assert_eq!(
        all.len(),
        2,
        "both backends are compiled in with the feature"
    );
    all.iter()
        .flat_map(|&a| all.iter().map(move |&b| (a, b)))
        .collect()
}

#[test]
fn envelopes_open_across_backends() {
    let (keyring, name) = keyring();
    let mut cases = 0;
    for (writer, reader) in pairs() {
        let seal = Envelope::new(&keyring, name.clone()).with_backend(writer);
        let open = Envelope::new(&keyring, name.clone()).with_backend(reader);
        assert_eq!(seal.backend(), writer);
        for &len in LENGTHS {
            let plaintext = data(len);
            let ct = seal.encrypt(&plaintext, b"row 7").unwrap();
            assert_eq!(
                open.decrypt(&ct, b"row 7").unwrap(),
                plaintext,
                "{writer} -> {reader}, {len} bytes"
            );
            assert!(matches!(
                open.decrypt(&ct, b"row 8"),
                Err(Error::Decryption)
            ));
            let mut bad = ct.clone();
            let last = bad.len() - 1;
            bad[last] ^= 0x80;
            assert!(matches!(
                open.decrypt(&bad, b"row 7"),
                Err(Error::Decryption)
            ));
            cases += 1;
        }
    }
    assert_eq!(cases, pairs().len() * LENGTHS.len());
}

#[test]
fn streams_open_across_backends() {
    let (keyring, name) = keyring();
    let mut cases = 0;
    for (writer, reader) in pairs() {
        for &len in LENGTHS.iter().chain(&[1023, 2048, 3 * 1024 + 1]) {
            let plaintext = data(len);
            let options = StreamOptions::default().chunk_size(1024).backend(writer);
            let mut enc =
                StreamEncryptor::with_options(&keyring, &name, b"file", options, Vec::new())
                    .unwrap();
            enc.write_all(&plaintext).unwrap();
            let ct = enc.finish().unwrap();

            let mut dec =
                StreamDecryptor::with_backend(&keyring, b"file", reader, &ct[..]).unwrap();
            let mut out = Vec::new();
            while let Some(chunk) = dec.next_chunk().unwrap() {
                out.extend_from_slice(chunk);
            }
            assert!(dec.is_finished());
            assert_eq!(out, plaintext, "{writer} -> {reader}, {len} bytes");

            let mut bad = ct.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            let mut dec =
                StreamDecryptor::with_backend(&keyring, b"file", reader, &bad[..]).unwrap();
            let failed = loop {
                match dec.next_chunk() {
                    Ok(Some(_)) => continue,
                    Ok(None) => break false,
                    Err(e) => break matches!(e, Error::StreamChunk { .. }),
                }
            };
            assert!(failed, "{writer} -> {reader}: altered final tag accepted");
            cases += 1;
        }
    }
    assert_eq!(cases, pairs().len() * (LENGTHS.len() + 3));
}

#[test]
fn hazmat_seal_and_open_agree_across_backends() {
    let mut cases = 0;
    for (writer, reader) in pairs() {
        for &len in LENGTHS {
            let key: [u8; 32] = random_array().unwrap();
            let nonce: [u8; 12] = random_array().unwrap();
            let plaintext = data(len);
            let ct = aes256gcm_seal_with(writer, &key, &nonce, b"aad", &plaintext).unwrap();
            // Same algorithm: byte-identical output from either backend.
            assert_eq!(
                ct,
                aes256gcm_seal_with(reader, &key, &nonce, b"aad", &plaintext).unwrap()
            );
            assert_eq!(
                aes256gcm_open_with(reader, &key, &nonce, b"aad", &ct).unwrap(),
                plaintext
            );
            assert!(matches!(
                aes256gcm_open_with(reader, &key, &nonce, b"other", &ct),
                Err(Error::Decryption)
            ));
            cases += 1;
        }
    }
    assert_eq!(cases, pairs().len() * LENGTHS.len());
}

#[tokio::test]
async fn subject_ciphertexts_open_across_backends() {
    let (keyring, name) = keyring();
    let store = MemorySubjectKeyStore::new();
    let alice = SubjectId::new("alice").unwrap();
    let bob = SubjectId::new("bob").unwrap();
    let mut cases = 0;
    for (writer, reader) in pairs() {
        let seal = SubjectKeys::new(&store, &keyring, name.clone()).with_backend(writer);
        let open = SubjectKeys::new(&store, &keyring, name.clone()).with_backend(reader);
        assert_eq!(open.backend(), reader);
        for &len in LENGTHS {
            let plaintext = data(len);
            let ct = seal
                .encrypt(&alice, &plaintext, b"users.email")
                .await
                .unwrap();
            assert_eq!(
                open.decrypt(&alice, &ct, b"users.email").await.unwrap(),
                plaintext,
                "{writer} -> {reader}, {len} bytes"
            );
            assert!(matches!(
                open.decrypt(&alice, &ct, b"users.name").await,
                Err(Error::Decryption)
            ));
            assert!(matches!(
                open.decrypt(&bob, &ct, b"users.email").await,
                Err(Error::Decryption)
            ));
            cases += 1;
        }
    }
    assert_eq!(cases, pairs().len() * LENGTHS.len());
}

#[test]
fn the_default_backend_is_the_feature_choice() {
    #[cfg(feature = "aws-lc-rs")]
    assert_eq!(AeadBackend::default(), AeadBackend::AwsLc);
    #[cfg(not(feature = "aws-lc-rs"))]
    assert_eq!(AeadBackend::default(), AeadBackend::RustCrypto);
    assert_eq!(AeadBackend::ALL[0], AeadBackend::default());
}
