//! The capability's own tables: simulated fills (`server_executions`) and clients
//! (`server_clients`), on [`SqlStore`] with one SQL text for SQLite and PostgreSQL.

use async_trait::async_trait;
use sqlx::Row as _;
use time::OffsetDateTime;

use crate::storage::sql::{SqlStore, StoreError, StoreResult, from_micros, to_micros};

/// One simulated fill, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionRow {
    /// The execution id (UUIDv7 text).
    pub id: String,
    /// The order it filled (one fill per order).
    pub order_id: String,
    /// The id of the user who placed the order.
    pub owner: String,
    /// The order's trading account.
    pub account_id: String,
    /// The symbol ordered.
    pub symbol: String,
    /// The instrument's ISIN.
    pub isin: String,
    /// The instrument's class (`equity`, `etf`, `bond`).
    pub class: String,
    /// The venue's MIC.
    pub venue: String,
    /// `buy` or `sell`.
    pub side: String,
    /// Quantity, decimal text.
    pub quantity: String,
    /// Price, decimal text.
    pub price: String,
    /// ISO 4217 code of the price.
    pub currency: String,
    /// When the order was placed.
    pub ordered_at: OffsetDateTime,
    /// When it was filled.
    pub executed_at: OffsetDateTime,
    /// The id of the fill's audit event.
    pub audit_event: String,
    /// The transaction reference it is reported under.
    pub report_ref: String,
    /// The clock's declared divergence from UTC, microseconds, when it exceeded RTS 25's
    /// maximum for the fill's millisecond stamp.
    pub clock_flag_us: Option<i64>,
}

/// A client as stored: an LEI, or a person's details sealed under the client's subject key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientRow {
    /// A legal entity.
    Lei(String),
    /// A natural person: their names, birth date and national client identifier as JSON,
    /// sealed under the client's subject key.
    Person(Vec<u8>),
}

/// The capability's store.
#[async_trait]
pub trait ComplianceStore: Send + Sync + 'static {
    /// Stores a fill; `false` (and nothing stored) if the order already has one.
    async fn insert_execution(&self, row: &ExecutionRow) -> StoreResult<bool>;

    /// Up to `limit` fills executed in `[from, to)`, after `(executed_at, id)` `after`, in
    /// that order.
    async fn executions(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        after: Option<(OffsetDateTime, String)>,
        limit: u32,
    ) -> StoreResult<Vec<ExecutionRow>>;

    /// The fill of order `order_id`, if any.
    async fn execution_of(&self, order_id: &str) -> StoreResult<Option<ExecutionRow>>;

    /// Up to `limit` fills (of `account`, or of every account) that have no record in the
    /// report store (`finsec_mifid_reports`, in the same database), after `(executed_at, id)`
    /// `after`, in that order.
    async fn unreported(
        &self,
        account: Option<&str>,
        after: Option<(OffsetDateTime, String)>,
        limit: u32,
    ) -> StoreResult<Vec<ExecutionRow>>;

    /// Sets (inserts or replaces) the client of `account`; `user` is the server user a
    /// natural-person client is, if they are one.
    async fn put_client(
        &self,
        account: &str,
        client: &ClientRow,
        user: Option<uuid::Uuid>,
        now: OffsetDateTime,
    ) -> StoreResult<()>;

    /// The client of `account`, if one is set.
    async fn client(&self, account: &str) -> StoreResult<Option<ClientRow>>;
}

const COLUMNS: &str = "id, order_id, owner, account_id, symbol, isin, class, venue, side, \
                       quantity, price, currency, ordered_at, executed_at, audit_event, \
                       report_ref, clock_flag_us";

const TABLE: &str = "server_executions";

macro_rules! impl_compliance_store {
    ($db:ty) => {
        impl SqlStore<$db> {
            fn execution(row: &<$db as sqlx::Database>::Row) -> StoreResult<ExecutionRow> {
                Ok(ExecutionRow {
                    id: row.try_get(0)?,
                    order_id: row.try_get(1)?,
                    owner: row.try_get(2)?,
                    account_id: row.try_get(3)?,
                    symbol: row.try_get(4)?,
                    isin: row.try_get(5)?,
                    class: row.try_get(6)?,
                    venue: row.try_get(7)?,
                    side: row.try_get(8)?,
                    quantity: row.try_get(9)?,
                    price: row.try_get(10)?,
                    currency: row.try_get(11)?,
                    ordered_at: from_micros(TABLE, row.try_get(12)?)?,
                    executed_at: from_micros(TABLE, row.try_get(13)?)?,
                    audit_event: row.try_get(14)?,
                    report_ref: row.try_get(15)?,
                    clock_flag_us: row.try_get(16)?,
                })
            }
        }

        #[async_trait]
        impl ComplianceStore for SqlStore<$db> {
            async fn insert_execution(&self, r: &ExecutionRow) -> StoreResult<bool> {
                let done = sqlx::query(&format!(
                    "INSERT INTO server_executions ({COLUMNS}) VALUES \
                     ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
                     ON CONFLICT (order_id) DO NOTHING"
                ))
                .bind(&r.id)
                .bind(&r.order_id)
                .bind(&r.owner)
                .bind(&r.account_id)
                .bind(&r.symbol)
                .bind(&r.isin)
                .bind(&r.class)
                .bind(&r.venue)
                .bind(&r.side)
                .bind(&r.quantity)
                .bind(&r.price)
                .bind(&r.currency)
                .bind(to_micros(r.ordered_at)?)
                .bind(to_micros(r.executed_at)?)
                .bind(&r.audit_event)
                .bind(&r.report_ref)
                .bind(r.clock_flag_us)
                .execute(self.pool())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn executions(
                &self,
                from: OffsetDateTime,
                to: OffsetDateTime,
                after: Option<(OffsetDateTime, String)>,
                limit: u32,
            ) -> StoreResult<Vec<ExecutionRow>> {
                let (after_t, after_id) = match after {
                    Some((t, id)) => (to_micros(t)?, id),
                    None => (i64::MIN, String::new()),
                };
                let rows = sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM server_executions \
                     WHERE executed_at >= $1 AND executed_at < $2 \
                     AND (executed_at > $3 OR (executed_at = $3 AND id > $4)) \
                     ORDER BY executed_at, id LIMIT $5"
                ))
                .bind(to_micros(from)?)
                .bind(to_micros(to)?)
                .bind(after_t)
                .bind(after_id)
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await?;
                rows.iter().map(Self::execution).collect()
            }

            async fn execution_of(&self, order_id: &str) -> StoreResult<Option<ExecutionRow>> {
                let row = sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM server_executions WHERE order_id = $1"
                ))
                .bind(order_id)
                .fetch_optional(self.pool())
                .await?;
                row.as_ref().map(Self::execution).transpose()
            }

            async fn unreported(
                &self,
                account: Option<&str>,
                after: Option<(OffsetDateTime, String)>,
                limit: u32,
            ) -> StoreResult<Vec<ExecutionRow>> {
                let (after_t, after_id) = match after {
                    Some((t, id)) => (to_micros(t)?, id),
                    None => (i64::MIN, String::new()),
                };
                let account_filter = if account.is_some() { "e.account_id = $4 AND " } else { "" };
                let sql = format!(
                    "SELECT {} FROM server_executions e WHERE {account_filter}\
                     (e.executed_at > $1 OR (e.executed_at = $1 AND e.id > $2)) \
                     AND NOT EXISTS (SELECT 1 FROM finsec_mifid_reports r \
                                     WHERE r.reference = e.report_ref) \
                     ORDER BY e.executed_at, e.id LIMIT $3",
                    COLUMNS
                        .split(", ")
                        .map(|c| format!("e.{c}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                let mut q = sqlx::query(&sql)
                    .bind(after_t)
                    .bind(after_id)
                    .bind(i64::from(limit));
                if let Some(account) = account {
                    q = q.bind(account);
                }
                let rows = q.fetch_all(self.pool()).await?;
                rows.iter().map(Self::execution).collect()
            }

            async fn put_client(
                &self,
                account: &str,
                client: &ClientRow,
                user: Option<uuid::Uuid>,
                now: OffsetDateTime,
            ) -> StoreResult<()> {
                let (kind, lei, sealed) = match client {
                    ClientRow::Lei(lei) => ("lei", Some(lei.as_str()), None),
                    ClientRow::Person(sealed) => ("person", None, Some(sealed.as_slice())),
                };
                sqlx::query(
                    "INSERT INTO server_clients \
                     (account_id, kind, lei, sealed, updated_at, user_id) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_id) DO UPDATE SET \
                     kind = excluded.kind, lei = excluded.lei, sealed = excluded.sealed, \
                     updated_at = excluded.updated_at, user_id = excluded.user_id",
                )
                .bind(account)
                .bind(kind)
                .bind(lei)
                .bind(sealed)
                .bind(to_micros(now)?)
                .bind(user.map(<$db as crate::storage::sql::ServerDb>::uuid))
                .execute(self.pool())
                .await?;
                Ok(())
            }

            async fn client(&self, account: &str) -> StoreResult<Option<ClientRow>> {
                let row = sqlx::query(
                    "SELECT kind, lei, sealed FROM server_clients WHERE account_id = $1",
                )
                .bind(account)
                .fetch_optional(self.pool())
                .await?;
                let Some(row) = row else { return Ok(None) };
                let kind: String = row.try_get(0)?;
                let lei: Option<String> = row.try_get(1)?;
                let sealed: Option<Vec<u8>> = row.try_get(2)?;
                match (kind.as_str(), lei, sealed) {
                    ("lei", Some(lei), None) => Ok(Some(ClientRow::Lei(lei))),
                    ("person", None, Some(sealed)) => Ok(Some(ClientRow::Person(sealed))),
                    _ => Err(StoreError::Corrupt {
                        table: "server_clients",
                        detail: format!("a {kind} client row has the wrong columns"),
                    }),
                }
            }
        }
    };
}

impl_compliance_store!(sqlx::Sqlite);
impl_compliance_store!(sqlx::Postgres);
