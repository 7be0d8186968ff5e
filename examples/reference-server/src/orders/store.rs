//! The `server_orders` table on SQLite or PostgreSQL.
//!
//! Ids are UUIDv7 (PostgreSQL `uuid`, SQLite canonical text); quantities and prices are the
//! decimal text the client sent, after validation (never floats); times are unix
//! microseconds, UTC. A status changes only through [`OrderStore::transition`], a single
//! conditional `UPDATE`, so two concurrent approvals cannot both move an order.

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::storage::Storage;

/// The most orders `GET /orders` returns (the newest first).
pub const LIST_LIMIT: i64 = 500;

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Accepted for execution.
    Accepted,
    /// Waiting for a second person's approval.
    PendingApproval,
    /// Refused when its approval completed (the initiator was no longer allowed to trade).
    Rejected,
    /// Its approval window closed before it was approved.
    Expired,
}

impl OrderStatus {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::PendingApproval => "pending_approval",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
        }
    }

    fn parse(text: &str) -> Result<Self, sqlx::Error> {
        Ok(match text {
            "accepted" => Self::Accepted,
            "pending_approval" => Self::PendingApproval,
            "rejected" => Self::Rejected,
            "expired" => Self::Expired,
            other => {
                return Err(sqlx::Error::Decode(
                    format!("unknown order status {other:?}").into(),
                ));
            }
        })
    }
}

/// A stored order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Order {
    /// The order id (UUIDv7).
    #[schema(example = "019abc12-3456-7def-8123-456789abcdef")]
    pub id: String,
    /// The id of the user who placed it.
    pub owner: String,
    /// The trading account.
    pub account_id: String,
    /// Ticker symbol.
    pub symbol: String,
    /// `buy` or `sell`.
    pub side: String,
    /// `market` or `limit`.
    pub order_type: String,
    /// Quantity, decimal text.
    pub quantity: String,
    /// Limit price, decimal text (limit orders only).
    pub limit_price: Option<String>,
    /// The notes, sanitised HTML.
    pub notes: Option<String>,
    /// Where the order stands.
    pub status: OrderStatus,
    /// The maker-checker approval request, for orders that needed one.
    pub approval_id: Option<String>,
    /// When it was placed (RFC 3339, UTC).
    pub created_at: String,
    /// When its status last changed (RFC 3339, UTC).
    pub updated_at: String,
}

/// The fields of a new order, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrderRow {
    /// The id.
    pub id: Uuid,
    /// The owner's user id.
    pub owner: String,
    /// The account.
    pub account_id: String,
    /// The symbol.
    pub symbol: String,
    /// `buy` or `sell`.
    pub side: &'static str,
    /// `market` or `limit`.
    pub order_type: &'static str,
    /// Decimal text.
    pub quantity: String,
    /// Decimal text.
    pub limit_price: Option<String>,
    /// Sanitised HTML.
    pub notes: Option<String>,
    /// The initial status.
    pub status: OrderStatus,
    /// The approval request, if one was opened.
    pub approval_id: Option<String>,
    /// When.
    pub created_at: OffsetDateTime,
}

type Row = (
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

const COLUMNS_SQLITE: &str = "id, owner, account_id, symbol, side, order_type, quantity, \
     limit_price, notes, status, approval_id, created_at, updated_at";
const COLUMNS_PG: &str = "id::text, owner::text, account_id, symbol, side, order_type, \
     quantity, limit_price, notes, status, approval_id, created_at, updated_at";

/// Unix microseconds.
pub fn to_micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

fn rfc3339(micros: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| micros.to_string())
}

fn order(row: Row) -> Result<Order, sqlx::Error> {
    let (
        id,
        owner,
        account_id,
        symbol,
        side,
        order_type,
        quantity,
        limit_price,
        notes,
        status,
        approval_id,
        created_at,
        updated_at,
    ) = row;
    Ok(Order {
        id,
        owner,
        account_id,
        symbol,
        side,
        order_type,
        quantity,
        limit_price,
        notes,
        status: OrderStatus::parse(&status)?,
        approval_id,
        created_at: rfc3339(created_at),
        updated_at: rfc3339(updated_at),
    })
}

/// The orders table on the server's database.
#[derive(Debug, Clone)]
pub struct OrderStore {
    storage: Storage,
}

impl OrderStore {
    /// The store on `storage` (migrated at start-up).
    pub fn new(storage: Storage) -> Self {
        Self { storage }
    }

    /// Inserts a new order and returns it as stored.
    ///
    /// # Errors
    /// The database error.
    pub async fn insert(&self, new: &NewOrderRow) -> Result<Order, sqlx::Error> {
        let at = to_micros(new.created_at);
        let id = new.id.hyphenated().to_string();
        match &self.storage {
            Storage::Sqlite(pool) => {
                sqlx::query(
                    "INSERT INTO server_orders (id, owner, account_id, symbol, side, order_type, \
                     quantity, limit_price, notes, status, approval_id, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
                )
                .bind(&id)
                .bind(&new.owner)
                .bind(&new.account_id)
                .bind(&new.symbol)
                .bind(new.side)
                .bind(new.order_type)
                .bind(&new.quantity)
                .bind(&new.limit_price)
                .bind(&new.notes)
                .bind(new.status.as_str())
                .bind(&new.approval_id)
                .bind(at)
                .execute(pool)
                .await?;
            }
            Storage::Postgres(pool) => {
                sqlx::query(
                    "INSERT INTO server_orders (id, owner, account_id, symbol, side, order_type, \
                     quantity, limit_price, notes, status, approval_id, created_at, updated_at) \
                     VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
                )
                .bind(&id)
                .bind(&new.owner)
                .bind(&new.account_id)
                .bind(&new.symbol)
                .bind(new.side)
                .bind(new.order_type)
                .bind(&new.quantity)
                .bind(&new.limit_price)
                .bind(&new.notes)
                .bind(new.status.as_str())
                .bind(&new.approval_id)
                .bind(at)
                .execute(pool)
                .await?;
            }
        }
        self.get(&new.id)
            .await?
            .ok_or_else(|| sqlx::Error::Protocol("an inserted order was not found".to_owned()))
    }

    /// The order `id`, if it exists.
    ///
    /// # Errors
    /// The database error.
    pub async fn get(&self, id: &Uuid) -> Result<Option<Order>, sqlx::Error> {
        let id = id.hyphenated().to_string();
        let row: Option<Row> = match &self.storage {
            Storage::Sqlite(pool) => {
                sqlx::query_as(&format!(
                    "SELECT {COLUMNS_SQLITE} FROM server_orders WHERE id = ?1"
                ))
                .bind(&id)
                .fetch_optional(pool)
                .await?
            }
            Storage::Postgres(pool) => {
                sqlx::query_as(&format!(
                    "SELECT {COLUMNS_PG} FROM server_orders WHERE id = $1::uuid"
                ))
                .bind(&id)
                .fetch_optional(pool)
                .await?
            }
        };
        row.map(order).transpose()
    }

    /// The newest [`LIST_LIMIT`] orders of `owner`, newest first.
    ///
    /// # Errors
    /// The database error.
    pub async fn list_by_owner(&self, owner: &str) -> Result<Vec<Order>, sqlx::Error> {
        let rows: Vec<Row> = match &self.storage {
            Storage::Sqlite(pool) => {
                sqlx::query_as(&format!(
                    "SELECT {COLUMNS_SQLITE} FROM server_orders WHERE owner = ?1 \
                     ORDER BY created_at DESC, id DESC LIMIT ?2"
                ))
                .bind(owner)
                .bind(LIST_LIMIT)
                .fetch_all(pool)
                .await?
            }
            Storage::Postgres(pool) => {
                sqlx::query_as(&format!(
                    "SELECT {COLUMNS_PG} FROM server_orders WHERE owner = $1::uuid \
                     ORDER BY created_at DESC, id DESC LIMIT $2"
                ))
                .bind(owner)
                .bind(LIST_LIMIT)
                .fetch_all(pool)
                .await?
            }
        };
        rows.into_iter().map(order).collect()
    }

    /// Moves order `id` from `from` to `to` at `now`; `false` if it was not in `from`
    /// (someone else moved it first).
    ///
    /// # Errors
    /// The database error.
    pub async fn transition(
        &self,
        id: &Uuid,
        from: OrderStatus,
        to: OrderStatus,
        now: OffsetDateTime,
    ) -> Result<bool, sqlx::Error> {
        let id = id.hyphenated().to_string();
        let at = to_micros(now);
        let done = match &self.storage {
            Storage::Sqlite(pool) => sqlx::query(
                "UPDATE server_orders SET status = ?1, updated_at = ?2 \
                     WHERE id = ?3 AND status = ?4",
            )
            .bind(to.as_str())
            .bind(at)
            .bind(&id)
            .bind(from.as_str())
            .execute(pool)
            .await?
            .rows_affected(),
            Storage::Postgres(pool) => sqlx::query(
                "UPDATE server_orders SET status = $1, updated_at = $2 \
                     WHERE id = $3::uuid AND status = $4",
            )
            .bind(to.as_str())
            .bind(at)
            .bind(&id)
            .bind(from.as_str())
            .execute(pool)
            .await?
            .rows_affected(),
        };
        Ok(done == 1)
    }
}
