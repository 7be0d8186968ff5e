//! Properties of TOTP verification and code parsing.

#![cfg(test)]

use finsec_auth::mfa::{
    Digits, MemoryTotpReplayStore, MfaUserId, OtpCode, Totp, TotpAlgorithm, TotpParams,
    TotpRejection, TotpSecret,
};
use finsec_auth::outcome::CredentialOutcome;
use proptest::prelude::*;
use time::OffsetDateTime;

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

proptest! {
    #[test]
    fn parsing_never_panics(text in ".{0,20}") {
        let _ = OtpCode::parse(&text, Digits::Six);
        let _ = OtpCode::parse(&text, Digits::Eight);
        let _ = TotpSecret::from_base32(&text);
    }

    #[test]
    fn code_accepted_within_one_step_and_only_once(
        secret in proptest::collection::vec(any::<u8>(), 16..=64),
        t in 60i64..4_000_000_000,
        delta in -30i64..=30,
    ) {
        let totp = Totp::new(TotpSecret::from_bytes(secret).unwrap(), TotpParams::default());
        let at = |s: i64| OffsetDateTime::from_unix_timestamp(s).unwrap();
        let code = totp.code_at(at(t)).unwrap().expose();
        let store = MemoryTotpReplayStore::new();
        let user = MfaUserId::new("p").unwrap();
        let first = block_on(totp.verify_at(&user, &code, at(t + delta), &store)).unwrap();
        prop_assert!(first.is_accepted());
        let second = block_on(totp.verify_at(&user, &code, at(t + delta), &store)).unwrap();
        prop_assert_eq!(second, CredentialOutcome::Rejected(TotpRejection::Replayed));
    }

    #[test]
    fn code_rejected_two_steps_away(
        secret in proptest::collection::vec(any::<u8>(), 32..=32),
        t in 100i64..4_000_000_000,
        steps in 2i64..1000,
        sign in any::<bool>(),
    ) {
        // 8 digits: an accidental match has probability ~3e-8 per case.
        let params = TotpParams::new(TotpAlgorithm::Sha256, Digits::Eight, 30).unwrap();
        let totp = Totp::new(TotpSecret::from_bytes(secret).unwrap(), params);
        let step = t / 30;
        let other = if sign { step + steps } else { (step - steps).max(0) };
        prop_assume!((other - step).abs() >= 2);
        let at = |s: i64| OffsetDateTime::from_unix_timestamp(s).unwrap();
        let code = totp.code_at(at(other * 30)).unwrap().expose();
        let store = MemoryTotpReplayStore::new();
        let user = MfaUserId::new("p").unwrap();
        let outcome = block_on(totp.verify_at(&user, &code, at(t), &store)).unwrap();
        prop_assert_eq!(outcome, CredentialOutcome::Rejected(TotpRejection::Invalid));
    }
}
