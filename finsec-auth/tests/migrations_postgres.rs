//! finsec-crypto, finsec-auth and finsec-rbac migrations in one PostgreSQL schema: each crate's
//! one `migrate` runs in any order, again and again, beside the others' versions, and a
//! changed migration of the crate itself is still refused.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed query must fail the test"
)]

use std::collections::BTreeSet;

use sqlx::postgres::PgPool;

async fn recorded(pool: &PgPool) -> BTreeSet<i64> {
    let rows: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(pool)
            .await
            .unwrap();
    assert!(rows.iter().all(|(_, ok)| *ok), "{rows:?}");
    rows.into_iter().map(|(v, _)| v).collect()
}

fn versions(m: &sqlx::migrate::Migrator) -> BTreeSet<i64> {
    m.iter().map(|m| m.version).collect()
}

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn crates_migrate_in_any_order_into_one_database() {
    let db = finsec_testkit::postgres().await;
    let pool = db.pool();
    let crypto = versions(&finsec_crypto::postgres::migrator());
    let auth = versions(&finsec_auth::postgres::migrator());
    let rbac = versions(&finsec_rbac::postgres::migrator());
    assert!(!crypto.is_empty() && !auth.is_empty() && !rbac.is_empty());

    // A, then B: B ignores A's versions.
    finsec_auth::postgres::migrate(pool).await.unwrap();
    assert_eq!(recorded(pool).await, auth);
    finsec_crypto::postgres::migrate(pool).await.unwrap();
    // Then A again: A ignores B's versions and has nothing left to do.
    finsec_auth::postgres::migrate(pool).await.unwrap();
    finsec_rbac::postgres::migrate(pool).await.unwrap();
    finsec_crypto::postgres::migrate(pool).await.unwrap();
    finsec_auth::postgres::migrate(pool).await.unwrap();
    finsec_rbac::postgres::migrate(pool).await.unwrap();

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
         VALUES (90999, 'application table', true, '\\x00'::bytea, 0)",
    )
    .execute(pool)
    .await
    .unwrap();
    finsec_auth::postgres::migrate(pool).await.unwrap();
    finsec_crypto::postgres::migrate(pool).await.unwrap();
    finsec_rbac::postgres::migrate(pool).await.unwrap();
    db.cleanup().await;
}

#[tokio::test]
async fn a_changed_migration_of_the_crate_itself_is_still_refused() {
    let db = finsec_testkit::postgres().await;
    let pool = db.pool();
    finsec_crypto::postgres::migrate(pool).await.unwrap();
    finsec_auth::postgres::migrate(pool).await.unwrap();
    sqlx::query("UPDATE _sqlx_migrations SET checksum = '\\x00'::bytea WHERE version = 20001")
        .execute(pool)
        .await
        .unwrap();
    let err = finsec_auth::postgres::migrate(pool).await.unwrap_err();
    assert!(
        matches!(
            err,
            finsec_auth::Error::Migrate(sqlx::migrate::MigrateError::VersionMismatch(20001))
        ),
        "{err:?}"
    );
    // The other crate does not look at finsec-auth's versions, and the failed run left no
    // connection holding sqlx's migration lock (an advisory lock per database), which would
    // make this wait forever.
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        finsec_crypto::postgres::migrate(pool),
    )
    .await
    .expect("the failed migration left the migration lock held")
    .unwrap();
    db.cleanup().await;
}
