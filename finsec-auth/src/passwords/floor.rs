//! One answer time for every refused login.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Pads refused credential checks to the slowest recent check, so that how long a refusal
/// took does not tell which branch refused it.
///
/// [`PasswordHasher::dummy_verify`](super::PasswordHasher::dummy_verify) makes an unknown
/// user cost one verification with the current parameters, but a stored hash of older
/// argon2id parameters or a legacy bcrypt hash costs something else, and each tells an
/// observer that the account exists. Record how long every check took (lookup and
/// verification, found or not, right or wrong); before answering a refusal, wait out
/// [`remaining`](Self::remaining). Refusals then all take about the slowest recent check.
///
/// The floor is the slowest of the last `keep` checks, never more than `cap`: one stall
/// (a slow disk, a paused process) raises it for at most `keep` checks.
///
/// ```
/// use std::time::Duration;
/// use finsec_auth::passwords::FailureFloor;
///
/// let floor = FailureFloor::new(64, Duration::from_secs(2));
/// floor.record(Duration::from_millis(40)); // an argon2id check
/// floor.record(Duration::from_millis(3)); // a legacy bcrypt check
/// // The bcrypt refusal waits until it took as long as the argon2id one.
/// assert_eq!(floor.remaining(Duration::from_millis(3)), Duration::from_millis(37));
/// ```
#[derive(Debug)]
pub struct FailureFloor {
    recent: Mutex<VecDeque<Duration>>,
    keep: usize,
    cap: Duration,
}

impl Default for FailureFloor {
    /// The last 64 checks, at most 5 seconds.
    fn default() -> Self {
        Self::new(64, Duration::from_secs(5))
    }
}

impl FailureFloor {
    /// A floor from the slowest of the last `keep` checks (at least 1), at most `cap`.
    pub fn new(keep: usize, cap: Duration) -> Self {
        let keep = keep.max(1);
        Self {
            recent: Mutex::new(VecDeque::with_capacity(keep)),
            keep,
            cap,
        }
    }

    /// Records how long one check took, whatever it answered.
    pub fn record(&self, took: Duration) {
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        if recent.len() == self.keep {
            recent.pop_front();
        }
        recent.push_back(took.min(self.cap));
    }

    /// The time every refusal should take now.
    pub fn floor(&self) -> Duration {
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.iter().copied().max().unwrap_or_default()
    }

    /// How much longer a refusal whose check took `took` should wait before it answers.
    pub fn remaining(&self, took: Duration) -> Duration {
        self.floor().saturating_sub(took)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_floor_is_the_slowest_recent_check_within_the_cap() {
        let floor = FailureFloor::new(3, 100 * MS);
        assert_eq!(floor.floor(), Duration::ZERO);
        floor.record(10 * MS);
        floor.record(50 * MS);
        floor.record(20 * MS);
        assert_eq!(floor.floor(), 50 * MS);
        assert_eq!(floor.remaining(20 * MS), 30 * MS);
        assert_eq!(floor.remaining(80 * MS), Duration::ZERO);
        // The 50 ms check leaves the window of three after two more.
        floor.record(5 * MS);
        assert_eq!(floor.floor(), 50 * MS);
        floor.record(5 * MS);
        assert_eq!(floor.floor(), 20 * MS);
        // A stall counts only up to the cap.
        floor.record(Duration::from_secs(60));
        assert_eq!(floor.floor(), 100 * MS);
        // keep = 0 still keeps one.
        let one = FailureFloor::new(0, 100 * MS);
        one.record(7 * MS);
        assert_eq!(one.floor(), 7 * MS);
    }
}
