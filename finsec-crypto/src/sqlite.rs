//! finsec-crypto on SQLite (feature `sqlite`): [`migrate`] creates the crate's tables.
//!
//! The store is `subject::sqlite::SqliteSubjectKeyStore`.

use sqlx::migrate::Migrator;
use sqlx::sqlite::SqlitePool;

use crate::error::Result;

/// The finsec-crypto SQLite migrator: versions 10001–10999 (see `MIGRATIONS.md`), ignoring
/// the versions other crates record in the same `_sqlx_migrations` table.
#[must_use]
pub fn migrator() -> Migrator {
    finsec_sql::migrations::prepare(sqlx::migrate!("./migrations/sqlite"))
}

/// Creates or updates the finsec-crypto tables (`finsec_subject_keys`).
///
/// Safe to call at every start-up, from several processes at once, and beside other
/// crates' migrations.
///
/// # Errors
/// [`Error::Store`](crate::Error::Store) if a migration fails or an applied finsec-crypto
/// migration was changed.
pub async fn migrate(pool: &SqlitePool) -> Result<()> {
    migrator().run(pool).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_stay_in_the_finsec_crypto_range() {
        let m = super::migrator();
        assert!(m.ignore_missing);
        assert!(m.iter().count() >= 1);
        finsec_sql::migrations::check(&finsec_sql::migrations::FINSEC_CRYPTO, &m).unwrap();
    }
}
