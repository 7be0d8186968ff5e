//! The migrations of the tables this module and [`crate::orders`] own:
//! `server_user_roles`, `server_role_settings` (with the default-role trigger on
//! `server_users`) and `server_orders`, versions 90501–90599. They run after the
//! migrations that create `server_users`.

use sqlx::migrate::Migrator;

use crate::error::{Result, ServerError};
use crate::storage::Storage;

/// The SQLite migrator.
pub fn sqlite_migrator() -> Migrator {
    sqlx::migrate!("./migrations/access/sqlite")
}

/// The PostgreSQL migrator (see [`sqlite_migrator`]).
pub fn postgres_migrator() -> Migrator {
    sqlx::migrate!("./migrations/access/postgres")
}

/// Creates or updates the roles and orders tables.
///
/// # Errors
/// [`ServerError::Storage`] if a migration fails.
pub async fn run(storage: &Storage) -> Result<()> {
    storage
        .run_migrations(sqlite_migrator(), postgres_migrator())
        .await
        .map_err(|source| ServerError::Storage {
            backend: storage.backend().as_str(),
            target: "roles and orders migrations".to_owned(),
            source: Box::new(source),
        })
}
