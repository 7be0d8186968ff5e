//! The SQL stores on the login/refresh path, on SQLite and PostgreSQL.
//!
//! - `refresh_rotate/{sqlite,postgres}`: `RefreshTokenStore::rotate` of a live refresh
//!   token into its successor (one transaction: a guarded `UPDATE ... RETURNING`, then an
//!   `INSERT`). Each iteration rotates the token the previous one created, so every call
//!   takes the success path.
//! - `api_key_get/{sqlite,postgres}`: `ApiKeyStore::get` of an existing key, the one
//!   store lookup behind every API-key request.
//!
//! SQLite is a temporary file with the production settings (WAL, `synchronous=FULL`);
//! PostgreSQL is a fresh schema on the test server (`FINSEC_TEST_POSTGRES_URL`), both from
//! finsec-testkit. One client issues calls one after another, so the figures are latency
//! per call, dominated by the driver and the database rather than by finsec's code.
#![expect(
    clippy::unwrap_used,
    reason = "benchmark setup and measured calls: any failure must abort the run"
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use finsec_auth::api_keys::{ApiKeyId, ApiKeyStore, ApiKeys, NewApiKey};
use finsec_auth::tokens::{NextRefresh, RefreshRecord, RefreshTokenStore, RotateOutcome};
use finsec_benches::timed;
use finsec_rbac::PermissionPattern;
use time::OffsetDateTime;

/// A refresh store holding one live token; `rotate` chains from it.
struct RotateChain<S> {
    store: S,
    generation: std::cell::Cell<u64>,
    tag: String,
}

impl<S: RefreshTokenStore> RotateChain<S> {
    async fn new(store: S, tag: &str) -> Self {
        let expires_at = OffsetDateTime::now_utc() + time::Duration::days(30);
        store
            .insert(RefreshRecord {
                token_hash: format!("{tag}-0"),
                family: format!("{tag}-family"),
                subject: "bench-user".to_owned(),
                expires_at,
            })
            .await
            .unwrap();
        Self {
            store,
            generation: std::cell::Cell::new(0),
            tag: tag.to_owned(),
        }
    }

    async fn rotate_once(&self) {
        let current = self.generation.get();
        let next = current + 1;
        let now = OffsetDateTime::now_utc();
        let outcome = self
            .store
            .rotate(
                &format!("{}-{current}", self.tag),
                NextRefresh {
                    token_hash: format!("{}-{next}", self.tag),
                    expires_at: now + time::Duration::days(30),
                },
                now,
            )
            .await
            .unwrap();
        assert!(matches!(outcome, RotateOutcome::Rotated(_)), "{outcome:?}");
        self.generation.set(next);
    }
}

async fn issued_id<S: ApiKeyStore>(keys: &ApiKeys<S>) -> ApiKeyId {
    let scopes = vec![PermissionPattern::new("orders:read").unwrap()];
    let issued = keys
        .issue_at(
            NewApiKey::new("bench-user", scopes),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    issued.record.id
}

fn bench_stores(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let sqlite = rt.block_on(finsec_testkit::sqlite());
    let pg = rt.block_on(finsec_testkit::postgres());
    rt.block_on(async {
        finsec_auth::sqlite::migrate(sqlite.pool()).await.unwrap();
        finsec_auth::postgres::migrate(pg.pool()).await.unwrap();
    });

    let sqlite_chain = rt.block_on(RotateChain::new(
        finsec_auth::tokens::sqlite::SqliteRefreshTokenStore::new(sqlite.pool().clone()),
        "sqlite",
    ));
    let pg_chain = rt.block_on(RotateChain::new(
        finsec_auth::tokens::postgres::PostgresRefreshTokenStore::new(pg.pool().clone()),
        "postgres",
    ));
    let sqlite_keys = ApiKeys::new(finsec_auth::api_keys::sqlite::SqliteApiKeyStore::new(
        sqlite.pool().clone(),
    ));
    let pg_keys = ApiKeys::new(finsec_auth::api_keys::postgres::PgApiKeyStore::new(
        pg.pool().clone(),
    ));
    let sqlite_id = rt.block_on(issued_id(&sqlite_keys));
    let pg_id = rt.block_on(issued_id(&pg_keys));

    let mut group = c.benchmark_group("refresh_rotate");
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("sqlite", |b| {
        b.iter_custom(|iters| timed(&rt, iters, |_| sqlite_chain.rotate_once()));
    });
    group.bench_function("postgres", |b| {
        b.iter_custom(|iters| timed(&rt, iters, |_| pg_chain.rotate_once()));
    });
    group.finish();

    let mut group = c.benchmark_group("api_key_get");
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("sqlite", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, |_| async {
                let found = sqlite_keys.store().get(&sqlite_id).await.unwrap();
                assert!(black_box(found).is_some());
            })
        });
    });
    group.bench_function("postgres", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, |_| async {
                let found = pg_keys.store().get(&pg_id).await.unwrap();
                assert!(black_box(found).is_some());
            })
        });
    });
    group.finish();

    rt.block_on(pg.cleanup());
}

criterion_group!(benches, bench_stores);
criterion_main!(benches);
