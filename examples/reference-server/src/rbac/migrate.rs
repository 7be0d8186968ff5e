//! The migrations of the tables this module and [`crate::orders`] own:
//! `server_user_roles`, `server_role_settings` (with the default-role trigger on
//! `server_users`) and `server_orders`, versions 90501–90599. They run after the
//! migrations that create `server_users`.

use sqlx::migrate::Migrator;

use crate::error::{Result, ServerError};
use crate::storage::Storage;

/// The SQLite migrator, with `ignore_missing` set so the other migrations recorded in the
/// same `_sqlx_migrations` table are not an error.
pub fn sqlite_migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("./migrations/access/sqlite");
    migrator.set_ignore_missing(true);
    migrator
}

/// The PostgreSQL migrator (see [`sqlite_migrator`]).
pub fn postgres_migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("./migrations/access/postgres");
    migrator.set_ignore_missing(true);
    migrator
}

/// Creates or updates the roles and orders tables.
///
/// # Errors
/// [`ServerError::Storage`] if a migration fails.
pub async fn run(storage: &Storage) -> Result<()> {
    let result = match storage {
        Storage::Sqlite(pool) => sqlite_migrator().run(pool).await,
        Storage::Postgres(pool) => postgres_migrator().run(pool).await,
    };
    result.map_err(|source| ServerError::Storage {
        backend: storage.backend().as_str(),
        target: "roles and orders migrations".to_owned(),
        source: Box::new(source),
    })
}
