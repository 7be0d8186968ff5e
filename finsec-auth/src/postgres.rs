//! finsec-auth on PostgreSQL (feature `postgres`): [`migrate`] creates every table of the crate.
//!
//! The stores are in their modules: `tokens::postgres`, `mfa::postgres`, `api_keys::postgres`.

use sqlx::migrate::Migrator;
use sqlx::postgres::PgPool;

use crate::Error;

/// The finsec-auth PostgreSQL migrator: versions 20001–20999 (tokens, MFA, API keys; see
/// `MIGRATIONS.md`), ignoring the versions other crates record in the same
/// `_sqlx_migrations` table.
#[must_use]
pub fn migrator() -> Migrator {
    finsec_sql::migrations::prepare(sqlx::migrate!("./migrations/postgres"))
}

/// Creates or updates every finsec-auth table: `finsec_revoked_jti`,
/// `finsec_refresh_tokens`, `finsec_refresh_families_revoked`, `finsec_mfa_totp_replay`,
/// `finsec_mfa_backup_codes`, `finsec_api_keys`, `finsec_login_failures`.
///
/// Idempotent; safe at every start-up and beside other crates' migrations.
///
/// If a migration fails, the connection that ran it is closed rather than returned to the
/// pool, which releases sqlx's migration lock.
///
/// # Errors
/// [`Error::Migrate`] if a migration fails or an applied finsec-auth migration changed.
pub async fn migrate(pool: &PgPool) -> Result<(), Error> {
    finsec_sql::migrations::run_postgres(pool, &migrator()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_stay_in_the_finsec_auth_range() {
        let m = super::migrator();
        assert!(m.iter().count() >= 4);
        finsec_sql::migrations::check(&finsec_sql::migrations::FINSEC_AUTH, &m).unwrap();
    }
}
