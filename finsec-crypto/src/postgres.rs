//! finsec-crypto on PostgreSQL (feature `postgres`): [`migrate`] creates the crate's tables.
//!
//! The store is `subject::postgres::PostgresSubjectKeyStore`.

use sqlx::migrate::Migrator;
use sqlx::postgres::PgPool;

use crate::error::Result;

/// The finsec-crypto PostgreSQL migrator: versions 10001–10999 (see `MIGRATIONS.md`), ignoring
/// the versions other crates record in the same `_sqlx_migrations` table.
#[must_use]
pub fn migrator() -> Migrator {
    finsec_sql::migrations::prepare(sqlx::migrate!("./migrations/postgres"))
}

/// Creates or updates the finsec-crypto tables (`finsec_subject_keys`).
///
/// Safe to call at every start-up, from several instances at once (sqlx holds an
/// advisory lock while migrating), and beside other
/// crates' migrations.
///
/// If a migration fails, the connection that ran it is closed rather than returned to the
/// pool, which releases sqlx's migration lock.
///
/// # Errors
/// [`Error::Store`](crate::Error::Store) if a migration fails or an applied finsec-crypto
/// migration was changed.
pub async fn migrate(pool: &PgPool) -> Result<()> {
    finsec_sql::migrations::run_postgres(pool, &migrator()).await?;
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
