//! What the SQL adapters share: timestamp encoding and row decoding.

use time::OffsetDateTime;

use super::{StoredSubjectKey, SubjectId, SubjectKeyState};
use crate::error::{Error, Result};
use crate::provider::{KekRef, KeyName, WrappedDek};

/// A store error that is not a driver error (a malformed row, an out-of-range value).
pub(crate) fn store_error(message: String) -> Error {
    Error::Store(message.into())
}

/// `t` as unix microseconds, rounded towards the past.
pub(crate) fn to_micros(t: OffsetDateTime) -> Result<i64> {
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000))
        .map_err(|_| store_error(format!("timestamp {t} is out of range")))
}

/// Unix microseconds back to a time.
pub(crate) fn from_micros(micros: i64, column: &str, subject: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000).map_err(|_| {
        store_error(format!(
            "finsec_subject_keys.{column} of subject {subject} is out of range: {micros}"
        ))
    })
}

/// One row of `finsec_subject_keys`, as read from either database.
pub(crate) struct RawRow {
    pub(crate) subject_id: String,
    pub(crate) kek_name: Option<String>,
    pub(crate) kek_version: Option<i64>,
    pub(crate) wrapped_key: Option<Vec<u8>>,
    pub(crate) created_at: i64,
    pub(crate) destroyed_at: Option<i64>,
}

impl RawRow {
    /// The state the row stands for; refuses rows that break the table's invariants.
    pub(crate) fn into_state(self) -> Result<SubjectKeyState> {
        let subject = self.subject_id;
        if let Some(destroyed_at) = self.destroyed_at {
            return Ok(SubjectKeyState::Destroyed {
                destroyed_at: from_micros(destroyed_at, "destroyed_at", &subject)?,
            });
        }
        let malformed = |what: &str| {
            store_error(format!(
                "finsec_subject_keys row of subject {subject} {what}"
            ))
        };
        let (Some(name), Some(version), Some(wrapped)) =
            (self.kek_name, self.kek_version, self.wrapped_key)
        else {
            return Err(malformed("is active but lacks its key columns"));
        };
        let kek = KekRef {
            name: KeyName::new(name).map_err(|_| malformed("has an invalid kek_name"))?,
            version: u32::try_from(version)
                .ok()
                .filter(|v| *v >= 1)
                .ok_or_else(|| malformed("has an invalid kek_version"))?,
        };
        let wrapped =
            WrappedDek::new(wrapped).map_err(|_| malformed("has an invalid wrapped_key length"))?;
        let created_at = from_micros(self.created_at, "created_at", &subject)?;
        let subject =
            SubjectId::new(subject.clone()).map_err(|_| malformed("has an invalid subject_id"))?;
        Ok(SubjectKeyState::Active(StoredSubjectKey {
            subject,
            kek,
            wrapped,
            created_at,
        }))
    }

    /// An active key, or an error for a row that is not one (list queries select only
    /// active rows).
    pub(crate) fn into_active(self) -> Result<StoredSubjectKey> {
        let subject = self.subject_id.clone();
        match self.into_state()? {
            SubjectKeyState::Active(stored) => Ok(stored),
            _ => Err(store_error(format!(
                "finsec_subject_keys row of subject {subject} was listed as active but is not"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn micros_round_trip_and_round_down() {
        for t in [
            datetime!(1970-01-01 00:00 UTC),
            datetime!(2024-02-29 23:59:59.999999 UTC),
            datetime!(1969-12-31 23:59:59.5 UTC),
            datetime!(9999-12-31 23:59:59.999999 UTC),
            datetime!(-9999-01-01 00:00 UTC),
        ] {
            let us = to_micros(t).unwrap();
            assert_eq!(from_micros(us, "c", "s").unwrap(), t);
        }
        assert_eq!(
            to_micros(datetime!(1969-12-31 23:59:59.999999999 UTC)).unwrap(),
            -1
        );
        assert_eq!(
            to_micros(datetime!(1970-01-01 00:00:00.000001999 UTC)).unwrap(),
            1
        );
        assert!(from_micros(i64::MAX, "c", "s").is_err());
    }

    fn row() -> RawRow {
        RawRow {
            subject_id: "s".into(),
            kek_name: Some("k".into()),
            kek_version: Some(1),
            wrapped_key: Some(vec![1; 60]),
            created_at: 0,
            destroyed_at: None,
        }
    }

    #[test]
    fn malformed_rows_are_store_errors() {
        assert!(matches!(row().into_state(), Ok(SubjectKeyState::Active(_))));
        let bad: [fn(&mut RawRow); 6] = [
            |r| r.kek_name = None,
            |r| r.kek_name = Some("BAD NAME".into()),
            |r| r.kek_version = Some(0),
            |r| r.kek_version = Some(1 << 32),
            |r| r.wrapped_key = Some(vec![]),
            |r| r.subject_id = "a b".into(),
        ];
        for f in bad {
            let mut r = row();
            f(&mut r);
            assert!(matches!(r.into_state(), Err(Error::Store(_))));
        }
        let mut tomb = row();
        tomb.wrapped_key = None;
        tomb.destroyed_at = Some(5);
        assert!(matches!(
            tomb.into_state(),
            Ok(SubjectKeyState::Destroyed { .. })
        ));
        let mut tomb = row();
        tomb.destroyed_at = Some(5);
        assert!(tomb.into_active().is_err());
    }
}
