//! The helpers against the real servers: isolation, settings and cleanup.

#![cfg(test)]

use sqlx::Row;

#[tokio::test]
async fn postgres_schema_is_fresh_isolated_and_dropped() {
    let a = finsec_testkit::postgres().await;
    let b = finsec_testkit::postgres().await;
    assert!(a.schema().starts_with("finsec_test_"));
    assert_ne!(a.schema(), b.schema());

    let current: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(a.pool())
        .await
        .unwrap();
    assert_eq!(current, a.schema());

    sqlx::query("CREATE TABLE t (id BIGINT PRIMARY KEY)")
        .execute(a.pool())
        .await
        .unwrap();
    sqlx::query("INSERT INTO t (id) VALUES ($1)")
        .bind(7_i64)
        .execute(a.pool())
        .await
        .unwrap();
    // A second pool on the same schema sees the row; the other test's schema does not.
    let second = a.new_pool().await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
        .fetch_one(&second)
        .await
        .unwrap();
    assert_eq!(n, 1);
    second.close().await;
    assert!(
        sqlx::query("SELECT id FROM t")
            .fetch_all(b.pool())
            .await
            .is_err()
    );

    let schema = a.schema().to_owned();
    a.cleanup().await;
    let check = finsec_testkit::postgres().await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname = $1")
        .bind(&schema)
        .fetch_one(check.pool())
        .await
        .unwrap();
    assert_eq!(left, 0, "schema {schema} was not dropped");
    b.cleanup().await;
    check.cleanup().await;
}

#[tokio::test]
async fn sqlite_file_uses_durable_settings() {
    let db = finsec_testkit::sqlite().await;
    assert!(db.path().exists());
    let row = sqlx::query("PRAGMA journal_mode")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>(0).to_lowercase(), "wal");
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(sync, 2, "synchronous must be FULL (2)");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(fk, 1);

    sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        .execute(db.pool())
        .await
        .unwrap();
    sqlx::query("INSERT INTO t (id) VALUES (?)")
        .bind(1_i64)
        .execute(db.pool())
        .await
        .unwrap();
    let other = db.new_pool().await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
        .fetch_one(&other)
        .await
        .unwrap();
    assert_eq!(n, 1);
    other.close().await;

    let other_db = finsec_testkit::sqlite().await;
    assert_ne!(db.path(), other_db.path());

    let dir = db.path().parent().unwrap().to_owned();
    db.pool().close().await;
    drop(db);
    assert!(!dir.exists(), "temporary directory was not removed");
}

#[tokio::test]
async fn redis_prefix_cleanup_deletes_only_its_keys() {
    let t = finsec_testkit::redis().await;
    let other = finsec_testkit::redis().await;
    assert!(t.prefix.starts_with("finsec-test:") && t.prefix.ends_with(':'));
    assert_ne!(t.prefix, other.prefix);
    assert!(finsec_testkit::redis_url().starts_with("redis://"));

    let mut conn = t.conn.clone();
    for i in 0..2500 {
        let _: () = redis::cmd("SET")
            .arg(t.key(&format!("k{i}")))
            .arg(i)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let _: () = redis::cmd("SET")
        .arg(other.key("keep"))
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();

    assert_eq!(t.clone().cleanup().await, 2500);
    let exists: u64 = redis::cmd("EXISTS")
        .arg(t.key("k0"))
        .arg(t.key("k2499"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(exists, 0);
    let kept: u64 = redis::cmd("EXISTS")
        .arg(other.key("keep"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(kept, 1);
    assert_eq!(other.cleanup().await, 1);
    assert_eq!(t.cleanup().await, 0);
}
