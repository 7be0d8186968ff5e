//! finsec-audit on PostgreSQL (feature `postgres`): [`migrate`] creates the log's tables and
//! [`PgSink`] appends to them.
//!
//! See [`crate::sql`] for how several writers share one log.

use sqlx::migrate::Migrator;

use crate::error::Result;

/// An [`AuditSink`](crate::AuditSink) in a PostgreSQL database, on a pool the caller built.
pub type PgSink = crate::sql::SqlSink<sqlx::Postgres>;

/// The finsec-audit PostgreSQL migrator: versions 40001–40999 (see `MIGRATIONS.md`), ignoring
/// the versions other crates record in the same `_sqlx_migrations` table.
#[must_use]
pub fn migrator() -> Migrator {
    finsec_sql::migrations::prepare(sqlx::migrate!("./migrations/postgres"))
}

/// Creates or updates the log's tables (`finsec_audit_head`, `finsec_audit_events`,
/// `finsec_audit_nodes`, `finsec_audit_checkpoints`).
///
/// Idempotent; safe at every start-up and beside other crates' migrations.
///
/// # Errors
/// [`Error::Store`](crate::Error::Store) if a migration fails or an applied finsec-audit
/// migration was changed.
pub async fn migrate(pool: &sqlx::postgres::PgPool) -> Result<()> {
    finsec_sql::migrations::run_postgres(pool, &migrator()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_stay_in_the_finsec_audit_range() {
        let m = super::migrator();
        assert!(m.ignore_missing);
        assert_eq!(m.iter().count(), 1);
        finsec_sql::migrations::check(&finsec_sql::migrations::FINSEC_AUDIT, &m).unwrap();
    }
}
