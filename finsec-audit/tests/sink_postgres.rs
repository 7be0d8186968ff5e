#![cfg(test)]
//! `PgSink` on real PostgreSQL schemas: the conformance suites, two pools standing for two
//! processes, every tampering `verify` names, and the log through `AuditLog`.

use finsec_audit::postgres::{PgSink, migrate};
use finsec_audit::testing::{
    audit_query_conformance, audit_sink_conformance, audit_sink_two_instances, tamper_conformance,
};
use finsec_testkit::PgTestDb;

async fn db() -> PgTestDb {
    let db = finsec_testkit::postgres().await;
    migrate(db.pool()).await.unwrap();
    db
}

#[tokio::test]
async fn postgres_sink_conformance() {
    let db = db().await;
    let sink = PgSink::new(db.pool().clone());
    audit_sink_conformance(&sink).await;
    // Again on the non-empty log, from a second pool that has no cached tree edge.
    audit_sink_conformance(&PgSink::new(db.new_pool().await)).await;
    audit_sink_conformance(&sink).await;
    db.cleanup().await;
}

#[tokio::test]
async fn postgres_query_conformance() {
    let db = db().await;
    let sink = PgSink::new(db.pool().clone());
    audit_query_conformance(&sink).await;
    audit_query_conformance(&sink).await;
    db.cleanup().await;
}

#[tokio::test]
async fn postgres_sink_two_instances() {
    let db = db().await;
    let a = PgSink::new(db.pool().clone());
    let b = PgSink::new(db.new_pool().await);
    audit_sink_two_instances(&a, &b).await;
    audit_sink_two_instances(&b, &a).await;
    b.pool().close().await;
    db.cleanup().await;
}

#[tokio::test]
async fn postgres_migrate_is_idempotent() {
    let db = db().await;
    migrate(db.pool()).await.unwrap();
    let size: i64 = sqlx::query_scalar("SELECT size FROM finsec_audit_head")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(size, 0);
    db.cleanup().await;
}

#[tokio::test]
async fn postgres_tampering_is_found() {
    let mut dbs = Vec::new();
    for _ in 0..11 {
        dbs.push(db().await);
    }
    let mut pools = dbs.iter().map(|d| d.pool().clone());
    let ran = tamper_conformance(|| {
        let pool = pools.next().unwrap();
        async move { PgSink::new(pool) }
    })
    .await;
    // Every tampering but a second event at one position, which the primary key forbids.
    assert_eq!(ran, 9);
    for db in dbs {
        db.cleanup().await;
    }
}
