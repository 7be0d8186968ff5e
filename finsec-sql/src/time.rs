//! How every finsec SQL store keeps a time: a `BIGINT` of microseconds since the Unix
//! epoch (UTC), rounded towards the past.
//!
//! One conversion for every store, so that a time written by one crate reads back the same
//! in another, times before 1970 round the same way as later ones (towards the past, not
//! towards zero), and a value that no time can hold is an error rather than a silently
//! clamped time.

use time::OffsetDateTime;

/// A time that does not fit the stored form, or a stored value that is no time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeOutOfRange {
    /// The time is too far from 1970 for 64-bit microseconds.
    #[error("the time {0} does not fit 64-bit microseconds since 1970")]
    Time(OffsetDateTime),
    /// The stored microseconds are outside the range of times this build can represent.
    #[error("the stored value {0} µs since 1970 is not a representable time")]
    Micros(i64),
}

/// `t` as microseconds since the Unix epoch, rounded towards the past.
///
/// # Errors
/// [`TimeOutOfRange::Time`] if it does not fit an `i64` (only possible with `time`'s
/// `large-dates` feature).
pub fn to_micros(t: OffsetDateTime) -> Result<i64, TimeOutOfRange> {
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000)).map_err(|_| TimeOutOfRange::Time(t))
}

/// The time `micros` microseconds after the Unix epoch, in UTC.
///
/// # Errors
/// [`TimeOutOfRange::Micros`] if no `OffsetDateTime` is that far from 1970.
pub fn from_micros(micros: i64) -> Result<OffsetDateTime, TimeOutOfRange> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .map_err(|_| TimeOutOfRange::Micros(micros))
}

/// `t` with its sub-microsecond part dropped (rounded towards the past): the time a store
/// will give back, for in-memory stores that must answer as the SQL ones do.
pub fn truncate_to_micros(t: OffsetDateTime) -> OffsetDateTime {
    let nanos = t.nanosecond();
    t.replace_nanosecond(nanos - nanos % 1_000).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn round_trips_and_rounds_towards_the_past() {
        for (t, micros) in [
            (datetime!(1970-01-01 00:00 UTC), 0),
            (datetime!(1970-01-01 00:00:00.000_001_999 UTC), 1),
            (datetime!(1969-12-31 23:59:59.999_999_5 UTC), -1),
            (datetime!(1969-12-31 23:59:59.5 UTC), -500_000),
        ] {
            assert_eq!(to_micros(t), Ok(micros), "{t}");
            assert_eq!(from_micros(micros), Ok(truncate_to_micros(t)), "{t}");
        }
        for t in [
            datetime!(-9999-01-01 00:00 UTC),
            datetime!(9999-12-31 23:59:59.999_999 UTC),
        ] {
            assert_eq!(from_micros(to_micros(t).unwrap()), Ok(t));
        }
    }

    #[test]
    fn values_no_time_can_hold_are_errors() {
        assert_eq!(from_micros(i64::MAX), Err(TimeOutOfRange::Micros(i64::MAX)));
        assert_eq!(from_micros(i64::MIN), Err(TimeOutOfRange::Micros(i64::MIN)));
    }

    #[test]
    fn truncation_drops_only_nanoseconds() {
        let t = datetime!(2024-02-29 12:00:00.123_456_789 UTC);
        assert_eq!(
            truncate_to_micros(t),
            datetime!(2024-02-29 12:00:00.123_456 UTC)
        );
        let before = datetime!(1969-12-31 23:59:59.999_999_999 UTC);
        assert_eq!(
            truncate_to_micros(before),
            datetime!(1969-12-31 23:59:59.999_999 UTC)
        );
    }
}
