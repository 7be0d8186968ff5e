//! Order entry against real databases (SQLite files and PostgreSQL schemas from
//! finsec-testkit), with the clock passed in.

use std::sync::Arc;

use finsec_rbac::{PermissionPattern, RoleName};
use rust_decimal::Decimal;
use serde_json::json;
use time::{Duration, OffsetDateTime, macros::datetime};

use super::*;
use crate::rbac::generated_policy;
use crate::rbac::roles::RoleStore;

const NOW: OffsetDateTime = datetime!(2026-03-02 09:30:00 UTC);

struct Env {
    orders: Orders,
    roles: Arc<dyn RoleStore>,
    storage: Storage,
}

impl Env {
    async fn new(storage: Storage, policy: Policy) -> Self {
        test_support::prepare(&storage).await;
        let stores = storage.stores();
        let roles = Arc::clone(&stores.roles);
        roles
            .set_default_role(&RoleName::new("viewer").unwrap())
            .await
            .unwrap();
        let orders = Orders::new(Access::new(policy), &stores, Decimal::from(1_000_000)).unwrap();
        Self {
            orders,
            roles,
            storage,
        }
    }

    async fn sqlite() -> (Self, finsec_testkit::SqliteTestDb) {
        Self::sqlite_with(generated()).await
    }

    async fn sqlite_with(policy: Policy) -> (Self, finsec_testkit::SqliteTestDb) {
        let db = finsec_testkit::sqlite().await;
        let env = Self::new(Storage::Sqlite(db.pool().clone()), policy).await;
        (env, db)
    }

    /// A new user with `roles` (besides the default role the trigger gives), entitled to
    /// the account `ACC-1`.
    async fn user(&self, name: &str, roles: &[&str]) -> Actor {
        let actor = self.user_without_accounts(name, roles).await;
        self.entitle(&actor, "ACC-1").await;
        actor
    }

    /// A new user with `roles`, entitled to no account.
    async fn user_without_accounts(&self, name: &str, roles: &[&str]) -> Actor {
        let id = test_support::create_user(&self.storage, name).await;
        for role in roles {
            self.roles
                .grant(id, &RoleName::new(role).unwrap(), NOW)
                .await
                .unwrap();
        }
        Actor::user(id.to_string())
    }

    async fn entitle(&self, actor: &Actor, account: &str) {
        let granted = self
            .orders
            .entitlements()
            .grant(uid(actor), &account.parse().unwrap(), None, NOW)
            .await
            .unwrap();
        assert_eq!(granted, accounts::Granted::Added);
    }

    async fn unentitle(&self, actor: &Actor, account: &str) {
        let revoked = self
            .orders
            .entitlements()
            .revoke(uid(actor), &account.parse().unwrap())
            .await
            .unwrap();
        assert!(revoked);
    }

    async fn place(&self, actor: &Actor, body: serde_json::Value) -> Result<Order> {
        let body = body.to_string();
        self.orders.place_at(actor, Ok(body.as_bytes()), NOW).await
    }
}

/// The user id of `actor`.
fn uid(actor: &Actor) -> Uuid {
    Uuid::parse_str(actor.user_id()).unwrap()
}

fn generated() -> Policy {
    Policy::from_toml(&generated_policy().unwrap()).unwrap()
}

fn limit(quantity: &str, price: &str) -> serde_json::Value {
    json!({
        "symbol": "AAPL", "side": "buy", "order_type": "limit", "quantity": quantity,
        "limit_price": price, "account_id": "ACC-1",
    })
}

fn forbidden(result: Result<impl fmt::Debug>) -> Denial {
    match result {
        Err(OrderError::Forbidden(denial)) => denial,
        other => panic!("expected 403, got {other:?}"),
    }
}

fn conflict(result: Result<impl fmt::Debug>) -> &'static str {
    match result {
        Err(OrderError::Conflict { code, .. }) => code,
        other => panic!("expected 409, got {other:?}"),
    }
}

#[tokio::test]
async fn small_orders_are_accepted_and_readable_by_their_owner_and_admins() {
    let (env, _db) = Env::sqlite().await;
    let alice = env.user("alice", &["trader"]).await;
    let bob = env.user("bob", &["trader"]).await;
    let root = env.user("root", &["admin"]).await;

    let order = env.place(&alice, limit("100", "187.25")).await.unwrap();
    assert_eq!(order.status, OrderStatus::Accepted);
    assert_eq!(order.owner, alice.user_id());
    assert_eq!(order.quantity, "100");
    assert_eq!(order.limit_price.as_deref(), Some("187.25"));
    assert_eq!(order.approval_id, None);
    assert_eq!(order.created_at, "2026-03-02T09:30:00Z");
    let id = Uuid::parse_str(&order.id).unwrap();
    assert_eq!(id.get_version_num(), 7);

    assert_eq!(env.orders.get(&alice, &order.id).await.unwrap(), order);
    assert!(matches!(
        env.orders.get(&bob, &order.id).await,
        Err(OrderError::NotFound)
    ));
    assert_eq!(env.orders.get(&root, &order.id).await.unwrap(), order);
    // Unknown and malformed ids look the same as unreadable ones.
    for id in [Uuid::now_v7().to_string(), "not-a-uuid".to_owned()] {
        assert!(matches!(
            env.orders.get(&root, &id).await,
            Err(OrderError::NotFound)
        ));
    }
    assert_eq!(env.orders.list(&alice).await.unwrap(), vec![order]);
    assert!(env.orders.list(&bob).await.unwrap().is_empty());
}

#[tokio::test]
async fn viewers_are_refused_before_their_body_is_read_and_grants_apply_at_once() {
    let (env, _db) = Env::sqlite().await;
    let vera = env.user("vera", &[]).await;
    // The trigger gave the default role.
    let roles = env.roles.roles_of(uid(&vera)).await.unwrap();
    assert_eq!(roles, [RoleName::new("viewer").unwrap()]);

    let denial = forbidden(env.place(&vera, limit("1", "1.00")).await);
    assert_eq!(denial.reason, "no_rule_matched");
    assert_eq!(denial.rule, None);
    // An invalid body does not turn the 403 into a 422.
    let denial = forbidden(
        env.orders
            .place_at(&vera, Ok(b"{not json".as_slice()), NOW)
            .await,
    );
    assert_eq!(denial.reason, "no_rule_matched");
    let denial = forbidden(
        env.orders
            .place_at(&vera, Err(OrderError::UnsupportedMediaType), NOW)
            .await,
    );
    assert_eq!(denial.reason, "no_rule_matched");
    // Viewers do not read orders, not even their own list.
    assert_eq!(
        forbidden(env.orders.list(&vera).await).reason,
        "no_rule_matched"
    );

    let trader = RoleName::new("trader").unwrap();
    assert!(env.roles.grant(uid(&vera), &trader, NOW).await.unwrap());
    assert!(!env.roles.grant(uid(&vera), &trader, NOW).await.unwrap());
    let order = env.place(&vera, limit("1", "1.00")).await.unwrap();
    assert_eq!(order.status, OrderStatus::Accepted);

    assert!(env.roles.revoke(uid(&vera), &trader).await.unwrap());
    assert!(!env.roles.revoke(uid(&vera), &trader).await.unwrap());
    forbidden(env.place(&vera, limit("1", "1.00")).await);
}

#[tokio::test]
async fn new_users_get_the_configured_default_role() {
    let (env, _db) = Env::sqlite().await;
    let analyst = RoleName::new("analyst").unwrap();
    env.roles.set_default_role(&analyst).await.unwrap();
    let ana = env.user("ana", &[]).await;
    assert_eq!(env.roles.roles_of(uid(&ana)).await.unwrap(), [analyst]);
    // Switching it back affects later users only.
    let viewer = RoleName::new("viewer").unwrap();
    env.roles.set_default_role(&viewer).await.unwrap();
    let val = env.user("val", &[]).await;
    assert_eq!(env.roles.roles_of(uid(&val)).await.unwrap(), [viewer]);
    assert_eq!(env.roles.roles_of(uid(&ana)).await.unwrap().len(), 1);
}

#[tokio::test]
async fn field_errors_come_back_together() {
    let (env, _db) = Env::sqlite().await;
    let alice = env.user("alice", &["trader"]).await;
    let body = json!({
        "symbol": "aapl!", "side": "hold", "order_type": "limit", "quantity": "-5",
        "limit_price": "10.005", "account_id": "ACC-1",
    });
    let Err(OrderError::Invalid(errors)) = env.place(&alice, body).await else {
        panic!("expected 422");
    };
    let got: Vec<(&str, &str)> = errors
        .iter()
        .map(|e| (e.path.as_str(), e.code.as_ref()))
        .collect();
    assert_eq!(
        got,
        [
            ("symbol", "lowercase"),
            ("side", "unknown_side"),
            ("quantity", "not_positive"),
            ("limit_price", "tick_size"),
        ]
    );
    assert!(env.orders.list(&alice).await.unwrap().is_empty());
}

#[tokio::test]
async fn large_orders_need_a_second_trader() {
    let (env, _db) = Env::sqlite().await;
    let alice = env.user("alice", &["trader"]).await;
    let bob = env.user("bob", &["trader"]).await;
    let vera = env.user("vera", &[]).await;

    // 1,000,000 exactly is not above the threshold.
    let at_threshold = env.place(&alice, limit("10000", "100.00")).await.unwrap();
    assert_eq!(at_threshold.status, OrderStatus::Accepted);

    let order = env.place(&alice, limit("10000", "100.01")).await.unwrap();
    assert_eq!(order.status, OrderStatus::PendingApproval);
    let approval_id = order.approval_id.clone().unwrap();
    assert_eq!(approval_id.len(), 32);

    let denial = forbidden(env.orders.approve_at(&alice, &order.id, NOW).await);
    assert_eq!(denial.reason, "self_approval");
    let denial = forbidden(env.orders.approve_at(&vera, &order.id, NOW).await);
    assert_eq!(denial.reason, "no_rule_matched");
    assert!(matches!(
        env.orders
            .approve_at(&bob, &Uuid::now_v7().to_string(), NOW)
            .await,
        Err(OrderError::NotFound)
    ));

    let later = NOW + Duration::minutes(5);
    let approved = env.orders.approve_at(&bob, &order.id, later).await.unwrap();
    assert_eq!(approved.approvals, 1);
    assert_eq!(approved.quorum, 1);
    assert_eq!(approved.order.status, OrderStatus::Accepted);
    assert_eq!(approved.order.updated_at, "2026-03-02T09:35:00Z");
    assert_eq!(approved.order.approval_id, Some(approval_id));

    assert_eq!(
        conflict(env.orders.approve_at(&bob, &order.id, later).await),
        "not_pending"
    );
    // Bob approved it but does not own it: he still cannot read it.
    assert!(matches!(
        env.orders.get(&bob, &order.id).await,
        Err(OrderError::NotFound)
    ));
    let mine = env.orders.list(&alice).await.unwrap();
    assert_eq!(mine.len(), 2);
}

#[tokio::test]
async fn market_orders_always_need_approval_and_admins_need_none() {
    let (env, _db) = Env::sqlite().await;
    let alice = env.user("alice", &["trader"]).await;
    let root = env.user("root", &["admin"]).await;
    let market = json!({
        "symbol": "AAPL", "side": "sell", "order_type": "market", "quantity": "1",
        "account_id": "ACC-1", "notes": "<b>small</b> but unpriced",
    });
    let order = env.place(&alice, market.clone()).await.unwrap();
    assert_eq!(order.status, OrderStatus::PendingApproval);
    assert_eq!(order.limit_price, None);
    assert_eq!(order.notes.as_deref(), Some("<b>small</b> but unpriced"));

    // Admin's `*` allows large orders outright (documented in the generated policy).
    let order = env.place(&root, market).await.unwrap();
    assert_eq!(order.status, OrderStatus::Accepted);
    let order = env.place(&root, limit("1000000", "999.99")).await.unwrap();
    assert_eq!(order.status, OrderStatus::Accepted);
}

/// Reference prices fixed by a test.
#[derive(Debug)]
struct Fixed(Vec<(&'static str, &'static str)>);

impl ReferencePrices for Fixed {
    fn price(&self, symbol: &str) -> Option<Decimal> {
        self.0
            .iter()
            .find(|(s, _)| *s == symbol)
            .map(|(_, p)| p.parse().unwrap())
    }
}

fn order_of(side: &str, quantity: &str, price: Option<&str>, account: &str) -> serde_json::Value {
    json!({
        "symbol": "AAPL", "side": side,
        "order_type": if price.is_some() { "limit" } else { "market" },
        "quantity": quantity, "limit_price": price, "account_id": account,
    })
}

#[tokio::test]
async fn orders_are_valued_at_least_at_the_reference_price() {
    let (env, _db) = Env::sqlite().await;
    let alice = env.user("alice", &["trader"]).await;
    // Without a reference, a sell's price says nothing about what it sells: approval.
    // (Valued at quantity x limit, this one was "worth" exactly the threshold.)
    let dump = order_of("sell", "100000000", Some("0.01"), "ACC-1");
    let order = env.place(&alice, dump.clone()).await.unwrap();
    assert_eq!(order.status, OrderStatus::PendingApproval);

    let mut env = env;
    env.orders = env
        .orders
        .clone()
        .with_prices(Arc::new(Fixed(vec![("AAPL", "100")])), Decimal::TEN);
    // With one, a limit far from it is refused outright (fat finger, or a price meant to
    // be valued low), naming the field.
    let Err(OrderError::Invalid(errors)) = env.place(&alice, dump.clone()).await else {
        panic!("a limit 99.99% below the reference was not refused");
    };
    let codes: Vec<(&str, &str)> = errors
        .iter()
        .map(|e| (e.path.as_str(), e.code.as_ref()))
        .collect();
    assert_eq!(codes, [("limit_price", "price_band")]);
    for edge in ["90.00", "110.00"] {
        let order = env
            .place(&alice, order_of("buy", "1", Some(edge), "ACC-1"))
            .await
            .unwrap();
        assert_eq!(
            order.status,
            OrderStatus::Accepted,
            "{edge} is inside the band"
        );
    }
    let Err(OrderError::Invalid(_)) = env
        .place(&alice, order_of("buy", "1", Some("110.05"), "ACC-1"))
        .await
    else {
        panic!("110.05 is outside a 10% band around 100");
    };
    // A sell within the band is valued at the reference when that is higher: 10,500 x
    // 100 = 1,050,000 > the threshold, while 10,500 x 95 would pass.
    let order = env
        .place(
            &alice,
            order_of("sell", "10500", Some("95.00"), "ACC-2-NONE"),
        )
        .await;
    assert_eq!(
        forbidden(order),
        Denial::not_entitled(),
        "an unentitled account is refused before any valuation"
    );
    env.entitle(&alice, "ACC-2").await;
    let order = env
        .place(&alice, order_of("sell", "10500", Some("95.00"), "ACC-2"))
        .await
        .unwrap();
    assert_eq!(order.status, OrderStatus::PendingApproval);
    // A market order with a reference is valued at it: small ones need no approval.
    // (Another trader: alice's day is above the threshold now.)
    let mia = env.user_without_accounts("mia", &["trader"]).await;
    env.entitle(&mia, "ACC-3").await;
    let order = env
        .place(&mia, order_of("buy", "10", None, "ACC-3"))
        .await
        .unwrap();
    assert_eq!(order.status, OrderStatus::Accepted);
    let order = env
        .place(&mia, order_of("buy", "20000", None, "ACC-3"))
        .await
        .unwrap();
    assert_eq!(order.status, OrderStatus::PendingApproval);
}

#[tokio::test]
async fn a_days_orders_count_together_per_trader_and_per_account() {
    let (env, _db) = Env::sqlite().await;
    let alice = env.user("alice", &["trader"]).await;
    let bob = env.user("bob", &["trader"]).await;
    env.entitle(&bob, "ACC-B").await;
    // 4,000 x 100 = 400,000 each, under the 1,000,000 threshold alone.
    let slice = || limit("4000", "100.00");
    let statuses = |orders: &[Order]| orders.iter().map(|o| o.status).collect::<Vec<_>>();
    let mut placed = Vec::new();
    for _ in 0..3 {
        placed.push(env.place(&alice, slice()).await.unwrap());
    }
    assert_eq!(
        statuses(&placed),
        [
            OrderStatus::Accepted,
            OrderStatus::Accepted,
            OrderStatus::PendingApproval
        ],
        "the third takes alice's day to 1,200,000"
    );
    // The account's total counts for bob too; his own account starts from zero.
    let on_acc1 = env.place(&bob, slice()).await.unwrap();
    assert_eq!(on_acc1.status, OrderStatus::PendingApproval);
    let mut elsewhere = slice();
    elsewhere["account_id"] = json!("ACC-B");
    let on_accb = env.place(&bob, elsewhere).await.unwrap();
    assert_eq!(on_accb.status, OrderStatus::Accepted);
    // The next UTC day starts afresh.
    let body = slice().to_string();
    let tomorrow = env
        .orders
        .place_at(&alice, Ok(body.as_bytes()), NOW + Duration::days(1))
        .await
        .unwrap();
    assert_eq!(tomorrow.status, OrderStatus::Accepted);

    // An order that is refused is not counted: a key without the large-order scope is
    // refused the order that would need approval, and the next small one still passes.
    let carol = env.user("carol", &["trader"]).await;
    env.entitle(&carol, "ACC-C").await;
    let key = Actor::api_key(
        carol.user_id(),
        vec![PermissionPattern::new("trade:execute").unwrap()],
    );
    let mut big = limit("9000", "100.00");
    big["account_id"] = json!("ACC-C");
    let mut small = slice();
    small["account_id"] = json!("ACC-C");
    env.place(&key, small.clone()).await.unwrap();
    env.place(&key, small.clone()).await.unwrap();
    assert_eq!(forbidden(env.place(&key, big).await), Denial::scope());
    assert_eq!(
        forbidden(env.place(&key, small.clone()).await),
        Denial::scope()
    );
    let mut tiny = limit("1000", "100.00");
    tiny["account_id"] = json!("ACC-C");
    let order = env.place(&key, tiny).await.unwrap();
    assert_eq!(
        order.status,
        OrderStatus::Accepted,
        "900,000 counted, not more"
    );
}

/// Eight orders of 400,000 at once from one trader: exactly two fit under the threshold.
async fn eight_at_once(env: &Env) {
    let dana = env.user("dana", &["trader"]).await;
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let orders = env.orders.clone();
        let dana = dana.clone();
        racers.spawn(async move {
            let body = limit("4000", "100.00").to_string();
            orders
                .place_at(&dana, Ok(body.as_bytes()), NOW)
                .await
                .unwrap()
        });
    }
    let placed = racers.join_all().await;
    assert_eq!(placed.len(), 8);
    let accepted = placed
        .iter()
        .filter(|o| o.status == OrderStatus::Accepted)
        .count();
    // At most two: 400,000 + 400,000 fit, and no order slips in beside them. (The trader's
    // and the account's totals each order the racers their own way, so an order may see
    // itself third in one of them and wait although it was second in the other: early,
    // never late.)
    assert!((1..=2).contains(&accepted), "{accepted} accepted");
    // Every order was counted once in both totals.
    let day = NOW.unix_timestamp().div_euclid(86_400);
    let store = env.storage.stores().orders;
    for scope in [format!("user:{}", uid(&dana)), "account:ACC-1".to_owned()] {
        let total = store
            .add_notional(&scope, day, Decimal::ZERO)
            .await
            .unwrap();
        assert_eq!(total, Decimal::from(3_200_000), "{scope}");
    }
}

#[tokio::test]
async fn concurrent_orders_cannot_slip_under_the_threshold_together_on_sqlite() {
    let (env, _db) = Env::sqlite().await;
    eight_at_once(&env).await;
}

#[tokio::test]
async fn concurrent_orders_cannot_slip_under_the_threshold_together_on_postgres() {
    let db = finsec_testkit::postgres().await;
    let env = Env::new(Storage::Postgres(db.pool().clone()), generated()).await;
    eight_at_once(&env).await;
    db.cleanup().await;
}

#[tokio::test]
async fn expired_approvals_are_refused_and_the_order_expires() {
    let (env, _db) = Env::sqlite().await;
    let alice = env.user("alice", &["trader"]).await;
    let bob = env.user("bob", &["trader"]).await;
    let order = env.place(&alice, limit("20000", "100.00")).await.unwrap();
    assert_eq!(order.status, OrderStatus::PendingApproval);

    let window = Duration::seconds(crate::rbac::GENERATED_APPROVAL_SECONDS);
    assert_eq!(
        conflict(env.orders.approve_at(&bob, &order.id, NOW + window).await),
        "approval_expired"
    );
    let order = env.orders.get(&alice, &order.id).await.unwrap();
    assert_eq!(order.status, OrderStatus::Expired);
    assert_eq!(
        conflict(env.orders.approve_at(&bob, &order.id, NOW + window).await),
        "not_pending"
    );
}

#[tokio::test]
async fn the_quorum_comes_from_the_policy() {
    let text = generated_policy()
        .unwrap()
        .replace("quorum = 1", "quorum = 2");
    let policy = Policy::from_toml(&text).unwrap();
    let (env, _db) = Env::sqlite_with(policy).await;
    let alice = env.user("alice", &["trader"]).await;
    let bob = env.user("bob", &["trader"]).await;
    let carol = env.user("carol", &["trader"]).await;
    let order = env.place(&alice, limit("20000", "100.00")).await.unwrap();

    let first = env.orders.approve_at(&bob, &order.id, NOW).await.unwrap();
    assert_eq!((first.approvals, first.quorum), (1, 2));
    assert_eq!(first.order.status, OrderStatus::PendingApproval);
    // The same approver twice counts once.
    let again = env.orders.approve_at(&bob, &order.id, NOW).await.unwrap();
    assert_eq!(again.approvals, 1);
    let second = env.orders.approve_at(&carol, &order.id, NOW).await.unwrap();
    assert_eq!((second.approvals, second.quorum), (2, 2));
    assert_eq!(second.order.status, OrderStatus::Accepted);
}

#[tokio::test]
async fn an_initiator_who_lost_the_right_to_trade_gets_the_order_rejected() {
    let (env, _db) = Env::sqlite().await;
    let alice = env.user("alice", &["trader"]).await;
    let bob = env.user("bob", &["trader"]).await;
    let order = env.place(&alice, limit("20000", "100.00")).await.unwrap();
    env.roles
        .revoke(uid(&alice), &RoleName::new("trader").unwrap())
        .await
        .unwrap();
    let approved = env.orders.approve_at(&bob, &order.id, NOW).await.unwrap();
    assert_eq!(approved.order.status, OrderStatus::Rejected);
}

#[tokio::test]
async fn orders_need_an_entitlement_to_their_account() {
    let (env, _db) = Env::sqlite().await;
    let alice = env.user_without_accounts("alice", &["trader"]).await;
    let bob = env.user("bob", &["trader"]).await;
    let carl = env.user_without_accounts("carl", &["trader"]).await;
    let root = env.user_without_accounts("root", &["admin"]).await;
    assert_eq!(
        forbidden(env.place(&alice, limit("1", "1.00")).await),
        Denial::not_entitled()
    );
    // Invalid bodies are still reported first, as for anyone who may trade.
    assert!(matches!(
        env.place(&alice, json!({"symbol": "AAPL"})).await,
        Err(OrderError::Invalid(_))
    ));
    env.entitle(&alice, "ACC-1").await;
    let small = env.place(&alice, limit("1", "1.00")).await.unwrap();
    let large = env.place(&alice, limit("20000", "100.00")).await.unwrap();
    assert_eq!(large.status, OrderStatus::PendingApproval);
    let mut other = limit("1", "1.00");
    other["account_id"] = json!("ACC-2");
    assert_eq!(
        forbidden(env.place(&alice, other).await),
        Denial::not_entitled()
    );

    // An approver needs the account too, admin included; a refused approver uses nothing.
    for approver in [&carl, &root] {
        assert_eq!(
            forbidden(env.orders.approve_at(approver, &large.id, NOW).await),
            Denial::not_entitled()
        );
    }
    // Admin reads every account without an entitlement (supervision); carl does not.
    assert_eq!(env.orders.get(&root, &small.id).await.unwrap(), small);
    assert!(matches!(
        env.orders.get(&carl, &small.id).await,
        Err(OrderError::NotFound)
    ));

    // Taken away: alice's orders on the account disappear from her reads, and her large
    // order is rejected when bob approves it.
    env.unentitle(&alice, "ACC-1").await;
    assert!(matches!(
        env.orders.get(&alice, &small.id).await,
        Err(OrderError::NotFound)
    ));
    assert!(env.orders.list(&alice).await.unwrap().is_empty());
    let approved = env.orders.approve_at(&bob, &large.id, NOW).await.unwrap();
    assert_eq!(approved.order.status, OrderStatus::Rejected);
    env.entitle(&alice, "ACC-1").await;
    assert_eq!(env.orders.list(&alice).await.unwrap().len(), 2);
}

#[tokio::test]
async fn api_key_scopes_narrow_what_a_trader_may_do() {
    let (env, _db) = Env::sqlite().await;
    let alice = env.user("alice", &["trader"]).await;
    let pattern = |p: &str| PermissionPattern::new(p).unwrap();
    let session_order = env.place(&alice, limit("1", "1.00")).await.unwrap();

    let read_only = Actor::api_key(alice.user_id(), vec![pattern("orders:read")]);
    assert_eq!(
        forbidden(env.place(&read_only, limit("1", "1.00")).await),
        Denial::scope()
    );
    assert_eq!(
        env.orders.get(&read_only, &session_order.id).await.unwrap(),
        session_order
    );
    assert_eq!(env.orders.list(&read_only).await.unwrap().len(), 1);

    let trade_only = Actor::api_key(alice.user_id(), vec![pattern("trade:execute")]);
    env.place(&trade_only, limit("1", "1.00")).await.unwrap();
    assert_eq!(
        forbidden(env.orders.get(&trade_only, &session_order.id).await),
        Denial::scope()
    );
    assert_eq!(
        forbidden(
            env.orders
                .approve_at(&trade_only, &session_order.id, NOW)
                .await
        ),
        Denial::scope()
    );
}

#[tokio::test]
async fn the_approval_threshold_respects_api_key_scopes() {
    let (env, _db) = Env::sqlite().await;
    let alice = env.user("alice", &["trader"]).await;
    let root = env.user("root", &["admin"]).await;
    let pattern = |p: &str| PermissionPattern::new(p).unwrap();
    let large = || limit("20000", "100.00");
    // Keys scoped to trading alone place small orders, and no large one: not the admin's
    // (whose session needs no approval) and not the trader's (whose session opens one).
    for owner in [&alice, &root] {
        let key = Actor::api_key(owner.user_id(), vec![pattern("trade:execute")]);
        env.place(&key, limit("1", "1.00")).await.unwrap();
        assert_eq!(forbidden(env.place(&key, large()).await), Denial::scope());
    }
    let market = json!({
        "symbol": "AAPL", "side": "buy", "order_type": "market", "quantity": "1",
        "account_id": "ACC-1",
    });
    let key = Actor::api_key(root.user_id(), vec![pattern("trade:execute")]);
    assert_eq!(forbidden(env.place(&key, market).await), Denial::scope());
    // Scoped for large orders too, each key does what its owner's session does.
    let scopes = vec![pattern("trade:execute"), pattern("orders:execute_large")];
    let admin_key = Actor::api_key(root.user_id(), scopes.clone());
    assert_eq!(
        env.place(&admin_key, large()).await.unwrap().status,
        OrderStatus::Accepted
    );
    let trader_key = Actor::api_key(alice.user_id(), scopes);
    assert_eq!(
        env.place(&trader_key, large()).await.unwrap().status,
        OrderStatus::PendingApproval
    );
    // Nothing was placed by the refused keys beyond their two small orders.
    assert_eq!(env.orders.list(&alice).await.unwrap().len(), 2);
}

#[tokio::test]
async fn large_orders_on_postgres() {
    let db = finsec_testkit::postgres().await;
    let env = Env::new(Storage::Postgres(db.pool().clone()), generated()).await;
    let alice = env.user("alice", &["trader"]).await;
    let bob = env.user("bob", &["trader"]).await;
    let root = env.user("root", &["admin"]).await;
    let vera = env.user("vera", &[]).await;
    assert_eq!(
        env.roles.roles_of(uid(&vera)).await.unwrap(),
        [RoleName::new("viewer").unwrap()]
    );
    forbidden(env.place(&vera, limit("1", "1.00")).await);

    let small = env.place(&alice, limit("10", "1.50")).await.unwrap();
    assert_eq!(small.status, OrderStatus::Accepted);
    let large = env.place(&alice, limit("20000", "100.00")).await.unwrap();
    assert_eq!(large.status, OrderStatus::PendingApproval);
    assert_eq!(
        forbidden(env.orders.approve_at(&alice, &large.id, NOW).await).reason,
        "self_approval"
    );
    let approved = env.orders.approve_at(&bob, &large.id, NOW).await.unwrap();
    assert_eq!(approved.order.status, OrderStatus::Accepted);

    assert!(matches!(
        env.orders.get(&bob, &small.id).await,
        Err(OrderError::NotFound)
    ));
    assert_eq!(env.orders.get(&root, &small.id).await.unwrap(), small);
    let mine = env.orders.list(&alice).await.unwrap();
    assert_eq!(mine.len(), 2);
    db.cleanup().await;
}

/// Concurrent approvals of one order by different approvers: the order is accepted once.
#[tokio::test]
async fn concurrent_approvals_accept_the_order_once() {
    let (env, _db) = Env::sqlite().await;
    let alice = env.user("alice", &["trader"]).await;
    let mut approvers = Vec::new();
    for i in 0..4 {
        approvers.push(env.user(&format!("checker{i}"), &["trader"]).await);
    }
    let order = env.place(&alice, limit("20000", "100.00")).await.unwrap();
    let env = Arc::new(env);
    let tasks: Vec<_> = approvers
        .into_iter()
        .map(|actor| {
            let env = Arc::clone(&env);
            let id = order.id.clone();
            tokio::spawn(async move { env.orders.approve_at(&actor, &id, NOW).await })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(approved) => {
                assert_eq!(approved.order.status, OrderStatus::Accepted);
                accepted += 1;
            }
            Err(OrderError::Conflict { code, .. }) => {
                assert!(["not_pending", "approval_used"].contains(&code), "{code}");
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert!(accepted >= 1);
    let order = env.orders.get(&alice, &order.id).await.unwrap();
    assert_eq!(order.status, OrderStatus::Accepted);
}

mod test_support {
    //! Users for the tests, created the way the server creates them.
    use super::*;

    /// Runs the migrations the server runs before the roles and orders tables.
    pub(super) async fn prepare(storage: &Storage) {
        crate::capabilities::migrate(storage).await.unwrap();
    }

    /// Creates a user named `name` and returns its id.
    pub(super) async fn create_user(storage: &Storage, name: &str) -> Uuid {
        Uuid::parse_str(&crate::auth::testing::create_user(storage, name).await).unwrap()
    }
}
