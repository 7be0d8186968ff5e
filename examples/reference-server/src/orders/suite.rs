//! The [`OrderStore`] contract, run on both backends by `crate::storage::suite`.

use std::sync::Arc;

use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::accounts::{EntitlementStore, Granted, MAX_ACCOUNTS_PER_USER};
use super::new_order_id;
use super::store::{LIST_LIMIT, NOTIONAL_DAYS_KEPT, NewOrderRow, Order, OrderStatus, OrderStore};
use crate::storage::sql::{StoreError, is_unique_violation};
use crate::storage::suite::new_user;
use crate::storage::{Storage, Stores};
use finsec_validate::request::AccountId;

const NOW: OffsetDateTime = datetime!(2026-03-02 09:30:00.123456 UTC);

/// Checks every method of `stores.orders`; `storage` creates the users.
pub(crate) async fn run(stores: &Stores, storage: &Storage) {
    let orders = &stores.orders;
    insert_returns_the_stored_order(orders.as_ref(), storage).await;
    ids_and_owners_are_checked(orders.as_ref(), storage).await;
    lists_are_per_owner_newest_first_and_bounded(orders.as_ref(), storage).await;
    transitions_are_conditional(orders.as_ref(), storage).await;
    concurrent_transitions_move_once(orders, storage).await;
    idempotency_keys_are_unique_per_owner(orders.as_ref(), storage).await;
    notional_totals_add_up_per_scope_and_day(orders.as_ref()).await;
    concurrent_notional_additions_are_all_counted(orders).await;
    let entitlements = &stores.entitlements;
    entitlements_are_granted_listed_and_revoked(entitlements.as_ref(), storage).await;
    a_grant_needs_an_existing_user(entitlements.as_ref()).await;
    concurrent_grants_add_once(entitlements, storage).await;
    grants_stop_at_the_bound(entitlements.as_ref(), storage).await;
}

/// A limit order of `owner` placed at `at`, accepted.
fn limit(owner: Uuid, at: OffsetDateTime) -> NewOrderRow {
    NewOrderRow {
        id: new_order_id(at),
        owner,
        account_id: "ACC-1".to_owned(),
        symbol: "AAPL".to_owned(),
        side: "buy",
        order_type: "limit",
        quantity: "100".to_owned(),
        limit_price: Some("187.25".to_owned()),
        notes: Some("<b>hedge</b>".to_owned()),
        status: OrderStatus::Accepted,
        approval_id: None,
        created_at: at,
        idempotency: None,
    }
}

/// A market order of `owner` placed at `at`, waiting for approval.
fn pending(owner: Uuid, at: OffsetDateTime) -> NewOrderRow {
    NewOrderRow {
        side: "sell",
        order_type: "market",
        limit_price: None,
        notes: None,
        status: OrderStatus::PendingApproval,
        approval_id: Some(Uuid::now_v7().simple().to_string()),
        ..limit(owner, at)
    }
}

async fn insert_returns_the_stored_order(orders: &dyn OrderStore, storage: &Storage) {
    let owner = new_user(storage).await;
    let new = limit(owner, NOW);
    let stored = orders.insert(&new).await.unwrap();
    assert_eq!(
        stored,
        Order {
            id: new.id.to_string(),
            owner: owner.to_string(),
            account_id: "ACC-1".to_owned(),
            symbol: "AAPL".to_owned(),
            side: "buy".to_owned(),
            order_type: "limit".to_owned(),
            quantity: "100".to_owned(),
            limit_price: Some("187.25".to_owned()),
            notes: Some("<b>hedge</b>".to_owned()),
            status: OrderStatus::Accepted,
            approval_id: None,
            created_at: "2026-03-02T09:30:00.123456Z".to_owned(),
            updated_at: "2026-03-02T09:30:00.123456Z".to_owned(),
        }
    );
    assert_eq!(orders.get(new.id).await.unwrap(), Some(stored));

    let new = pending(owner, NOW);
    let stored = orders.insert(&new).await.unwrap();
    assert_eq!(stored.status, OrderStatus::PendingApproval);
    assert_eq!(stored.approval_id, new.approval_id);
    assert_eq!(
        (stored.limit_price.as_deref(), stored.notes.as_deref()),
        (None, None)
    );
    assert_eq!(orders.get(new.id).await.unwrap(), Some(stored));

    assert_eq!(orders.get(Uuid::now_v7()).await.unwrap(), None);
}

async fn ids_and_owners_are_checked(orders: &dyn OrderStore, storage: &Storage) {
    let owner = new_user(storage).await;
    let first = pending(owner, NOW);
    let stored = orders.insert(&first).await.unwrap();
    // The same id again is refused and changes nothing.
    let again = NewOrderRow {
        symbol: "MSFT".to_owned(),
        ..limit(owner, NOW)
    };
    let again = NewOrderRow {
        id: first.id,
        ..again
    };
    let err = orders.insert(&again).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Database(e) if is_unique_violation(e)),
        "{err}"
    );
    // So is the same approval request for a second order.
    let twin = NewOrderRow {
        approval_id: first.approval_id.clone(),
        ..pending(owner, NOW)
    };
    let err = orders.insert(&twin).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Database(e) if is_unique_violation(e)),
        "{err}"
    );
    assert_eq!(orders.get(twin.id).await.unwrap(), None);
    assert_eq!(orders.get(first.id).await.unwrap(), Some(stored));
    // The owner must be a user.
    let orphan = limit(Uuid::now_v7(), NOW);
    assert!(matches!(
        orders.insert(&orphan).await,
        Err(StoreError::Database(_))
    ));
    assert_eq!(orders.get(orphan.id).await.unwrap(), None);
}

async fn lists_are_per_owner_newest_first_and_bounded(orders: &dyn OrderStore, storage: &Storage) {
    let alice = new_user(storage).await;
    let bob = new_user(storage).await;
    assert!(orders.list_by_owner(alice).await.unwrap().is_empty());
    let older = orders.insert(&limit(alice, NOW)).await.unwrap();
    let newer = orders
        .insert(&pending(alice, NOW + Duration::seconds(1)))
        .await
        .unwrap();
    let oldest = orders
        .insert(&limit(alice, NOW - Duration::seconds(1)))
        .await
        .unwrap();
    // Placed at the same instant: the greater id first.
    let tied_at = NOW + Duration::seconds(2);
    let mut tied = [
        orders.insert(&limit(alice, tied_at)).await.unwrap(),
        orders.insert(&limit(alice, tied_at)).await.unwrap(),
    ];
    tied.sort_by(|a, b| b.id.cmp(&a.id));
    let [first, second] = tied;
    let bobs = orders.insert(&limit(bob, NOW)).await.unwrap();
    assert_eq!(
        orders.list_by_owner(alice).await.unwrap(),
        [first, second, newer, older, oldest]
    );
    assert_eq!(orders.list_by_owner(bob).await.unwrap(), [bobs]);
    assert!(
        orders
            .list_by_owner(Uuid::now_v7())
            .await
            .unwrap()
            .is_empty()
    );

    // At most LIST_LIMIT, the newest.
    let carol = new_user(storage).await;
    let limit_count = usize::try_from(LIST_LIMIT).unwrap();
    let mut ids = Vec::new();
    for i in 0..=LIST_LIMIT {
        let stored = orders
            .insert(&limit(carol, NOW + Duration::milliseconds(i)))
            .await
            .unwrap();
        ids.push(stored.id);
    }
    let listed: Vec<String> = orders
        .list_by_owner(carol)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.id)
        .collect();
    ids.reverse();
    ids.truncate(limit_count);
    assert_eq!(listed, ids);
}

async fn transitions_are_conditional(orders: &dyn OrderStore, storage: &Storage) {
    let owner = new_user(storage).await;
    let order = orders.insert(&pending(owner, NOW)).await.unwrap();
    let id = Uuid::parse_str(&order.id).unwrap();
    let later = NOW + Duration::minutes(5);

    // Not in `from`: nothing changes.
    assert!(
        !orders
            .transition(id, OrderStatus::Accepted, OrderStatus::Rejected, later)
            .await
            .unwrap()
    );
    assert_eq!(orders.get(id).await.unwrap().as_ref(), Some(&order));

    assert!(
        orders
            .transition(
                id,
                OrderStatus::PendingApproval,
                OrderStatus::Accepted,
                later
            )
            .await
            .unwrap()
    );
    let moved = orders.get(id).await.unwrap().unwrap();
    assert_eq!(moved.status, OrderStatus::Accepted);
    assert_eq!(moved.updated_at, "2026-03-02T09:35:00.123456Z");
    assert_eq!(moved.created_at, order.created_at);
    assert_eq!(
        Order {
            status: order.status,
            updated_at: order.updated_at.clone(),
            ..moved.clone()
        },
        order
    );

    // Moved already: a second transition from the old status fails.
    assert!(
        !orders
            .transition(
                id,
                OrderStatus::PendingApproval,
                OrderStatus::Expired,
                later
            )
            .await
            .unwrap()
    );
    assert_eq!(orders.get(id).await.unwrap(), Some(moved));

    // An order that does not exist never moves.
    assert!(
        !orders
            .transition(
                Uuid::now_v7(),
                OrderStatus::PendingApproval,
                OrderStatus::Accepted,
                later
            )
            .await
            .unwrap()
    );
}

async fn concurrent_transitions_move_once(orders: &Arc<dyn OrderStore>, storage: &Storage) {
    let owner = new_user(storage).await;
    for _ in 0..8 {
        let order = orders.insert(&pending(owner, NOW)).await.unwrap();
        let id = Uuid::parse_str(&order.id).unwrap();
        let move_to = |to: OrderStatus| {
            let orders = Arc::clone(orders);
            tokio::spawn(async move {
                orders
                    .transition(id, OrderStatus::PendingApproval, to, NOW)
                    .await
                    .unwrap()
            })
        };
        let (a, b) = (
            move_to(OrderStatus::Accepted),
            move_to(OrderStatus::Rejected),
        );
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        assert!(a ^ b, "exactly one concurrent transition wins: {a} {b}");
        let status = orders.get(id).await.unwrap().unwrap().status;
        let winner = if a {
            OrderStatus::Accepted
        } else {
            OrderStatus::Rejected
        };
        assert_eq!(status, winner);
    }
}

async fn idempotency_keys_are_unique_per_owner(orders: &dyn OrderStore, storage: &Storage) {
    use super::store::Idempotency;
    let (alice, bob) = (new_user(storage).await, new_user(storage).await);
    let keyed = |owner, key: &str, digest: u8| NewOrderRow {
        idempotency: Some(Idempotency {
            key: key.to_owned(),
            request_sha256: [digest; 32],
        }),
        ..limit(owner, NOW)
    };
    assert_eq!(orders.find_idempotent(alice, "k-1").await.unwrap(), None);
    let first = orders.insert(&keyed(alice, "k-1", 1)).await.unwrap();
    assert_eq!(
        orders.find_idempotent(alice, "k-1").await.unwrap(),
        Some((first.clone(), [1; 32]))
    );
    // The same key again for the same owner is refused, whatever the body.
    for digest in [1, 2] {
        let err = orders
            .insert(&keyed(alice, "k-1", digest))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Database(e) if is_unique_violation(e)),
            "{err}"
        );
    }
    // Another owner's key of the same text is theirs, and orders without a key are many.
    let bobs = orders.insert(&keyed(bob, "k-1", 3)).await.unwrap();
    assert_eq!(
        orders.find_idempotent(bob, "k-1").await.unwrap(),
        Some((bobs, [3; 32]))
    );
    orders.insert(&limit(alice, NOW)).await.unwrap();
    orders.insert(&limit(alice, NOW)).await.unwrap();
    assert_eq!(orders.find_idempotent(alice, "k-2").await.unwrap(), None);
    assert_eq!(
        orders
            .find_idempotent(alice, "k-1")
            .await
            .unwrap()
            .map(|(o, _)| o),
        Some(first)
    );
}

fn acc(text: &str) -> AccountId {
    text.parse().unwrap()
}

async fn entitlements_are_granted_listed_and_revoked(
    store: &dyn EntitlementStore,
    storage: &Storage,
) {
    let (alice, bob, admin) = (
        new_user(storage).await,
        new_user(storage).await,
        new_user(storage).await,
    );
    assert!(store.accounts_of(alice).await.unwrap().is_empty());
    assert!(!store.is_entitled(alice, &acc("ACC-1")).await.unwrap());
    // Byte order, whatever the collation: upper case before lower case, `-` before digits.
    for (account, by) in [("b_2", None), ("ACC-1", Some(admin)), ("A-9", None)] {
        assert_eq!(
            store.grant(alice, &acc(account), by, NOW).await.unwrap(),
            Granted::Added
        );
    }
    assert_eq!(
        store
            .grant(alice, &acc("ACC-1"), None, NOW + Duration::hours(1))
            .await
            .unwrap(),
        Granted::Existing,
        "a second grant changes nothing"
    );
    let listed = store.accounts_of(alice).await.unwrap();
    let names: Vec<&str> = listed.iter().map(|e| e.account_id.as_str()).collect();
    assert_eq!(names, ["A-9", "ACC-1", "b_2"]);
    assert_eq!(listed[1].granted_by, Some(admin), "granted_by round-trips");
    assert_eq!(listed[1].granted_at, NOW, "the first grant's time is kept");
    assert_eq!(listed[0].granted_by, None);
    assert!(store.is_entitled(alice, &acc("ACC-1")).await.unwrap());
    assert!(
        !store.is_entitled(alice, &acc("acc-1")).await.unwrap(),
        "account ids are case-sensitive"
    );
    assert!(!store.is_entitled(bob, &acc("ACC-1")).await.unwrap());
    assert!(store.accounts_of(bob).await.unwrap().is_empty());

    assert!(store.revoke(alice, &acc("ACC-1")).await.unwrap());
    assert!(!store.revoke(alice, &acc("ACC-1")).await.unwrap());
    assert!(!store.revoke(bob, &acc("A-9")).await.unwrap());
    assert!(!store.is_entitled(alice, &acc("ACC-1")).await.unwrap());
    assert_eq!(store.accounts_of(alice).await.unwrap().len(), 2);
}

async fn a_grant_needs_an_existing_user(store: &dyn EntitlementStore) {
    let nobody = Uuid::now_v7();
    match store.grant(nobody, &acc("ACC-1"), None, NOW).await {
        Err(StoreError::Database(_)) => {}
        other => panic!("a grant to a missing user: {other:?}"),
    }
    assert!(store.accounts_of(nobody).await.unwrap().is_empty());
}

async fn concurrent_grants_add_once(store: &Arc<dyn EntitlementStore>, storage: &Storage) {
    let user = new_user(storage).await;
    for i in 0..8 {
        let account = acc(&format!("RACE-{i}"));
        let grant = || {
            let store = Arc::clone(store);
            let account = account.clone();
            tokio::spawn(async move { store.grant(user, &account, None, NOW).await.unwrap() })
        };
        let (a, b) = (grant(), grant());
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        let added = [a, b].iter().filter(|g| **g == Granted::Added).count();
        assert_eq!(
            added, 1,
            "exactly one of two racing grants adds: {a:?} {b:?}"
        );
        assert!([a, b].contains(&Granted::Existing));
    }
    assert_eq!(store.accounts_of(user).await.unwrap().len(), 8);
}

async fn grants_stop_at_the_bound(store: &dyn EntitlementStore, storage: &Storage) {
    let user = new_user(storage).await;
    for i in 0..MAX_ACCOUNTS_PER_USER {
        let granted = store
            .grant(user, &acc(&format!("A{i:04}")), None, NOW)
            .await
            .unwrap();
        assert_eq!(granted, Granted::Added, "grant {i}");
    }
    assert_eq!(
        store
            .grant(user, &acc("ONE-MORE"), None, NOW)
            .await
            .unwrap(),
        Granted::LimitReached
    );
    assert_eq!(
        store.grant(user, &acc("A0000"), None, NOW).await.unwrap(),
        Granted::Existing,
        "a held account is still reported as held at the bound"
    );
    assert!(!store.is_entitled(user, &acc("ONE-MORE")).await.unwrap());
    assert!(store.revoke(user, &acc("A0000")).await.unwrap());
    assert_eq!(
        store
            .grant(user, &acc("ONE-MORE"), None, NOW)
            .await
            .unwrap(),
        Granted::Added,
        "room again after a revocation"
    );
    assert_eq!(
        store.accounts_of(user).await.unwrap().len(),
        MAX_ACCOUNTS_PER_USER
    );
}

fn dec(text: &str) -> rust_decimal::Decimal {
    text.parse().unwrap()
}

async fn notional_totals_add_up_per_scope_and_day(orders: &dyn OrderStore) {
    let scope = format!("user:{}", Uuid::now_v7());
    let other = format!("account:{}", Uuid::now_v7().simple());
    let day = 20_000;
    assert_eq!(
        orders
            .add_notional(&scope, day, dec("1000.50"))
            .await
            .unwrap(),
        dec("1000.5")
    );
    assert_eq!(
        orders.add_notional(&scope, day, dec("0.25")).await.unwrap(),
        dec("1000.75")
    );
    // Another scope, another day: totals of their own.
    assert_eq!(
        orders.add_notional(&other, day, dec("7")).await.unwrap(),
        dec("7")
    );
    assert_eq!(
        orders
            .add_notional(&scope, day + 1, dec("1"))
            .await
            .unwrap(),
        dec("1")
    );
    // Taking back an addition.
    assert_eq!(
        orders
            .add_notional(&scope, day, dec("-0.25"))
            .await
            .unwrap(),
        dec("1000.5")
    );
    // Exact decimals, however many places.
    assert_eq!(
        orders
            .add_notional(&scope, day, dec("0.000000000001"))
            .await
            .unwrap(),
        dec("1000.500000000001")
    );
    // A day's first addition forgets the scope's totals older than the days kept.
    let later = day + 1 + NOTIONAL_DAYS_KEPT + 1;
    assert_eq!(
        orders.add_notional(&scope, later, dec("2")).await.unwrap(),
        dec("2")
    );
    assert_eq!(
        orders.add_notional(&scope, day, dec("3")).await.unwrap(),
        dec("3"),
        "the old day's total was deleted"
    );
    assert_eq!(
        orders.add_notional(&other, day, dec("1")).await.unwrap(),
        dec("8"),
        "other scopes are untouched"
    );
}

async fn concurrent_notional_additions_are_all_counted(orders: &Arc<dyn OrderStore>) {
    let scope = format!("account:{}", Uuid::now_v7().simple());
    let mut adders = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let orders = Arc::clone(orders);
        let scope = scope.clone();
        adders.spawn(async move {
            orders
                .add_notional(&scope, 20_000, dec("100"))
                .await
                .unwrap()
        });
    }
    let mut seen: Vec<rust_decimal::Decimal> = adders.join_all().await;
    seen.sort_unstable();
    let expected: Vec<rust_decimal::Decimal> = (1..=16)
        .map(|i| rust_decimal::Decimal::from(i * 100))
        .collect();
    assert_eq!(seen, expected, "each addition saw every one before it");
}
