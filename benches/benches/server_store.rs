//! The reference server's store calls, each next to the raw sqlx it replaces, on SQLite and
//! PostgreSQL.
//!
//! - `order_insert/{sqlite,postgres}/...`: one new order (a fresh UUIDv7) per iteration,
//!   returned as stored.
//!   - `raw_insert_select`: what the server sent before its store traits, two statements:
//!     an `INSERT` and a `SELECT ... WHERE id = $1` of the row (on PostgreSQL ids bound as
//!     text with `$1::uuid` casts and read back as `id::text`; on SQLite `?N` placeholders
//!     and text ids).
//!   - `store`: `OrderStore::insert` through `Stores.orders` (an `Arc<dyn OrderStore>`),
//!     one `INSERT ... RETURNING`.
//!   - `raw_returning`: that same single statement, sent with raw sqlx.
//! - `user_find_by_id/{sqlite,postgres}/...`: the lookup of an existing user by id,
//!   `UserStore::find_by_id` (`store`) and the same `SELECT` with raw sqlx (`raw`).
//!
//! Every variant decodes the row into the same [`Order`] / [`User`] the server answers
//! with. The server's migrations run first; the owning user is created with
//! `UserStore::insert_user`. SQLite is a temporary file with the production settings (WAL,
//! `synchronous=FULL`); PostgreSQL is a fresh schema on the test server
//! (`FINSEC_TEST_POSTGRES_URL`), both from finsec-testkit. One client issues calls one
//! after another, so the figures are latency per call.
#![expect(
    clippy::unwrap_used,
    reason = "benchmark setup and measured calls: any failure must abort the run"
)]

use std::hint::black_box;

use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use finsec_benches::timed;
use finsec_reference_server::auth::users::{User, Username};
use finsec_reference_server::orders::store::{NewOrderRow, Order, OrderStatus};
use finsec_reference_server::storage::{Storage, Stores};
use sqlx::{PgPool, SqlitePool};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

/// A row of `server_orders` as raw sqlx decodes it (ids as text).
type OrderRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    i64,
    i64,
);

/// The same row on PostgreSQL read without casts (ids as `uuid`).
type PgOrderRow = (
    Uuid,
    Uuid,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    i64,
    i64,
);

// What the server sent before its store traits (one text per backend).
const SQLITE_INSERT_BEFORE: &str = "INSERT INTO server_orders (id, owner, account_id, symbol, \
     side, order_type, quantity, limit_price, notes, status, approval_id, created_at, \
     updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)";
const SQLITE_SELECT_BEFORE: &str = "SELECT id, owner, account_id, symbol, side, order_type, \
     quantity, limit_price, notes, status, approval_id, created_at, updated_at \
     FROM server_orders WHERE id = ?1";
const PG_INSERT_BEFORE: &str = "INSERT INTO server_orders (id, owner, account_id, symbol, \
     side, order_type, quantity, limit_price, notes, status, approval_id, created_at, \
     updated_at) VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)";
const PG_SELECT_BEFORE: &str = "SELECT id::text, owner::text, account_id, symbol, side, \
     order_type, quantity, limit_price, notes, status, approval_id, created_at, updated_at \
     FROM server_orders WHERE id = $1::uuid";

// What `OrderStore::insert` sends now, on both backends.
const INSERT_RETURNING: &str = "INSERT INTO server_orders (id, owner, account_id, symbol, \
     side, order_type, quantity, limit_price, notes, status, approval_id, created_at, \
     updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) RETURNING \
     id, owner, account_id, symbol, side, order_type, quantity, limit_price, notes, status, \
     approval_id, created_at, updated_at";

// `UserStore::find_by_id`'s query, the same before and after.
const SELECT_USER: &str =
    "SELECT id, username, password_hash, mfa_enabled FROM server_users WHERE id = $1";

fn micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000).unwrap()
}

fn rfc3339(micros: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .unwrap()
        .format(&Rfc3339)
        .unwrap()
}

fn status(text: &str) -> Option<OrderStatus> {
    Some(match text {
        "accepted" => OrderStatus::Accepted,
        "pending_approval" => OrderStatus::PendingApproval,
        "rejected" => OrderStatus::Rejected,
        "expired" => OrderStatus::Expired,
        _ => return None,
    })
}

/// The server's `Order` from a raw row, as the server built it before its store traits.
fn order(row: OrderRow) -> Order {
    Order {
        id: row.0,
        owner: row.1,
        account_id: row.2,
        symbol: row.3,
        side: row.4,
        order_type: row.5,
        quantity: row.6,
        limit_price: row.7,
        notes: row.8,
        status: status(&row.9).unwrap(),
        approval_id: row.10,
        created_at: rfc3339(row.11),
        updated_at: rfc3339(row.12),
    }
}

fn pg_order(row: PgOrderRow) -> Order {
    order((
        row.0.to_string(),
        row.1.to_string(),
        row.2,
        row.3,
        row.4,
        row.5,
        row.6,
        row.7,
        row.8,
        row.9,
        row.10,
        row.11,
        row.12,
    ))
}

/// A new accepted limit order of `owner`, with a fresh UUIDv7 id.
fn new_order(owner: Uuid) -> NewOrderRow {
    NewOrderRow {
        id: Uuid::now_v7(),
        owner,
        account_id: "ACC-001".to_owned(),
        symbol: "AAPL".to_owned(),
        side: "buy",
        order_type: "limit",
        quantity: "100".to_owned(),
        limit_price: Some("187.25".to_owned()),
        notes: None,
        status: OrderStatus::Accepted,
        approval_id: None,
        created_at: OffsetDateTime::now_utc(),
        idempotency: None,
    }
}

async fn sqlite_insert_select(pool: &SqlitePool, new: &NewOrderRow) -> Order {
    let id = new.id.hyphenated().to_string();
    sqlx::query(SQLITE_INSERT_BEFORE)
        .bind(&id)
        .bind(new.owner.hyphenated().to_string())
        .bind(&new.account_id)
        .bind(&new.symbol)
        .bind(new.side)
        .bind(new.order_type)
        .bind(&new.quantity)
        .bind(&new.limit_price)
        .bind(&new.notes)
        .bind(new.status.as_str())
        .bind(&new.approval_id)
        .bind(micros(new.created_at))
        .execute(pool)
        .await
        .unwrap();
    let row: OrderRow = sqlx::query_as(SQLITE_SELECT_BEFORE)
        .bind(&id)
        .fetch_one(pool)
        .await
        .unwrap();
    order(row)
}

async fn sqlite_returning(pool: &SqlitePool, new: &NewOrderRow) -> Order {
    let row: OrderRow = sqlx::query_as(INSERT_RETURNING)
        .bind(new.id.hyphenated().to_string())
        .bind(new.owner.hyphenated().to_string())
        .bind(&new.account_id)
        .bind(&new.symbol)
        .bind(new.side)
        .bind(new.order_type)
        .bind(&new.quantity)
        .bind(&new.limit_price)
        .bind(&new.notes)
        .bind(new.status.as_str())
        .bind(&new.approval_id)
        .bind(micros(new.created_at))
        .fetch_one(pool)
        .await
        .unwrap();
    order(row)
}

async fn pg_insert_select(pool: &PgPool, new: &NewOrderRow) -> Order {
    let id = new.id.hyphenated().to_string();
    sqlx::query(PG_INSERT_BEFORE)
        .bind(&id)
        .bind(new.owner.hyphenated().to_string())
        .bind(&new.account_id)
        .bind(&new.symbol)
        .bind(new.side)
        .bind(new.order_type)
        .bind(&new.quantity)
        .bind(&new.limit_price)
        .bind(&new.notes)
        .bind(new.status.as_str())
        .bind(&new.approval_id)
        .bind(micros(new.created_at))
        .execute(pool)
        .await
        .unwrap();
    let row: OrderRow = sqlx::query_as(PG_SELECT_BEFORE)
        .bind(&id)
        .fetch_one(pool)
        .await
        .unwrap();
    order(row)
}

async fn pg_returning(pool: &PgPool, new: &NewOrderRow) -> Order {
    let row: PgOrderRow = sqlx::query_as(INSERT_RETURNING)
        .bind(new.id)
        .bind(new.owner)
        .bind(&new.account_id)
        .bind(&new.symbol)
        .bind(new.side)
        .bind(new.order_type)
        .bind(&new.quantity)
        .bind(&new.limit_price)
        .bind(&new.notes)
        .bind(new.status.as_str())
        .bind(&new.approval_id)
        .bind(micros(new.created_at))
        .fetch_one(pool)
        .await
        .unwrap();
    pg_order(row)
}

async fn sqlite_user(pool: &SqlitePool, id: Uuid) -> Option<User> {
    let row: Option<(String, String, String, bool)> = sqlx::query_as(SELECT_USER)
        .bind(id.hyphenated().to_string())
        .fetch_optional(pool)
        .await
        .unwrap();
    row.map(|(id, username, password_hash, mfa_enabled)| User {
        id: id.parse().unwrap(),
        username,
        password_hash,
        mfa_enabled,
    })
}

async fn pg_user(pool: &PgPool, id: Uuid) -> Option<User> {
    let row: Option<(Uuid, String, String, bool)> = sqlx::query_as(SELECT_USER)
        .bind(id)
        .fetch_optional(pool)
        .await
        .unwrap();
    row.map(|(id, username, password_hash, mfa_enabled)| User {
        id,
        username,
        password_hash,
        mfa_enabled,
    })
}

/// Migrates `storage`, registers a user on it and returns its stores and the user's id.
async fn prepared(storage: &Storage) -> (Stores, Uuid) {
    finsec_reference_server::capabilities::migrate(storage)
        .await
        .unwrap();
    let stores = storage.stores();
    let user = Uuid::now_v7();
    let inserted = stores
        .users
        .insert_user(
            user,
            &Username::parse("bench-trader").unwrap(),
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA",
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    assert!(inserted);
    (stores, user)
}

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.sample_size(30);
    group
}

fn bench_server_stores(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let sqlite = rt.block_on(finsec_testkit::sqlite());
    let pg = rt.block_on(finsec_testkit::postgres());
    let (sqlite_stores, sqlite_user_id) =
        rt.block_on(prepared(&Storage::Sqlite(sqlite.pool().clone())));
    let (pg_stores, pg_user_id) = rt.block_on(prepared(&Storage::Postgres(pg.pool().clone())));
    let sqlite_pool = sqlite.pool();
    let pg_pool = pg.pool();

    let mut g = group(c, "order_insert");
    g.bench_function("sqlite/raw_insert_select", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, |_| async {
                let new = new_order(sqlite_user_id);
                black_box(sqlite_insert_select(sqlite_pool, &new).await);
            })
        });
    });
    g.bench_function("sqlite/store", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, |_| async {
                let new = new_order(sqlite_user_id);
                black_box(sqlite_stores.orders.insert(&new).await.unwrap());
            })
        });
    });
    g.bench_function("sqlite/raw_returning", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, |_| async {
                let new = new_order(sqlite_user_id);
                black_box(sqlite_returning(sqlite_pool, &new).await);
            })
        });
    });
    g.bench_function("postgres/raw_insert_select", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, |_| async {
                let new = new_order(pg_user_id);
                black_box(pg_insert_select(pg_pool, &new).await);
            })
        });
    });
    g.bench_function("postgres/store", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, |_| async {
                let new = new_order(pg_user_id);
                black_box(pg_stores.orders.insert(&new).await.unwrap());
            })
        });
    });
    g.bench_function("postgres/raw_returning", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, |_| async {
                let new = new_order(pg_user_id);
                black_box(pg_returning(pg_pool, &new).await);
            })
        });
    });
    g.finish();

    let mut g = group(c, "user_find_by_id");
    g.bench_function("sqlite/raw", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, |_| async {
                assert!(black_box(sqlite_user(sqlite_pool, sqlite_user_id).await).is_some());
            })
        });
    });
    g.bench_function("sqlite/store", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, |_| async {
                let found = sqlite_stores.users.find_by_id(sqlite_user_id).await;
                assert!(black_box(found.unwrap()).is_some());
            })
        });
    });
    g.bench_function("postgres/raw", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, |_| async {
                assert!(black_box(pg_user(pg_pool, pg_user_id).await).is_some());
            })
        });
    });
    g.bench_function("postgres/store", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, |_| async {
                let found = pg_stores.users.find_by_id(pg_user_id).await;
                assert!(black_box(found.unwrap()).is_some());
            })
        });
    });
    g.finish();

    drop((sqlite_stores, pg_stores));
    rt.block_on(pg.cleanup());
}

criterion_group!(benches, bench_server_stores);
criterion_main!(benches);
