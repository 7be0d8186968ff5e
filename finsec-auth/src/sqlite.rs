//! finsec-auth on SQLite (feature `sqlite`): [`migrate`] creates every table of the crate.
//!
//! The stores are in their modules: `tokens::sqlite`, `mfa::sqlite`, `api_keys::sqlite`.

use sqlx::migrate::Migrator;
use sqlx::sqlite::SqlitePool;

use crate::Error;

/// The finsec-auth SQLite migrator: versions 20001–20999 (tokens, MFA, API keys; see
/// `MIGRATIONS.md`), ignoring the versions other crates record in the same
/// `_sqlx_migrations` table.
#[must_use]
pub fn migrator() -> Migrator {
    finsec_sql::migrations::prepare(sqlx::migrate!("./migrations/sqlite"))
}

/// Creates or updates every finsec-auth table: `finsec_revoked_jti`,
/// `finsec_refresh_tokens`, `finsec_refresh_families_revoked`, `finsec_mfa_totp_replay`,
/// `finsec_mfa_backup_codes`, `finsec_api_keys`, `finsec_login_failures`.
///
/// Idempotent; safe at every start-up and beside other crates' migrations.
///
/// # Errors
/// [`Error::Migrate`] if a migration fails or an applied finsec-auth migration changed.
pub async fn migrate(pool: &SqlitePool) -> Result<(), Error> {
    migrator().run(pool).await?;
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
