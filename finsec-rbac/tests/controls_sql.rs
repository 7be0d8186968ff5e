//! The SQL control store on SQLite and PostgreSQL: conformance suite, and a change made
//! through one pool seen by a watcher on another (two instances) at its next refresh.

#![cfg(test)]

use finsec_rbac::controls::testing::control_store_conformance;
use finsec_rbac::controls::{
    Control, ControlStore, ControlWatcher, HaltScope, NewControl, SqlControlStore,
};
use time::OffsetDateTime;

async fn two_instances<S: ControlStore>(a: S, b: S) {
    let watcher_b = ControlWatcher::new(b);
    watcher_b.refresh().await.unwrap();
    let now = OffsetDateTime::now_utc();
    let halt = NewControl::new(
        Control::Halt(HaltScope::instrument("TWO-INSTANCES").unwrap()),
        "test",
        "ops",
    )
    .unwrap();
    let record = a.insert(&halt, now).await.unwrap();
    assert!(watcher_b.refresh().await.unwrap(), "B sees a new version");
    assert!(
        watcher_b
            .current()
            .halt_for("X", "TWO-INSTANCES", now)
            .is_some()
    );
    assert!(a.lift(record.id, "ops-2", now).await.unwrap());
    assert!(watcher_b.refresh().await.unwrap());
    assert!(
        watcher_b
            .current()
            .halt_for("X", "TWO-INSTANCES", now)
            .is_none()
    );
}

#[tokio::test]
async fn sqlite_control_store() {
    let db = finsec_testkit::sqlite().await;
    finsec_rbac::sqlite::migrate(db.pool()).await.unwrap();
    finsec_rbac::sqlite::migrate(db.pool()).await.unwrap();
    let store = SqlControlStore::new(db.pool().clone());
    control_store_conformance(&store).await;
    control_store_conformance(&store).await;
    let other = db.new_pool().await;
    two_instances(store, SqlControlStore::new(other)).await;
}

#[tokio::test]
async fn postgres_control_store() {
    let db = finsec_testkit::postgres().await;
    finsec_rbac::postgres::migrate(db.pool()).await.unwrap();
    finsec_rbac::postgres::migrate(db.pool()).await.unwrap();
    let store = SqlControlStore::new(db.pool().clone());
    control_store_conformance(&store).await;
    control_store_conformance(&store).await;
    let other = db.new_pool().await;
    two_instances(store, SqlControlStore::new(other)).await;
    db.cleanup().await;
}
