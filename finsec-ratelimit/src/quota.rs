//! Quotas: how many requests a key may make in how much time, and by which algorithm.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::num::NonZeroU32;
use std::time::Duration;

use crate::error::{Error, Result};

/// The shortest period a quota may have.
pub const MIN_PERIOD: Duration = Duration::from_millis(1);
/// The longest period a quota may have (366 days).
pub const MAX_PERIOD: Duration = Duration::from_secs(366 * 24 * 60 * 60);
/// The largest time span, in microseconds, a quota may involve (2^53 µs, about 285 years).
///
/// Every *span* a quota defines or an evaluation reports stays at or below it: the period, the
/// GCRA emission interval and tolerance, the sliding window's `limit × period`, and the
/// remaining, retry, reset and time-to-live figures. *Absolute* times are not bounded by it:
/// microseconds since the Unix epoch are already above 2^50 today, and GCRA's theoretical
/// arrival time is such an absolute time (up to now plus the tolerance), as are window starts.
/// A store that computes in IEEE doubles (the Redis script) must therefore not hold absolute
/// times as doubles: it keeps them as exact integers (or works relative to now, so that only
/// spans meet floating point), which is how it computes exactly what the in-memory store
/// computes with integers.
pub const MAX_SPAN_MICROS: u64 = 1 << 53;
/// The longest a quota name may be, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Which algorithm a quota is enforced with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Algorithm {
    /// The generic cell rate algorithm: one timestamp per key, smooth refill, bursts up to the
    /// quota's burst size. The default.
    #[default]
    Gcra,
    /// A sliding-window counter: the previous fixed window's count, weighted by how much of it
    /// still overlaps the sliding window, plus the current window's count.
    SlidingWindow,
    /// Fixed windows aligned to the Unix epoch (for example calendar minutes), as the
    /// per-minute/per-hour counters of older systems do.
    FixedWindow,
}

impl Algorithm {
    /// Every algorithm: GCRA, then the fixed and the sliding window.
    pub const ALL: [Self; 3] = [Self::Gcra, Self::FixedWindow, Self::SlidingWindow];

    /// A short lowercase name: `gcra`, `sliding_window`, `fixed_window`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gcra => "gcra",
            Self::SlidingWindow => "sliding_window",
            Self::FixedWindow => "fixed_window",
        }
    }

    /// A one-letter code used inside storage keys.
    pub(crate) fn code(self) -> char {
        match self {
            Self::Gcra => 'g',
            Self::SlidingWindow => 's',
            Self::FixedWindow => 'f',
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A limit: `limit` requests per `period`, enforced with an [`Algorithm`].
///
/// For GCRA the limit is a rate (`limit / period`) and the burst is how many requests a key
/// that has been quiet may make at once (by default equal to `limit`, as in `governor`). For the
/// window algorithms the limit is the count allowed per window and the burst is not used.
///
/// Every constructor validates, so a `Quota` that exists can be enforced: the emission
/// interval is at least one microsecond and every time span fits in [`MAX_SPAN_MICROS`].
///
/// ```
/// use std::num::NonZeroU32;
/// use finsec_ratelimit::{Algorithm, Quota};
///
/// let api = Quota::per_second(NonZeroU32::new(10).unwrap())
///     .with_burst(NonZeroU32::new(20).unwrap())?;
/// assert_eq!(api.burst(), 20);
/// let hourly = Quota::per_hour(NonZeroU32::new(1000).unwrap())
///     .with_algorithm(Algorithm::FixedWindow)?
///     .named("hour")?;
/// assert_eq!(hourly.name(), "hour");
/// # Ok::<(), finsec_ratelimit::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Quota {
    // The cheap fields first: derived comparisons look at them before the name.
    algorithm: Algorithm,
    limit: u32,
    period_us: u64,
    burst: u32,
    /// `period_us / limit` rounded up, kept so no check divides for it (it follows from the
    /// two, so comparisons and hashes are unchanged by it).
    emission_us: u64,
    name: QuotaName,
}

/// A validated quota name held inline (at most [`MAX_NAME_LEN`] ASCII bytes), so copying a
/// [`Quota`] is a plain memory copy: no allocation, no shared reference count.
#[derive(Clone, Eq)]
struct QuotaName {
    len: u8,
    /// The name's bytes, then zeros (so derived comparisons and hashes see only the name).
    bytes: [u8; MAX_NAME_LEN],
}

impl PartialEq for QuotaName {
    /// Compares the whole buffers (the bytes past the name are zeros) without a call to
    /// `memcmp`: quotas are compared on every check of the in-memory store.
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len
            && self
                .bytes
                .iter()
                .zip(&other.bytes)
                .fold(0, |diff, (a, b)| diff | (a ^ b))
                == 0
    }
}

impl Hash for QuotaName {
    /// Hashes what [`PartialEq`] compares: the length and the whole buffer.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.len.hash(state);
        self.bytes.hash(state);
    }
}

impl QuotaName {
    /// Copies an already validated name (ASCII, 1 to [`MAX_NAME_LEN`] bytes); a longer input is
    /// cut at [`MAX_NAME_LEN`] bytes, which the validation makes impossible.
    fn new(name: &str) -> Self {
        let mut bytes = [0; MAX_NAME_LEN];
        let len = name.len().min(MAX_NAME_LEN);
        for (to, from) in bytes.iter_mut().zip(name.as_bytes()) {
            *to = *from;
        }
        Self {
            len: u8::try_from(len).unwrap_or(u8::MAX),
            bytes,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        self.bytes
            .get(..usize::from(self.len))
            .unwrap_or(&self.bytes)
    }

    fn as_str(&self) -> &str {
        // Always valid: only ASCII is ever stored.
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

impl fmt::Debug for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Quota")
            .field("name", &self.name.as_str())
            .field("algorithm", &self.algorithm)
            .field("limit", &self.limit)
            .field("period", &self.period())
            .field("burst", &self.burst)
            .finish()
    }
}

impl Quota {
    /// `limit` requests per `period` with GCRA and a burst of `limit`.
    ///
    /// # Errors
    /// [`Error::InvalidQuota`] if the period is outside [`MIN_PERIOD`]..=[`MAX_PERIOD`], is
    /// not a whole number of microseconds, or the burst's span exceeds [`MAX_SPAN_MICROS`].
    pub fn new(limit: NonZeroU32, period: Duration) -> Result<Self> {
        if period < MIN_PERIOD || period > MAX_PERIOD {
            return Err(invalid(format!(
                "period {period:?} is outside {MIN_PERIOD:?}..={MAX_PERIOD:?}"
            )));
        }
        let period_us = u64::try_from(period.as_micros())
            .map_err(|_| invalid(format!("period {period:?} is too long")))?;
        if !period.as_nanos().is_multiple_of(1_000) {
            return Err(invalid(format!(
                "period {period:?} is not a whole number of microseconds"
            )));
        }
        let limit = limit.get();
        let quota = Self {
            name: QuotaName::new(&default_name(limit, period_us)),
            algorithm: Algorithm::Gcra,
            limit,
            period_us,
            burst: limit,
            emission_us: period_us.div_ceil(u64::from(limit)),
        };
        quota.check_spans()?;
        Ok(quota)
    }

    /// `limit` requests per second (GCRA, burst `limit`).
    pub fn per_second(limit: NonZeroU32) -> Self {
        Self::whole(limit, 1_000_000)
    }

    /// `limit` requests per minute (GCRA, burst `limit`).
    pub fn per_minute(limit: NonZeroU32) -> Self {
        Self::whole(limit, 60_000_000)
    }

    /// `limit` requests per hour (GCRA, burst `limit`).
    pub fn per_hour(limit: NonZeroU32) -> Self {
        Self::whole(limit, 3_600_000_000)
    }

    /// `limit` requests per day (GCRA, burst `limit`).
    pub fn per_day(limit: NonZeroU32) -> Self {
        Self::whole(limit, 86_400_000_000)
    }

    /// For the fixed periods above, any `u32` limit keeps every span far below
    /// [`MAX_SPAN_MICROS`] (at most `2^32 × ceil(period / limit)` µs), so no check can fail.
    fn whole(limit: NonZeroU32, period_us: u64) -> Self {
        let limit = limit.get();
        Self {
            name: QuotaName::new(&default_name(limit, period_us)),
            algorithm: Algorithm::Gcra,
            limit,
            period_us,
            burst: limit,
            emission_us: period_us.div_ceil(u64::from(limit)),
        }
    }

    /// The same quota with another burst size (GCRA only; the window algorithms ignore it).
    ///
    /// # Errors
    /// [`Error::InvalidQuota`] if the burst makes the tolerance exceed [`MAX_SPAN_MICROS`].
    pub fn with_burst(mut self, burst: NonZeroU32) -> Result<Self> {
        self.burst = burst.get();
        self.check_spans()?;
        Ok(self)
    }

    /// The same quota enforced with another algorithm.
    ///
    /// # Errors
    /// [`Error::InvalidQuota`] if the sliding window's `limit × period` exceeds
    /// [`MAX_SPAN_MICROS`] (for example, more than about 104,000 per day), the bound that keeps
    /// its weighted count exact in every store.
    pub fn with_algorithm(mut self, algorithm: Algorithm) -> Result<Self> {
        self.algorithm = algorithm;
        self.check_spans()?;
        Ok(self)
    }

    /// The same quota under another name (used in headers and storage keys): 1 to
    /// [`MAX_NAME_LEN`] bytes of ASCII letters, digits, `-`, `_` and `.`.
    ///
    /// # Errors
    /// [`Error::InvalidQuota`] if the name is empty, too long or has another character.
    pub fn named(mut self, name: &str) -> Result<Self> {
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(invalid(format!(
                "quota name must be 1 to {MAX_NAME_LEN} bytes, got {}",
                name.len()
            )));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(invalid(format!(
                "quota name {name:?} contains {c:?}; use ASCII letters, digits, '-', '_' or '.'"
            )));
        }
        self.name = QuotaName::new(name);
        Ok(self)
    }

    fn check_spans(&self) -> Result<()> {
        let tolerance = u128::from(self.emission_interval_micros()) * u128::from(self.burst);
        if tolerance > u128::from(MAX_SPAN_MICROS) {
            return Err(invalid(format!(
                "burst {} at one request per {} µs spans more than 2^53 µs",
                self.burst,
                self.emission_interval_micros()
            )));
        }
        if self.algorithm == Algorithm::SlidingWindow
            && u128::from(self.limit) * u128::from(self.period_us) > u128::from(MAX_SPAN_MICROS)
        {
            return Err(invalid(format!(
                "sliding window of {} per {:?}: limit × period exceeds 2^53 µs",
                self.limit,
                self.period()
            )));
        }
        Ok(())
    }

    /// The quota's name (by default `<limit>-per-<period>`, e.g. `60-per-1m`).
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// The name's bytes, for comparisons on the hot path (no UTF-8 check).
    pub(crate) fn name_bytes(&self) -> &[u8] {
        self.name.as_bytes()
    }

    /// The algorithm that enforces it.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Requests allowed per period.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The period.
    pub fn period(&self) -> Duration {
        Duration::from_micros(self.period_us)
    }

    /// The period in microseconds.
    pub fn period_micros(&self) -> u64 {
        self.period_us
    }

    /// The GCRA burst size (the window algorithms ignore it).
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// The most a single request may cost: the burst for GCRA, the limit for windows.
    pub fn capacity(&self) -> u64 {
        match self.algorithm {
            Algorithm::Gcra => u64::from(self.burst),
            Algorithm::SlidingWindow | Algorithm::FixedWindow => u64::from(self.limit),
        }
    }

    /// GCRA's emission interval: the period divided by the limit, rounded up to a whole
    /// microsecond (so the rate enforced is never above the one configured; GCRA enforces at
    /// most one request per microsecond).
    pub fn emission_interval_micros(&self) -> u64 {
        self.emission_us
    }

    /// GCRA's tolerance: how far ahead of now the theoretical arrival time may run
    /// (`burst × emission interval`).
    pub fn tolerance_micros(&self) -> u64 {
        self.emission_interval_micros() * u64::from(self.burst)
    }

    /// A stable identifier of the quota's parameters and name, used in storage keys so that
    /// changing a quota's parameters starts it from fresh state instead of misreading old state.
    pub fn storage_id(&self) -> String {
        format!(
            "{}:{}:{}:{}:{}",
            self.name(),
            self.algorithm.code(),
            self.limit,
            self.period_us,
            self.burst
        )
    }
}

fn invalid(reason: String) -> Error {
    Error::InvalidQuota { reason }
}

fn default_name(limit: u32, period_us: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (86_400_000_000, "d"),
        (3_600_000_000, "h"),
        (60_000_000, "m"),
        (1_000_000, "s"),
        (1_000, "ms"),
    ];
    for (unit, suffix) in UNITS {
        if period_us.is_multiple_of(unit) {
            return format!("{limit}-per-{}{suffix}", period_us / unit);
        }
    }
    format!("{limit}-per-{period_us}us")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: u32) -> NonZeroU32 {
        NonZeroU32::new(v).unwrap()
    }

    #[test]
    fn fixed_constructors_are_valid_for_every_limit() {
        for limit in [1, 7, 1_000_000, u32::MAX] {
            for q in [
                Quota::per_second(n(limit)),
                Quota::per_minute(n(limit)),
                Quota::per_hour(n(limit)),
                Quota::per_day(n(limit)),
            ] {
                let rebuilt = Quota::new(n(limit), q.period()).unwrap();
                assert_eq!(rebuilt, q);
                assert!(q.emission_interval_micros() >= 1);
            }
        }
    }

    #[test]
    fn default_names() {
        assert_eq!(Quota::per_minute(n(60)).name(), "60-per-1m");
        assert_eq!(Quota::per_second(n(10)).name(), "10-per-1s");
        let q = Quota::new(n(5), Duration::from_millis(1500)).unwrap();
        assert_eq!(q.name(), "5-per-1500ms");
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert!(Quota::new(n(1), Duration::from_micros(999)).is_err());
        assert!(Quota::new(n(1), MAX_PERIOD + Duration::from_secs(1)).is_err());
        assert!(Quota::new(n(1), Duration::from_nanos(1_000_500)).is_err());
        // More than one request per microsecond is enforced as one per microsecond.
        let fast = Quota::new(n(2_000), Duration::from_millis(1)).unwrap();
        assert_eq!(fast.emission_interval_micros(), 1);
        assert!(
            Quota::per_day(n(u32::MAX))
                .with_algorithm(Algorithm::SlidingWindow)
                .is_err()
        );
        assert!(
            Quota::per_day(n(100_000))
                .with_algorithm(Algorithm::SlidingWindow)
                .is_ok()
        );
        assert!(Quota::per_day(n(1)).with_burst(n(u32::MAX)).is_err());
        for bad in ["", "a b", "x\n", "é", &"a".repeat(65)] {
            assert!(Quota::per_second(n(1)).named(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_are_kept_whole_up_to_the_longest() {
        let longest = "a.b-c_".repeat(11);
        let longest = &longest[..MAX_NAME_LEN];
        let q = Quota::per_second(n(1)).named(longest).unwrap();
        assert_eq!(q.name(), longest);
        let short = q.clone().named("x").unwrap();
        assert_eq!(short.name(), "x");
        assert_ne!(short, q);
        assert_eq!(short, Quota::per_second(n(1)).named("x").unwrap());
        assert_eq!(format!("{short:?}").matches("\"x\"").count(), 1);
    }

    #[test]
    fn gcra_parameters() {
        let q = Quota::per_second(n(3)).with_burst(n(5)).unwrap();
        assert_eq!(q.emission_interval_micros(), 333_334);
        assert_eq!(q.tolerance_micros(), 5 * 333_334);
        assert_eq!(q.capacity(), 5);
        let w = q.with_algorithm(Algorithm::FixedWindow).unwrap();
        assert_eq!(w.capacity(), 3);
    }
}
