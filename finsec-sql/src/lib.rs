#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod migrations;
pub mod time;

mod sealed {
    /// Only the sqlx drivers this crate knows are backends.
    pub trait Sealed {}
}

/// A sqlx driver a finsec SQL store runs on, with the few places its SQL differs.
///
/// Implemented for `sqlx::Sqlite` (feature `sqlite`) and `sqlx::Postgres` (feature
/// `postgres`); sealed, so a store generic over it knows every backend it can meet.
pub trait Backend: sqlx::Database + sealed::Sealed {
    /// The backend's name in messages and docs (`"SQLite"`, `"PostgreSQL"`).
    const LABEL: &'static str;

    /// A collation name that orders text by its bytes (UTF-8 code point order), for
    /// `ORDER BY column COLLATE <this>`: keyset pagination and listings that must sort the
    /// same on every backend, whatever the database's default collation.
    const BYTE_COLLATION: &'static str;
}

#[cfg(feature = "sqlite")]
impl sealed::Sealed for sqlx::Sqlite {}

#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
impl Backend for sqlx::Sqlite {
    const LABEL: &'static str = "SQLite";
    // SQLite's built-in byte-wise collation.
    const BYTE_COLLATION: &'static str = "BINARY";
}

#[cfg(feature = "postgres")]
impl sealed::Sealed for sqlx::Postgres {}

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
impl Backend for sqlx::Postgres {
    const LABEL: &'static str = "PostgreSQL";
    // Always present, independent of the cluster's locale.
    const BYTE_COLLATION: &'static str = "\"C\"";
}
