//! Business clocks (RTS 25 = Delegated Regulation (EU) 2017/574).
//!
//! A timestamp carries its [`Granularity`]: 1 µs for high-frequency algorithmic trading,
//! 1 ms for other electronic trading, 1 s for voice and the rest (RTS 25 Annex, Table 2).
//! A [`ClockSource`] reads the time together with how far its clock may be from UTC; when
//! that divergence exceeds the maximum RTS 25 allows for the granularity (100 µs, 1 ms,
//! 1 s), the reading carries a [`ClockFlag`] that goes into the report's lineage.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};

/// The granularity of a business timestamp; the same type finsec-audit stamps events with.
pub use finsec_audit::Precision as Granularity;

/// The largest divergence from UTC RTS 25 allows for timestamps of `granularity`.
#[must_use]
pub fn max_divergence(granularity: Granularity) -> Duration {
    match granularity {
        Granularity::Microsecond => Duration::from_micros(100),
        Granularity::Millisecond => Duration::from_millis(1),
        Granularity::Second => Duration::from_secs(1),
    }
}

/// A UTC instant truncated to its granularity: field 28 of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "TimeRepr", into = "TimeRepr")]
pub struct TradingTime {
    at: OffsetDateTime,
    granularity: Granularity,
}

#[derive(Serialize, Deserialize)]
struct TimeRepr {
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    granularity: Granularity,
}

impl TryFrom<TimeRepr> for TradingTime {
    type Error = Error;
    fn try_from(r: TimeRepr) -> Result<Self> {
        let t = Self::new(r.at, r.granularity);
        if t.at != r.at.to_offset(time::UtcOffset::UTC) {
            return Err(Error::invalid("trading_time", "finer than its granularity"));
        }
        Ok(t)
    }
}

impl From<TradingTime> for TimeRepr {
    fn from(t: TradingTime) -> Self {
        Self {
            at: t.at,
            granularity: t.granularity,
        }
    }
}

impl TradingTime {
    /// `at` in UTC, truncated towards the past to `granularity`.
    #[must_use]
    pub fn new(at: OffsetDateTime, granularity: Granularity) -> Self {
        let at = at.to_offset(time::UtcOffset::UTC);
        let nanos = i128::from(at.nanosecond());
        let step = i128::from(granularity.micros()) * 1_000;
        let keep = nanos - nanos.rem_euclid(step);
        // `keep` is within 0..1e9, so it fits and the replacement is in range.
        let at = u32::try_from(keep)
            .ok()
            .and_then(|n| at.replace_nanosecond(n).ok())
            .unwrap_or(at);
        Self { at, granularity }
    }

    /// The instant, UTC.
    #[must_use]
    pub fn at(&self) -> OffsetDateTime {
        self.at
    }

    /// The granularity.
    #[must_use]
    pub fn granularity(&self) -> Granularity {
        self.granularity
    }

    /// ISO 8601 in UTC with exactly the digits of the granularity:
    /// `2026-12-03T09:30:15Z`, `…15.123Z` or `…15.123456Z`.
    #[must_use]
    pub fn to_iso(&self) -> String {
        let t = self.at;
        let base = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        match self.granularity {
            Granularity::Second => format!("{base}Z"),
            Granularity::Millisecond => format!("{base}.{:03}Z", t.millisecond()),
            Granularity::Microsecond => format!("{base}.{:06}Z", t.microsecond()),
        }
    }

    /// Parses [`to_iso`](Self::to_iso)'s form; the number of fractional digits (none, 3
    /// or 6) gives the granularity.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for another shape, a time not in UTC (`Z`), or other digits.
    pub fn parse_iso(text: &str) -> Result<Self> {
        let field = "trading_time";
        let Some(body) = text.strip_suffix('Z') else {
            return Err(Error::invalid(field, "must be UTC, ending in Z"));
        };
        let (whole, granularity) = match body.split_once('.') {
            None => (body, Granularity::Second),
            Some((whole, frac)) => {
                if !frac.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(Error::invalid(field, "fraction is not digits"));
                }
                let g = match frac.len() {
                    3 => Granularity::Millisecond,
                    6 => Granularity::Microsecond,
                    _ => {
                        return Err(Error::invalid(
                            field,
                            "fraction must have 3 (ms) or 6 (µs) digits",
                        ));
                    }
                };
                (whole, g)
            }
        };
        let _ = whole;
        let at = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .map_err(|_| Error::invalid(field, "not an ISO 8601 date-time"))?;
        Ok(Self::new(at, granularity))
    }
}

impl fmt::Display for TradingTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_iso())
    }
}

/// A clock's divergence from UTC beyond what RTS 25 allows, recorded with the timestamp
/// it affected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockFlag {
    /// The divergence the clock reported, in microseconds.
    pub divergence_us: u64,
    /// The maximum allowed for the timestamp's granularity, in microseconds.
    pub allowed_us: u64,
}

/// One reading of a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockReading {
    /// The time read.
    pub at: OffsetDateTime,
    /// How far from UTC the clock may be at that moment (from its synchronisation status).
    pub divergence: Duration,
}

impl ClockReading {
    /// The reading as a trading time of `granularity`, with a flag when the divergence
    /// exceeds [`max_divergence`] for it.
    #[must_use]
    pub fn stamp(&self, granularity: Granularity) -> (TradingTime, Option<ClockFlag>) {
        let allowed = max_divergence(granularity);
        let flag = (self.divergence > allowed).then(|| ClockFlag {
            divergence_us: u64::try_from(self.divergence.as_micros()).unwrap_or(u64::MAX),
            allowed_us: u64::try_from(allowed.as_micros()).unwrap_or(u64::MAX),
        });
        (TradingTime::new(self.at, granularity), flag)
    }
}

/// A business clock that knows its divergence from UTC.
pub trait ClockSource: Send + Sync + fmt::Debug {
    /// Reads the time.
    fn read(&self) -> ClockReading;
}

/// The system clock with a divergence bound the operator declares (from the NTP or PTP
/// daemon's reported maximum error, say). The declaration is trusted: it is what RTS 25
/// calls the firm's documented traceability, not a measurement this type makes.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    divergence: Duration,
}

impl SystemClock {
    /// The system clock, declared to be within `divergence` of UTC.
    #[must_use]
    pub fn new(divergence: Duration) -> Self {
        Self { divergence }
    }
}

impl ClockSource for SystemClock {
    fn read(&self) -> ClockReading {
        ClockReading {
            at: OffsetDateTime::now_utc(),
            divergence: self.divergence,
        }
    }
}

/// A clock set by hand, for tests and replays.
#[derive(Debug)]
pub struct ManualClock {
    state: Mutex<ClockReading>,
}

impl ManualClock {
    /// A clock reading `at` with `divergence`.
    #[must_use]
    pub fn new(at: OffsetDateTime, divergence: Duration) -> Self {
        Self {
            state: Mutex::new(ClockReading { at, divergence }),
        }
    }

    /// Sets the time and divergence.
    pub fn set(&self, at: OffsetDateTime, divergence: Duration) {
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *s = ClockReading { at, divergence };
    }
}

impl ClockSource for ManualClock {
    fn read(&self) -> ClockReading {
        *self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn truncates_and_prints_the_granularity_digits() {
        let at = datetime!(2026-12-03 09:30:15.123456789 UTC);
        assert_eq!(
            TradingTime::new(at, Granularity::Microsecond).to_iso(),
            "2026-12-03T09:30:15.123456Z"
        );
        assert_eq!(
            TradingTime::new(at, Granularity::Millisecond).to_iso(),
            "2026-12-03T09:30:15.123Z"
        );
        assert_eq!(
            TradingTime::new(at, Granularity::Second).to_iso(),
            "2026-12-03T09:30:15Z"
        );
        for g in [
            Granularity::Microsecond,
            Granularity::Millisecond,
            Granularity::Second,
        ] {
            let t = TradingTime::new(at, g);
            assert_eq!(TradingTime::parse_iso(&t.to_iso()).unwrap(), t);
        }
    }

    #[test]
    fn parse_refuses_other_shapes() {
        for bad in [
            "2026-12-03T09:30:15.12Z",
            "2026-12-03T09:30:15.123456789Z",
            "2026-12-03T09:30:15+01:00",
            "2026-12-03T09:30:15.1a3Z",
            "yesterday",
        ] {
            assert!(TradingTime::parse_iso(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn divergence_over_the_rts25_maximum_is_flagged() {
        let at = datetime!(2026-12-03 09:30:15 UTC);
        let ok = ClockReading {
            at,
            divergence: Duration::from_micros(100),
        };
        assert_eq!(ok.stamp(Granularity::Microsecond).1, None);
        let late = ClockReading {
            at,
            divergence: Duration::from_micros(101),
        };
        assert_eq!(
            late.stamp(Granularity::Microsecond).1,
            Some(ClockFlag {
                divergence_us: 101,
                allowed_us: 100
            })
        );
        assert_eq!(late.stamp(Granularity::Millisecond).1, None);
        let clock = ManualClock::new(at, Duration::from_millis(2));
        assert!(clock.read().stamp(Granularity::Millisecond).1.is_some());
        assert!(clock.read().stamp(Granularity::Second).1.is_none());
    }

    #[test]
    fn serde_refuses_a_time_finer_than_its_granularity() {
        let json = r#"{"at":"2026-12-03T09:30:15.5Z","granularity":"s"}"#;
        assert!(serde_json::from_str::<TradingTime>(json).is_err());
        let json = r#"{"at":"2026-12-03T09:30:15Z","granularity":"s"}"#;
        assert!(serde_json::from_str::<TradingTime>(json).is_ok());
    }
}
