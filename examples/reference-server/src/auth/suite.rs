//! The behavioural suites of the authentication stores ([`UserStore`], [`SessionStore`],
//! [`SecretStore`]): every method's contract, run on each backend by
//! `crate::storage::suite`.

use finsec_auth::api_keys::ApiKeyId;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::secrets::{SealedColumn, SecretStore};
use super::sessions::{SessionClient, SessionStore};
use super::users::{ApiKeyName, StoredTotpSecret, UserStore, Username};
use crate::storage::Stores;

/// Runs the three suites on `stores` (a migrated database of its own).
pub(crate) async fn run(stores: &Stores) {
    users(&*stores.users).await;
    sessions(&*stores.sessions, &*stores.users).await;
    session_info(&*stores.sessions).await;
    mfa_failures(&*stores.users).await;
    remembered_devices(&*stores.sessions, &*stores.users).await;
    resets(&*stores.sessions, &*stores.users).await;
    secrets(&*stores.secrets, &*stores.users).await;
    names_and_erasure(&*stores.users).await;
}

/// Stored names page by id and are replaced by compare-and-set; erasure leaves a
/// tombstone without the profile's secrets.
async fn names_and_erasure(users: &dyn UserStore) {
    let t = now();
    let a = user(users, "names.a").await;
    let b = user(users, "names.b").await;
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = users.stored_names(after, 2).await.unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        all.extend(page);
    }
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "id order");
    let row = all.iter().find(|r| r.id == a).unwrap();
    assert_eq!(
        (row.name.as_str(), row.key.as_str()),
        ("names.a", "names.a")
    );
    assert!(all.iter().any(|r| r.id == b));

    assert!(!users.replace_name(a, "other", "x", "kx").await.unwrap());
    assert!(
        users
            .replace_name(a, "names.a", "sealed-a", "k-a")
            .await
            .unwrap()
    );
    let found = users.find_by_name("k-a").await.unwrap().unwrap();
    assert_eq!((found.id, found.username.as_str()), (a, "sealed-a"));
    assert!(users.find_by_name("names.a").await.unwrap().is_none());

    // Erasure: the row stays with the tombstone as name and key, nothing else.
    users
        .put_pending_secret(b, "sealed-secret", t)
        .await
        .unwrap();
    assert!(users.confirm_mfa(b, t).await.unwrap());
    let key = ApiKeyId::from_bytes([7; 8]);
    assert!(users.insert_key_name(&key, b, "laptop", t).await.unwrap());
    assert!(users.erase_user(b, "erased:psn-b", t).await.unwrap());
    let gone = users.find_by_id(b).await.unwrap().unwrap();
    assert_eq!(gone.username, "erased:psn-b");
    assert_eq!(gone.password_hash, "!");
    assert!(!gone.mfa_enabled);
    assert!(users.mfa_secret(b).await.unwrap().is_none());
    assert!(users.key_names(b).await.unwrap().is_empty());
    assert!(users.find_by_name("names.b").await.unwrap().is_none());
    assert!(
        !users
            .erase_user(Uuid::now_v7(), "erased:x", t)
            .await
            .unwrap()
    );
}

fn now() -> OffsetDateTime {
    // Whole seconds: the tables store unix seconds.
    OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp()).unwrap()
}

/// Registers `name` and returns its id.
async fn user(users: &dyn UserStore, name: &str) -> Uuid {
    let id = Uuid::now_v7();
    let name = Username::parse(name).unwrap();
    assert!(users.insert_user(id, &name, "$hash", now()).await.unwrap());
    id
}

fn totp(sealed: &str, confirmed: bool) -> Option<StoredTotpSecret> {
    Some(StoredTotpSecret {
        sealed: sealed.to_owned(),
        confirmed,
    })
}

async fn users(users: &dyn UserStore) {
    let t = now();
    // Registration, and lookups by name key and id.
    let id = Uuid::now_v7();
    let name = Username::parse("Suite.Alice").unwrap();
    assert!(users.insert_user(id, &name, "$h1", t).await.unwrap());
    let again = Username::parse("SUITE.alice").unwrap();
    assert!(
        !users
            .insert_user(Uuid::now_v7(), &again, "$h2", t)
            .await
            .unwrap(),
        "a name taken in another case is refused"
    );
    let found = users.find_by_name("suite.alice").await.unwrap().unwrap();
    assert_eq!(
        (
            found.id,
            found.username.as_str(),
            found.password_hash.as_str()
        ),
        (id, "Suite.Alice", "$h1")
    );
    assert!(!found.mfa_enabled);
    assert!(users.find_by_name("Suite.Alice").await.unwrap().is_none());
    assert!(users.find_by_name("suite.nobody").await.unwrap().is_none());
    let by_id = users.find_by_id(id).await.unwrap().unwrap();
    assert_eq!((by_id.id, by_id.username), (id, "Suite.Alice".to_owned()));
    assert!(users.find_by_id(Uuid::now_v7()).await.unwrap().is_none());

    // Password hash.
    assert!(users.update_password_hash(id, "$h3", t).await.unwrap());
    let found = users.find_by_id(id).await.unwrap().unwrap();
    assert_eq!(found.password_hash, "$h3");
    assert!(
        !users
            .update_password_hash(Uuid::now_v7(), "$h4", t)
            .await
            .unwrap()
    );

    // TOTP secret: pending, replaced while pending, confirmed once, then fixed.
    assert_eq!(users.mfa_secret(id).await.unwrap(), None);
    assert!(!users.confirm_mfa(id, t).await.unwrap(), "nothing pending");
    assert!(users.put_pending_secret(id, "sealed-1", t).await.unwrap());
    assert_eq!(users.mfa_secret(id).await.unwrap(), totp("sealed-1", false));
    assert!(users.put_pending_secret(id, "sealed-2", t).await.unwrap());
    assert_eq!(users.mfa_secret(id).await.unwrap(), totp("sealed-2", false));
    assert!(users.confirm_mfa(id, t).await.unwrap());
    assert!(users.find_by_id(id).await.unwrap().unwrap().mfa_enabled);
    assert_eq!(users.mfa_secret(id).await.unwrap(), totp("sealed-2", true));
    assert!(
        !users.confirm_mfa(id, t).await.unwrap(),
        "already confirmed"
    );
    assert!(!users.put_pending_secret(id, "sealed-3", t).await.unwrap());
    assert_eq!(users.mfa_secret(id).await.unwrap(), totp("sealed-2", true));
    // Disabled: the secret is gone and MFA is off; a new enrollment can start.
    assert!(users.disable_mfa(id, t).await.unwrap());
    assert!(!users.find_by_id(id).await.unwrap().unwrap().mfa_enabled);
    assert_eq!(users.mfa_secret(id).await.unwrap(), None);
    assert!(
        !users.disable_mfa(id, t).await.unwrap(),
        "nothing to disable"
    );
    assert!(users.put_pending_secret(id, "sealed-4", t).await.unwrap());
    assert!(users.confirm_mfa(id, t).await.unwrap());
    assert_eq!(users.mfa_secret(id).await.unwrap(), totp("sealed-4", true));
    assert!(
        users
            .put_pending_secret(Uuid::now_v7(), "x", t)
            .await
            .is_err()
    );

    // API key names: per user, oldest first, one name per key.
    let other = user(users, "suite.bob").await;
    assert_eq!(users.key_names(id).await.unwrap(), []);
    let (k1, k2, k3) = (
        ApiKeyId::from_bytes([1; 8]),
        ApiKeyId::from_bytes([2; 8]),
        ApiKeyId::from_bytes([3; 8]),
    );
    assert!(users.insert_key_name(&k2, id, "second", t).await.unwrap());
    assert!(
        users
            .insert_key_name(&k1, id, "first", t - Duration::seconds(5))
            .await
            .unwrap()
    );
    assert!(users.insert_key_name(&k3, other, "bob's", t).await.unwrap());
    assert!(!users.insert_key_name(&k1, other, "taken", t).await.unwrap());
    let named = |key_id, name: &str| ApiKeyName {
        key_id,
        name: name.to_owned(),
    };
    assert_eq!(
        users.key_names(id).await.unwrap(),
        [named(k1, "first"), named(k2, "second")]
    );
    assert_eq!(users.key_names(other).await.unwrap(), [named(k3, "bob's")]);

    // Races: one registration of a name, one confirmation.
    let name = Username::parse("suite.race").unwrap();
    let (a, b) = tokio::join!(
        users.insert_user(Uuid::now_v7(), &name, "$a", t),
        users.insert_user(Uuid::now_v7(), &name, "$b", t),
    );
    assert!(a.unwrap() ^ b.unwrap(), "exactly one registration wins");
    let racer = user(users, "suite.confirm").await;
    assert!(users.put_pending_secret(racer, "s", t).await.unwrap());
    let (a, b) = tokio::join!(users.confirm_mfa(racer, t), users.confirm_mfa(racer, t));
    assert!(a.unwrap() ^ b.unwrap(), "exactly one confirmation wins");
}

async fn sessions(sessions: &dyn SessionStore, users: &dyn UserStore) {
    let t = now();
    let later = t + Duration::minutes(15);
    let (ann, ben) = (Uuid::now_v7(), Uuid::now_v7());
    // Sessions: recorded, looked up, purged once expired.
    assert_eq!(sessions.session_family("jti-1").await.unwrap(), None);
    sessions
        .insert_session(
            "jti-old",
            "fam-0",
            ann,
            t - Duration::hours(1),
            t - Duration::seconds(1),
        )
        .await
        .unwrap();
    assert_eq!(
        sessions.session_family("jti-old").await.unwrap().as_deref(),
        Some("fam-0")
    );
    sessions
        .insert_session("jti-1", "fam-1", ann, t, later)
        .await
        .unwrap();
    assert_eq!(
        sessions.session_family("jti-1").await.unwrap().as_deref(),
        Some("fam-1")
    );
    assert_eq!(
        sessions.session_family("jti-old").await.unwrap(),
        None,
        "expired rows are purged by the next insert"
    );
    assert!(
        sessions
            .insert_session("jti-1", "fam-2", ann, t, later)
            .await
            .is_err()
    );
    // The newest access token of a family, for the idle timeout.
    let second = |d: OffsetDateTime| d.replace_nanosecond(0).unwrap();
    assert_eq!(
        sessions.newest_access_expiry("fam-1").await.unwrap(),
        Some(second(later))
    );
    sessions
        .insert_session("jti-2", "fam-1", ann, t, later + Duration::minutes(5))
        .await
        .unwrap();
    sessions
        .insert_session("jti-3", "fam-9", ann, t, later + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(
        sessions.newest_access_expiry("fam-1").await.unwrap(),
        Some(second(later + Duration::minutes(5)))
    );
    assert_eq!(
        sessions.newest_access_expiry("fam-none").await.unwrap(),
        None
    );
    // A user's sessions, each family once; another user's are not among them.
    sessions
        .insert_session("jti-4", "fam-b", ben, t, later)
        .await
        .unwrap();
    assert_eq!(
        sessions.user_families(ann).await.unwrap(),
        ["fam-1", "fam-9"]
    );
    assert_eq!(sessions.user_families(ben).await.unwrap(), ["fam-b"]);
    assert!(
        sessions
            .user_families(Uuid::now_v7())
            .await
            .unwrap()
            .is_empty()
    );

    // Challenges: attempts up to the limit, for their user, before expiry, until used.
    let user_id = user(users, "suite.challenged").await;
    let stranger = Uuid::now_v7();
    sessions
        .insert_challenge("c1", user_id, t, later)
        .await
        .unwrap();
    assert!(
        !sessions
            .challenge_attempt("c1", stranger, t, 2)
            .await
            .unwrap()
    );
    assert!(
        !sessions
            .challenge_attempt("nope", user_id, t, 2)
            .await
            .unwrap()
    );
    assert!(
        sessions
            .challenge_attempt("c1", user_id, t, 2)
            .await
            .unwrap()
    );
    assert!(
        sessions
            .challenge_attempt("c1", user_id, t, 2)
            .await
            .unwrap()
    );
    assert!(
        !sessions
            .challenge_attempt("c1", user_id, t, 2)
            .await
            .unwrap()
    );
    assert!(
        sessions
            .challenge_attempt("c1", user_id, t, 3)
            .await
            .unwrap()
    );
    assert!(sessions.challenge_use("c1").await.unwrap());
    assert!(!sessions.challenge_use("c1").await.unwrap(), "used once");
    assert!(
        !sessions
            .challenge_attempt("c1", user_id, t, 9)
            .await
            .unwrap()
    );
    assert!(!sessions.challenge_use("nope").await.unwrap());
    sessions
        .insert_challenge("c2", user_id, t, t + Duration::seconds(10))
        .await
        .unwrap();
    let expired = t + Duration::seconds(10);
    assert!(
        !sessions
            .challenge_attempt("c2", user_id, expired, 5)
            .await
            .unwrap()
    );
    assert!(
        sessions
            .insert_challenge("c1", user_id, t, later)
            .await
            .is_err(),
        "ids are unique"
    );
    assert!(
        sessions
            .insert_challenge("c3", stranger, t, later)
            .await
            .is_err(),
        "a challenge needs a user"
    );
    // The next insert purges c2 (expired), so its id is free again.
    sessions
        .insert_challenge("c4", user_id, expired + Duration::seconds(1), later)
        .await
        .unwrap();
    sessions
        .insert_challenge("c2", user_id, t, later)
        .await
        .unwrap();

    // Races: the last allowed attempt, and the use, go to exactly one caller.
    sessions
        .insert_challenge("race", user_id, t, later)
        .await
        .unwrap();
    assert!(
        sessions
            .challenge_attempt("race", user_id, t, 3)
            .await
            .unwrap()
    );
    assert!(
        sessions
            .challenge_attempt("race", user_id, t, 3)
            .await
            .unwrap()
    );
    let (a, b) = tokio::join!(
        sessions.challenge_attempt("race", user_id, t, 3),
        sessions.challenge_attempt("race", user_id, t, 3),
    );
    assert!(a.unwrap() ^ b.unwrap(), "exactly one last attempt");
    assert!(
        !sessions
            .challenge_attempt("race", user_id, t, 3)
            .await
            .unwrap()
    );
    let (a, b) = tokio::join!(
        sessions.challenge_use("race"),
        sessions.challenge_use("race")
    );
    assert!(a.unwrap() ^ b.unwrap(), "exactly one use");
}

/// What `GET /sessions` shows: a session's start kept, its last use and client
/// replaced, ended and idle or too old sessions left out, another user's never touched.
async fn session_info(sessions: &dyn SessionStore) {
    let t = now();
    let (ann, ben) = (Uuid::now_v7(), Uuid::now_v7());
    let client = |ip: &str, agent: Option<&str>| SessionClient {
        ip: Some(ip.to_owned()),
        user_agent: agent.map(str::to_owned),
    };
    let long_ago = t - Duration::days(1);
    let ids = |list: Vec<super::sessions::SessionInfo>| -> Vec<String> {
        list.into_iter().map(|s| s.id).collect()
    };
    assert!(
        sessions
            .list_sessions(ann, long_ago, long_ago)
            .await
            .unwrap()
            .is_empty()
    );
    let first = client("192.0.2.1", Some("desk/1"));
    sessions
        .touch_session("info-1", ann, &first, t - Duration::minutes(30), long_ago)
        .await
        .unwrap();
    sessions
        .touch_session("info-2", ann, &client("2001:db8::2", None), t, long_ago)
        .await
        .unwrap();
    // A refresh of info-1: the start stays, the last use and client are the new ones.
    let second = client("192.0.2.7", Some("desk/2"));
    sessions
        .touch_session("info-1", ann, &second, t - Duration::minutes(5), long_ago)
        .await
        .unwrap();
    let listed = sessions
        .list_sessions(ann, long_ago, long_ago)
        .await
        .unwrap();
    assert_eq!(ids(listed.clone()), ["info-2", "info-1"], "newest first");
    let one = &listed[1];
    assert_eq!(one.created_at, t - Duration::minutes(30));
    assert_eq!(one.last_used_at, t - Duration::minutes(5));
    assert_eq!(one.client_ip.as_deref(), Some("192.0.2.7"));
    assert_eq!(one.user_agent.as_deref(), Some("desk/2"));
    assert_eq!(listed[0].user_agent, None);
    // Idle (last used before the bound) or begun before the lifetime bound: not listed.
    assert_eq!(
        ids(sessions
            .list_sessions(ann, t - Duration::minutes(1), long_ago)
            .await
            .unwrap()),
        ["info-2"]
    );
    assert_eq!(
        ids(sessions
            .list_sessions(ann, long_ago, t - Duration::minutes(10))
            .await
            .unwrap()),
        ["info-2"]
    );
    // Another user's session id cannot be touched; their list is their own.
    assert!(
        sessions
            .touch_session("info-1", ben, &first, t, long_ago)
            .await
            .is_err()
    );
    assert!(
        sessions
            .list_sessions(ben, long_ago, long_ago)
            .await
            .unwrap()
            .is_empty()
    );
    // Ended: gone from the list, and a later token for it changes nothing.
    sessions.end_session("info-2", t).await.unwrap();
    sessions.end_session("info-none", t).await.unwrap();
    sessions
        .touch_session("info-2", ann, &first, t, long_ago)
        .await
        .unwrap();
    assert_eq!(
        ids(sessions
            .list_sessions(ann, long_ago, long_ago)
            .await
            .unwrap()),
        ["info-1"]
    );
    // Sessions last used before the purge bound are deleted by the next touch.
    sessions
        .touch_session("info-3", ann, &first, t, t - Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(
        ids(sessions
            .list_sessions(ann, long_ago, long_ago)
            .await
            .unwrap()),
        ["info-3"]
    );
}

/// Remembered devices: honoured for their user until expiry, the newest `keep` kept,
/// forgotten all at once.
async fn remembered_devices(sessions: &dyn SessionStore, users: &dyn UserStore) {
    let t = now();
    let (ann, ben) = (
        user(users, "suite.device.ann").await,
        user(users, "suite.device.ben").await,
    );
    let day = Duration::days(1);
    sessions
        .remember_device("d1", ann, t, t + day, 2)
        .await
        .unwrap();
    assert_eq!(sessions.device_owner("d1", t).await.unwrap(), Some(ann));
    assert_eq!(
        sessions.device_owner("d9", t).await.unwrap(),
        None,
        "unknown"
    );
    assert_eq!(
        sessions.device_owner("d1", t + day).await.unwrap(),
        None,
        "expired at its expiry"
    );
    assert!(
        sessions
            .remember_device("d1", ben, t, t + day, 2)
            .await
            .is_err(),
        "a hash is recorded once"
    );
    sessions
        .remember_device("d2", ann, t + Duration::SECOND, t + day, 2)
        .await
        .unwrap();
    sessions
        .remember_device("d3", ann, t + Duration::seconds(2), t + day, 2)
        .await
        .unwrap();
    let at = t + Duration::seconds(3);
    assert_eq!(
        sessions.device_owner("d1", at).await.unwrap(),
        None,
        "oldest dropped"
    );
    assert_eq!(sessions.device_owner("d2", at).await.unwrap(), Some(ann));
    assert_eq!(sessions.device_owner("d3", at).await.unwrap(), Some(ann));
    sessions
        .remember_device("b1", ben, t, t + day, 2)
        .await
        .unwrap();
    assert_eq!(sessions.forget_devices(ann).await.unwrap(), 2);
    assert_eq!(sessions.device_owner("d3", at).await.unwrap(), None);
    assert_eq!(
        sessions.device_owner("b1", at).await.unwrap(),
        Some(ben),
        "others kept"
    );
    assert_eq!(sessions.forget_devices(ann).await.unwrap(), 0);
}

/// Reset requests: read back as inserted; approved once, never by the asker or the user,
/// never after expiry; a token used once, never after its expiry.
async fn resets(sessions: &dyn SessionStore, users: &dyn UserStore) {
    use super::sessions::{ResetKind, ResetRequest};
    let t = now();
    let (vic, asker, other) = (
        user(users, "suite.reset.vic").await,
        user(users, "suite.reset.asker").await,
        user(users, "suite.reset.other").await,
    );
    let request = |id: &str, kind, expires_at| ResetRequest {
        id: id.to_owned(),
        user_id: vic,
        kind,
        revoke_api_keys: true,
        requested_by: asker,
        created_at: t,
        expires_at,
        approved_by: None,
        approved_at: None,
    };
    let day = Duration::days(1);
    let pw = request("reset-pw", ResetKind::Password, t + day);
    sessions.insert_reset(&pw).await.unwrap();
    assert_eq!(
        sessions.reset_request("reset-pw").await.unwrap(),
        Some(pw.clone())
    );
    assert_eq!(sessions.reset_request("reset-none").await.unwrap(), None);
    let token = Some(("hash-1", t + day));
    for who in [asker, vic] {
        assert!(
            !sessions
                .approve_reset("reset-pw", who, t, token)
                .await
                .unwrap()
        );
    }
    assert!(
        sessions
            .approve_reset("reset-pw", other, t, token)
            .await
            .unwrap()
    );
    assert!(
        !sessions
            .approve_reset("reset-pw", other, t, token)
            .await
            .unwrap(),
        "once"
    );
    let read = sessions.reset_request("reset-pw").await.unwrap().unwrap();
    assert_eq!(read.approved_by, Some(other));
    assert_eq!(read.approved_at, Some(t));
    assert_eq!(sessions.use_reset_token("hash-9", t).await.unwrap(), None);
    assert_eq!(
        sessions.use_reset_token("hash-1", t + day).await.unwrap(),
        None,
        "expired at its expiry"
    );
    assert_eq!(
        sessions.use_reset_token("hash-1", t).await.unwrap(),
        Some(vic)
    );
    assert_eq!(
        sessions.use_reset_token("hash-1", t).await.unwrap(),
        None,
        "once"
    );
    let late = request("reset-mfa", ResetKind::Mfa, t + Duration::SECOND);
    sessions.insert_reset(&late).await.unwrap();
    assert!(
        !sessions
            .approve_reset("reset-mfa", other, t + Duration::SECOND, None)
            .await
            .unwrap(),
        "expired"
    );
    assert!(
        sessions
            .approve_reset("reset-mfa", other, t, None)
            .await
            .unwrap()
    );
    let read = sessions.reset_request("reset-mfa").await.unwrap().unwrap();
    assert_eq!(read.kind, ResetKind::Mfa);
    assert!(read.revoke_api_keys);
}

/// Wrong second-factor codes: counted atomically per user, a lock kept until cleared, a
/// correct code clearing both.
async fn mfa_failures(users: &dyn UserStore) {
    let t = now();
    let (ann, ben) = (
        user(users, "suite.mfa.ann").await,
        user(users, "suite.mfa.ben").await,
    );
    assert_eq!(users.mfa_locked_until(ann).await.unwrap(), None);
    assert_eq!(users.mfa_failed(ann).await.unwrap(), 1);
    assert_eq!(users.mfa_failed(ann).await.unwrap(), 2);
    assert_eq!(users.mfa_failed(ben).await.unwrap(), 1, "counted per user");
    // Concurrent failures each get their own count.
    let (a, b) = tokio::join!(users.mfa_failed(ann), users.mfa_failed(ann));
    let mut counts = [a.unwrap(), b.unwrap()];
    counts.sort_unstable();
    assert_eq!(counts, [3, 4]);
    assert_eq!(
        users.mfa_locked_until(ann).await.unwrap(),
        None,
        "not locked yet"
    );
    users
        .lock_mfa(ann, t + Duration::minutes(15))
        .await
        .unwrap();
    assert_eq!(
        users.mfa_locked_until(ann).await.unwrap(),
        Some(t + Duration::minutes(15))
    );
    assert_eq!(users.mfa_locked_until(ben).await.unwrap(), None);
    assert_eq!(
        users.mfa_failed(ann).await.unwrap(),
        5,
        "the count goes on while locked"
    );
    users.mfa_succeeded(ann).await.unwrap();
    assert_eq!(users.mfa_locked_until(ann).await.unwrap(), None);
    assert_eq!(
        users.mfa_failed(ann).await.unwrap(),
        1,
        "a correct code starts again"
    );
    users.mfa_succeeded(Uuid::now_v7()).await.unwrap();
    assert!(
        users.mfa_failed(Uuid::now_v7()).await.is_err(),
        "an unknown user is a failure"
    );
}

async fn secrets(secrets: &dyn SecretStore, users: &dyn UserStore) {
    let t = now();
    // Signing keys: inserted once per kid, listed by creation time then kid.
    let (a, b) = tokio::join!(
        secrets.insert_signing_key("first", "seed-first", t - Duration::hours(1)),
        secrets.insert_signing_key("first", "seed-other", t - Duration::hours(1)),
    );
    assert!(a.unwrap() ^ b.unwrap(), "exactly one first key");
    assert!(
        !secrets
            .insert_signing_key("first", "seed-again", t)
            .await
            .unwrap()
    );
    assert!(
        secrets
            .insert_signing_key("kid-b", "seed-b", t)
            .await
            .unwrap()
    );
    assert!(
        secrets
            .insert_signing_key("kid-a", "seed-a", t)
            .await
            .unwrap()
    );
    let keys = secrets.signing_keys().await.unwrap();
    let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids, ["first", "kid-a", "kid-b"]);
    assert!(["seed-first", "seed-other"].contains(&keys[0].sealed_seed.as_str()));
    assert_eq!(keys[1].sealed_seed, "seed-a");

    // Named secrets: the first write wins.
    assert_eq!(secrets.secret("suite").await.unwrap(), None);
    assert!(secrets.insert_secret("suite", "value-1", t).await.unwrap());
    assert!(!secrets.insert_secret("suite", "value-2", t).await.unwrap());
    assert_eq!(
        secrets.secret("suite").await.unwrap().as_deref(),
        Some("value-1")
    );

    // Every sealed column is listed, column by column, with its row key as text.
    let user_id = user(users, "suite.sealed").await;
    assert!(
        users
            .put_pending_secret(user_id, "totp-1", t)
            .await
            .unwrap()
    );
    let values = secrets.sealed_values().await.unwrap();
    let order: Vec<usize> = values
        .iter()
        .map(|v| {
            SealedColumn::ALL
                .iter()
                .position(|c| *c == v.column)
                .unwrap()
        })
        .collect();
    assert!(order.is_sorted(), "column by column");
    let find = |column, key: &str| {
        values
            .iter()
            .find(|v| v.column == column && v.key == key)
            .map(|v| v.sealed.clone())
    };
    assert_eq!(
        find(SealedColumn::JwtKeySeed, "kid-b").as_deref(),
        Some("seed-b")
    );
    assert_eq!(
        find(SealedColumn::ServerSecret, "suite").as_deref(),
        Some("value-1")
    );
    let user_key = user_id.hyphenated().to_string();
    assert_eq!(
        find(SealedColumn::TotpSecret, &user_key).as_deref(),
        Some("totp-1")
    );

    // Replaced only while the row still holds the value read.
    for (column, key, old, get) in [
        (SealedColumn::JwtKeySeed, "kid-b", "seed-b", 0),
        (SealedColumn::ServerSecret, "suite", "value-1", 1),
        (SealedColumn::TotpSecret, user_key.as_str(), "totp-1", 2),
    ] {
        assert!(
            !secrets
                .replace_sealed(column, key, "stale", "new")
                .await
                .unwrap(),
            "{column:?}: a changed value is left alone"
        );
        assert!(
            !secrets
                .replace_sealed(column, "absent", old, "new")
                .await
                .unwrap()
        );
        assert!(
            secrets
                .replace_sealed(column, key, old, "new")
                .await
                .unwrap(),
            "{column:?}"
        );
        assert!(
            !secrets
                .replace_sealed(column, key, old, "new")
                .await
                .unwrap()
        );
        let now_held = match get {
            0 => secrets
                .signing_keys()
                .await
                .unwrap()
                .into_iter()
                .find(|k| k.kid == key)
                .map(|k| k.sealed_seed),
            1 => secrets.secret(key).await.unwrap(),
            _ => users.mfa_secret(user_id).await.unwrap().map(|s| s.sealed),
        };
        assert_eq!(now_held.as_deref(), Some("new"), "{column:?}");
    }
}
