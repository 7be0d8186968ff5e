//! The report store's behavioural suite on memory, SQLite and PostgreSQL, and the races
//! that decide one winner for one version of one reference.

#![cfg(test)]

use std::sync::Arc;

use finsec_compliance::mifid::MemoryReportStore;
use finsec_compliance::mifid::store::SqlReportStore;
use finsec_compliance::mifid::store::testing::{
    run_report_store_race_suite, run_report_store_suite,
};

#[tokio::test]
async fn memory_report_store() {
    let store = MemoryReportStore::new();
    run_report_store_suite(&store).await;
    let store = Arc::new(MemoryReportStore::new());
    run_report_store_race_suite(store.as_ref()).await;
}

#[tokio::test]
async fn sqlite_report_store() {
    let db = finsec_testkit::sqlite().await;
    finsec_compliance::sqlite::migrate(db.pool()).await.unwrap();
    finsec_compliance::sqlite::migrate(db.pool()).await.unwrap();
    run_report_store_suite(&SqlReportStore::new(db.pool().clone())).await;
    let race = finsec_testkit::sqlite().await;
    finsec_compliance::sqlite::migrate(race.pool())
        .await
        .unwrap();
    run_report_store_race_suite(&SqlReportStore::new(race.pool().clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_report_store() {
    let db = finsec_testkit::postgres().await;
    finsec_compliance::postgres::migrate(db.pool())
        .await
        .unwrap();
    finsec_compliance::postgres::migrate(db.pool())
        .await
        .unwrap();
    run_report_store_suite(&SqlReportStore::new(db.pool().clone())).await;
    db.cleanup().await;
    let race = finsec_testkit::postgres().await;
    finsec_compliance::postgres::migrate(race.pool())
        .await
        .unwrap();
    run_report_store_race_suite(&SqlReportStore::new(race.pool().clone())).await;
    race.cleanup().await;
}
