//! finsec-rbac on SQLite (feature `sqlite`): [`migrate`] creates the crate's tables.
//!
//! The store is `approval::sqlite::SqliteApprovalStore`.

use sqlx::migrate::Migrator;
use sqlx::sqlite::SqlitePool;

use crate::error::Result;

/// The finsec-rbac SQLite migrator: versions 30001–30999 (see `MIGRATIONS.md`), ignoring
/// the versions other crates record in the same `_sqlx_migrations` table.
#[must_use]
pub fn migrator() -> Migrator {
    finsec_sql::migrations::prepare(sqlx::migrate!("./migrations/sqlite"))
}

/// Creates or updates the finsec-rbac tables (`finsec_rbac_approval_requests`, `finsec_rbac_controls`,
/// `finsec_rbac_approvals`).
///
/// Idempotent; safe at every start-up and beside other crates' migrations.
///
/// # Errors
/// [`Error::Store`](crate::Error::Store) if a migration fails or an applied finsec-rbac
/// migration was changed.
pub async fn migrate(pool: &SqlitePool) -> Result<()> {
    migrator().run(pool).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_stay_in_the_finsec_rbac_range() {
        let m = super::migrator();
        assert!(m.ignore_missing);
        assert!(m.iter().count() >= 1);
        finsec_sql::migrations::check(&finsec_sql::migrations::FINSEC_RBAC, &m).unwrap();
    }
}
