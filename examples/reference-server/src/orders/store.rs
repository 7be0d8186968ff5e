//! The `server_orders` table on SQLite or PostgreSQL.
//!
//! Ids are UUIDv7 (PostgreSQL `uuid`, SQLite canonical text); quantities and prices are the
//! decimal text the client sent, after validation (never floats); times are unix
//! microseconds, UTC. A status changes only through [`OrderStore::transition`], a single
//! conditional `UPDATE`, so two concurrent approvals cannot both move an order. The SQL is
//! in `sql.rs`, once for both databases.

use std::fmt;

use async_trait::async_trait;
use rust_decimal::Decimal;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::storage::sql::{StoreError, StoreResult, from_micros};

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

    /// The status stored as `text`.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if it is none (the table's `CHECK` prevents it).
    pub(crate) fn parse(text: &str) -> StoreResult<Self> {
        Ok(match text {
            "accepted" => Self::Accepted,
            "pending_approval" => Self::PendingApproval,
            "rejected" => Self::Rejected,
            "expired" => Self::Expired,
            other => {
                return Err(StoreError::Corrupt {
                    table: TABLE,
                    detail: format!("unknown order status {other:?}"),
                });
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
    pub owner: Uuid,
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
    /// The request's `Idempotency-Key`, if it sent one.
    pub idempotency: Option<Idempotency>,
}

/// What makes a retried `POST /orders` the same request: the caller's key and the first
/// request's body digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    /// The `Idempotency-Key` header: 1 to 255 printable ASCII characters, unique per owner.
    pub key: String,
    /// SHA-256 of the request body.
    pub request_sha256: [u8; 32],
}

/// The orders of the server's users (`server_orders`). Implemented by
/// [`SqlStore`](crate::storage::sql::SqlStore) on SQLite and PostgreSQL.
#[async_trait]
pub trait OrderStore: fmt::Debug + Send + Sync + 'static {
    /// Stores `new` (`updated_at` = `created_at`) and returns it as stored.
    ///
    /// # Errors
    /// [`StoreError::Database`]: a taken id, approval id or (owner, idempotency key) (a
    /// unique violation), an owner
    /// that is not a user (foreign key), or a row the table's checks refuse;
    /// [`StoreError::TimeOutOfRange`] if `created_at` cannot be stored.
    async fn insert(&self, new: &NewOrderRow) -> StoreResult<Order>;

    /// The order `owner` placed with `Idempotency-Key` `key`, with the digest of the body
    /// that placed it, or `None` if there is none.
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`] if the stored row does not decode.
    async fn find_idempotent(
        &self,
        owner: Uuid,
        key: &str,
    ) -> StoreResult<Option<(Order, [u8; 32])>>;

    /// The order `id`, or `None` if there is none.
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`] if the stored row does not decode.
    async fn get(&self, id: Uuid) -> StoreResult<Option<Order>>;

    /// The newest [`LIST_LIMIT`] orders of `owner`, newest first (ties by id, descending);
    /// empty if there are none.
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`] if a stored row does not decode.
    async fn list_by_owner(&self, owner: Uuid) -> StoreResult<Vec<Order>>;

    /// Moves order `id` from `from` to `to` at `now` in one conditional `UPDATE`: `true` if
    /// it moved, `false` if it was not in `from` (someone else moved it first) or does not
    /// exist. Of concurrent calls with the same `from`, at most one returns `true`.
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::TimeOutOfRange`] if `now` cannot be stored.
    async fn transition(
        &self,
        id: Uuid,
        from: OrderStatus,
        to: OrderStatus,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;

    /// Adds `amount` (negative to take back an earlier addition) to the total of `scope`
    /// for `day` (days since the Unix epoch, UTC), starting from zero, and returns the new
    /// total. Concurrent additions to one total each see the others: they are applied one
    /// after the other (compare-and-set), never lost. Totals more than
    /// [`NOTIONAL_DAYS_KEPT`] days older than `day` are deleted on the way.
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`] if the stored total is not a
    /// decimal or the sum overflows; [`StoreError::Contended`] if other writers kept
    /// changing the total for [`MAX_NOTIONAL_RETRIES`] attempts.
    async fn add_notional(&self, scope: &str, day: i64, amount: Decimal) -> StoreResult<Decimal>;
}

/// How many days of notional totals are kept.
pub const NOTIONAL_DAYS_KEPT: i64 = 7;

/// How often [`OrderStore::add_notional`] retries a compare-and-set that lost a race.
pub const MAX_NOTIONAL_RETRIES: usize = 64;

/// A stored time as RFC 3339 text.
///
/// # Errors
/// [`StoreError::Corrupt`] if it is out of range.
pub(crate) fn rfc3339(micros: i64) -> StoreResult<String> {
    from_micros(TABLE, micros)?
        .format(&Rfc3339)
        .map_err(|e| StoreError::Corrupt {
            table: TABLE,
            detail: format!("timestamp {micros} not representable: {e}"),
        })
}

/// The table.
pub(crate) const TABLE: &str = "server_orders";
