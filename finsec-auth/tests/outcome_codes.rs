//! Every credential check answers with `CredentialOutcome`, and every rejection has a stable,
//! unique `module.reason` code. The rejections here are produced by real checks, not built
//! by hand, so a check that stopped rejecting would fail this test.

#![cfg(test)]

use std::collections::BTreeMap;

use finsec_auth::api_keys::{ApiKeys, MemoryApiKeyStore, NewApiKey};
use finsec_auth::mfa::{
    BackupCodeKey, BackupCodes, MemoryBackupCodeStore, MemoryTotpReplayStore, MfaUserId,
    PendingEnrollment, Totp, redeem_backup_code,
};
use finsec_auth::outcome::{CredentialOutcome, CredentialRejection};
use finsec_auth::passwords::{Password, PasswordHasher, PasswordPolicy};
use finsec_auth::tokens::{
    Claims, Kid, MemoryRefreshTokenStore, MemoryRevocationStore, Signer, SigningKey, TokenService,
    Validation, Verifier,
};
use finsec_rbac::PermissionPattern;
use secrecy::{ExposeSecret as _, SecretString};
use time::{Duration, OffsetDateTime};

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap()
}

/// Records a rejection's code, and checks that neither its `Debug` nor its `Display` shows
/// the secret that was presented.
fn record<T: std::fmt::Debug, R: CredentialRejection>(
    codes: &mut BTreeMap<&'static str, usize>,
    outcome: CredentialOutcome<T, R>,
    secret: &str,
) {
    let why = match outcome {
        CredentialOutcome::Rejected(why) => why,
        CredentialOutcome::Accepted(what) => panic!("expected a rejection, got {what:?}"),
    };
    for shown in [format!("{why:?}"), why.to_string()] {
        assert!(
            !shown.contains(secret),
            "{} shows the secret: {shown}",
            why.code()
        );
    }
    *codes.entry(why.code()).or_default() += 1;
}

#[tokio::test]
async fn every_module_rejects_with_a_stable_unique_code() {
    let mut codes = BTreeMap::new();
    let now = at(1_700_000_000);

    // Passwords.
    let hasher = PasswordHasher::default();
    let new = PasswordPolicy::default()
        .check(&Password::new("pw-correct-horse-1"))
        .unwrap();
    let stored = hasher.hash(&new).unwrap();
    let guess = "pw-guess-battery-2";
    record(
        &mut codes,
        hasher.verify(&Password::new(guess), &stored).unwrap(),
        guess,
    );

    // TOTP: malformed, invalid, replayed.
    let replay = MemoryTotpReplayStore::new();
    let user = MfaUserId::new("outcome-user").unwrap();
    let pending = PendingEnrollment::begin(user.clone(), "ACME", "alice").unwrap();
    let totp = Totp::new(pending.secret().clone(), *pending.params());
    let good = totp.code_at(now).unwrap().expose();
    let wrong = if good == "000000" { "111111" } else { "000000" };
    for code in ["12ab", wrong] {
        record(
            &mut codes,
            totp.verify_at(&user, code, now, &replay).await.unwrap(),
            code,
        );
    }
    assert!(
        totp.verify_at(&user, &good, now, &replay)
            .await
            .unwrap()
            .is_accepted()
    );
    record(
        &mut codes,
        totp.verify_at(&user, &good, now, &replay).await.unwrap(),
        &good,
    );

    // Backup codes: malformed, invalid.
    let key = BackupCodeKey::generate().unwrap();
    let backup = MemoryBackupCodeStore::new();
    let issued = BackupCodes::generate(&key, &user)
        .unwrap()
        .store(&user, &backup)
        .await
        .unwrap();
    let first = issued[0].expose_secret().to_owned();
    assert!(
        redeem_backup_code(&key, &user, &first, &backup)
            .await
            .unwrap()
            .is_accepted()
    );
    for code in ["short", first.as_str()] {
        record(
            &mut codes,
            redeem_backup_code(&key, &user, code, &backup)
                .await
                .unwrap(),
            code,
        );
    }

    // API keys: malformed, bad checksum, unknown id, wrong secret, revoked, expired, and
    // used from outside its networks.
    let keys = ApiKeys::new(MemoryApiKeyStore::new());
    let scope = vec![PermissionPattern::new("orders:read").unwrap()];
    let live = keys
        .issue_at(NewApiKey::new("alice", scope.clone()), now)
        .await
        .unwrap();
    let text = live.printable.expose_secret().to_owned();
    let mut bad_crc = text.clone();
    bad_crc.replace_range(92.., if text.ends_with('0') { "1" } else { "0" });
    let other = ApiKeys::new(MemoryApiKeyStore::new())
        .issue_at(NewApiKey::new("bob", scope.clone()), now)
        .await
        .unwrap();
    let other_text = other.printable.expose_secret().to_owned();
    let expiring = keys
        .issue_at(
            NewApiKey::new("carol", scope.clone()).expires_at(now + Duration::minutes(1)),
            now,
        )
        .await
        .unwrap();
    for presented in ["fsk_nope", bad_crc.as_str(), other_text.as_str()] {
        record(
            &mut codes,
            keys.verify_at(presented, now).await.unwrap(),
            presented,
        );
    }
    let forged = finsec_auth::api_keys::GeneratedKey::from_parts(
        live.record.id,
        &[0x5a; finsec_auth::api_keys::format::SECRET_LEN],
    );
    let forged_text = forged.printable.expose_secret().to_owned();
    record(
        &mut codes,
        keys.verify_at(&forged_text, now).await.unwrap(),
        &forged_text,
    );
    let expiring_text = expiring.printable.expose_secret().to_owned();
    record(
        &mut codes,
        keys.verify_at(&expiring_text, now + Duration::hours(1))
            .await
            .unwrap(),
        &expiring_text,
    );
    assert!(keys.revoke_at(&live.record.id, now).await.unwrap());
    record(&mut codes, keys.verify_at(&text, now).await.unwrap(), &text);
    let fenced = keys
        .issue_at(
            NewApiKey::new("dora", scope.clone())
                .from_networks(["10.0.0.0/8".parse::<ipnet::IpNet>().unwrap()]),
            now,
        )
        .await
        .unwrap();
    let fenced_text = fenced.printable.expose_secret().to_owned();
    record(
        &mut codes,
        keys.verify_from_at(&fenced_text, "192.0.2.1".parse().unwrap(), now)
            .await
            .unwrap(),
        &fenced_text,
    );

    // Tokens: a few verifier reasons and the refresh and revocation reasons.
    let signing = SigningKey::generate_ed25519(Kid::new("k1").unwrap()).unwrap();
    let verifier = Verifier::new(
        [signing.verification_key().unwrap()],
        Validation::new("iss", "aud"),
    )
    .unwrap();
    let service = TokenService::new(
        Signer::new(signing),
        verifier.clone(),
        MemoryRevocationStore::new(),
        MemoryRefreshTokenStore::new(),
    );
    let pair = service.issue_pair_at("alice", (), now).await.unwrap();
    let access = pair.access_token.expose_secret().to_owned();
    record(&mut codes, verifier.verify_at::<()>("a.b", now), "a.b");
    let later = now + Duration::hours(1);
    record(
        &mut codes,
        verifier.verify_at::<()>(&access, later),
        &access,
    );
    // A character inside the signature (the last one carries padding bits, and changing it
    // can make the base64 non-canonical, which is a malformed token instead).
    let at = access.len() - 10;
    let flip = if &access[at..=at] == "A" { "B" } else { "A" };
    let mut tampered = access.clone();
    tampered.replace_range(at..=at, flip);
    record(
        &mut codes,
        verifier.verify_at::<()>(&tampered, now),
        &tampered,
    );
    let claims: Claims<()> = service
        .verify_access_at(&access, now)
        .await
        .unwrap()
        .accepted()
        .unwrap();
    service.revoke(&claims).await.unwrap();
    record(
        &mut codes,
        service.verify_access_at::<()>(&access, now).await.unwrap(),
        &access,
    );
    let refresh = pair.refresh_token.expose_secret().to_owned();
    assert!(
        service
            .refresh_at(&pair.refresh_token, (), now)
            .await
            .unwrap()
            .is_accepted()
    );
    record(
        &mut codes,
        service
            .refresh_at(&pair.refresh_token, (), now)
            .await
            .unwrap(),
        &refresh,
    );
    record(
        &mut codes,
        service
            .refresh_at(&SecretString::from("rt-x7Qz9w"), (), now)
            .await
            .unwrap(),
        "rt-x7Qz9w",
    );

    let expected = [
        "api_key.address_not_allowed",
        "api_key.bad_checksum",
        "api_key.expired",
        "api_key.malformed",
        "api_key.revoked",
        "api_key.unknown_id",
        "api_key.wrong_secret",
        "backup_code.invalid",
        "backup_code.malformed",
        "password.mismatch",
        "token.expired",
        "token.invalid_signature",
        "token.malformed",
        "token.refresh_reused",
        "token.revoked",
        "token.unknown_refresh_token",
        "totp.invalid",
        "totp.malformed",
        "totp.replayed",
    ];
    assert_eq!(codes.keys().copied().collect::<Vec<_>>(), expected);
    assert!(codes.values().all(|&n| n == 1), "{codes:?}");
    for code in codes.keys() {
        let (module, reason) = code.split_once('.').unwrap();
        assert!(
            [module, reason]
                .iter()
                .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')),
            "{code}"
        );
    }
}
