//! The server's capabilities, registered in one place.
//!
//! Each capability is a folder of its own: its settings, routes, service, store (a trait
//! and its SQL implementation on [`SqlStore`](crate::storage::sql::SqlStore)) and its
//! migrations (`src/<capability>/migrations/{sqlite,postgres}`, versions in the server's
//! range, see `MIGRATIONS.md`). [`CAPABILITIES`] lists them in the order their migrations
//! run (a capability's tables may refer to an earlier one's); [`migrate`] runs the finsec
//! crates' migrations and then theirs, and [`routes`] merges their routes into the API.
//! Adding a capability is one entry here.

use sqlx::migrate::Migrator;
use utoipa_axum::router::OpenApiRouter;

use crate::error::{Result, ServerError};
use crate::http::HttpState;
use crate::storage::Storage;

/// One capability: its name, its migrations on each backend and its routes.
#[derive(Debug, Clone, Copy)]
pub struct Capability {
    /// The folder under `src/` (also the name in logs and errors).
    pub name: &'static str,
    /// Its SQLite migrations.
    pub sqlite: fn() -> Migrator,
    /// Its PostgreSQL migrations (the same versions).
    pub postgres: fn() -> Migrator,
    /// Its routes, if it serves any.
    pub routes: Option<fn() -> OpenApiRouter<HttpState>>,
}

/// Every capability, in migration order: users and sessions first (`server_users`), then
/// roles (a trigger on `server_users`), then orders (rows owned by users), then the audit
/// trail's incident table, then MiFID II's fills and clients, then GDPR's restrictions.
pub const CAPABILITIES: [Capability; 6] = [
    Capability {
        name: "auth",
        sqlite: || sqlx::migrate!("./src/auth/migrations/sqlite"),
        postgres: || sqlx::migrate!("./src/auth/migrations/postgres"),
        routes: Some(crate::auth::routes::router),
    },
    Capability {
        name: "rbac",
        sqlite: || sqlx::migrate!("./src/rbac/migrations/sqlite"),
        postgres: || sqlx::migrate!("./src/rbac/migrations/postgres"),
        routes: Some(crate::rbac::admin::router),
    },
    Capability {
        name: "orders",
        sqlite: || sqlx::migrate!("./src/orders/migrations/sqlite"),
        postgres: || sqlx::migrate!("./src/orders/migrations/postgres"),
        routes: Some(crate::orders::routes::router),
    },
    Capability {
        name: "audit",
        sqlite: || sqlx::migrate!("./src/audit/migrations/sqlite"),
        postgres: || sqlx::migrate!("./src/audit/migrations/postgres"),
        routes: Some(crate::audit::routes::router),
    },
    Capability {
        name: "compliance",
        sqlite: || sqlx::migrate!("./src/compliance/migrations/sqlite"),
        postgres: || sqlx::migrate!("./src/compliance/migrations/postgres"),
        routes: Some(crate::compliance::routes::router),
    },
    Capability {
        name: "gdpr",
        sqlite: || sqlx::migrate!("./src/gdpr/migrations/sqlite"),
        postgres: || sqlx::migrate!("./src/gdpr/migrations/postgres"),
        routes: Some(crate::gdpr::routes::router),
    },
];

/// Creates or updates every table the server uses: the finsec crates' (finsec-crypto's
/// subject keys, finsec-auth's tokens, MFA and API keys, finsec-rbac's approvals), then each
/// capability's, in [`CAPABILITIES`] order. Idempotent, and safe to run from several
/// instances at once (each migrator holds sqlx's migration lock).
///
/// # Errors
/// [`ServerError::Storage`] naming the migrations that failed.
pub async fn migrate(storage: &Storage) -> Result<()> {
    storage.migrate_crates().await?;
    for capability in CAPABILITIES {
        storage
            .run_migrations((capability.sqlite)(), (capability.postgres)())
            .await
            .map_err(|source| ServerError::Storage {
                backend: storage.backend().as_str(),
                target: format!("{} migrations", capability.name),
                source: Box::new(source),
            })?;
    }
    Ok(())
}

/// The routes of every capability that serves any, merged.
pub fn routes() -> OpenApiRouter<HttpState> {
    CAPABILITIES
        .iter()
        .filter_map(|c| c.routes)
        .fold(OpenApiRouter::new(), |router, routes| {
            router.merge(routes())
        })
}

#[cfg(test)]
mod tests {
    use finsec_sql::migrations::{REFERENCE_SERVER, check};

    use super::*;

    #[test]
    fn migrations_are_in_the_server_range_and_ordered() {
        let mut last = 0;
        for capability in CAPABILITIES {
            for migrator in [(capability.sqlite)(), (capability.postgres)()] {
                check(&REFERENCE_SERVER, &migrator).unwrap();
                let first = migrator.iter().map(|m| m.version).min().unwrap();
                assert!(
                    first > last,
                    "{} migrates before an earlier one",
                    capability.name
                );
            }
            last = (capability.sqlite)()
                .iter()
                .map(|m| m.version)
                .max()
                .unwrap();
        }
    }

    #[tokio::test]
    async fn migrate_twice_on_sqlite_and_postgres() {
        let sqlite = finsec_testkit::sqlite().await;
        let storage = Storage::Sqlite(sqlite.pool().clone());
        migrate(&storage).await.unwrap();
        migrate(&storage).await.unwrap();
        let pg = finsec_testkit::postgres().await;
        let storage = Storage::Postgres(pg.pool().clone());
        migrate(&storage).await.unwrap();
        migrate(&storage).await.unwrap();
        pg.cleanup().await;
    }
}
