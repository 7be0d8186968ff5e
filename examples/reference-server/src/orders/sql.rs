//! [`OrderStore`] on [`SqlStore`]: one SQL text per query for SQLite and PostgreSQL.
//!
//! An insert returns the stored row with `RETURNING` (SQLite ≥ 3.35; the bundled SQLite is
//! newer), and a transition is one conditional `UPDATE` whose affected row count says
//! whether it happened.

use async_trait::async_trait;
use sqlx::Row as _;
use time::OffsetDateTime;
use uuid::Uuid;

use super::store::{LIST_LIMIT, NewOrderRow, Order, OrderStatus, OrderStore, rfc3339};
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
        }
    };
}

impl_order_store!(sqlx::Sqlite);
impl_order_store!(sqlx::Postgres);
