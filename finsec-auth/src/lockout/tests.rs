use std::net::IpAddr;

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn lockout() -> Lockout<MemoryFailureStore> {
    Lockout::new(MemoryFailureStore::new(), LockoutPolicy::default())
}

async fn fail_n(
    l: &Lockout<MemoryFailureStore>,
    account: &str,
    from: &str,
    device: Device,
    n: u32,
    now: OffsetDateTime,
) {
    for i in 0..n {
        assert_eq!(
            l.admit(account, ip(from), device, now).await.unwrap(),
            Admission::Allowed,
            "attempt {i} from {from}"
        );
    }
}

#[test]
fn the_backoff_doubles_from_the_free_failures_to_its_cap() {
    let b = Backoff::new(5, Duration::seconds(30), Duration::minutes(15)).unwrap();
    assert_eq!(b.delay_after(0), Duration::ZERO);
    assert_eq!(b.delay_after(4), Duration::ZERO);
    assert_eq!(b.delay_after(5), Duration::seconds(30));
    assert_eq!(b.delay_after(6), Duration::minutes(1));
    assert_eq!(b.delay_after(9), Duration::minutes(8));
    assert_eq!(b.delay_after(10), Duration::minutes(15));
    assert_eq!(b.delay_after(40), Duration::minutes(15));
    assert_eq!(b.delay_after(u32::MAX), Duration::minutes(15));
    let counting_only = Backoff::new(1, Duration::ZERO, Duration::ZERO).unwrap();
    assert_eq!(counting_only.delay_after(1_000), Duration::ZERO);
}

#[test]
fn bad_policies_are_refused_with_the_reason() {
    assert!(Backoff::new(0, Duration::SECOND, Duration::SECOND).is_err());
    assert!(Backoff::new(1, Duration::seconds(-1), Duration::SECOND).is_err());
    let err = Backoff::new(1, Duration::minutes(2), Duration::minutes(1)).unwrap_err();
    assert!(err.to_string().contains("first"), "{err}");
    let b = Backoff::new(1, Duration::SECOND, Duration::hours(1)).unwrap();
    assert!(LockoutPolicy::new(b, b, 0, Duration::days(1)).is_err());
    assert!(LockoutPolicy::new(b, b, 1, Duration::hours(1)).is_err());
    assert!(LockoutPolicy::new(b, b, 1, Duration::hours(2)).is_ok());
}

#[tokio::test]
async fn one_address_is_throttled_without_touching_other_addresses() {
    let l = lockout();
    fail_n(&l, "alice", "192.0.2.1", Device::Unknown, 5, t0()).await;
    assert_eq!(
        l.admit("alice", ip("192.0.2.1"), Device::Unknown, t0())
            .await
            .unwrap(),
        Admission::Throttled {
            scope: ThrottleScope::Pair,
            retry_after: Duration::seconds(30)
        }
    );
    // The same client as an IPv4-mapped IPv6 address is the same pair.
    assert!(matches!(
        l.admit("alice", ip("::ffff:192.0.2.1"), Device::Unknown, t0())
            .await
            .unwrap(),
        Admission::Throttled {
            scope: ThrottleScope::Pair,
            ..
        }
    ));
    // Refused attempts are not counted: the wait does not grow while hammering.
    assert_eq!(l.status("alice", t0()).await.unwrap().failures, 5);
    // The owner elsewhere is admitted, and their success clears the account.
    assert_eq!(
        l.admit("alice", ip("198.51.100.9"), Device::Unknown, t0())
            .await
            .unwrap(),
        Admission::Allowed
    );
    l.succeeded("alice", ip("198.51.100.9")).await.unwrap();
    assert_eq!(l.status("alice", t0()).await.unwrap().failures, 0);
    // The guesser's own address stays slowed; after the wait one more, then 60 s.
    let later = t0() + Duration::seconds(30);
    assert_eq!(
        l.admit("alice", ip("192.0.2.1"), Device::Unknown, later)
            .await
            .unwrap(),
        Admission::Allowed
    );
    assert_eq!(
        l.admit("alice", ip("192.0.2.1"), Device::Unknown, later)
            .await
            .unwrap(),
        Admission::Throttled {
            scope: ThrottleScope::Pair,
            retry_after: Duration::minutes(1)
        }
    );
}

#[tokio::test]
async fn many_addresses_throttle_the_account_but_not_a_remembered_device() {
    let l = lockout();
    for i in 0..10 {
        fail_n(
            &l,
            "bob",
            &format!("203.0.113.{i}"),
            Device::Unknown,
            1,
            t0(),
        )
        .await;
    }
    // A stranger at a fresh address, and the owner on a new device, wait.
    for from in ["203.0.113.200", "198.51.100.1"] {
        assert_eq!(
            l.admit("bob", ip(from), Device::Unknown, t0())
                .await
                .unwrap(),
            Admission::Throttled {
                scope: ThrottleScope::Account,
                retry_after: Duration::seconds(30)
            }
        );
    }
    // The owner's remembered device is admitted and its success clears the account.
    assert_eq!(
        l.admit("bob", ip("198.51.100.1"), Device::Remembered, t0())
            .await
            .unwrap(),
        Admission::Allowed
    );
    l.succeeded("bob", ip("198.51.100.1")).await.unwrap();
    assert_eq!(
        l.admit("bob", ip("203.0.113.200"), Device::Unknown, t0())
            .await
            .unwrap(),
        Admission::Allowed
    );
}

#[tokio::test]
async fn a_hundred_failures_in_a_row_need_recovery() {
    let l = lockout();
    let mut now = t0();
    let mut n = 0u32;
    // A patient guesser on rotating addresses, always waiting out the back-off.
    while n < 100 {
        let from = format!("10.0.{}.{}", n / 200, n % 200);
        match l
            .admit("carol", ip(&from), Device::Unknown, now)
            .await
            .unwrap()
        {
            Admission::Allowed => n += 1,
            Admission::Throttled { retry_after, .. } => now += retry_after,
            Admission::RecoveryRequired => panic!("recovery after {n}"),
        }
    }
    // About a day of guessing at 15 minutes a guess once at the cap.
    assert!(now - t0() > Duration::hours(20), "{}", now - t0());
    let status = l.status("carol", now).await.unwrap();
    assert_eq!(status.failures, 100);
    assert!(status.recovery_required);
    // Guessing stops, even long after: the record is never forgotten.
    let much_later = now + Duration::days(365);
    assert_eq!(
        l.admit("carol", ip("10.9.9.9"), Device::Unknown, much_later)
            .await
            .unwrap(),
        Admission::RecoveryRequired
    );
    // Only the 100 pair records go; the account record stays.
    assert_eq!(l.purge(much_later).await.unwrap(), 100);
    assert!(
        l.status("carol", much_later)
            .await
            .unwrap()
            .recovery_required
    );
    // A remembered device still gets in, and its success recovers the account.
    assert_eq!(
        l.admit("carol", ip("10.9.9.9"), Device::Remembered, much_later)
            .await
            .unwrap(),
        Admission::Allowed
    );
    l.succeeded("carol", ip("10.9.9.9")).await.unwrap();
    assert!(
        !l.status("carol", much_later)
            .await
            .unwrap()
            .recovery_required
    );
}

#[tokio::test]
async fn an_administrator_recovers_an_account() {
    let policy = LockoutPolicy::new(
        Backoff::new(50, Duration::ZERO, Duration::ZERO).unwrap(),
        Backoff::new(50, Duration::ZERO, Duration::ZERO).unwrap(),
        3,
        Duration::days(1),
    )
    .unwrap();
    let l = Lockout::new(MemoryFailureStore::new(), policy);
    fail_n(&l, "dave", "192.0.2.1", Device::Unknown, 3, t0()).await;
    assert_eq!(
        l.admit("dave", ip("192.0.2.1"), Device::Unknown, t0())
            .await
            .unwrap(),
        Admission::RecoveryRequired
    );
    assert!(l.recover("dave").await.unwrap());
    assert!(!l.recover("dave").await.unwrap());
    assert_eq!(
        l.admit("dave", ip("192.0.2.1"), Device::Unknown, t0())
            .await
            .unwrap(),
        Admission::Allowed
    );
}

#[tokio::test]
async fn idle_records_are_forgotten() {
    let l = lockout();
    fail_n(&l, "erin", "192.0.2.1", Device::Unknown, 5, t0()).await;
    let month = t0() + Duration::days(30);
    assert_eq!(l.status("erin", month).await.unwrap().failures, 0);
    assert_eq!(
        l.admit("erin", ip("192.0.2.1"), Device::Unknown, month)
            .await
            .unwrap(),
        Admission::Allowed
    );
    assert_eq!(l.status("erin", month).await.unwrap().failures, 1);
    assert_eq!(l.purge(month + Duration::days(31)).await.unwrap(), 2);
}

#[tokio::test]
async fn bad_account_ids_are_errors_not_panics() {
    let l = lockout();
    for account in ["", "a|b", "\u{0}"] {
        assert!(matches!(
            l.admit(account, ip("192.0.2.1"), Device::Unknown, t0())
                .await,
            Err(LockoutError::InvalidAccount { .. })
        ));
    }
}

/// A store whose compare-and-set always loses.
struct AlwaysRaced(MemoryFailureStore);

#[async_trait::async_trait]
impl FailureStore for AlwaysRaced {
    async fn get(&self, key: &FailureKey) -> Result<Option<FailureRecord>> {
        self.0.get(key).await
    }
    async fn replace(
        &self,
        _: &FailureKey,
        _: Option<&FailureRecord>,
        _: &FailureRecord,
    ) -> Result<bool> {
        Ok(false)
    }
    async fn clear(&self, key: &FailureKey) -> Result<()> {
        self.0.clear(key).await
    }
    async fn purge(&self, before: OffsetDateTime, keep: u32) -> Result<u64> {
        self.0.purge(before, keep).await
    }
}

#[tokio::test]
async fn endless_contention_refuses_instead_of_admitting() {
    let l = Lockout::new(
        AlwaysRaced(MemoryFailureStore::new()),
        LockoutPolicy::default(),
    );
    assert!(matches!(
        l.admit("frank", ip("192.0.2.1"), Device::Unknown, t0())
            .await,
        Err(LockoutError::Contended)
    ));
}

#[cfg(feature = "testing")]
#[tokio::test]
async fn memory_store_conformance() {
    let store = MemoryFailureStore::new();
    testing::failure_store_conformance(&store).await;
    testing::failure_store_conformance(&store).await;
}
