//! The storage traits of the MFA module and their in-memory implementations.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::backup::BackupCodeHash;
use super::error::{MfaError, Result};

/// The id of the user an MFA credential belongs to: 1 to 255 bytes, no control
/// characters. Use a stable internal id, not an e-mail address that may change.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MfaUserId(String);

impl MfaUserId {
    /// The longest accepted id, in bytes.
    pub const MAX_LEN: usize = 255;

    /// Validates `id`.
    ///
    /// # Errors
    /// [`MfaError::InvalidLabel`] if it is empty, longer than [`MAX_LEN`](Self::MAX_LEN)
    /// bytes, or contains a control character.
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        let reason = if id.is_empty() {
            Some("is empty")
        } else if id.len() > Self::MAX_LEN {
            Some("is longer than 255 bytes")
        } else if id.chars().any(char::is_control) {
            Some("contains a control character")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(MfaError::InvalidLabel {
                field: "user id",
                reason,
            }),
            None => Ok(Self(id)),
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MfaUserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The last accepted TOTP time step of each user, shared by every server instance.
///
/// The contract, checked by the conformance suite (`mfa::testing`, feature `testing`):
/// [`try_advance`](Self::try_advance) is an atomic compare-and-set; a step is accepted
/// only if it is strictly greater than the stored one, so a code (and any code of an
/// earlier step) is accepted at most once, however many requests race.
#[async_trait]
pub trait TotpReplayStore: Send + Sync {
    /// Records `step` as the last accepted step of `user` if it is greater than the one
    /// stored (or none is stored). Returns `true` if it was recorded, `false` if `step`
    /// was already used or is older than the last accepted step.
    ///
    /// # Errors
    /// A storage failure; treat it as a rejection (fail closed).
    async fn try_advance(&self, user: &MfaUserId, step: u64) -> Result<bool>;

    /// The last accepted step of `user`, if any.
    ///
    /// # Errors
    /// A storage failure.
    async fn last_step(&self, user: &MfaUserId) -> Result<Option<u64>>;

    /// Forgets `user` (TOTP removed). Call it only together with replacing the secret:
    /// with the old secret still in use, forgetting reopens replay of recent codes.
    ///
    /// # Errors
    /// A storage failure.
    async fn forget(&self, user: &MfaUserId) -> Result<()>;
}

/// Steps are stored as signed 64-bit integers (SQL `BIGINT`); every store refuses larger
/// ones. Real time steps are far below (`2^63` 30-second steps is ~8.8 trillion years).
pub(crate) fn step_to_i64(step: u64) -> Result<i64> {
    i64::try_from(step).map_err(|_| MfaError::InvalidParameter {
        name: "step",
        reason: format!("{step} exceeds i64::MAX"),
    })
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a half-written map entry (every update
    // is a single insert/remove), so a poisoned map is still consistent.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A [`TotpReplayStore`] in process memory: for tests and single-instance deployments
/// (state is lost on restart, which reopens replay of codes from the last ~90 seconds).
#[derive(Debug, Default)]
pub struct MemoryTotpReplayStore {
    steps: Mutex<HashMap<MfaUserId, u64>>,
}

impl MemoryTotpReplayStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl TotpReplayStore for MemoryTotpReplayStore {
    async fn try_advance(&self, user: &MfaUserId, step: u64) -> Result<bool> {
        step_to_i64(step)?;
        let mut steps = lock(&self.steps);
        match steps.get(user) {
            Some(&last) if last >= step => Ok(false),
            _ => {
                steps.insert(user.clone(), step);
                Ok(true)
            }
        }
    }

    async fn last_step(&self, user: &MfaUserId) -> Result<Option<u64>> {
        Ok(lock(&self.steps).get(user).copied())
    }

    async fn forget(&self, user: &MfaUserId) -> Result<()> {
        lock(&self.steps).remove(user);
        Ok(())
    }
}

/// Hashed single-use backup codes per user.
///
/// The contract: [`consume`](Self::consume) removes a hash atomically, so one code is
/// accepted at most once however many requests race; [`replace`](Self::replace) discards
/// every earlier code of the user.
#[async_trait]
pub trait BackupCodeStore: Send + Sync {
    /// Replaces all backup codes of `user` with `hashes`.
    ///
    /// # Errors
    /// A storage failure.
    async fn replace(&self, user: &MfaUserId, hashes: Vec<BackupCodeHash>) -> Result<()>;

    /// Removes `hash` from `user`'s codes; `true` if it was there.
    ///
    /// # Errors
    /// A storage failure; treat it as a rejection (fail closed).
    async fn consume(&self, user: &MfaUserId, hash: &BackupCodeHash) -> Result<bool>;

    /// How many unused codes `user` has left.
    ///
    /// # Errors
    /// A storage failure.
    async fn remaining(&self, user: &MfaUserId) -> Result<usize>;
}

/// Forwards both store traits through each smart pointer or reference type given.
macro_rules! forward_stores {
    ($($ty:ty),*) => {$(
        #[async_trait]
        impl<S: TotpReplayStore + ?Sized> TotpReplayStore for $ty {
            async fn try_advance(&self, user: &MfaUserId, step: u64) -> Result<bool> {
                (**self).try_advance(user, step).await
            }
            async fn last_step(&self, user: &MfaUserId) -> Result<Option<u64>> {
                (**self).last_step(user).await
            }
            async fn forget(&self, user: &MfaUserId) -> Result<()> {
                (**self).forget(user).await
            }
        }

        #[async_trait]
        impl<S: BackupCodeStore + ?Sized> BackupCodeStore for $ty {
            async fn replace(&self, user: &MfaUserId, hashes: Vec<BackupCodeHash>) -> Result<()> {
                (**self).replace(user, hashes).await
            }
            async fn consume(&self, user: &MfaUserId, hash: &BackupCodeHash) -> Result<bool> {
                (**self).consume(user, hash).await
            }
            async fn remaining(&self, user: &MfaUserId) -> Result<usize> {
                (**self).remaining(user).await
            }
        }
    )*};
}

forward_stores!(&S, Arc<S>, Box<S>);

/// Compile-time check that the forwarding impls cover every pointer shape.
#[cfg(test)]
const _: () = {
    fn is_replay<S: TotpReplayStore>() {}
    fn is_backup<S: BackupCodeStore>() {}
    fn shapes() {
        is_replay::<&dyn TotpReplayStore>();
        is_replay::<Arc<dyn TotpReplayStore>>();
        is_replay::<Box<dyn TotpReplayStore>>();
        is_backup::<&MemoryBackupCodeStore>();
        is_backup::<Arc<dyn BackupCodeStore>>();
        is_backup::<Box<dyn BackupCodeStore>>();
    }
    let _ = shapes;
};

/// A [`BackupCodeStore`] in process memory.
#[derive(Debug, Default)]
pub struct MemoryBackupCodeStore {
    codes: Mutex<HashMap<MfaUserId, HashSet<BackupCodeHash>>>,
}

impl MemoryBackupCodeStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl BackupCodeStore for MemoryBackupCodeStore {
    async fn replace(&self, user: &MfaUserId, hashes: Vec<BackupCodeHash>) -> Result<()> {
        lock(&self.codes).insert(user.clone(), hashes.into_iter().collect());
        Ok(())
    }

    async fn consume(&self, user: &MfaUserId, hash: &BackupCodeHash) -> Result<bool> {
        Ok(lock(&self.codes)
            .get_mut(user)
            .is_some_and(|set| set.remove(hash)))
    }

    async fn remaining(&self, user: &MfaUserId) -> Result<usize> {
        Ok(lock(&self.codes).get(user).map_or(0, HashSet::len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids() {
        assert!(MfaUserId::new("").is_err());
        assert!(MfaUserId::new("a".repeat(256)).is_err());
        assert!(MfaUserId::new("a\nb").is_err());
        assert_eq!(MfaUserId::new("u-1").unwrap().as_str(), "u-1");
    }
}
