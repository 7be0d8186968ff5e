//! Legacy bcrypt verification (feature `legacy-bcrypt`): OpenWall crypt_blowfish vectors,
//! passlib's 72-byte truncation, cost bounds and migration to argon2id.

#![cfg(all(test, feature = "legacy-bcrypt"))]

use finsec_auth::outcome::CredentialOutcome;
use finsec_auth::passwords::legacy::{BCRYPT_MAX_PASSWORD_BYTES, MAX_BCRYPT_COST, verify_bcrypt};
use finsec_auth::passwords::{
    Password, PasswordAccepted, PasswordError, PasswordHasher, PasswordPolicy, PasswordRejection,
};

/// (password, hash) from OpenWall's crypt_blowfish test suite (`wrapper.c`); `$2b$` and
/// `$2y$` give the same hashes as `$2a$` for these ASCII passwords.
const VECTORS: &[(&str, &str)] = &[
    (
        "U*U",
        "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
    ),
    (
        "U*U*",
        "$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK",
    ),
    (
        "U*U*U",
        "$2a$05$XXXXXXXXXXXXXXXXXXXXXOAcXxm9kjPGEMsLznoKqmqw7tc8WCx4a",
    ),
    (
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789chars after 72 are ignored",
        "$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui",
    ),
    (
        "",
        "$2a$05$CCCCCCCCCCCCCCCCCCCCC.7uG0VCzI2bS7j6ymqJi9CdcdxiRTWNy",
    ),
];

#[test]
fn openwall_vectors_verify_and_need_rehash() {
    let hasher = PasswordHasher::default();
    let mut ran = 0;
    for (pw, hash) in VECTORS {
        for prefix in ["$2a$", "$2b$", "$2y$"] {
            let stored = format!("{prefix}{}", &hash[4..]);
            assert_eq!(
                hasher.verify(&Password::new(*pw), &stored).unwrap(),
                CredentialOutcome::Accepted(PasswordAccepted { needs_rehash: true }),
                "{stored}"
            );
            // Prefix, not suffix: bytes after the 72nd do not count.
            let wrong = format!("!{pw}");
            assert_eq!(
                hasher.verify(&Password::new(wrong), &stored).unwrap(),
                CredentialOutcome::Rejected(PasswordRejection::Mismatch),
                "{stored}"
            );
            ran += 1;
        }
    }
    assert_eq!(ran, 15);
}

#[test]
fn long_passwords_truncate_at_72_bytes_like_passlib() {
    assert_eq!(BCRYPT_MAX_PASSWORD_BYTES, 72);
    let long = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    assert_eq!(long.len(), 72);
    let stored = "$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui";
    for pw in [long.to_owned(), format!("{long}anything else")] {
        assert!(
            verify_bcrypt(&Password::new(pw), stored)
                .unwrap()
                .is_accepted()
        );
    }
    // 71 bytes is a different password.
    assert_eq!(
        verify_bcrypt(&Password::new(&long[..71]), stored).unwrap(),
        CredentialOutcome::Rejected(PasswordRejection::Mismatch)
    );
}

#[test]
fn legacy_passwords_are_not_normalised() {
    // passlib hashed the UTF-8 bytes as typed.
    let stored = bcrypt::hash_with_salt("cafe\u{301}", 4, [7; 16])
        .unwrap()
        .format_for_version(bcrypt::Version::TwoB);
    assert!(
        verify_bcrypt(&Password::new("cafe\u{301}"), &stored)
            .unwrap()
            .is_accepted()
    );
    assert_eq!(
        verify_bcrypt(&Password::new("caf\u{e9}"), &stored).unwrap(),
        CredentialOutcome::Rejected(PasswordRejection::Mismatch)
    );
}

#[test]
fn bad_bcrypt_hashes_are_refused() {
    let pw = Password::new("U*U");
    for stored in [
        "$2x$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
        "$2$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
        "$2b$31$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
        "$2b$03$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
        "$2b$5$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
        "$2b$05$short",
        "$2b$",
    ] {
        assert!(
            matches!(
                PasswordHasher::default().verify(&pw, stored),
                Err(PasswordError::InvalidStoredHash { .. })
            ),
            "{stored}"
        );
    }
    assert_eq!(MAX_BCRYPT_COST, 16);
}

#[test]
fn migration_on_successful_login() {
    let hasher = PasswordHasher::default();
    let typed = "my old platform password";
    let legacy = bcrypt::hash(typed, 4).unwrap();
    let CredentialOutcome::Accepted(PasswordAccepted { needs_rehash: true }) =
        hasher.verify(&Password::new(typed), &legacy).unwrap()
    else {
        panic!("legacy hash did not verify");
    };
    // Rehash with argon2id (the caller may skip the policy for migrations, but it passes here).
    let new = PasswordPolicy::default()
        .check(&Password::new(typed))
        .unwrap();
    let migrated = hasher.hash(&new).unwrap();
    assert!(migrated.starts_with("$argon2id$"));
    assert_eq!(
        hasher.verify(&Password::new(typed), &migrated).unwrap(),
        CredentialOutcome::Accepted(PasswordAccepted {
            needs_rehash: false
        })
    );
}

#[test]
fn verify_and_rehash_migrates_bcrypt() {
    let hasher = PasswordHasher::default();
    let (v, new) = hasher
        .verify_and_rehash(
            &Password::new("U*U"),
            "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
        )
        .unwrap();
    assert_eq!(
        v,
        CredentialOutcome::Accepted(PasswordAccepted { needs_rehash: true })
    );
    let new = new.unwrap();
    assert!(new.starts_with("$argon2id$"));
    assert_eq!(
        hasher.verify(&Password::new("U*U"), &new).unwrap(),
        CredentialOutcome::Accepted(PasswordAccepted {
            needs_rehash: false
        })
    );
}
