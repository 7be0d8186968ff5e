//! API keys on the memory store: the conformance suite, the format, issue/verify,
//! indistinguishable rejections, rotation with overlap, batched usage and redaction.

#![cfg(test)]

use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::Duration;

use finsec_auth::api_keys::format::{KEY_LEN, PREFIX, SCANNER_REGEX, SECRET_LEN, crc32};
use finsec_auth::api_keys::testing::{api_key_store_conformance, api_key_store_two_instances};
use finsec_auth::api_keys::{
    ApiKeyError, ApiKeyId, ApiKeyRecord, ApiKeyRejection, ApiKeyStore, ApiKeys, GeneratedKey,
    MemoryApiKeyStore, NewApiKey, ParsedApiKey, RejectReason, UsageConfig, UsageUpdate,
};
use finsec_rbac::{Permission, PermissionPattern};
use secrecy::ExposeSecret;
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2025-01-10 09:00:00.5 UTC);

fn scopes() -> Vec<PermissionPattern> {
    vec![
        PermissionPattern::new("orders:read").unwrap(),
        PermissionPattern::new("trade:*").unwrap(),
    ]
}

fn reason(result: Result<impl std::fmt::Debug, ApiKeyRejection>) -> RejectReason {
    match result {
        Err(r) => {
            assert_eq!(r.to_string(), "api key rejected");
            r.reason()
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn api_keys_memory_conformance() {
    let store = MemoryApiKeyStore::new();
    api_key_store_conformance(&store).await;
    api_key_store_conformance(&store).await;
    api_key_store_two_instances(&store, &store).await;
    // Object safe.
    let boxed: Box<dyn ApiKeyStore> = Box::new(MemoryApiKeyStore::new());
    api_key_store_conformance(boxed.as_ref()).await;
    api_key_store_conformance(&boxed).await;
    let shared = Arc::new(MemoryApiKeyStore::new());
    api_key_store_conformance(&shared).await;
    // A type-erased store behind the manager.
    let keys = ApiKeys::new(boxed);
    let issued = keys
        .issue_at(NewApiKey::new("zoe", scopes()), NOW)
        .await
        .unwrap();
    keys.verify_at(issued.printable.expose_secret(), NOW)
        .await
        .unwrap()
        .into_result()
        .unwrap();
}

#[test]
fn api_keys_format_known_answer_and_regex() {
    let id: ApiKeyId = "0123456789abcdef".parse().unwrap();
    let key = GeneratedKey::from_parts(id, &[0xab; SECRET_LEN]);
    let text = key.printable.expose_secret();
    let body = format!("fsk_0123456789abcdef_{}", "ab".repeat(32));
    let expected = format!("{body}{:08x}", crc32(body.as_bytes()));
    assert_eq!(text, expected);
    assert_eq!(text.len(), KEY_LEN);
    assert!(text.starts_with(PREFIX));
    let re = regex::Regex::new(SCANNER_REGEX).unwrap();
    assert!(re.is_match(&format!("token={text} ")));
    let parsed = ParsedApiKey::parse(text).unwrap();
    assert_eq!(parsed.id(), id);
    assert_eq!(parsed.hash(), &key.hash);
    // Uppercase id is refused as an id; a whole key passed as an id is not echoed.
    assert!("0123456789ABCDEF".parse::<ApiKeyId>().is_err());
    let err = text.parse::<ApiKeyId>().unwrap_err();
    assert!(matches!(err, ApiKeyError::InvalidId { len: 93 }));
    assert!(!format!("{err} {err:?}").contains("0123456789abcdef"));
}

#[test]
fn api_keys_format_rejects_every_single_typo_and_truncation() {
    let key = GeneratedKey::generate().unwrap();
    let text = key.printable.expose_secret().to_owned();
    let mut cases = 0;
    for i in 0..text.len() {
        for c in ['0', '7', 'f', 'g', 'A', '_'] {
            let mut bytes = text.clone().into_bytes();
            if bytes[i] == c as u8 {
                continue;
            }
            bytes[i] = c as u8;
            let typo = String::from_utf8(bytes).unwrap();
            let r = reason(ParsedApiKey::parse(&typo));
            assert!(matches!(
                r,
                RejectReason::Malformed | RejectReason::BadChecksum
            ));
            cases += 1;
        }
        let r = reason(ParsedApiKey::parse(&text[..i]));
        assert_eq!(r, RejectReason::Malformed);
        cases += 1;
    }
    assert!(cases >= 93 * 6, "ran {cases} cases");
    assert_eq!(
        reason(ParsedApiKey::parse(&format!("{text}0"))),
        RejectReason::Malformed
    );
    assert_eq!(
        reason(ParsedApiKey::parse(&text.to_uppercase())),
        RejectReason::Malformed
    );
}

#[tokio::test]
async fn api_keys_issue_verify_and_scopes() {
    let keys = ApiKeys::new(MemoryApiKeyStore::new());
    let issued = keys
        .issue_at(NewApiKey::new("alice", scopes()), NOW)
        .await
        .unwrap();
    let stored = keys.store().get(&issued.record.id).await.unwrap().unwrap();
    assert_eq!(stored, issued.record);
    let v = keys
        .verify_at(issued.printable.expose_secret(), NOW)
        .await
        .unwrap()
        .into_result()
        .unwrap();
    assert_eq!(v.owner(), "alice");
    assert_eq!(v.id(), issued.record.id);
    assert!(v.allows(&Permission::new("orders:read").unwrap()));
    assert!(v.allows(&Permission::new("trade:execute").unwrap()));
    assert!(!v.allows(&Permission::new("orders:write").unwrap()));
    // Two keys never collide.
    let other = keys
        .issue_at(NewApiKey::new("alice", scopes()), NOW)
        .await
        .unwrap();
    assert_ne!(other.record.id, issued.record.id);
    assert_ne!(
        other.printable.expose_secret(),
        issued.printable.expose_secret()
    );
    // Invalid requests.
    assert!(matches!(
        keys.issue_at(NewApiKey::new("", scopes()), NOW).await,
        Err(ApiKeyError::InvalidOwner { len: 0 })
    ));
    assert!(matches!(
        keys.issue_at(NewApiKey::new("a", scopes()).expires_at(NOW), NOW)
            .await,
        Err(ApiKeyError::InvalidExpiry { .. })
    ));
}

#[tokio::test]
async fn api_keys_rejections_are_indistinguishable() {
    let keys = ApiKeys::new(MemoryApiKeyStore::new());
    let issued = keys
        .issue_at(
            NewApiKey::new("bob", scopes()).expires_at(NOW + time::Duration::hours(1)),
            NOW,
        )
        .await
        .unwrap();
    let id = issued.record.id;
    // Wrong secret with a valid checksum.
    let wrong = GeneratedKey::from_parts(id, &[7; SECRET_LEN]);
    let unknown = GeneratedKey::generate().unwrap();
    let text = issued.printable.expose_secret();
    let mut messages = Vec::new();
    for (input, expected) in [
        (wrong.printable.expose_secret(), RejectReason::WrongSecret),
        (unknown.printable.expose_secret(), RejectReason::UnknownId),
        (&text[..50], RejectReason::Malformed),
        ("", RejectReason::Malformed),
    ] {
        let err = keys
            .verify_at(input, NOW)
            .await
            .unwrap()
            .into_result()
            .unwrap_err();
        messages.push(err.to_string());
        assert_eq!(reason(Err::<(), _>(err)), expected);
    }
    let err = keys
        .verify_at(text, NOW + time::Duration::hours(1))
        .await
        .unwrap()
        .into_result()
        .unwrap_err();
    messages.push(err.to_string());
    assert_eq!(reason(Err::<(), _>(err)), RejectReason::Expired);
    assert!(keys.revoke_at(&id, NOW).await.unwrap());
    assert!(!keys.revoke_at(&id, NOW).await.unwrap());
    let err = keys
        .verify_at(text, NOW)
        .await
        .unwrap()
        .into_result()
        .unwrap_err();
    assert_eq!(err.key_id(), Some(id));
    messages.push(err.to_string());
    assert_eq!(reason(Err::<(), _>(err)), RejectReason::Revoked);
    assert_eq!(messages.len(), 6);
    assert!(messages.iter().all(|m| m == "api key rejected"));
}

#[tokio::test]
async fn api_keys_rotation_overlap() {
    let keys = ApiKeys::new(MemoryApiKeyStore::new());
    let old = keys
        .issue_at(NewApiKey::new("carol", scopes()), NOW)
        .await
        .unwrap();
    let new = keys
        .rotate_at(&old.record.id, Duration::from_secs(3600), NOW)
        .await
        .unwrap();
    assert_eq!(&*new.record.owner, "carol");
    assert_eq!(*new.record.scopes, *scopes());
    let during = NOW + time::Duration::minutes(59);
    keys.verify_at(old.printable.expose_secret(), during)
        .await
        .unwrap()
        .into_result()
        .unwrap();
    keys.verify_at(new.printable.expose_secret(), during)
        .await
        .unwrap()
        .into_result()
        .unwrap();
    let after = NOW + time::Duration::hours(1);
    assert_eq!(
        reason(
            keys.verify_at(old.printable.expose_secret(), after)
                .await
                .unwrap()
                .into_result()
        ),
        RejectReason::Expired
    );
    keys.verify_at(new.printable.expose_secret(), after)
        .await
        .unwrap()
        .into_result()
        .unwrap();
    // The old key is rotated once; the chain continues from the new key.
    assert!(matches!(
        keys.rotate_at(&old.record.id, Duration::from_secs(60), during)
            .await,
        Err(ApiKeyError::InvalidState { .. })
    ));
    keys.rotate_at(&new.record.id, Duration::ZERO, after)
        .await
        .unwrap();
    assert_eq!(
        reason(
            keys.verify_at(new.printable.expose_secret(), after)
                .await
                .unwrap()
                .into_result()
        ),
        RejectReason::Expired
    );
    let missing = ApiKeyId::random().unwrap();
    assert!(matches!(
        keys.rotate_at(&missing, Duration::ZERO, NOW).await,
        Err(ApiKeyError::NotFound { .. })
    ));
}

/// A rotation renews a key for the term it was issued for, never longer (a key without
/// expiry stays without); `rotate_until_at` sets the replacement's expiry, which must be
/// after the rotation.
#[tokio::test]
async fn api_keys_rotation_keeps_the_term() {
    let keys = ApiKeys::new(MemoryApiKeyStore::new());
    let term = time::Duration::days(90);
    let old = keys
        .issue_at(NewApiKey::new("dan", scopes()).expires_at(NOW + term), NOW)
        .await
        .unwrap();
    let later = NOW + time::Duration::days(10);
    let new = keys
        .rotate_at(&old.record.id, Duration::from_secs(60), later)
        .await
        .unwrap();
    assert_eq!(new.record.expires_at, Some(later + term));
    let open = keys
        .issue_at(NewApiKey::new("dan", scopes()), NOW)
        .await
        .unwrap();
    let open_new = keys
        .rotate_at(&open.record.id, Duration::ZERO, later)
        .await
        .unwrap();
    assert_eq!(open_new.record.expires_at, None);
    let until = later + time::Duration::days(7);
    let chosen = keys
        .rotate_until_at(&new.record.id, Duration::ZERO, Some(until), later)
        .await
        .unwrap();
    assert_eq!(chosen.record.expires_at, Some(until));
    assert!(matches!(
        keys.rotate_until_at(&chosen.record.id, Duration::ZERO, Some(later), later)
            .await,
        Err(ApiKeyError::TimeOutOfRange(_))
    ));
    // Refused before anything changed: the key can still be rotated.
    keys.rotate_until_at(&chosen.record.id, Duration::ZERO, None, later)
        .await
        .unwrap();
}

#[tokio::test]
async fn api_keys_usage_is_batched_every_n_uses() {
    let config = UsageConfig {
        max_pending_uses: NonZeroU64::new(5).unwrap(),
        max_interval: Duration::from_secs(3600),
    };
    let keys = ApiKeys::with_usage_config(MemoryApiKeyStore::new(), config);
    let a = keys
        .issue_at(NewApiKey::new("dave", scopes()), NOW)
        .await
        .unwrap();
    let b = keys
        .issue_at(NewApiKey::new("dave", scopes()), NOW)
        .await
        .unwrap();
    let get = |id| {
        let store = keys.store();
        async move { store.get(&id).await.unwrap().unwrap() }
    };
    for i in 0..4 {
        let t = NOW + time::Duration::seconds(i);
        keys.verify_at(a.printable.expose_secret(), t)
            .await
            .unwrap()
            .into_result()
            .unwrap();
        assert_eq!(get(a.record.id).await.use_count, 0, "no write per request");
    }
    let t5 = NOW + time::Duration::seconds(10);
    keys.verify_at(b.printable.expose_secret(), t5)
        .await
        .unwrap()
        .into_result()
        .unwrap();
    let ra = get(a.record.id).await;
    assert_eq!(ra.use_count, 4);
    assert_eq!(ra.last_used_at, Some(NOW + time::Duration::seconds(3)));
    let rb = get(b.record.id).await;
    assert_eq!((rb.use_count, rb.last_used_at), (1, Some(t5)));
    // Rejected attempts are not counted.
    let _ = keys.verify_at("fsk_nope", t5).await.unwrap().into_result();
    keys.verify_at(a.printable.expose_secret(), t5)
        .await
        .unwrap()
        .into_result()
        .unwrap();
    assert_eq!(get(a.record.id).await.use_count, 4);
    keys.flush_usage_at(t5).await.unwrap();
    assert_eq!(get(a.record.id).await.use_count, 5);
    keys.flush_usage_at(t5).await.unwrap();
    assert_eq!(
        get(a.record.id).await.use_count,
        5,
        "flush is not double counted"
    );
}

#[tokio::test]
async fn api_keys_usage_is_flushed_after_the_interval() {
    let config = UsageConfig {
        max_pending_uses: NonZeroU64::new(1_000_000).unwrap(),
        max_interval: Duration::from_secs(60),
    };
    let keys = Arc::new(ApiKeys::with_usage_config(MemoryApiKeyStore::new(), config));
    let a = keys
        .issue_at(NewApiKey::new("erin", scopes()), NOW)
        .await
        .unwrap();
    let text = a.printable.expose_secret().to_owned();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let keys = keys.clone();
        let text = text.clone();
        tasks.push(tokio::spawn(async move {
            keys.verify_at(&text, NOW)
                .await
                .unwrap()
                .into_result()
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let count = |k: Arc<ApiKeys<MemoryApiKeyStore>>| async move {
        k.store()
            .get(&a.record.id)
            .await
            .unwrap()
            .unwrap()
            .use_count
    };
    assert_eq!(count(keys.clone()).await, 0);
    keys.verify_at(&text, NOW + time::Duration::seconds(59))
        .await
        .unwrap()
        .into_result()
        .unwrap();
    assert_eq!(count(keys.clone()).await, 0);
    keys.verify_at(&text, NOW + time::Duration::seconds(60))
        .await
        .unwrap()
        .into_result()
        .unwrap();
    assert_eq!(count(keys.clone()).await, 12);
}

#[tokio::test]
async fn api_keys_secrets_never_in_debug_display_or_errors() {
    let keys = ApiKeys::new(MemoryApiKeyStore::new());
    let issued = keys
        .issue_at(NewApiKey::new("frank", scopes()), NOW)
        .await
        .unwrap();
    let text = issued.printable.expose_secret().to_owned();
    let secret_hex = &text[21..85];
    let parsed = ParsedApiKey::parse(&text).unwrap();
    let wrong = GeneratedKey::from_parts(issued.record.id, &[9; SECRET_LEN]);
    let wrong_text = wrong.printable.expose_secret().to_owned();
    let err = keys
        .verify_at(&wrong_text, NOW)
        .await
        .unwrap()
        .into_result()
        .unwrap_err();
    let malformed = keys
        .verify_at(&text[..80], NOW)
        .await
        .unwrap()
        .into_result()
        .unwrap_err();
    let verified = keys
        .verify_at(&text, NOW)
        .await
        .unwrap()
        .into_result()
        .unwrap();
    let hash_hex = hex::encode(issued.record.secret_hash.as_bytes());
    let rendered = [
        format!("{issued:?}"),
        format!("{parsed:?}"),
        format!("{wrong:?}"),
        format!("{err:?} {err}"),
        format!("{malformed:?} {malformed}"),
        format!("{verified:?}"),
        format!("{:?}", issued.printable),
        format!("{keys:?}"),
    ];
    for r in &rendered {
        assert!(!r.contains(secret_hex), "secret in {r}");
        assert!(!r.contains(&wrong_text[21..85]), "wrong secret in {r}");
        assert!(!r.contains(&text[..60]), "key text in {r}");
        assert!(!r.contains(&hash_hex), "hash in {r}");
    }
    assert!(rendered[0].contains(&issued.record.id.to_string()));
}

/// A store whose usage writes fail while `failing` is set.
#[derive(Debug, Default)]
struct FlakyUsage {
    inner: MemoryApiKeyStore,
    failing: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl ApiKeyStore for FlakyUsage {
    async fn insert(&self, record: &ApiKeyRecord) -> Result<(), ApiKeyError> {
        self.inner.insert(record).await
    }
    async fn get(&self, id: &ApiKeyId) -> Result<Option<ApiKeyRecord>, ApiKeyError> {
        self.inner.get(id).await
    }
    async fn list_for_owner(&self, owner: &str) -> Result<Vec<ApiKeyRecord>, ApiKeyError> {
        self.inner.list_for_owner(owner).await
    }
    async fn revoke(&self, id: &ApiKeyId, at: OffsetDateTime) -> Result<bool, ApiKeyError> {
        self.inner.revoke(id, at).await
    }
    async fn rotate(
        &self,
        old: &ApiKeyId,
        new: &ApiKeyRecord,
        until: OffsetDateTime,
    ) -> Result<(), ApiKeyError> {
        self.inner.rotate(old, new, until).await
    }
    async fn record_usage(&self, batch: &[UsageUpdate]) -> Result<(), ApiKeyError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(ApiKeyError::Corrupt {
                id: "-".into(),
                detail: "injected failure".into(),
            });
        }
        self.inner.record_usage(batch).await
    }
}

#[tokio::test]
async fn api_keys_failed_usage_write_keeps_counts_and_never_denies() {
    let config = UsageConfig {
        max_pending_uses: NonZeroU64::new(2).unwrap(),
        max_interval: Duration::from_secs(3600),
    };
    let keys = ApiKeys::with_usage_config(FlakyUsage::default(), config);
    let a = keys
        .issue_at(NewApiKey::new("gina", scopes()), NOW)
        .await
        .unwrap();
    keys.store()
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    for _ in 0..3 {
        keys.verify_at(a.printable.expose_secret(), NOW)
            .await
            .unwrap()
            .into_result()
            .unwrap();
    }
    assert_eq!(keys.pending_uses(), 3);
    assert!(keys.flush_usage_at(NOW).await.is_err());
    assert_eq!(keys.pending_uses(), 3);
    keys.store()
        .failing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    keys.flush_usage_at(NOW).await.unwrap();
    assert_eq!(keys.pending_uses(), 0);
    let stored = keys.store().get(&a.record.id).await.unwrap().unwrap();
    assert_eq!((stored.use_count, stored.last_used_at), (3, Some(NOW)));
}

proptest::proptest! {
    #[test]
    fn api_keys_parse_never_panics(input in ".{0,120}") {
        let _ = ParsedApiKey::parse(&input);
    }

    #[test]
    fn api_keys_round_trip(id in proptest::array::uniform8(0u8..), secret in proptest::array::uniform32(0u8..)) {
        let key = GeneratedKey::from_parts(ApiKeyId::from_bytes(id), &secret);
        let parsed = ParsedApiKey::parse(key.printable.expose_secret()).unwrap();
        proptest::prop_assert_eq!(parsed.id(), ApiKeyId::from_bytes(id));
        proptest::prop_assert_eq!(parsed.hash(), &key.hash);
    }
}

#[tokio::test]
async fn keys_limited_to_networks_work_only_from_inside_them() {
    let keys = ApiKeys::new(MemoryApiKeyStore::new());
    let net = |s: &str| s.parse::<ipnet::IpNet>().unwrap();
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let issued = keys
        .issue_at(
            NewApiKey::new("ops", scopes()).from_networks([
                net("10.1.2.3/16"),
                net("::ffff:192.0.2.0/120"),
                net("2001:db8::/32"),
                net("10.1.0.0/16"),
            ]),
            NOW,
        )
        .await
        .unwrap();
    // Stored canonical: host bits cleared, IPv4-mapped as IPv4, sorted, no duplicates.
    assert_eq!(
        &*issued.record.networks,
        [
            net("10.1.0.0/16"),
            net("192.0.2.0/24"),
            net("2001:db8::/32")
        ]
    );
    let text = issued.printable.expose_secret();
    for inside in [
        "10.1.200.7",
        "192.0.2.9",
        "::ffff:10.1.0.1",
        "2001:db8:1::5",
    ] {
        let outcome = keys.verify_from_at(text, ip(inside), NOW).await.unwrap();
        assert!(outcome.is_accepted(), "{inside}");
    }
    for outside in [
        "10.2.0.1",
        "192.0.3.1",
        "::ffff:10.2.0.1",
        "2001:db9::1",
        "127.0.0.1",
    ] {
        let outcome = keys.verify_from_at(text, ip(outside), NOW).await.unwrap();
        assert_eq!(
            reason(outcome.into_result()),
            RejectReason::AddressNotAllowed,
            "{outside}"
        );
    }
    // Without the client's address, such a key is refused: fail closed.
    let outcome = keys.verify_at(text, NOW).await.unwrap();
    assert_eq!(
        reason(outcome.into_result()),
        RejectReason::AddressNotAllowed
    );
    // A key without networks works from anywhere, with or without an address.
    let open = keys
        .issue_at(NewApiKey::new("ops", scopes()), NOW)
        .await
        .unwrap();
    let open_text = open.printable.expose_secret();
    assert!(keys.verify_at(open_text, NOW).await.unwrap().is_accepted());
    assert!(
        keys.verify_from_at(open_text, ip("203.0.113.9"), NOW)
            .await
            .unwrap()
            .is_accepted()
    );
    // Rotation keeps the networks.
    let rotated = keys
        .rotate_at(&issued.record.id, Duration::from_secs(60), NOW)
        .await
        .unwrap();
    assert_eq!(rotated.record.networks, issued.record.networks);
    // At most MAX_NETWORKS (after duplicates are dropped).
    let many: Vec<ipnet::IpNet> = (0..=finsec_auth::api_keys::MAX_NETWORKS)
        .map(|i| net(&format!("10.{i}.0.0/16")))
        .collect();
    let err = keys
        .issue_at(NewApiKey::new("ops", scopes()).from_networks(many), NOW)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ApiKeyError::TooManyNetworks { count: 33 }),
        "{err}"
    );
    let same: Vec<ipnet::IpNet> = (0..100).map(|_| net("10.0.0.0/8")).collect();
    keys.issue_at(NewApiKey::new("ops", scopes()).from_networks(same), NOW)
        .await
        .unwrap();
}
