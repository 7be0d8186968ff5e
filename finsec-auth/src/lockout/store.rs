//! The [`FailureStore`] trait, its keys and records, and the in-memory store.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::error::{LockoutError, Result};

/// What failures are counted under: an account, or an account at one client address.
///
/// Built with [`account`](Self::account) or [`pair`](Self::pair), which canonicalise the
/// address (an IPv4-mapped IPv6 address is its IPv4 address; other IPv6 addresses count by
/// `/64`, the smallest block one client usually holds), so one client cannot spread its
/// failures over many keys by changing the form or the low bits of its address.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FailureKey(String);

impl FailureKey {
    /// The longest account id accepted, in bytes.
    pub const MAX_ACCOUNT_LEN: usize = 200;

    /// The key of `account` (any stable id of the account, such as a hash of the
    /// case-folded username; it is stored as given).
    ///
    /// # Errors
    /// [`LockoutError::InvalidAccount`] if the id is empty, longer than
    /// [`MAX_ACCOUNT_LEN`](Self::MAX_ACCOUNT_LEN) bytes, or holds a control character or `|`.
    pub fn account(account: &str) -> Result<Self> {
        check_account(account)?;
        Ok(Self(format!("a|{account}")))
    }

    /// The key of `account` at the client address `address`.
    ///
    /// # Errors
    /// As [`account`](Self::account).
    pub fn pair(account: &str, address: IpAddr) -> Result<Self> {
        check_account(account)?;
        Ok(Self(format!("p|{account}|{}", canonical_address(address))))
    }

    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for FailureKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FailureKey({})", self.0)
    }
}

fn check_account(account: &str) -> Result<()> {
    let reason = if account.is_empty() {
        Some("is empty")
    } else if account.len() > FailureKey::MAX_ACCOUNT_LEN {
        Some("is longer than 200 bytes")
    } else if account.chars().any(|c| c.is_control() || c == '|') {
        Some("contains a control character or `|`")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(LockoutError::InvalidAccount { reason }),
        None => Ok(()),
    }
}

/// The address a pair key counts: IPv4 as is (IPv4-mapped IPv6 included), IPv6 by `/64`.
fn canonical_address(address: IpAddr) -> String {
    match address.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{net}/64")
        }
    }
}

/// The failures counted under one key: how many in a row, when the last one was, and until
/// when further attempts are refused. Times are kept to the millisecond (what every store
/// keeps), so a record read back compares equal to the one written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureRecord {
    failures: u32,
    last_failure_ms: i64,
    blocked_until_ms: i64,
}

impl FailureRecord {
    /// A record of `failures` failures, the last at `last_failure`, refusing attempts until
    /// `blocked_until` (truncated to milliseconds).
    pub fn new(failures: u32, last_failure: OffsetDateTime, blocked_until: OffsetDateTime) -> Self {
        Self {
            failures,
            last_failure_ms: unix_ms(last_failure),
            blocked_until_ms: unix_ms(blocked_until),
        }
    }

    /// A record from stored milliseconds since the Unix epoch.
    ///
    /// # Errors
    /// [`LockoutError::Corrupt`] if a count is negative or a time out of range.
    pub fn from_stored(failures: i64, last_failure_ms: i64, blocked_until_ms: i64) -> Result<Self> {
        let failures = u32::try_from(failures)
            .map_err(|_| LockoutError::Corrupt(format!("failure count {failures}")))?;
        for ms in [last_failure_ms, blocked_until_ms] {
            from_unix_ms(ms)?;
        }
        Ok(Self {
            failures,
            last_failure_ms,
            blocked_until_ms,
        })
    }

    /// Failures in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// When the last failure was.
    pub fn last_failure(&self) -> OffsetDateTime {
        from_unix_ms(self.last_failure_ms).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// Until when attempts are refused (in the past when they are not).
    pub fn blocked_until(&self) -> OffsetDateTime {
        from_unix_ms(self.blocked_until_ms).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// [`last_failure`](Self::last_failure) in milliseconds since the Unix epoch.
    pub fn last_failure_ms(&self) -> i64 {
        self.last_failure_ms
    }

    /// [`blocked_until`](Self::blocked_until) in milliseconds since the Unix epoch.
    pub fn blocked_until_ms(&self) -> i64 {
        self.blocked_until_ms
    }
}

/// Milliseconds since the Unix epoch (saturating far outside any real date).
pub(crate) fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn from_unix_ms(ms: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|_| LockoutError::Corrupt(format!("time {ms} ms")))
}

/// Where failure counts live, shared by every server instance that must agree on them.
///
/// The contract, checked by the conformance suite (`lockout::testing`, feature `testing`):
/// [`replace`](Self::replace) is an atomic compare-and-set, so of any number of racing
/// updates from one state exactly one wins and no failure is lost; [`clear`](Self::clear)
/// and [`purge`](Self::purge) remove records. A store only keeps records; what they mean
/// is decided by [`Lockout`](super::Lockout).
#[async_trait]
pub trait FailureStore: Send + Sync {
    /// The record under `key`, if any.
    ///
    /// # Errors
    /// A storage failure, or a stored value out of range.
    async fn get(&self, key: &FailureKey) -> Result<Option<FailureRecord>>;

    /// Stores `next` under `key` if the stored record is `expected` (`None`: no record).
    /// Returns whether it was stored.
    ///
    /// # Errors
    /// A storage failure.
    async fn replace(
        &self,
        key: &FailureKey,
        expected: Option<&FailureRecord>,
        next: &FailureRecord,
    ) -> Result<bool>;

    /// Removes the record under `key` (nothing if there is none).
    ///
    /// # Errors
    /// A storage failure.
    async fn clear(&self, key: &FailureKey) -> Result<()>;

    /// Removes every record whose last failure is before `before` and whose block is over
    /// by then, except records of at least `keep_failures` failures (accounts that need
    /// recovery). Returns how many were removed.
    ///
    /// # Errors
    /// A storage failure.
    async fn purge(&self, before: OffsetDateTime, keep_failures: u32) -> Result<u64>;
}

/// Forwards [`FailureStore`] through a pointer to a store.
macro_rules! forward_store {
    ($($wrapper:ty),+) => {$(
        #[async_trait]
        impl<S: FailureStore + ?Sized> FailureStore for $wrapper {
            async fn get(&self, key: &FailureKey) -> Result<Option<FailureRecord>> {
                (**self).get(key).await
            }

            async fn replace(
                &self,
                key: &FailureKey,
                expected: Option<&FailureRecord>,
                next: &FailureRecord,
            ) -> Result<bool> {
                (**self).replace(key, expected, next).await
            }

            async fn clear(&self, key: &FailureKey) -> Result<()> {
                (**self).clear(key).await
            }

            async fn purge(&self, before: OffsetDateTime, keep_failures: u32) -> Result<u64> {
                (**self).purge(before, keep_failures).await
            }
        }
    )+};
}

forward_store!(std::sync::Arc<S>, &S, Box<S>);

/// A [`FailureStore`] in process memory: for tests and single-instance deployments (counts
/// are lost on restart).
#[derive(Debug, Default)]
pub struct MemoryFailureStore {
    records: Mutex<HashMap<FailureKey, FailureRecord>>,
}

impl MemoryFailureStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<FailureKey, FailureRecord>> {
        // Every update is one insert or remove: a poisoned map is still consistent.
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl FailureStore for MemoryFailureStore {
    async fn get(&self, key: &FailureKey) -> Result<Option<FailureRecord>> {
        Ok(self.lock().get(key).copied())
    }

    async fn replace(
        &self,
        key: &FailureKey,
        expected: Option<&FailureRecord>,
        next: &FailureRecord,
    ) -> Result<bool> {
        let mut records = self.lock();
        if records.get(key) != expected {
            return Ok(false);
        }
        records.insert(key.clone(), *next);
        Ok(true)
    }

    async fn clear(&self, key: &FailureKey) -> Result<()> {
        self.lock().remove(key);
        Ok(())
    }

    async fn purge(&self, before: OffsetDateTime, keep_failures: u32) -> Result<u64> {
        let before = unix_ms(before);
        let mut records = self.lock();
        let was = records.len();
        records.retain(|_, r| {
            r.failures >= keep_failures
                || r.last_failure_ms >= before
                || r.blocked_until_ms >= before
        });
        Ok((was - records.len()) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_canonicalise_addresses() {
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(
            FailureKey::pair("acct", v4).unwrap(),
            FailureKey::pair("acct", mapped).unwrap()
        );
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(
            FailureKey::pair("x", a).unwrap(),
            FailureKey::pair("x", b).unwrap()
        );
        assert_ne!(
            FailureKey::pair("x", a).unwrap(),
            FailureKey::pair("x", c).unwrap()
        );
        assert_eq!(
            FailureKey::pair("x", a).unwrap().as_str(),
            "p|x|2001:db8:1:2::/64"
        );
        assert_ne!(
            FailureKey::account("x").unwrap(),
            FailureKey::pair("x", v4).unwrap()
        );
    }

    #[test]
    fn bad_accounts_are_refused_with_the_reason() {
        for (account, reason) in [
            ("", "is empty"),
            ("a|b", "contains a control character or `|`"),
            ("a\nb", "contains a control character or `|`"),
        ] {
            let err = FailureKey::account(account).unwrap_err();
            assert!(err.to_string().contains(reason), "{err}");
        }
        assert!(FailureKey::account(&"x".repeat(200)).is_ok());
        assert!(FailureKey::account(&"x".repeat(201)).is_err());
    }

    #[test]
    fn stored_values_out_of_range_are_corrupt() {
        assert!(FailureRecord::from_stored(-1, 0, 0).is_err());
        assert!(FailureRecord::from_stored(1, i64::MAX, 0).is_err());
        let r = FailureRecord::from_stored(3, 1_000, 2_000).unwrap();
        assert_eq!(r.failures(), 3);
        assert_eq!(r.last_failure().unix_timestamp(), 1);
        assert_eq!(r.blocked_until_ms(), 2_000);
    }
}
