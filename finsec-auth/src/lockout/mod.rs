//! Login lockout that an attacker cannot turn against users: failures (not attempts) are
//! counted per account and per account at one client address, with exponential back-off,
//! and an account needs recovery after 100 consecutive failures (NIST SP 800-63B 5.2.2).
//!
//! | counter | keyed by | after `free` failures | who is exempt |
//! |---|---|---|---|
//! | pair | account + client address (IPv6 by `/64`) | back-off, 30 s doubling to 15 min (defaults: `free` 5) | nobody |
//! | account | account | back-off, 30 s doubling to 15 min (defaults: `free` 10) | a [remembered device](Device::Remembered) |
//! | recovery | account | after 100 failures in a row, refused until [`Lockout::recover`] or a success from a remembered device | a remembered device |
//!
//! A guesser at one address is slowed by the pair counter without touching anyone else's
//! logins from elsewhere. A guesser spreading over many addresses is slowed by the account
//! counter, which also slows the owner, except on a device that completed a full login
//! before (the caller tells which: a remembered-device token, see [`Device`]). So a stranger
//! cannot lock out a user who has such a device, and guessing still stops: at most about
//! 100 guesses a day per account once the back-off is at its cap, and none after 100
//! failures in a row.
//!
//! **Failures, counted before they happen.** [`Lockout::admit`] counts the attempt as a
//! failure before the password is checked, in one atomic compare-and-set per counter, and
//! [`Lockout::succeeded`] takes it back (clearing both counters) when the password was
//! right. Counting after the check would let concurrent guesses all pass the gate before any
//! of them is recorded; counting before bounds them exactly. An attempt refused by the gate
//! is not counted, so hammering a blocked account does not extend its block.
//!
//! ```
//! use std::net::IpAddr;
//! use finsec_auth::lockout::{Admission, Device, Lockout, LockoutPolicy, MemoryFailureStore};
//! use time::OffsetDateTime;
//!
//! # async fn example() -> Result<(), finsec_auth::lockout::LockoutError> {
//! let lockout = Lockout::new(MemoryFailureStore::new(), LockoutPolicy::default());
//! let now = OffsetDateTime::now_utc();
//! let from: IpAddr = "192.0.2.7".parse().unwrap();
//! for _ in 0..5 {
//!     // A wrong password each time: admitted, and left counted.
//!     assert_eq!(lockout.admit("alice", from, Device::Unknown, now).await?, Admission::Allowed);
//! }
//! // The sixth attempt from this address waits; another address is still admitted.
//! assert!(matches!(
//!     lockout.admit("alice", from, Device::Unknown, now).await?,
//!     Admission::Throttled { .. }
//! ));
//! let home: IpAddr = "198.51.100.1".parse().unwrap();
//! assert_eq!(lockout.admit("alice", home, Device::Unknown, now).await?, Admission::Allowed);
//! // The right password: the attempt is taken back and the account's count cleared.
//! lockout.succeeded("alice", home).await?;
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(example()).unwrap();
//! ```
//!
//! # Stores
//!
//! [`FailureStore`] holds the counts: [`MemoryFailureStore`] (one process), and with the
//! `sqlite` / `postgres` features [`SqlFailureStore`] (table `finsec_login_failures`,
//! created by the crate's `migrate`), shared by every instance on the database. Failures
//! are rare next to requests, so one indexed row update per failed login is cheap in SQL;
//! there is no Redis store. Call [`Lockout::purge`] now and then (the reference server does
//! every hour) to drop records idle longer than [`LockoutPolicy::forget_after`].
//!
//! # Threat model
//!
//! - **Online guessing** of one account, from one address or many: bounded as above.
//! - **Denial of service against a user** by failing on purpose: exposes only users without a
//!   remembered device, and only to the account back-off (at most 15 minutes per failure);
//!   the pair counter of the user's own address is untouched by others.
//! - **Account enumeration**: counts are kept for any account id the caller passes; key them
//!   by the name as typed (folded), not by whether the user exists.
//! - Not covered: stealing a remembered-device token (the caller issues, stores and revokes
//!   them), and credential stuffing spread over many accounts (one guess per account stays
//!   under every counter; limit requests per address for that).

mod error;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
mod store;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use time::{Duration, OffsetDateTime};

pub use error::{LockoutError, Result};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use sql::SqlFailureStore;
pub use store::{FailureKey, FailureRecord, FailureStore, MemoryFailureStore};

/// How many compare-and-set rounds an update tries before giving up with
/// [`LockoutError::Contended`].
pub const MAX_ROUNDS: usize = 32;

/// Exponential back-off: no delay for the first `free - 1` failures; after the `free`-th
/// failure attempts wait `first`, doubling with each further failure up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    free: u32,
    first: Duration,
    max: Duration,
}

impl Backoff {
    /// A back-off; `first` of zero means no delay at all (the counter only counts).
    ///
    /// # Errors
    /// [`LockoutError::InvalidPolicy`] if `free` is zero, `first` is negative, or `max` is
    /// less than `first`.
    pub fn new(free: u32, first: Duration, max: Duration) -> Result<Self> {
        if free == 0 {
            return Err(LockoutError::InvalidPolicy(
                "a back-off needs at least one free failure".into(),
            ));
        }
        if first.is_negative() || max < first {
            return Err(LockoutError::InvalidPolicy(format!(
                "back-off delays must satisfy 0 <= first ({first}) <= max ({max})"
            )));
        }
        Ok(Self { free, first, max })
    }

    /// Failures before the first delay.
    pub fn free(&self) -> u32 {
        self.free
    }

    /// How long attempts wait after `failures` failures in a row.
    pub fn delay_after(&self, failures: u32) -> Duration {
        if failures < self.free || self.first.is_zero() {
            return Duration::ZERO;
        }
        let doublings = failures - self.free;
        let factor = 1_i32.checked_shl(doublings).filter(|f| *f > 0);
        factor
            .and_then(|f| self.first.checked_mul(f))
            .map_or(self.max, |d| d.min(self.max))
    }
}

/// The thresholds of a [`Lockout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    pair: Backoff,
    account: Backoff,
    recovery_after: u32,
    forget_after: Duration,
}

impl Default for LockoutPolicy {
    /// Pair: 5 free failures, then 30 s doubling to 15 min. Account: 10, then the same.
    /// Recovery after 100 failures in a row. Records idle for 30 days are forgotten.
    fn default() -> Self {
        let backoff = |free| Backoff {
            free,
            first: Duration::seconds(30),
            max: Duration::minutes(15),
        };
        Self {
            pair: backoff(5),
            account: backoff(10),
            recovery_after: 100,
            forget_after: Duration::days(30),
        }
    }
}

impl LockoutPolicy {
    /// A policy.
    ///
    /// # Errors
    /// [`LockoutError::InvalidPolicy`] if `recovery_after` is zero or `forget_after` is not
    /// longer than both back-offs' `max`.
    pub fn new(
        pair: Backoff,
        account: Backoff,
        recovery_after: u32,
        forget_after: Duration,
    ) -> Result<Self> {
        if recovery_after == 0 {
            return Err(LockoutError::InvalidPolicy(
                "recovery_after must be at least 1".into(),
            ));
        }
        if forget_after <= pair.max || forget_after <= account.max {
            return Err(LockoutError::InvalidPolicy(format!(
                "forget_after ({forget_after}) must be longer than every back-off's max"
            )));
        }
        Ok(Self {
            pair,
            account,
            recovery_after,
            forget_after,
        })
    }

    /// The back-off of an account at one address.
    pub fn pair(&self) -> Backoff {
        self.pair
    }

    /// The back-off of an account from anywhere (remembered devices exempt).
    pub fn account(&self) -> Backoff {
        self.account
    }

    /// Failures in a row after which the account needs recovery.
    pub fn recovery_after(&self) -> u32 {
        self.recovery_after
    }

    /// How long a record is kept after its last failure (records of accounts that need
    /// recovery are kept until recovered).
    pub fn forget_after(&self) -> Duration {
        self.forget_after
    }
}

/// Where an attempt comes from, as the caller established it before checking the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// A device not known to have completed a full login of this account.
    Unknown,
    /// A device holding a valid remembered-device token of this account (issued after a
    /// complete login, second factor included when enrolled): exempt from the account
    /// back-off and from the recovery lock, still under its address's pair back-off.
    Remembered,
}

/// Which counter refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleScope {
    /// The account at this client address.
    Pair,
    /// The account, from any address without a remembered device.
    Account,
}

/// What [`Lockout::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Admission {
    /// Check the password; the attempt is counted as a failure until
    /// [`Lockout::succeeded`] takes it back.
    Allowed,
    /// Refused without checking anything; retry after `retry_after`.
    Throttled {
        /// The counter that refused.
        scope: ThrottleScope,
        /// How long until an attempt is admitted again (at least one second).
        retry_after: Duration,
    },
    /// The account had [`LockoutPolicy::recovery_after`] failures in a row: refused until
    /// [`Lockout::recover`] (an administrator) or a success from a remembered device.
    RecoveryRequired,
}

/// An account's lockout state, for administrators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountStatus {
    /// Failures in a row (0 once forgotten).
    pub failures: u32,
    /// Until when attempts without a remembered device wait, if they do now.
    pub blocked_until: Option<OffsetDateTime>,
    /// Whether the account needs recovery.
    pub recovery_required: bool,
}

/// How many locks [`Lockout`] spreads accounts over within one process.
const STRIPES: usize = 64;

/// The lockout decisions on a [`FailureStore`]; see the [module docs](self).
///
/// Within one process, attempts on one account take turns (one of 64 async locks,
/// chosen by the account), so a burst of concurrent attempts costs one compare-and-set
/// each instead of many lost rounds; only other processes race in the store. Clones share
/// the locks.
#[derive(Clone)]
pub struct Lockout<S> {
    store: S,
    policy: LockoutPolicy,
    stripes: Arc<[futures_util::lock::Mutex<()>]>,
}

impl<S> fmt::Debug for Lockout<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lockout")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// FNV-1a of `account`, to pick its stripe.
fn stripe_of(account: &str) -> usize {
    let hash = account.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    usize::try_from(hash % STRIPES as u64).unwrap_or(0)
}

/// The outcome of one counted update.
enum Bump {
    Counted,
    Refused(Admission),
}

impl<S: FailureStore> Lockout<S> {
    /// Lockout decisions under `policy`, with counts in `store`.
    pub fn new(store: S, policy: LockoutPolicy) -> Self {
        Self {
            store,
            policy,
            stripes: (0..STRIPES)
                .map(|_| futures_util::lock::Mutex::new(()))
                .collect(),
        }
    }

    /// The policy.
    pub fn policy(&self) -> &LockoutPolicy {
        &self.policy
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Whether an attempt on `account` from `address` may check its password at `now`; if
    /// [`Admission::Allowed`], the attempt is already counted as a failure (see the module
    /// docs) and [`succeeded`](Self::succeeded) must follow a right password.
    ///
    /// # Errors
    /// A bad account id, a store failure, or [`LockoutError::Contended`]: refuse the attempt.
    pub async fn admit(
        &self,
        account: &str,
        address: IpAddr,
        device: Device,
        now: OffsetDateTime,
    ) -> Result<Admission> {
        let account_key = FailureKey::account(account)?;
        let pair_key = FailureKey::pair(account, address)?;
        let gated = device == Device::Unknown;
        let _turn = match self.stripes.get(stripe_of(account)) {
            Some(stripe) => Some(stripe.lock().await),
            None => None,
        };
        // The account gate first, read only: an attempt it refuses counts nowhere. What it
        // read is the account update's first expectation (the compare-and-set checks it).
        let mut account_read = None;
        if gated {
            let current = self.store.get(&account_key).await?;
            if let Some(refusal) = self.account_refusal(current.as_ref(), now) {
                return Ok(refusal);
            }
            account_read = Some(current);
        }
        let pair = self.policy.pair;
        let pair_bump = self
            .bump(&pair_key, pair, now, None, |record| {
                throttled(record, now, ThrottleScope::Pair)
            })
            .await?;
        if let Bump::Refused(refusal) = pair_bump {
            return Ok(refusal);
        }
        let account_bump = self
            .bump(
                &account_key,
                self.policy.account,
                now,
                account_read,
                |record| {
                    if gated {
                        self.account_refusal(record, now)
                    } else {
                        None
                    }
                },
            )
            .await?;
        Ok(match account_bump {
            Bump::Counted => Admission::Allowed,
            Bump::Refused(refusal) => refusal,
        })
    }

    /// The password of an admitted attempt was right: clears the account's count and this
    /// address's.
    ///
    /// # Errors
    /// A bad account id or a store failure.
    pub async fn succeeded(&self, account: &str, address: IpAddr) -> Result<()> {
        self.store
            .clear(&FailureKey::pair(account, address)?)
            .await?;
        self.store.clear(&FailureKey::account(account)?).await
    }

    /// Recovery by an administrator: clears the account's count (and with it any back-off
    /// and the recovery lock). Returns whether the account had failures counted. Counts per
    /// address stay until they expire or the owner logs in from there.
    ///
    /// # Errors
    /// A bad account id or a store failure.
    pub async fn recover(&self, account: &str) -> Result<bool> {
        let key = FailureKey::account(account)?;
        let had = self.store.get(&key).await?.is_some();
        self.store.clear(&key).await?;
        Ok(had)
    }

    /// The account's state at `now`.
    ///
    /// # Errors
    /// A bad account id or a store failure.
    pub async fn status(&self, account: &str, now: OffsetDateTime) -> Result<AccountStatus> {
        let record = self.store.get(&FailureKey::account(account)?).await?;
        let live = record.filter(|r| !self.forgotten(r, now));
        Ok(AccountStatus {
            failures: live.map_or(0, |r| r.failures()),
            blocked_until: live.map(|r| r.blocked_until()).filter(|until| *until > now),
            recovery_required: live.is_some_and(|r| r.failures() >= self.policy.recovery_after),
        })
    }

    /// Drops records idle longer than [`LockoutPolicy::forget_after`] at `now` (never those
    /// of accounts needing recovery). Returns how many.
    ///
    /// # Errors
    /// A store failure.
    pub async fn purge(&self, now: OffsetDateTime) -> Result<u64> {
        self.store
            .purge(now - self.policy.forget_after, self.policy.recovery_after)
            .await
    }

    fn forgotten(&self, record: &FailureRecord, now: OffsetDateTime) -> bool {
        record.failures() < self.policy.recovery_after
            && record.last_failure() + self.policy.forget_after <= now
            && record.blocked_until() <= now
    }

    fn account_refusal(
        &self,
        record: Option<&FailureRecord>,
        now: OffsetDateTime,
    ) -> Option<Admission> {
        let record = record.filter(|r| !self.forgotten(r, now))?;
        if record.failures() >= self.policy.recovery_after {
            return Some(Admission::RecoveryRequired);
        }
        throttled(Some(record), now, ThrottleScope::Account)
    }

    /// Counts one failure under `key` unless `refuse` refuses the current record, in a
    /// compare-and-set loop whose first round starts from `read` when the caller has just
    /// read the record (a stale read only costs a round).
    async fn bump(
        &self,
        key: &FailureKey,
        backoff: Backoff,
        now: OffsetDateTime,
        mut read: Option<Option<FailureRecord>>,
        refuse: impl Fn(Option<&FailureRecord>) -> Option<Admission>,
    ) -> Result<Bump> {
        for _ in 0..MAX_ROUNDS {
            let stored = match read.take() {
                Some(known) => known,
                None => self.store.get(key).await?,
            };
            let live = stored.filter(|r| !self.forgotten(r, now));
            if let Some(refusal) = refuse(live.as_ref()) {
                return Ok(Bump::Refused(refusal));
            }
            let failures = live.map_or(0, |r| r.failures()).saturating_add(1);
            // No delay is no block at all: not `now`, which another instance whose request
            // began a moment earlier would read as a block still running.
            let delay = backoff.delay_after(failures);
            let mut blocked_until = if delay.is_zero() {
                OffsetDateTime::UNIX_EPOCH
            } else {
                now + delay
            };
            if let Some(previous) = live {
                blocked_until = blocked_until.max(previous.blocked_until());
            }
            let next = FailureRecord::new(failures, now, blocked_until);
            if self.store.replace(key, stored.as_ref(), &next).await? {
                return Ok(Bump::Counted);
            }
        }
        Err(LockoutError::Contended)
    }
}

/// `Throttled` if `record` blocks attempts at `now`.
fn throttled(
    record: Option<&FailureRecord>,
    now: OffsetDateTime,
    scope: ThrottleScope,
) -> Option<Admission> {
    let until = record?.blocked_until();
    (until > now).then(|| Admission::Throttled {
        scope,
        retry_after: (until - now).max(Duration::SECOND),
    })
}

#[cfg(test)]
mod tests;
