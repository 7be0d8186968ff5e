//! Flows shared by the MFA backend tests: login verification with skew and replay, and
//! racing tasks against two store instances (two "servers") sharing one backend.

use std::sync::Arc;

use finsec_auth::mfa::{
    ConfirmationRejected, MfaUserId, PendingEnrollment, Totp, TotpAccepted, TotpParams,
    TotpRejection, TotpReplayStore, TotpSecret,
};
use finsec_auth::outcome::CredentialOutcome;
use time::OffsetDateTime;

pub(crate) fn rfc_totp() -> Totp {
    Totp::new(
        TotpSecret::from_bytes(b"12345678901234567890".to_vec()).unwrap(),
        TotpParams::default(),
    )
}

pub(crate) fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

fn fresh_user(name: &str) -> MfaUserId {
    let mut r = [0u8; 6];
    finsec_crypto::fill_random(&mut r).unwrap();
    MfaUserId::new(format!("{name}-{}", hex::encode(r))).unwrap()
}

/// Skew, replay, ordering and enrollment, against `store`.
pub(crate) async fn verify_flow<S: TotpReplayStore + ?Sized>(store: &S) {
    let totp = rfc_totp();
    let user = fresh_user("flow");
    // RFC 6238: 59 s -> step 1, 6-digit code 287082.
    let now = at(59);
    assert_eq!(totp.code_at(now).unwrap().expose(), "287082");
    assert_eq!(
        totp.verify_at(&user, "000000", now, store).await.unwrap(),
        CredentialOutcome::Rejected(TotpRejection::Invalid)
    );
    assert_eq!(
        totp.verify_at(&user, "28708", now, store).await.unwrap(),
        CredentialOutcome::Rejected(TotpRejection::Malformed)
    );
    assert_eq!(
        totp.verify_at(&user, "287 082", now, store).await.unwrap(),
        CredentialOutcome::Accepted(TotpAccepted { step: 1 })
    );
    let replay = totp.verify_at(&user, "287082", now, store).await.unwrap();
    assert_eq!(replay, CredentialOutcome::Rejected(TotpRejection::Replayed));
    assert!(replay.is_rejected());

    // Skew: at step 1000, codes of steps 999, 1000, 1001 pass; 998 and 1002 do not.
    let user = fresh_user("skew");
    let base = 1000 * 30 + 10;
    let code = |step: i64| totp.code_at(at(step * 30)).unwrap().expose();
    for bad in [998, 1002] {
        assert_eq!(
            totp.verify_at(&user, &code(bad), at(base), store)
                .await
                .unwrap(),
            CredentialOutcome::Rejected(TotpRejection::Invalid),
            "step {bad}"
        );
    }
    assert_eq!(
        totp.verify_at(&user, &code(999), at(base), store)
            .await
            .unwrap(),
        CredentialOutcome::Accepted(TotpAccepted { step: 999 })
    );
    assert_eq!(
        totp.verify_at(&user, &code(1001), at(base), store)
            .await
            .unwrap(),
        CredentialOutcome::Accepted(TotpAccepted { step: 1001 })
    );
    // After step 1001 was used, the (still in-window) code of step 1000 is refused.
    assert_eq!(
        totp.verify_at(&user, &code(1000), at(base), store)
            .await
            .unwrap(),
        CredentialOutcome::Rejected(TotpRejection::Replayed)
    );

    // Enrollment: wrong code keeps it pending; right code confirms and is used up.
    let user = fresh_user("enroll");
    let pending = PendingEnrollment::begin(user.clone(), "ACME", "alice@example.com").unwrap();
    let shadow = Totp::new(pending.secret().clone(), *pending.params());
    let now = at(1_700_000_000);
    let good = shadow.code_at(now).unwrap().expose();
    let wrong = if good == "000000" { "111111" } else { "000000" };
    let pending = match pending.confirm_at(wrong, now, store).await.unwrap() {
        CredentialOutcome::Rejected(ConfirmationRejected {
            pending,
            reason: outcome,
            ..
        }) => {
            assert_eq!(outcome, TotpRejection::Invalid);
            pending
        }
        other => panic!("wrong code confirmed: {other:?}"),
    };
    let confirmed = match pending.confirm_at(&good, now, store).await.unwrap() {
        CredentialOutcome::Accepted(totp) => totp,
        other => panic!("right code rejected: {other:?}"),
    };
    assert_eq!(
        confirmed.verify_at(&user, &good, now, store).await.unwrap(),
        CredentialOutcome::Rejected(TotpRejection::Replayed)
    );
    let later = at(1_700_000_000 + 30);
    let next = confirmed.code_at(later).unwrap().expose();
    assert!(
        confirmed
            .verify_at(&user, &next, later, store)
            .await
            .unwrap()
            .is_accepted()
    );
}

/// `tasks` tokio tasks submit the same valid code at once, alternating between two store
/// instances (two servers); exactly one is accepted.
pub(crate) async fn concurrent_servers(
    a: Arc<dyn TotpReplayStore>,
    b: Arc<dyn TotpReplayStore>,
    tasks: usize,
) {
    let totp = Arc::new(rfc_totp());
    let user = fresh_user("race");
    let now = at(1_234_567_890);
    let code = totp.code_at(now).unwrap().expose();
    let mut handles = Vec::new();
    for i in 0..tasks {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let (totp, user, code) = (totp.clone(), user.clone(), code.clone());
        handles.push(tokio::spawn(async move {
            totp.verify_at(&user, &code, now, &*store).await.unwrap()
        }));
    }
    let mut accepted = 0;
    let mut replayed = 0;
    for h in handles {
        match h.await.unwrap() {
            CredentialOutcome::Accepted(TotpAccepted { .. }) => accepted += 1,
            CredentialOutcome::Rejected(TotpRejection::Replayed) => replayed += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((accepted, replayed), (1, tasks - 1));
}
