//! finsec-compliance on SQLite (feature `sqlite`): [`migrate`] creates the crate's tables.
//!
//! The stores are [`SqlReportStore`](crate::mifid::store::SqlReportStore),
//! [`SqlConsentStore`](crate::gdpr::consent::SqlConsentStore),
//! [`SqlHoldStore`](crate::gdpr::hold::SqlHoldStore),
//! [`SqlRequestStore`](crate::gdpr::request::SqlRequestStore) and
//! [`SqlRetentionStateStore`](crate::gdpr::retention::SqlRetentionStateStore).

use sqlx::migrate::Migrator;
use sqlx::sqlite::SqlitePool;

use crate::error::Result;

/// The finsec-compliance SQLite migrator: versions 50001–50999 (see `MIGRATIONS.md`),
/// ignoring the versions other crates record in the same `_sqlx_migrations` table.
#[must_use]
pub fn migrator() -> Migrator {
    finsec_sql::migrations::prepare(sqlx::migrate!("./migrations/sqlite"))
}

/// Creates or updates the finsec-compliance tables (`finsec_mifid_reports`,
/// `finsec_consent_events`, `finsec_legal_holds`, `finsec_subject_requests`,
/// `finsec_retention_runs`).
///
/// Idempotent; safe at every start-up and beside other crates' migrations.
///
/// # Errors
/// [`Error::Store`](crate::Error::Store) if a migration fails or an applied
/// finsec-compliance migration was changed.
pub async fn migrate(pool: &SqlitePool) -> Result<()> {
    migrator().run(pool).await.map_err(crate::Error::store)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_stay_in_the_finsec_compliance_range() {
        let m = super::migrator();
        assert!(m.ignore_missing);
        assert!(m.iter().count() >= 1);
        finsec_sql::migrations::check(&finsec_sql::migrations::FINSEC_COMPLIANCE, &m).unwrap();
    }
}
