//! finsec-crypto, finsec-auth and finsec-rbac migrations in one database, on SQLite and on
//! PostgreSQL (one schema of the test's own): each crate's one `migrate` runs in any order,
//! again and again, beside the others' versions, and a changed migration of the crate itself
//! is still refused. The same test body runs on both backends.

use std::collections::BTreeSet;

fn versions(m: &sqlx::migrate::Migrator) -> BTreeSet<i64> {
    m.iter().map(|m| m.version).collect()
}

/// The tests on one backend: `$backend` names each crate's module (`sqlite`, `postgres`),
/// `$db` the test database constructor, `$pool` its pool type, `$cleanup` what to do with
/// the database afterwards.
macro_rules! migration_tests {
    ($backend:ident, $db:path, $pool:ty, |$d:ident| $cleanup:expr) => {
        mod $backend {
            use super::*;

            async fn recorded(pool: &$pool) -> BTreeSet<i64> {
                let rows: Vec<(i64, bool)> = sqlx::query_as(
                    "SELECT version, success FROM _sqlx_migrations ORDER BY version",
                )
                .fetch_all(pool)
                .await
                .unwrap();
                assert!(rows.iter().all(|(_, ok)| *ok), "{rows:?}");
                rows.into_iter().map(|(v, _)| v).collect()
            }

            async fn count(pool: &$pool, table: &str) -> i64 {
                sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
                    .fetch_one(pool)
                    .await
                    .unwrap()
            }

            #[tokio::test]
            async fn crates_migrate_in_any_order_into_one_database() {
                let $d = $db().await;
                let pool = $d.pool();
                let crypto = versions(&finsec_crypto::$backend::migrator());
                let auth = versions(&finsec_auth::$backend::migrator());
                let rbac = versions(&finsec_rbac::$backend::migrator());
                assert!(!crypto.is_empty() && !auth.is_empty() && !rbac.is_empty());

                // A, then B: B ignores A's versions.
                finsec_auth::$backend::migrate(pool).await.unwrap();
                assert_eq!(recorded(pool).await, auth);
                finsec_crypto::$backend::migrate(pool).await.unwrap();
                // Then A again: A ignores B's versions and has nothing left to do.
                finsec_auth::$backend::migrate(pool).await.unwrap();
                finsec_rbac::$backend::migrate(pool).await.unwrap();
                finsec_crypto::$backend::migrate(pool).await.unwrap();
                finsec_auth::$backend::migrate(pool).await.unwrap();
                finsec_rbac::$backend::migrate(pool).await.unwrap();

                let all: BTreeSet<i64> = crypto.iter().chain(&auth).chain(&rbac).copied().collect();
                assert_eq!(
                    all.len(),
                    crypto.len() + auth.len() + rbac.len(),
                    "versions collide"
                );
                assert_eq!(recorded(pool).await, all);
                for table in [
                    "finsec_subject_keys",
                    "finsec_revoked_jti",
                    "finsec_refresh_tokens",
                    "finsec_refresh_families_revoked",
                    "finsec_mfa_totp_replay",
                    "finsec_mfa_backup_codes",
                    "finsec_api_keys",
                    "finsec_rbac_approval_requests",
                    "finsec_rbac_approvals",
                ] {
                    assert_eq!(count(pool, table).await, 0, "{table}");
                }

                // An application's own migration in the same table is not an error either.
                sqlx::query(
                    "INSERT INTO _sqlx_migrations \
                     (version, description, success, checksum, execution_time) \
                     VALUES (90999, 'application table', $1, $2, 0)",
                )
                .bind(true)
                .bind(&[0_u8][..])
                .execute(pool)
                .await
                .unwrap();
                finsec_auth::$backend::migrate(pool).await.unwrap();
                finsec_crypto::$backend::migrate(pool).await.unwrap();
                finsec_rbac::$backend::migrate(pool).await.unwrap();
                $cleanup;
            }

            #[tokio::test]
            async fn a_changed_migration_of_the_crate_itself_is_still_refused() {
                let $d = $db().await;
                let pool = $d.pool();
                finsec_crypto::$backend::migrate(pool).await.unwrap();
                finsec_auth::$backend::migrate(pool).await.unwrap();
                sqlx::query("UPDATE _sqlx_migrations SET checksum = $1 WHERE version = 20001")
                    .bind(&[0_u8][..])
                    .execute(pool)
                    .await
                    .unwrap();
                let err = finsec_auth::$backend::migrate(pool).await.unwrap_err();
                assert!(
                    matches!(
                        err,
                        finsec_auth::Error::Migrate(sqlx::migrate::MigrateError::VersionMismatch(
                            20001
                        ))
                    ),
                    "{err:?}"
                );
                // The other crate does not look at finsec-auth's versions, and the failed run
                // left no connection holding sqlx's migration lock (on PostgreSQL an advisory
                // lock per database), which would make this wait forever.
                tokio::time::timeout(
                    std::time::Duration::from_secs(30),
                    finsec_crypto::$backend::migrate(pool),
                )
                .await
                .expect("the failed migration left the migration lock held")
                .unwrap();
                $cleanup;
            }
        }
    };
}

migration_tests!(sqlite, finsec_testkit::sqlite, sqlx::SqlitePool, |db| drop(
    db
));
migration_tests!(postgres, finsec_testkit::postgres, sqlx::PgPool, |db| db
    .cleanup()
    .await);
