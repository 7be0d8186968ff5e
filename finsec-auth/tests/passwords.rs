//! Password hashing, verification, rehash detection, pepper rotation, the dummy
//! verification, the SP 800-63B policy and redaction.

#![cfg(test)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::PasswordHash;
use finsec_auth::outcome::CredentialOutcome;
use finsec_auth::passwords::{
    Argon2Params, DEFAULT_MAX_CHARS, DEFAULT_MIN_CHARS, NewPassword, Password, PasswordAccepted,
    PasswordError, PasswordHasher, PasswordPolicy, PasswordRejection, Pepper, SetDenyList,
};

fn new_pw(s: &str) -> NewPassword {
    PasswordPolicy::default().check(&Password::new(s)).unwrap()
}

fn pepper(id: &str, byte: u8) -> Pepper {
    Pepper::new(id, vec![byte; 32]).unwrap()
}

#[test]
fn default_params_are_owasp() {
    let p = Argon2Params::default();
    assert_eq!(
        (p.memory_kib(), p.iterations(), p.parallelism()),
        (19_456, 2, 1)
    );
    assert_eq!(PasswordHasher::default().params(), p);
}

#[test]
fn params_are_validated() {
    assert!(Argon2Params::new(65_536, 3, 2).is_ok());
    for (m, t, p, name) in [
        (8_192, 2, 1, "argon2 memory"),
        (19_456, 1, 1, "argon2 iterations"),
        (19_456, 2, 0, "argon2 parallelism"),
        (u32::MAX, 2, 1, "argon2 memory"),
        (19_456, 1_000, 1, "argon2 iterations"),
    ] {
        match Argon2Params::new(m, t, p) {
            Err(PasswordError::InvalidParameter { name: n, .. }) => assert_eq!(n, name),
            other => panic!("{m},{t},{p}: {other:?}"),
        }
    }
}

#[test]
fn hash_and_verify_round_trip() {
    let hasher = PasswordHasher::default();
    let stored = hasher
        .hash(&new_pw("correct horse battery staple"))
        .unwrap();
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    let parsed = PasswordHash::new(&stored).unwrap();
    assert_eq!(parsed.salt.unwrap().len(), 22); // 16 bytes
    assert_eq!(parsed.hash.unwrap().len(), 32);
    assert_eq!(
        hasher
            .verify(&Password::new("correct horse battery staple"), &stored)
            .unwrap(),
        CredentialOutcome::Accepted(PasswordAccepted {
            needs_rehash: false
        })
    );
    assert_eq!(
        hasher
            .verify(&Password::new("correct horse battery stapl"), &stored)
            .unwrap(),
        CredentialOutcome::Rejected(PasswordRejection::Mismatch)
    );
    // Fresh salt each time.
    assert_ne!(
        stored,
        hasher
            .hash(&new_pw("correct horse battery staple"))
            .unwrap()
    );
}

#[test]
fn unicode_is_nfkc_normalised() {
    let hasher = PasswordHasher::default();
    // "ﬁ" (U+FB01) and full-width letters are NFKC-equivalent to ASCII; é composed vs decomposed.
    let stored = hasher
        .hash(&new_pw("\u{FB01}ne caf\u{e9} ＰＡＳＳ"))
        .unwrap();
    for typed in [
        "\u{FB01}ne caf\u{e9} ＰＡＳＳ",
        "fine caf\u{e9} PASS",
        "fine cafe\u{301} PASS",
    ] {
        assert!(
            hasher
                .verify(&Password::new(typed), &stored)
                .unwrap()
                .is_accepted(),
            "{typed}"
        );
    }
    assert_eq!(
        hasher
            .verify(&Password::new("fine cafe PASS"), &stored)
            .unwrap(),
        CredentialOutcome::Rejected(PasswordRejection::Mismatch)
    );
}

#[test]
fn weaker_or_different_params_need_rehash() {
    let strong = PasswordHasher::new(Argon2Params::new(32_768, 3, 1).unwrap(), None).unwrap();
    let default = PasswordHasher::default();
    let pw = "a long enough password";
    let old = default.hash(&new_pw(pw)).unwrap();
    assert_eq!(
        strong.verify(&Password::new(pw), &old).unwrap(),
        CredentialOutcome::Accepted(PasswordAccepted { needs_rehash: true })
    );
    let new = strong.hash(&new_pw(pw)).unwrap();
    assert_eq!(
        strong.verify(&Password::new(pw), &new).unwrap(),
        CredentialOutcome::Accepted(PasswordAccepted {
            needs_rehash: false
        })
    );
    // Stronger than current is fine; a different lane count is not.
    assert_eq!(
        default.verify(&Password::new(pw), &new).unwrap(),
        CredentialOutcome::Accepted(PasswordAccepted {
            needs_rehash: false
        })
    );
    let lanes = PasswordHasher::new(Argon2Params::new(19_456, 2, 2).unwrap(), None).unwrap();
    assert_eq!(
        lanes.verify(&Password::new(pw), &old).unwrap(),
        CredentialOutcome::Accepted(PasswordAccepted { needs_rehash: true })
    );
}

#[test]
fn pepper_is_required_and_rotates() {
    let pw = "peppered password 1";
    let v1 = PasswordHasher::new(Argon2Params::default(), Some(pepper("p1", 1))).unwrap();
    let stored = v1.hash(&new_pw(pw)).unwrap();
    assert!(stored.contains(",keyid=cDE$"), "{stored}"); // base64("p1")
    assert_eq!(
        v1.verify(&Password::new(pw), &stored).unwrap(),
        CredentialOutcome::Accepted(PasswordAccepted {
            needs_rehash: false
        })
    );
    // Without the pepper: not configured, an error for the operator.
    match PasswordHasher::default().verify(&Password::new(pw), &stored) {
        Err(PasswordError::UnknownPepper { id }) => assert_eq!(id, "p1"),
        other => panic!("{other:?}"),
    }
    // The same id with a different secret: a mismatch (the pepper is really used).
    let wrong = PasswordHasher::new(Argon2Params::default(), Some(pepper("p1", 9))).unwrap();
    assert_eq!(
        wrong.verify(&Password::new(pw), &stored).unwrap(),
        CredentialOutcome::Rejected(PasswordRejection::Mismatch)
    );
    // Rotation: p2 current, p1 retired.
    let v2 = PasswordHasher::new(Argon2Params::default(), Some(pepper("p2", 2)))
        .unwrap()
        .with_retired_pepper(pepper("p1", 1))
        .unwrap();
    assert_eq!(
        v2.verify(&Password::new(pw), &stored).unwrap(),
        CredentialOutcome::Accepted(PasswordAccepted { needs_rehash: true })
    );
    let fresh = v2.hash(&new_pw(pw)).unwrap();
    assert_eq!(
        v2.verify(&Password::new(pw), &fresh).unwrap(),
        CredentialOutcome::Accepted(PasswordAccepted {
            needs_rehash: false
        })
    );
    // An unpeppered hash under a peppered hasher verifies and needs a rehash.
    let plain = PasswordHasher::default().hash(&new_pw(pw)).unwrap();
    assert_eq!(
        v2.verify(&Password::new(pw), &plain).unwrap(),
        CredentialOutcome::Accepted(PasswordAccepted { needs_rehash: true })
    );
    assert!(matches!(
        v2.with_retired_pepper(pepper("p2", 3)),
        Err(PasswordError::InvalidParameter {
            name: "pepper id",
            ..
        })
    ));
}

#[test]
fn pepper_is_validated_and_redacted() {
    for (id, len) in [
        ("", 32),
        ("toolong12", 32),
        ("bad id", 32),
        ("ok", 15),
        ("ok", 65),
    ] {
        assert!(matches!(
            Pepper::new(id, vec![7; len]),
            Err(PasswordError::InvalidParameter { .. })
        ));
    }
    let p = Pepper::new("2026-q4", vec![0xAB; 32]).unwrap();
    let dbg = format!("{p:?}");
    assert!(
        dbg.contains("2026-q4") && dbg.contains("[REDACTED]"),
        "{dbg}"
    );
    assert!(
        !dbg.contains("171") && !dbg.to_lowercase().contains("ab, "),
        "{dbg}"
    );
    let h = PasswordHasher::new(Argon2Params::default(), Some(p)).unwrap();
    assert!(!format!("{h:?}").contains("171"));
}

#[test]
fn stored_hash_errors_are_reported_not_mismatches() {
    let hasher = PasswordHasher::default();
    let pw = Password::new("whatever password");
    for stored in [
        "",
        "not a hash",
        "$argon2i$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E",
        // 8 GiB of memory and 1000 passes: over the bounds, refused before hashing.
        "$argon2id$v=19$m=8388608,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$argon2id$v=19$m=256,t=1000,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
    ] {
        match hasher.verify(&pw, stored) {
            Err(PasswordError::InvalidStoredHash { reason }) => {
                assert!(!reason.contains("whatever"), "{reason}");
            }
            other => panic!("{stored:?}: {other:?}"),
        }
    }
    #[cfg(not(feature = "legacy-bcrypt"))]
    assert!(matches!(
        hasher.verify(
            &pw,
            "$2b$12$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
        ),
        Err(PasswordError::InvalidStoredHash { .. })
    ));
}

#[test]
fn absurdly_long_password_is_a_mismatch() {
    let hasher = PasswordHasher::default();
    let stored = hasher.hash(&new_pw("a long enough password")).unwrap();
    let huge = Password::new("a".repeat(1_000_000));
    assert_eq!(
        hasher.verify(&huge, &stored).unwrap(),
        CredentialOutcome::Rejected(PasswordRejection::Mismatch)
    );
    assert_eq!(
        hasher.dummy_verify(&huge),
        CredentialOutcome::Rejected(PasswordRejection::Mismatch)
    );
}

#[test]
fn dummy_verify_uses_current_params_and_costs_a_real_verify() {
    let params = Argon2Params::new(32_768, 3, 1).unwrap();
    let hasher = PasswordHasher::new(params, Some(pepper("cur", 5))).unwrap();
    let dummy = PasswordHash::new(hasher.dummy_hash()).unwrap();
    assert_eq!(dummy.algorithm.as_str(), "argon2id");
    let p = argon2::Params::try_from(&dummy).unwrap();
    assert_eq!((p.m_cost(), p.t_cost(), p.p_cost()), (32_768, 3, 1));
    assert_eq!(p.keyid(), b"cur");
    // The dummy hash goes through the real verification path: it parses and runs (a
    // mismatch, not an error).
    assert_eq!(
        hasher
            .verify(&Password::new("anything at all"), hasher.dummy_hash())
            .unwrap(),
        CredentialOutcome::Rejected(PasswordRejection::Mismatch)
    );
    assert_eq!(
        hasher.dummy_verify(&Password::new("anything at all")),
        CredentialOutcome::Rejected(PasswordRejection::Mismatch)
    );

    let stored = hasher.hash(&new_pw("a long enough password")).unwrap();
    let time = |f: &dyn Fn()| {
        // The fastest of five runs: the least disturbed by other tests running at once.
        (0..5)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .min()
            .unwrap_or(Duration::ZERO)
    };
    let real = time(&|| {
        let _ = hasher.verify(&Password::new("wrong password here"), &stored);
    });
    let dummy = time(&|| {
        let _ = hasher.dummy_verify(&Password::new("wrong password here"));
    });
    // The parameter checks above are the real guarantee (same argon2 work); the timing
    // bounds are loose because tests share a small, busy machine.
    assert!(
        dummy * 4 > real && real * 4 > dummy,
        "real {real:?}, dummy {dummy:?}"
    );
}

#[test]
fn policy_lengths_follow_sp800_63b() {
    assert_eq!((DEFAULT_MIN_CHARS, DEFAULT_MAX_CHARS), (12, 256));
    let policy = PasswordPolicy::default();
    assert!(matches!(
        policy.check(&Password::new("elevenchars")),
        Err(PasswordError::TooShort {
            min: 12,
            actual: 11
        })
    ));
    assert!(policy.check(&Password::new("twelve chars")).is_ok());
    // No composition rules: all lower-case, all digits, spaces are fine.
    assert!(policy.check(&Password::new("aaaaaaaaaaaa")).is_ok());
    assert!(policy.check(&Password::new("123456789012")).is_ok());
    // Long passphrases: 64 and 256 allowed, 257 not.
    assert!(policy.check(&Password::new("x".repeat(64))).is_ok());
    assert!(policy.check(&Password::new("x".repeat(256))).is_ok());
    assert!(matches!(
        policy.check(&Password::new("x".repeat(257))),
        Err(PasswordError::TooLong {
            max: 256,
            actual: 257
        })
    ));
    // Characters are code points: 12 emoji / CJK characters count as 12.
    assert!(policy.check(&Password::new("🔑".repeat(12))).is_ok());
    assert!(
        policy
            .check(&Password::new("密码密码密码密码密码密码"))
            .is_ok()
    );
}

#[test]
fn policy_counts_code_points_as_sent_and_hashes_the_nfkc_form() {
    let policy = PasswordPolicy::default();
    // "ﬃ" is 1 code point but 3 after NFKC: 4 of them are 4 characters (too short) even
    // though their normal form has 12.
    assert!(matches!(
        policy.check(&Password::new("\u{FB03}".repeat(4))),
        Err(PasswordError::TooShort { min: 12, actual: 4 })
    ));
    let n = policy.check(&Password::new("\u{FB03}".repeat(12))).unwrap();
    assert_eq!(n.expose_secret(), "ffi".repeat(12));
    // 256 of them are allowed (768 once normalised), 257 are not.
    let n = policy
        .check(&Password::new("\u{FB03}".repeat(256)))
        .unwrap();
    assert_eq!(n.expose_secret().chars().count(), 768);
    assert!(matches!(
        policy.check(&Password::new("\u{FB03}".repeat(257))),
        Err(PasswordError::TooLong {
            max: 256,
            actual: 257
        })
    ));
    // "e" + combining acute is 2 code points, 1 after NFKC: 12 code points that compose to
    // 6 are accepted (the count is what was sent), and hashed in the composed form.
    let n = policy.check(&Password::new("e\u{301}".repeat(6))).unwrap();
    assert_eq!(n.expose_secret(), "\u{E9}".repeat(6));
    assert!(matches!(
        policy.check(&Password::new("e\u{301}".repeat(5))),
        Err(PasswordError::TooShort {
            min: 12,
            actual: 10
        })
    ));
    // The composed and decomposed spellings still hash alike.
    let composed = policy.check(&Password::new("\u{E9}".repeat(12))).unwrap();
    let decomposed = policy.check(&Password::new("e\u{301}".repeat(12))).unwrap();
    assert_eq!(composed.expose_secret(), decomposed.expose_secret());
    // Far over the limit is refused before normalising.
    assert!(matches!(
        policy.check(&Password::new("x".repeat(100_000))),
        Err(PasswordError::TooLong { .. })
    ));
}

#[test]
fn policy_bounds_are_validated() {
    let p = PasswordPolicy::new(8, 64).unwrap();
    assert_eq!((p.min_chars(), p.max_chars()), (8, 64));
    assert!(p.check(&Password::new("eight ch")).is_ok());
    for (min, max, name) in [
        (7, 256, "min_chars"),
        (12, 63, "max_chars"),
        (12, 5_000, "max_chars"),
        (100, 64, "min_chars"),
    ] {
        match PasswordPolicy::new(min, max) {
            Err(PasswordError::InvalidParameter { name: n, .. }) => assert_eq!(n, name),
            other => panic!("{min},{max}: {other:?}"),
        }
    }
}

#[test]
fn deny_list_is_case_insensitive_and_normalised() {
    let list = SetDenyList::new([
        "Password1234",
        "correcthorsebatterystaple",
        "ｆｉｎｓｅｃ-ｆｉｎｓｅｃ",
    ]);
    assert_eq!(list.len(), 3);
    assert!(!list.is_empty());
    let policy = PasswordPolicy::default().with_deny_list(Arc::new(list));
    for denied in [
        "password1234",
        "PASSWORD1234",
        "CorrectHorseBatteryStaple",
        "FINSEC-finsec",
    ] {
        assert!(
            matches!(
                policy.check(&Password::new(denied)),
                Err(PasswordError::DenyListed)
            ),
            "{denied}"
        );
    }
    assert!(policy.check(&Password::new("password12345")).is_ok());
    assert!(format!("{policy:?}").contains("deny_list: true"));
}

#[test]
fn secrets_never_show_in_debug_or_errors() {
    let secret = "hunter2-hunter2-hunter2";
    let pw = Password::new(secret);
    assert_eq!(format!("{pw:?}"), "Password([REDACTED])");
    let new = new_pw(secret);
    assert_eq!(format!("{new:?}"), "NewPassword([REDACTED])");
    let err = PasswordPolicy::default()
        .check(&Password::new("pw-x9"))
        .unwrap_err();
    assert!(!err.to_string().contains("pw-x9"), "{err}");
    assert_eq!(
        err.to_string(),
        "password is too short: 5 characters, at least 12 required"
    );
}

#[test]
fn a_mismatch_has_one_code_and_a_message_without_detail() {
    use finsec_auth::outcome::CredentialRejection as _;
    let hasher = PasswordHasher::default();
    let stored = hasher.hash(&new_pw("pw-ok-1234567")).unwrap();
    let outcome = hasher
        .verify(&Password::new("pw-wrong-123456"), &stored)
        .unwrap();
    let why = outcome.rejection().expect("a wrong password is rejected");
    assert_eq!(why.code(), "password.mismatch");
    assert_eq!(why.to_string(), "password does not match");
    assert_eq!(
        hasher.dummy_verify(&Password::new("pw-wrong-123456")),
        outcome
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// No input makes the policy or verification panic; garbage stored hashes are errors,
    /// never a successful verification.
    #[test]
    fn no_panics_on_any_input(pw in "\\PC{0,80}", stored in "(\\$argon2id\\$v=19\\$m=[0-9]{1,3},t=[0-9],p=[0-9]\\$)?\\PC{0,60}") {
        let _ = PasswordPolicy::default().check(&Password::new(pw.as_str()));
        let hasher = PasswordHasher::default();
        if let Ok(v) = hasher.verify(&Password::new(pw.as_str()), &stored) {
            proptest::prop_assert!(!v.is_accepted());
        }
    }
}

#[test]
fn verify_and_rehash_upgrades_old_hashes_without_the_policy() {
    let old = PasswordHasher::default();
    let current = PasswordHasher::new(Argon2Params::new(32_768, 2, 1).unwrap(), None).unwrap();
    // Eight characters: allowed by an older policy, below today's default minimum of 12.
    let weak_policy = PasswordPolicy::new(8, 64).unwrap();
    let typed = "8 chars!";
    let stored = old
        .hash(&weak_policy.check(&Password::new(typed)).unwrap())
        .unwrap();

    let (v, new) = current
        .verify_and_rehash(&Password::new(typed), &stored)
        .unwrap();
    assert_eq!(
        v,
        CredentialOutcome::Accepted(PasswordAccepted { needs_rehash: true })
    );
    let new = new.unwrap();
    assert!(new.starts_with("$argon2id$v=19$m=32768,t=2,p=1$"), "{new}");
    assert_eq!(
        current
            .verify_and_rehash(&Password::new(typed), &new)
            .unwrap(),
        (
            CredentialOutcome::Accepted(PasswordAccepted {
                needs_rehash: false
            }),
            None
        )
    );
    assert_eq!(
        current
            .verify_and_rehash(&Password::new("8 chars?"), &stored)
            .unwrap(),
        (
            CredentialOutcome::Rejected(PasswordRejection::Mismatch),
            None
        )
    );
}
