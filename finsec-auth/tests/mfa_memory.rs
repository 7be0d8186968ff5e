//! In-memory MFA stores: conformance suites, login and enrollment flows, QR output and
//! backup codes.

#![cfg(test)]

mod mfa_support;

use std::sync::Arc;

use finsec_auth::mfa::testing::{
    backup_code_store_conformance, mfa_stores_two_instances, totp_replay_store_conformance,
};
use finsec_auth::mfa::{
    BackupCodeKey, BackupCodeRejection, BackupCodeStore, BackupCodes, Digits,
    MemoryBackupCodeStore, MemoryTotpReplayStore, MfaUserId, PendingEnrollment, TotpAlgorithm,
    TotpParams, TotpReplayStore, TotpSecret, redeem_backup_code,
};
use finsec_auth::outcome::CredentialOutcome;
use secrecy::ExposeSecret;

#[tokio::test]
async fn memory_replay_conformance() {
    let store = MemoryTotpReplayStore::new();
    totp_replay_store_conformance(&store).await;
    totp_replay_store_conformance(&store).await;
    let shared: Arc<dyn TotpReplayStore> = Arc::new(MemoryTotpReplayStore::new());
    totp_replay_store_conformance(&shared).await;
}

#[tokio::test]
async fn memory_backup_conformance() {
    let store = MemoryBackupCodeStore::new();
    backup_code_store_conformance(&store).await;
    let shared: Arc<dyn BackupCodeStore> = Arc::new(MemoryBackupCodeStore::new());
    backup_code_store_conformance(&shared).await;
}

#[tokio::test]
async fn memory_verify_flow() {
    mfa_support::verify_flow(&MemoryTotpReplayStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_concurrent_tasks() {
    let store: Arc<dyn TotpReplayStore> = Arc::new(MemoryTotpReplayStore::new());
    mfa_support::concurrent_servers(store.clone(), Arc::clone(&store), 32).await;
    let backup = MemoryBackupCodeStore::new();
    mfa_stores_two_instances(&store, &store, &backup, &backup).await;
}

#[test]
fn otpauth_uri_is_percent_encoded() {
    let user = MfaUserId::new("u1").unwrap();
    let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec()).unwrap();
    let pending = PendingEnrollment::resume(
        user.clone(),
        "ACME & Co",
        "alice+mfa@example.com",
        secret,
        TotpParams::default(),
    )
    .unwrap();
    assert_eq!(
        pending.otpauth_uri().expose_secret(),
        "otpauth://totp/ACME%20%26%20Co:alice%2Bmfa%40example.com?\
         secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME%20%26%20Co\
         &algorithm=SHA1&digits=6&period=30"
    );
    let params = TotpParams::new(TotpAlgorithm::Sha256, Digits::Eight, 60).unwrap();
    let pending = PendingEnrollment::begin_with_params(user, "Bank", "bob", params).unwrap();
    let uri = pending.otpauth_uri();
    assert!(
        uri.expose_secret()
            .ends_with("&algorithm=SHA256&digits=8&period=60")
    );
    let secret = pending.secret().expose_base32();
    assert_eq!(secret.expose_secret().len(), 32); // 160 bits
    assert!(uri.expose_secret().contains(secret.expose_secret()));
}

#[test]
fn qr_png_and_svg() {
    let user = MfaUserId::new("u1").unwrap();
    let pending = PendingEnrollment::begin(user, "ACME", "alice@example.com").unwrap();
    let png = pending.qr_png().unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(png.len() > 100);
    let svg = pending.qr_svg().unwrap();
    assert!(svg.contains("<svg"));
    assert!(svg.trim_end().ends_with("</svg>"));
}

#[test]
fn debug_never_shows_secrets() {
    let user = MfaUserId::new("u1").unwrap();
    let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec()).unwrap();
    let pending =
        PendingEnrollment::resume(user, "ACME", "alice", secret, TotpParams::default()).unwrap();
    let text = format!("{pending:?}");
    assert!(text.contains("REDACTED"));
    for leak in ["GEZDGNBV", "12345678901234567890", "49, 50, 51"] {
        assert!(!text.contains(leak), "{text}");
    }
    assert!(!format!("{:?}", pending.otpauth_uri()).contains("GEZD"));
}

#[tokio::test]
async fn backup_codes_single_use() {
    let key = BackupCodeKey::generate().unwrap();
    let store = MemoryBackupCodeStore::new();
    let user = MfaUserId::new("alice").unwrap();
    let set = BackupCodes::generate(&key, &user).unwrap();
    let codes: Vec<String> = set.expose_codes().iter().map(|c| c.to_string()).collect();
    assert_eq!(codes.len(), 10);
    let mut unique = codes.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 10);
    for c in &codes {
        assert_eq!(c.len(), 14);
        assert!(c.chars().enumerate().all(|(i, ch)| if i == 4 || i == 9 {
            ch == '-'
        } else {
            "23456789ABCDEFGHJKMNPQRSTUVWXYZ".contains(ch)
        }));
    }
    let shown = set.store(&user, &store).await.unwrap();
    assert_eq!(shown.len(), 10);
    assert_eq!(store.remaining(&user).await.unwrap(), 10);

    // Lower case and without dashes is the same code.
    let sloppy = codes[0].replace('-', " ").to_lowercase();
    assert_eq!(
        redeem_backup_code(&key, &user, &sloppy, &store)
            .await
            .unwrap(),
        CredentialOutcome::Accepted(())
    );
    let again = redeem_backup_code(&key, &user, &codes[0], &store)
        .await
        .unwrap();
    assert_eq!(
        again,
        CredentialOutcome::Rejected(BackupCodeRejection::Invalid)
    );
    assert!(again.is_rejected());
    assert_eq!(
        redeem_backup_code(&key, &user, "0000-0000-0000", &store)
            .await
            .unwrap(),
        CredentialOutcome::Rejected(BackupCodeRejection::Malformed)
    );
    // Another user, or another server key, cannot use the code.
    let mallory = MfaUserId::new("mallory").unwrap();
    assert_eq!(
        redeem_backup_code(&key, &mallory, &codes[1], &store)
            .await
            .unwrap(),
        CredentialOutcome::Rejected(BackupCodeRejection::Invalid)
    );
    let other_key = BackupCodeKey::generate().unwrap();
    assert_eq!(
        redeem_backup_code(&other_key, &user, &codes[1], &store)
            .await
            .unwrap(),
        CredentialOutcome::Rejected(BackupCodeRejection::Invalid)
    );
    assert_eq!(store.remaining(&user).await.unwrap(), 9);

    // A new set invalidates the old one.
    let fresh = BackupCodes::generate(&key, &user).unwrap();
    fresh.store(&user, &store).await.unwrap();
    assert_eq!(
        redeem_backup_code(&key, &user, &codes[2], &store)
            .await
            .unwrap(),
        CredentialOutcome::Rejected(BackupCodeRejection::Invalid)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_code_concurrent_redeem() {
    let key = Arc::new(BackupCodeKey::generate().unwrap());
    let store = Arc::new(MemoryBackupCodeStore::new());
    let user = MfaUserId::new("alice").unwrap();
    let set = BackupCodes::generate(&key, &user).unwrap();
    let code = set.expose_codes()[0].to_owned();
    set.store(&user, &*store).await.unwrap();
    let mut handles = Vec::new();
    for _ in 0..32 {
        let (key, store, user, code) = (key.clone(), store.clone(), user.clone(), code.clone());
        handles.push(tokio::spawn(async move {
            redeem_backup_code(&key, &user, &code, &*store)
                .await
                .unwrap()
        }));
    }
    let mut accepted = 0;
    for h in handles {
        if h.await.unwrap().is_accepted() {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 1);
}
