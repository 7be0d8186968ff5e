#![cfg(test)]
//! `SqliteSink` on real SQLite files: the conformance suites, two pools standing for two
//! processes, every tampering `verify` names, and the log through `AuditLog`.

use finsec_audit::sqlite::{SqliteSink, migrate};
use finsec_audit::testing::{
    audit_query_conformance, audit_sink_conformance, audit_sink_two_instances, tamper_conformance,
};
use finsec_testkit::SqliteTestDb;

async fn db() -> SqliteTestDb {
    let db = finsec_testkit::sqlite().await;
    migrate(db.pool()).await.unwrap();
    db
}

#[tokio::test]
async fn sqlite_sink_conformance() {
    let db = db().await;
    let sink = SqliteSink::new(db.pool().clone());
    audit_sink_conformance(&sink).await;
    // Again on the non-empty log, from a second pool that has no cached tree edge.
    audit_sink_conformance(&SqliteSink::new(db.new_pool().await)).await;
    audit_sink_conformance(&sink).await;
}

#[tokio::test]
async fn sqlite_query_conformance() {
    let db = db().await;
    let sink = SqliteSink::new(db.pool().clone());
    audit_query_conformance(&sink).await;
    audit_query_conformance(&sink).await;
}

#[tokio::test]
async fn sqlite_sink_two_instances() {
    let db = db().await;
    let a = SqliteSink::new(db.pool().clone());
    let b = SqliteSink::new(db.new_pool().await);
    audit_sink_two_instances(&a, &b).await;
    audit_sink_two_instances(&b, &a).await;
}

#[tokio::test]
async fn sqlite_migrate_is_idempotent() {
    let db = db().await;
    migrate(db.pool()).await.unwrap();
    let size: i64 = sqlx::query_scalar("SELECT size FROM finsec_audit_head")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(size, 0);
}

#[tokio::test]
async fn sqlite_tampering_is_found() {
    let mut dbs = Vec::new();
    for _ in 0..11 {
        dbs.push(db().await);
    }
    let mut pools = dbs.iter().map(|d| d.pool().clone());
    let ran = tamper_conformance(|| {
        let pool = pools.next().unwrap();
        async move { SqliteSink::new(pool) }
    })
    .await;
    // Every tampering but a second event at one position, which the primary key forbids.
    assert_eq!(ran, 9);
}
