//! What every SQL store of the server shares: one store type on either pool, the one place
//! where the two backends' column types differ, and the store error.
//!
//! Each capability's store trait (`UserStore`, `SessionStore`, `SecretStore`, `RoleStore`,
//! `OrderStore`) is implemented once for [`SqlStore`], by a macro expanded for
//! `sqlx::Sqlite` and `sqlx::Postgres`: the SQL text and the code around it exist once, on a
//! concrete pool type so no sqlx generic bounds need stating. The SQL is the subset both
//! databases read the same way: `$n` placeholders, `TRUE`/`FALSE` (SQLite ≥ 3.23 reads them
//! as 1/0, which its `STRICT` integer columns accept), `ON CONFLICT`, `RETURNING`. The one
//! type the tables store differently is a UUID (PostgreSQL `uuid`, SQLite canonical text):
//! [`ServerDb::uuid`] binds one and [`ServerDb::read_uuid`] reads one.

use std::fmt;

use finsec_sql::Backend;
use sqlx::{Pool, Row as _};
use time::OffsetDateTime;
use uuid::Uuid;

mod sealed {
    pub trait Sealed {}
    impl Sealed for sqlx::Sqlite {}
    impl Sealed for sqlx::Postgres {}
}

/// A database the server runs on, with how it stores a UUID.
pub trait ServerDb: Backend + sealed::Sealed {
    /// A UUID as bound to a query: canonical hyphenated text on SQLite, `uuid` on
    /// PostgreSQL.
    type Uuid: for<'q> sqlx::Encode<'q, Self> + sqlx::Type<Self> + Send + Sync + 'static;

    /// `id` as bound to a query.
    fn uuid(id: Uuid) -> Self::Uuid;

    /// The UUID in column `index` of `row`.
    ///
    /// # Errors
    /// [`sqlx::Error::ColumnDecode`] if the column does not hold a UUID.
    fn read_uuid(row: &Self::Row, index: usize) -> Result<Uuid, sqlx::Error>;
}

impl ServerDb for sqlx::Sqlite {
    type Uuid = String;

    fn uuid(id: Uuid) -> String {
        id.hyphenated().to_string()
    }

    fn read_uuid(row: &sqlx::sqlite::SqliteRow, index: usize) -> Result<Uuid, sqlx::Error> {
        let text: &str = row.try_get(index)?;
        Uuid::parse_str(text).map_err(|e| sqlx::Error::ColumnDecode {
            index: index.to_string(),
            source: Box::new(e),
        })
    }
}

impl ServerDb for sqlx::Postgres {
    type Uuid = Uuid;

    fn uuid(id: Uuid) -> Uuid {
        id
    }

    fn read_uuid(row: &sqlx::postgres::PgRow, index: usize) -> Result<Uuid, sqlx::Error> {
        row.try_get(index)
    }
}

/// The server's tables on one database: implements every capability's store trait.
/// [`SqliteStore`] and [`PgStore`] name the two kinds.
pub struct SqlStore<DB: ServerDb> {
    pool: Pool<DB>,
}

/// The server's tables in SQLite.
pub type SqliteStore = SqlStore<sqlx::Sqlite>;

/// The server's tables in PostgreSQL.
pub type PgStore = SqlStore<sqlx::Postgres>;

impl<DB: ServerDb> SqlStore<DB> {
    /// The store on `pool` (migrated: see [`crate::capabilities::migrate`]).
    #[must_use]
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }

    /// The pool.
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }
}

impl<DB: ServerDb> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
        }
    }
}

impl<DB: ServerDb> fmt::Debug for SqlStore<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &DB::LABEL)
            .field("pool", &self.pool)
            .finish()
    }
}

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed or refused the statement.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),

    /// A stored row does not decode (a constraint the tables enforce was bypassed).
    #[error("corrupt row in {table}: {detail}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What is wrong, without the row's content.
        detail: String,
    },

    /// A time does not fit the stored representation.
    #[error("time {0} is out of the storable range")]
    TimeOutOfRange(OffsetDateTime),

    /// Other writers kept changing a row this call updates by compare-and-set.
    #[error("{table}: too many concurrent updates of one row")]
    Contended {
        /// The table.
        table: &'static str,
    },

    /// The cache in front of a table failed (Redis down or too slow), so a row could not be
    /// known current.
    #[error("cache: {0}")]
    Cache(String),

    /// A value sealed under a data subject's key could not be sealed or opened (the key
    /// store failed, or the value was altered).
    #[error("sealed value: {0}")]
    Sealing(String),
}

/// A store call's result.
pub type StoreResult<T> = Result<T, StoreError>;

/// `t` as stored: unix microseconds.
///
/// # Errors
/// [`StoreError::TimeOutOfRange`] past the year 294,000 or so.
pub fn to_micros(t: OffsetDateTime) -> StoreResult<i64> {
    finsec_sql::time::to_micros(t).map_err(|_| StoreError::TimeOutOfRange(t))
}

/// A stored time in unix microseconds.
///
/// # Errors
/// [`StoreError::Corrupt`] if it is out of range.
pub fn from_micros(table: &'static str, micros: i64) -> StoreResult<OffsetDateTime> {
    finsec_sql::time::from_micros(micros).map_err(|e| StoreError::Corrupt {
        table,
        detail: e.to_string(),
    })
}

/// Whether `e` is a unique-constraint violation (on either backend).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_trip_and_bounds() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_000).unwrap();
        assert_eq!(
            from_micros("t", to_micros(t).unwrap()).unwrap(),
            t,
            "microseconds survive"
        );
        assert!(matches!(
            from_micros("t", i64::MAX),
            Err(StoreError::Corrupt { table: "t", .. })
        ));
    }

    #[tokio::test]
    async fn uuids_round_trip_on_sqlite() {
        let db = finsec_testkit::sqlite().await;
        let id = Uuid::now_v7();
        let row = sqlx::query("SELECT $1")
            .bind(<sqlx::Sqlite as ServerDb>::uuid(id))
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(<sqlx::Sqlite as ServerDb>::read_uuid(&row, 0).unwrap(), id);
        let bad = sqlx::query("SELECT 'not-a-uuid'")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert!(<sqlx::Sqlite as ServerDb>::read_uuid(&bad, 0).is_err());
    }

    #[tokio::test]
    async fn uuids_round_trip_on_postgres() {
        let db = finsec_testkit::postgres().await;
        let id = Uuid::now_v7();
        let row = sqlx::query("SELECT $1")
            .bind(<sqlx::Postgres as ServerDb>::uuid(id))
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(
            <sqlx::Postgres as ServerDb>::read_uuid(&row, 0).unwrap(),
            id
        );
        db.cleanup().await;
    }
}
