//! The storage trait every backend implements, and the checks every backend shares.

use std::collections::HashSet;

use async_trait::async_trait;

use crate::decision::Decision;
use crate::error::{Error, Result};
use crate::quota::Quota;

/// The longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 256;

/// One rate-limit check: a key, the quotas that apply to it, and the request's cost.
///
/// The key (`'k`) and the quotas (`'q`) are borrowed separately: the [`Decision`] a store
/// answers with borrows the quotas only, so it may outlive a key built for the check.
#[derive(Debug, Clone, Copy)]
pub struct Check<'k, 'q> {
    /// Who is being limited, for example `ip:203.0.113.9` or `account:42`.
    pub key: &'k str,
    /// Every quota that applies; the request is allowed only if all allow it.
    pub quotas: &'q [Quota],
    /// What the request costs (usually 1). A cost of 0 asks without consuming.
    pub cost: u32,
}

impl<'k, 'q> Check<'k, 'q> {
    /// A check of cost 1.
    pub fn new(key: &'k str, quotas: &'q [Quota]) -> Self {
        Self {
            key,
            quotas,
            cost: 1,
        }
    }

    /// The same check with another cost.
    pub fn with_cost(mut self, cost: u32) -> Self {
        self.cost = cost;
        self
    }

    /// Validates the check the same way for every store: a non-empty key of at most
    /// [`MAX_KEY_LEN`] bytes without control characters, at least one quota, distinct quota
    /// names, and a cost no quota's capacity is below.
    ///
    /// # Errors
    /// [`Error::InvalidKey`], [`Error::NoQuotas`], [`Error::DuplicateQuota`] or
    /// [`Error::CostExceedsCapacity`].
    #[inline]
    pub fn validate(&self) -> Result<()> {
        validate_key(self.key)?;
        match self.quotas {
            [] => return Err(Error::NoQuotas),
            [_] => {}
            quotas => {
                if let Some(q) = first_duplicate(quotas) {
                    return Err(duplicate_quota(q));
                }
            }
        }
        match self
            .quotas
            .iter()
            .find(|q| u64::from(self.cost) > q.capacity())
        {
            Some(q) => Err(cost_exceeds_capacity(q, self.cost)),
            None => Ok(()),
        }
    }
}

// The errors are built out of line, keeping the check's hot path short.
#[cold]
fn duplicate_quota(q: &Quota) -> Error {
    Error::DuplicateQuota {
        name: q.name().to_owned(),
    }
}

#[cold]
fn cost_exceeds_capacity(q: &Quota, cost: u32) -> Error {
    Error::CostExceedsCapacity {
        quota: q.name().to_owned(),
        cost,
        capacity: q.capacity(),
    }
}

/// Up to this many quotas, duplicate names are found by comparing every pair (cheaper than
/// hashing them).
const PAIRWISE_MAX: usize = 4;

/// The first quota whose name an earlier quota already has.
fn first_duplicate(quotas: &[Quota]) -> Option<&Quota> {
    if quotas.len() <= PAIRWISE_MAX {
        return quotas.iter().enumerate().find_map(|(i, q)| {
            quotas
                .iter()
                .take(i)
                .any(|earlier| earlier.name_bytes() == q.name_bytes())
                .then_some(q)
        });
    }
    let mut names = HashSet::with_capacity(quotas.len());
    quotas.iter().find(|q| !names.insert(q.name_bytes()))
}

/// Whether any byte is below 0x20 or at or above 0x7f, eight bytes at a time.
#[inline]
fn has_suspect_byte(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    const SPACES: u64 = u64::from_ne_bytes([0x20; 8]);
    // A byte at or above 0x80 has its high bit set, and 0x7f gets it by adding one (the only
    // carry out of a byte comes from 0xff, already flagged). A byte below 0x20 sets the high
    // bit of `(x - 0x20…) & !x` in its own lane or a higher one, so some lane is flagged
    // exactly when some byte is below 0x20.
    let suspect = |x: u64| {
        let high = (x | x.wrapping_add(ONES)) & HIGH;
        let low = x.wrapping_sub(SPACES) & !x & HIGH;
        high | low != 0
    };
    let word = |chunk: &[u8]| match <[u8; 8]>::try_from(chunk) {
        Ok(word) => u64::from_ne_bytes(word),
        Err(_) => {
            // Spaces (never suspect) fill a chunk shorter than a word.
            let mut word = [b' '; 8];
            for (to, from) in word.iter_mut().zip(chunk) {
                *to = *from;
            }
            u64::from_ne_bytes(word)
        }
    };
    let chunks = bytes.chunks_exact(8);
    let tail = chunks.remainder();
    if chunks.map(word).any(suspect) {
        return true;
    }
    if tail.is_empty() {
        return false;
    }
    // The tail is checked as the key's last eight bytes (overlapping bytes already checked)
    // when the key has that many, so no byte is looked at alone.
    let last = bytes
        .len()
        .checked_sub(8)
        .and_then(|from| bytes.get(from..));
    suspect(word(last.unwrap_or(tail)))
}

/// Checks a key on its own (see [`Check::validate`]).
///
/// # Errors
/// [`Error::InvalidKey`] naming what is wrong.
#[inline]
pub fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidKey {
            reason: "the key is empty",
        });
    }
    if key.len() > MAX_KEY_LEN {
        return Err(Error::InvalidKey {
            reason: "the key is longer than 256 bytes",
        });
    }
    // ASCII controls are the bytes below 0x20 and 0x7f; the only other control characters
    // are C1's U+0080..=U+009F, encoded with bytes of 0x80 or more. One pass over the bytes
    // settles a key without such bytes; only a suspect key is decoded character by character.
    if has_suspect_byte(key.as_bytes()) && key.chars().any(char::is_control) {
        return Err(Error::InvalidKey {
            reason: "the key contains a control character",
        });
    }
    Ok(())
}

/// Where rate-limit state lives. Every implementation decides a check atomically: all quotas
/// of the key are evaluated together, and their state is updated only if every quota allows
/// the request, so concurrent checks never let more through than the quota.
///
/// Implementations run [`Check::validate`] first and return its error unchanged.
#[async_trait]
pub trait RateLimitStore: Send + Sync + std::fmt::Debug {
    /// Decides one check.
    ///
    /// # Errors
    /// A validation error from [`Check::validate`], or a backend error
    /// ([`Error::is_backend`]) when the store could not decide.
    async fn check<'q>(&self, check: Check<'_, 'q>) -> Result<Decision<'q>>;

    /// Decides several checks, in order, as if [`check`](Self::check) had been called for each
    /// in turn; a backend may do it in one round trip. One invalid check fails the whole batch
    /// before anything is counted.
    ///
    /// # Errors
    /// As [`check`](Self::check).
    async fn check_batch<'q>(&self, checks: &[Check<'_, 'q>]) -> Result<Vec<Decision<'q>>> {
        for c in checks {
            c.validate()?;
        }
        let mut out = Vec::with_capacity(checks.len());
        for c in checks {
            out.push(self.check(*c).await?);
        }
        Ok(out)
    }

    /// A short name of the backend for logs and metrics (`memory`, `redis`, ...).
    fn backend(&self) -> &'static str;
}

/// Forwards [`RateLimitStore`] through each smart pointer or reference type given, so that
/// `&S`, `Arc<S>` and `Box<S>` (and `dyn RateLimitStore` behind them) are stores too. The
/// batch is forwarded as a batch, so a Redis store behind a pointer keeps its one round trip.
macro_rules! forward_store {
    ($($ty:ty),*) => {$(
        #[async_trait]
        impl<S: RateLimitStore + ?Sized> RateLimitStore for $ty {
            async fn check<'q>(&self, check: Check<'_, 'q>) -> Result<Decision<'q>> {
                (**self).check(check).await
            }
            async fn check_batch<'q>(
                &self,
                checks: &[Check<'_, 'q>],
            ) -> Result<Vec<Decision<'q>>> {
                (**self).check_batch(checks).await
            }
            fn backend(&self) -> &'static str {
                (**self).backend()
            }
        }
    )*};
}

forward_store!(&S, std::sync::Arc<S>, Box<S>);

/// Compile-time check that the forwarding impls cover every pointer shape.
#[cfg(test)]
const _: () = {
    fn is_store<S: RateLimitStore>() {}
    fn shapes() {
        is_store::<&crate::MemoryStore>();
        is_store::<std::sync::Arc<dyn RateLimitStore>>();
        is_store::<Box<dyn RateLimitStore>>();
        is_store::<&dyn RateLimitStore>();
    }
    let _ = shapes;
};

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    fn quota(name: &str) -> Quota {
        Quota::per_second(NonZeroU32::new(5).unwrap())
            .named(name)
            .unwrap()
    }

    #[test]
    fn keys_with_control_characters_are_refused() {
        for bad in [
            "a\0b", "a\tb", "a\nb", "\x1f", "a\x7fb", "a\u{80}", "\u{85}x", "é\u{9f}",
        ] {
            assert!(
                matches!(validate_key(bad), Err(Error::InvalidKey { .. })),
                "{bad:?}"
            );
        }
        for good in [
            "ip:203.0.113.9",
            "é",
            "a\u{a0}b",
            "账户:42",
            "~",
            "\u{7ff}\u{10ffff}",
        ] {
            assert!(validate_key(good).is_ok(), "{good:?}");
        }
        assert!(validate_key("").is_err());
        assert!(validate_key(&"k".repeat(MAX_KEY_LEN)).is_ok());
        assert!(validate_key(&"k".repeat(MAX_KEY_LEN + 1)).is_err());
    }

    #[test]
    fn the_word_at_a_time_scan_agrees_with_the_byte_scan() {
        let mut seen = 0;
        for b in 0..=u8::MAX {
            for pos in 0..19 {
                for fill in [b'a', b' ', b'~', 0x7e] {
                    let mut bytes = [fill; 19];
                    bytes[pos] = b;
                    for len in [pos + 1, 19] {
                        let slice = &bytes[..len];
                        let expected = slice.iter().any(|&b| !(0x20..0x7f).contains(&b));
                        assert_eq!(has_suspect_byte(slice), expected, "{slice:?}");
                        seen += 1;
                    }
                }
            }
        }
        assert_eq!(seen, 256 * 19 * 4 * 2);
    }

    #[test]
    fn duplicate_quota_names_are_refused_at_every_count() {
        for count in 1..=8 {
            let distinct: Vec<Quota> = (0..count).map(|i| quota(&format!("q{i}"))).collect();
            assert!(Check::new("k", &distinct).validate().is_ok(), "{count}");
            for dup in 1..count {
                let mut quotas = distinct.clone();
                quotas[dup] = quota(&format!("q{}", dup - 1));
                let err = Check::new("k", &quotas).validate().unwrap_err();
                assert!(
                    matches!(&err, Error::DuplicateQuota { name } if *name == format!("q{}", dup - 1)),
                    "{count} {dup}: {err:?}"
                );
            }
        }
        assert!(matches!(
            Check::new("k", &[]).validate(),
            Err(Error::NoQuotas)
        ));
    }
}
