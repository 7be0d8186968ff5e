use std::net::IpAddr;

use time::Duration;

use super::*;

fn new(control: Control) -> NewControl {
    NewControl::new(control, "incident 42", "ops").unwrap()
}

#[test]
fn blocks_canonicalise_their_network() {
    let mapped = Control::block("::ffff:192.0.2.0/120".parse().unwrap());
    assert_eq!(mapped, Control::Block("192.0.2.0/24".parse().unwrap()));
    let host_bits = Control::block("198.51.100.77/24".parse().unwrap());
    assert_eq!(host_bits.target(), "198.51.100.0/24");
    let v6 = Control::block("2001:db8::1/64".parse().unwrap());
    assert_eq!(v6.target(), "2001:db8::/64");
}

#[test]
fn controls_round_trip_through_their_parts() {
    for control in [
        Control::suspension("0192f0c1-7a8e-7000-8000-000000000001").unwrap(),
        Control::block("203.0.113.0/24".parse().unwrap()),
        Control::Halt(HaltScope::Global),
        Control::Halt(HaltScope::account("ACC-1").unwrap()),
        Control::Halt(HaltScope::instrument("US0378331005").unwrap()),
        Control::Halt(HaltScope::instrument("A:B").unwrap()),
    ] {
        assert_eq!(
            Control::from_parts(control.kind(), &control.target()).unwrap(),
            control
        );
    }
    for (kind, target) in [
        ("halt", "everything"),
        ("halt", "account:"),
        ("block", "not a network"),
        ("suspension", ""),
        ("freeze", "x"),
    ] {
        assert!(matches!(
            Control::from_parts(kind, target),
            Err(ControlError::Corrupt(_))
        ));
    }
}

#[test]
fn bad_values_are_refused_with_the_field() {
    for (result, field) in [
        (Control::suspension("").map(|_| ()), "subject"),
        (HaltScope::account(&"A".repeat(129)).map(|_| ()), "account"),
        (HaltScope::instrument("X\u{7}").map(|_| ()), "instrument"),
        (
            NewControl::new(Control::Halt(HaltScope::Global), "", "ops").map(|_| ()),
            "reason",
        ),
        (
            NewControl::new(Control::Halt(HaltScope::Global), "line\nbreak", "ops").map(|_| ()),
            "reason",
        ),
        (
            NewControl::new(Control::Halt(HaltScope::Global), &"x".repeat(501), "ops").map(|_| ()),
            "reason",
        ),
        (
            NewControl::new(Control::Halt(HaltScope::Global), "why", "").map(|_| ()),
            "set_by",
        ),
    ] {
        let err = result.unwrap_err();
        assert!(err.to_string().contains(field), "{err}");
    }
}

#[tokio::test]
async fn the_set_answers_the_request_path() {
    let store = MemoryControlStore::new();
    let watcher = ControlWatcher::new(&store);
    let now = OffsetDateTime::now_utc();
    assert!(watcher.refresh().await.unwrap(), "the first refresh loads");
    assert!(!watcher.refresh().await.unwrap(), "nothing changed");
    assert!(watcher.current().is_empty());
    store
        .insert(&new(Control::suspension("u-1").unwrap()), now)
        .await
        .unwrap();
    store
        .insert(
            &new(Control::block("10.9.0.0/16".parse().unwrap()))
                .expiring_at(now + Duration::minutes(10)),
            now,
        )
        .await
        .unwrap();
    let account = store
        .insert(
            &new(Control::Halt(HaltScope::account("ACC-1").unwrap())),
            now,
        )
        .await
        .unwrap();
    store
        .insert(
            &new(Control::Halt(HaltScope::instrument("ACME").unwrap())),
            now,
        )
        .await
        .unwrap();
    assert!(watcher.refresh().await.unwrap());
    let set = watcher.current();
    assert!(set.suspension("u-1", now).is_some());
    assert!(set.suspension("u-2", now).is_none());
    let inside: IpAddr = "10.9.200.1".parse().unwrap();
    let mapped: IpAddr = "::ffff:10.9.1.1".parse().unwrap();
    let outside: IpAddr = "10.10.0.1".parse().unwrap();
    assert!(set.block(inside, now).is_some());
    assert!(set.block(mapped, now).is_some(), "IPv4-mapped IPv6");
    assert!(set.block(outside, now).is_none());
    assert!(
        set.block(inside, now + Duration::minutes(10)).is_none(),
        "expired without a reload"
    );
    assert_eq!(set.halt_for("ACC-1", "OTHER", now).unwrap().id, account.id);
    assert!(set.halt_for("ACC-2", "ACME", now).is_some());
    assert!(set.halt_for("ACC-2", "OTHER", now).is_none());
    // A global halt comes first.
    let global = store
        .insert(&new(Control::Halt(HaltScope::Global)), now)
        .await
        .unwrap();
    watcher.refresh().await.unwrap();
    assert_eq!(
        watcher.current().halt_for("ACC-1", "ACME", now).unwrap().id,
        global.id
    );
    // Lifted on the store: gone at the next refresh.
    assert!(store.lift(account.id, "ops-2", now).await.unwrap());
    assert!(watcher.refresh().await.unwrap());
    assert_eq!(
        watcher
            .current()
            .halt_for("ACC-1", "OTHER", now)
            .unwrap()
            .id,
        global.id
    );
}

/// A store that fails on demand.
struct Flaky {
    inner: MemoryControlStore,
    failing: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl ControlStore for Flaky {
    async fn insert(&self, new: &NewControl, now: OffsetDateTime) -> Result<ControlRecord> {
        self.inner.insert(new, now).await
    }
    async fn get(&self, id: i64) -> Result<Option<ControlRecord>> {
        self.inner.get(id).await
    }
    async fn active(&self, now: OffsetDateTime) -> Result<Vec<ControlRecord>> {
        self.inner.active(now).await
    }
    async fn recent(&self, limit: u32) -> Result<Vec<ControlRecord>> {
        self.inner.recent(limit).await
    }
    async fn request_lift(&self, id: i64, by: &str, now: OffsetDateTime) -> Result<bool> {
        self.inner.request_lift(id, by, now).await
    }
    async fn lift(&self, id: i64, by: &str, now: OffsetDateTime) -> Result<bool> {
        self.inner.lift(id, by, now).await
    }
    async fn version(&self) -> Result<i64> {
        if self.failing.load(Ordering::Relaxed) {
            return Err(ControlError::store("database unreachable"));
        }
        self.inner.version().await
    }
}

#[tokio::test]
async fn a_failing_store_keeps_the_last_set_in_force() {
    let store = Flaky {
        inner: MemoryControlStore::new(),
        failing: false.into(),
    };
    let now = OffsetDateTime::now_utc();
    store
        .insert(&new(Control::Halt(HaltScope::Global)), now)
        .await
        .unwrap();
    let watcher = ControlWatcher::new(store);
    watcher.refresh().await.unwrap();
    watcher.store().failing.store(true, Ordering::Relaxed);
    let err = watcher.refresh().await.unwrap_err();
    assert!(err.to_string().contains("database unreachable"), "{err}");
    assert!(watcher.current().halt_for("A", "B", now).is_some());
}

#[cfg(feature = "testing")]
#[tokio::test]
async fn memory_store_conformance() {
    let store = MemoryControlStore::new();
    testing::control_store_conformance(&store).await;
    testing::control_store_conformance(&store).await;
}
