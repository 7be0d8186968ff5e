//! [`OrderStore`] on [`SqlStore`]: one SQL text per query for SQLite and PostgreSQL.
//!
//! An insert returns the stored row with `RETURNING` (SQLite ≥ 3.35; the bundled SQLite is
//! newer), and a transition is one conditional `UPDATE` whose affected row count says
//! whether it happened.

use async_trait::async_trait;
use rust_decimal::Decimal;
use sqlx::Row as _;
use time::OffsetDateTime;
use uuid::Uuid;

use super::store::{
    LIST_LIMIT, MAX_NOTIONAL_RETRIES, NOTIONAL_DAYS_KEPT, NewOrderRow, Order, OrderStatus,
    OrderStore, rfc3339,
};
use crate::storage::sql::{ServerDb, SqlStore, StoreError, StoreResult, to_micros};

/// The columns every query returns, in the order `order` reads them.
macro_rules! columns {
    () => {
        "id, owner, account_id, symbol, side, order_type, quantity, limit_price, notes, \
         status, approval_id, created_at, updated_at"
    };
}

const INSERT: &str = concat!(
    "INSERT INTO server_orders (",
    columns!(),
    ", idempotency_key, request_sha256",
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14) RETURNING ",
    columns!()
);

const FIND_IDEMPOTENT: &str = concat!(
    "SELECT ",
    columns!(),
    ", request_sha256 FROM server_orders WHERE owner = $1 AND idempotency_key = $2"
);

const GET: &str = concat!("SELECT ", columns!(), " FROM server_orders WHERE id = $1");

const LIST_BY_OWNER: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM server_orders WHERE owner = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
);

const TRANSITION: &str = "UPDATE server_orders SET status = $1, updated_at = $2 \
     WHERE id = $3 AND status = $4";

const NOTIONAL_READ: &str = "SELECT total FROM server_notional_days WHERE scope = $1 AND day = $2";

const NOTIONAL_CREATE: &str = "INSERT INTO server_notional_days (scope, day, total) \
     VALUES ($1, $2, $3) ON CONFLICT (scope, day) DO NOTHING";

const NOTIONAL_SET: &str = "UPDATE server_notional_days SET total = $1 \
     WHERE scope = $2 AND day = $3 AND total = $4";

const NOTIONAL_FORGET: &str = "DELETE FROM server_notional_days WHERE scope = $1 AND day < $2";

const NOTIONAL_TABLE: &str = "server_notional_days";

fn parse_total(text: &str) -> StoreResult<Decimal> {
    Decimal::from_str_exact(text).map_err(|e| StoreError::Corrupt {
        table: NOTIONAL_TABLE,
        detail: format!("a total is not a decimal: {e}"),
    })
}

fn add_total(total: Decimal, amount: Decimal) -> StoreResult<Decimal> {
    total
        .checked_add(amount)
        .map(|sum| sum.normalize())
        .ok_or(StoreError::Corrupt {
            table: NOTIONAL_TABLE,
            detail: "a total overflows".to_owned(),
        })
}

/// The trait implementation, expanded once per backend.
macro_rules! impl_order_store {
    ($db:ty) => {
        impl SqlStore<$db> {
            /// The order in `row` (the columns of `columns!`).
            fn order(row: &<$db as sqlx::Database>::Row) -> StoreResult<Order> {
                let status: String = row.try_get(9)?;
                Ok(Order {
                    id: <$db as ServerDb>::read_uuid(row, 0)?.to_string(),
                    owner: <$db as ServerDb>::read_uuid(row, 1)?.to_string(),
                    account_id: row.try_get(2)?,
                    symbol: row.try_get(3)?,
                    side: row.try_get(4)?,
                    order_type: row.try_get(5)?,
                    quantity: row.try_get(6)?,
                    limit_price: row.try_get(7)?,
                    notes: row.try_get(8)?,
                    status: OrderStatus::parse(&status)?,
                    approval_id: row.try_get(10)?,
                    created_at: rfc3339(row.try_get(11)?)?,
                    updated_at: rfc3339(row.try_get(12)?)?,
                })
            }
        }

        #[async_trait]
        impl OrderStore for SqlStore<$db> {
            async fn insert(&self, new: &NewOrderRow) -> StoreResult<Order> {
                let row = sqlx::query(INSERT)
                    .bind(<$db as ServerDb>::uuid(new.id))
                    .bind(<$db as ServerDb>::uuid(new.owner))
                    .bind(&new.account_id)
                    .bind(&new.symbol)
                    .bind(new.side)
                    .bind(new.order_type)
                    .bind(&new.quantity)
                    .bind(&new.limit_price)
                    .bind(&new.notes)
                    .bind(new.status.as_str())
                    .bind(&new.approval_id)
                    .bind(to_micros(new.created_at)?)
                    .bind(new.idempotency.as_ref().map(|i| i.key.as_str()))
                    .bind(new.idempotency.as_ref().map(|i| i.request_sha256.to_vec()))
                    .fetch_one(self.pool())
                    .await?;
                Self::order(&row)
            }

            async fn find_idempotent(
                &self,
                owner: Uuid,
                key: &str,
            ) -> StoreResult<Option<(Order, [u8; 32])>> {
                let Some(row) = sqlx::query(FIND_IDEMPOTENT)
                    .bind(<$db as ServerDb>::uuid(owner))
                    .bind(key)
                    .fetch_optional(self.pool())
                    .await?
                else {
                    return Ok(None);
                };
                let digest: Vec<u8> = row.try_get(13)?;
                let digest =
                    <[u8; 32]>::try_from(digest.as_slice()).map_err(|_| StoreError::Corrupt {
                        table: "server_orders",
                        detail: format!("request_sha256 is {} bytes, not 32", digest.len()),
                    })?;
                Ok(Some((Self::order(&row)?, digest)))
            }

            async fn get(&self, id: Uuid) -> StoreResult<Option<Order>> {
                sqlx::query(GET)
                    .bind(<$db as ServerDb>::uuid(id))
                    .fetch_optional(self.pool())
                    .await?
                    .as_ref()
                    .map(Self::order)
                    .transpose()
            }

            async fn list_by_owner(&self, owner: Uuid) -> StoreResult<Vec<Order>> {
                sqlx::query(LIST_BY_OWNER)
                    .bind(<$db as ServerDb>::uuid(owner))
                    .bind(LIST_LIMIT)
                    .fetch_all(self.pool())
                    .await?
                    .iter()
                    .map(Self::order)
                    .collect()
            }

            async fn transition(
                &self,
                id: Uuid,
                from: OrderStatus,
                to: OrderStatus,
                now: OffsetDateTime,
            ) -> StoreResult<bool> {
                let done = sqlx::query(TRANSITION)
                    .bind(to.as_str())
                    .bind(to_micros(now)?)
                    .bind(<$db as ServerDb>::uuid(id))
                    .bind(from.as_str())
                    .execute(self.pool())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn add_notional(
                &self,
                scope: &str,
                day: i64,
                amount: Decimal,
            ) -> StoreResult<Decimal> {
                for _ in 0..MAX_NOTIONAL_RETRIES {
                    let stored: Option<String> = sqlx::query_scalar(NOTIONAL_READ)
                        .bind(scope)
                        .bind(day)
                        .fetch_optional(self.pool())
                        .await?;
                    let Some(stored) = stored else {
                        // The day's first order for this scope: create the total (unless a
                        // concurrent first order did), and forget totals no longer needed.
                        let total = add_total(Decimal::ZERO, amount)?;
                        let created = sqlx::query(NOTIONAL_CREATE)
                            .bind(scope)
                            .bind(day)
                            .bind(total.to_string())
                            .execute(self.pool())
                            .await?;
                        if created.rows_affected() == 1 {
                            sqlx::query(NOTIONAL_FORGET)
                                .bind(scope)
                                .bind(day.saturating_sub(NOTIONAL_DAYS_KEPT))
                                .execute(self.pool())
                                .await?;
                            return Ok(total);
                        }
                        continue;
                    };
                    let total = add_total(parse_total(&stored)?, amount)?;
                    let set = sqlx::query(NOTIONAL_SET)
                        .bind(total.to_string())
                        .bind(scope)
                        .bind(day)
                        .bind(&stored)
                        .execute(self.pool())
                        .await?;
                    if set.rows_affected() == 1 {
                        return Ok(total);
                    }
                }
                Err(StoreError::Contended {
                    table: NOTIONAL_TABLE,
                })
            }
        }
    };
}

impl_order_store!(sqlx::Sqlite);
impl_order_store!(sqlx::Postgres);
