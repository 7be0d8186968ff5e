//! The reads and writes the GDPR workflows make on the server's tables, on [`SqlStore`]
//! with one SQL text for SQLite and PostgreSQL: a user's orders, fills and linked clients
//! page by page (exports stream them), their erasure, restrictions, and the retention
//! sources' expired rows.

use async_trait::async_trait;
use serde_json::{Value, json};
use sqlx::Row as _;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::storage::sql::{ServerDb, SqlStore, StoreResult, from_micros, to_micros};

/// One order as an export shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderExport {
    /// The order id (the page cursor).
    pub id: Uuid,
    /// The record.
    pub record: Value,
}

/// A row past its retention period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredRow {
    /// Its id.
    pub id: String,
    /// The user it is about.
    pub owner: String,
    /// When it was created.
    pub created: OffsetDateTime,
    /// The row as JSON, for the archive.
    pub content: Vec<u8>,
}

/// The GDPR workflows' store.
#[async_trait]
pub trait GdprStore: Send + Sync + 'static {
    /// Up to `limit` orders of `owner` with an id above `after`, in id order.
    async fn orders_of(
        &self,
        owner: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<OrderExport>>;

    /// How many orders `owner` has.
    async fn count_orders(&self, owner: Uuid) -> StoreResult<u64>;

    /// Empties the free-text notes of `owner`'s orders (the rest is kept for record
    /// keeping); returns how many orders and when the newest was created.
    async fn clear_order_notes(&self, owner: Uuid) -> StoreResult<(u64, Option<OffsetDateTime>)>;

    /// Up to `limit` fills of orders placed by `owner` with an id above `after`, in id
    /// order, as JSON.
    async fn fills_of(
        &self,
        owner: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<(String, Value)>>;

    /// How many fills name `owner`.
    async fn count_fills(&self, owner: &str) -> StoreResult<u64>;

    /// Replaces `owner` by `pseudonym` on their fills; returns how many and when the newest
    /// was executed.
    async fn pseudonymise_fills(
        &self,
        owner: &str,
        pseudonym: &str,
    ) -> StoreResult<(u64, Option<OffsetDateTime>)>;

    /// The accounts whose natural-person client is `user`, with the client's sealed record.
    async fn clients_of(&self, user: Uuid) -> StoreResult<Vec<(String, Vec<u8>)>>;

    /// The transaction references of the fills on `account`, with their execution times.
    async fn references_of(&self, account: &str) -> StoreResult<Vec<(String, OffsetDateTime)>>;

    /// Deletes the client of `account`; whether there was one.
    async fn forget_client(&self, account: &str) -> StoreResult<bool>;

    /// Deletes `user`'s roles, account entitlements, role grant requests (theirs and those
    /// they made) and restriction; returns how many rows went.
    async fn forget_links(&self, user: Uuid) -> StoreResult<u64>;

    /// Deletes `user`'s session rows (tokens' families and session details); returns how
    /// many went.
    async fn forget_sessions(&self, user: Uuid) -> StoreResult<u64>;

    /// Restricts (or lifts the restriction of) `user`; whether anything changed.
    async fn set_restricted(
        &self,
        user: Uuid,
        restricted: bool,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;

    /// Whether `user` is restricted.
    async fn is_restricted(&self, user: Uuid) -> StoreResult<bool>;

    /// Up to `limit` session rows with a family above `after`, in family order: family,
    /// user, client address and user agent as stored (for sealing rows from before).
    async fn session_clients(
        &self,
        after: &str,
        limit: u32,
    ) -> StoreResult<Vec<(String, String, Option<String>, Option<String>)>>;

    /// Replaces a session row's client address and user agent, if they are still `old`
    /// (compare-and-set); whether it did.
    async fn replace_session_client(
        &self,
        family: &str,
        old: (Option<&str>, Option<&str>),
        new: (Option<&str>, Option<&str>),
    ) -> StoreResult<bool>;

    /// Up to `limit` orders created before `cutoff` with an id above `after`, in id order.
    async fn expired_orders(
        &self,
        cutoff: OffsetDateTime,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<ExpiredRow>>;

    /// Deletes these orders; returns how many went.
    async fn delete_orders(&self, ids: &[String]) -> StoreResult<u64>;

    /// Up to `limit` fills executed before `cutoff` with an id above `after`, in id order.
    async fn expired_fills(
        &self,
        cutoff: OffsetDateTime,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<ExpiredRow>>;

    /// Deletes these fills; returns how many went.
    async fn delete_fills(&self, ids: &[String]) -> StoreResult<u64>;
}

const ORDER_COLUMNS: &str = "id, owner, account_id, symbol, side, order_type, quantity, \
                             limit_price, notes, status, created_at, updated_at";
const FILL_COLUMNS: &str = "id, order_id, owner, account_id, symbol, isin, venue, side, \
                            quantity, price, currency, executed_at, report_ref";

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// Placeholders `$from`, `$from+1`, ... for `n` values.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

macro_rules! impl_gdpr_store {
    ($db:ty) => {
        impl SqlStore<$db> {
            fn order_json(row: &<$db as sqlx::Database>::Row) -> StoreResult<(Uuid, Value)> {
                let id = <$db as ServerDb>::read_uuid(row, 0)?;
                let owner = <$db as ServerDb>::read_uuid(row, 1)?;
                let created = from_micros("server_orders", row.try_get(10)?)?;
                let updated = from_micros("server_orders", row.try_get(11)?)?;
                Ok((
                    id,
                    json!({
                        "id": id,
                        "owner": owner,
                        "account_id": row.try_get::<String, _>(2)?,
                        "symbol": row.try_get::<String, _>(3)?,
                        "side": row.try_get::<String, _>(4)?,
                        "type": row.try_get::<String, _>(5)?,
                        "quantity": row.try_get::<String, _>(6)?,
                        "limit_price": row.try_get::<Option<String>, _>(7)?,
                        "notes": row.try_get::<Option<String>, _>(8)?,
                        "status": row.try_get::<String, _>(9)?,
                        "created_at": rfc3339(created),
                        "updated_at": rfc3339(updated),
                    }),
                ))
            }

            fn fill_json(row: &<$db as sqlx::Database>::Row) -> StoreResult<(String, Value)> {
                let id: String = row.try_get(0)?;
                let executed = from_micros("server_executions", row.try_get(11)?)?;
                Ok((
                    id.clone(),
                    json!({
                        "id": id,
                        "order_id": row.try_get::<String, _>(1)?,
                        "owner": row.try_get::<String, _>(2)?,
                        "account_id": row.try_get::<String, _>(3)?,
                        "symbol": row.try_get::<String, _>(4)?,
                        "isin": row.try_get::<String, _>(5)?,
                        "venue": row.try_get::<String, _>(6)?,
                        "side": row.try_get::<String, _>(7)?,
                        "quantity": row.try_get::<String, _>(8)?,
                        "price": row.try_get::<String, _>(9)?,
                        "currency": row.try_get::<String, _>(10)?,
                        "executed_at": rfc3339(executed),
                        "transaction_reference": row.try_get::<String, _>(12)?,
                    }),
                ))
            }
        }

        #[async_trait]
        impl GdprStore for SqlStore<$db> {
            async fn orders_of(
                &self,
                owner: Uuid,
                after: Option<Uuid>,
                limit: u32,
            ) -> StoreResult<Vec<OrderExport>> {
                let rows = match after {
                    Some(after) => {
                        sqlx::query(&format!(
                            "SELECT {ORDER_COLUMNS} FROM server_orders \
                             WHERE owner = $1 AND id > $2 ORDER BY id LIMIT $3"
                        ))
                        .bind(<$db as ServerDb>::uuid(owner))
                        .bind(<$db as ServerDb>::uuid(after))
                        .bind(i64::from(limit))
                        .fetch_all(self.pool())
                        .await?
                    }
                    None => {
                        sqlx::query(&format!(
                            "SELECT {ORDER_COLUMNS} FROM server_orders \
                             WHERE owner = $1 ORDER BY id LIMIT $2"
                        ))
                        .bind(<$db as ServerDb>::uuid(owner))
                        .bind(i64::from(limit))
                        .fetch_all(self.pool())
                        .await?
                    }
                };
                rows.iter()
                    .map(|row| Self::order_json(row).map(|(id, record)| OrderExport { id, record }))
                    .collect()
            }

            async fn count_orders(&self, owner: Uuid) -> StoreResult<u64> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM server_orders WHERE owner = $1")
                    .bind(<$db as ServerDb>::uuid(owner))
                    .fetch_one(self.pool())
                    .await?;
                Ok(u64::try_from(n).unwrap_or(0))
            }

            async fn clear_order_notes(
                &self,
                owner: Uuid,
            ) -> StoreResult<(u64, Option<OffsetDateTime>)> {
                // One statement each (no read-then-write transaction, which SQLite would
                // refuse when another writer committed in between); running it again is
                // harmless.
                sqlx::query(
                    "UPDATE server_orders SET notes = NULL \
                     WHERE owner = $1 AND notes IS NOT NULL",
                )
                .bind(<$db as ServerDb>::uuid(owner))
                .execute(self.pool())
                .await?;
                let (n, newest): (i64, Option<i64>) = sqlx::query_as(
                    "SELECT COUNT(*), MAX(created_at) FROM server_orders WHERE owner = $1",
                )
                .bind(<$db as ServerDb>::uuid(owner))
                .fetch_one(self.pool())
                .await?;
                let newest = newest.map(|t| from_micros("server_orders", t)).transpose()?;
                Ok((u64::try_from(n).unwrap_or(0), newest))
            }

            async fn fills_of(
                &self,
                owner: &str,
                after: Option<&str>,
                limit: u32,
            ) -> StoreResult<Vec<(String, Value)>> {
                let rows = sqlx::query(&format!(
                    "SELECT {FILL_COLUMNS} FROM server_executions \
                     WHERE owner = $1 AND id > $2 ORDER BY id LIMIT $3"
                ))
                .bind(owner)
                .bind(after.unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await?;
                rows.iter().map(Self::fill_json).collect()
            }

            async fn count_fills(&self, owner: &str) -> StoreResult<u64> {
                let n: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM server_executions WHERE owner = $1")
                        .bind(owner)
                        .fetch_one(self.pool())
                        .await?;
                Ok(u64::try_from(n).unwrap_or(0))
            }

            async fn pseudonymise_fills(
                &self,
                owner: &str,
                pseudonym: &str,
            ) -> StoreResult<(u64, Option<OffsetDateTime>)> {
                // As clear_order_notes: read, then one update, no transaction.
                let newest: Option<i64> = sqlx::query_scalar(
                    "SELECT MAX(executed_at) FROM server_executions WHERE owner = $1",
                )
                .bind(owner)
                .fetch_one(self.pool())
                .await?;
                let done = sqlx::query("UPDATE server_executions SET owner = $2 WHERE owner = $1")
                    .bind(owner)
                    .bind(pseudonym)
                    .execute(self.pool())
                    .await?;
                let newest = newest
                    .map(|t| from_micros("server_executions", t))
                    .transpose()?;
                Ok((done.rows_affected(), newest))
            }

            async fn clients_of(&self, user: Uuid) -> StoreResult<Vec<(String, Vec<u8>)>> {
                let rows = sqlx::query(
                    "SELECT account_id, sealed FROM server_clients \
                     WHERE user_id = $1 AND kind = 'person' ORDER BY account_id",
                )
                .bind(<$db as ServerDb>::uuid(user))
                .fetch_all(self.pool())
                .await?;
                rows.iter()
                    .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                    .collect()
            }

            async fn references_of(
                &self,
                account: &str,
            ) -> StoreResult<Vec<(String, OffsetDateTime)>> {
                let rows = sqlx::query(
                    "SELECT report_ref, executed_at FROM server_executions \
                     WHERE account_id = $1 ORDER BY executed_at, id",
                )
                .bind(account)
                .fetch_all(self.pool())
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok((
                            row.try_get(0)?,
                            from_micros("server_executions", row.try_get(1)?)?,
                        ))
                    })
                    .collect()
            }

            async fn forget_client(&self, account: &str) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM server_clients WHERE account_id = $1")
                    .bind(account)
                    .execute(self.pool())
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn forget_links(&self, user: Uuid) -> StoreResult<u64> {
                let mut tx = self.pool().begin().await?;
                let mut gone = 0;
                for sql in [
                    "DELETE FROM server_user_roles WHERE user_id = $1",
                    "DELETE FROM server_account_entitlements WHERE user_id = $1",
                    "DELETE FROM server_role_grant_requests WHERE user_id = $1 OR requested_by = $1",
                    "UPDATE server_role_grant_requests SET approved_by = NULL WHERE approved_by = $1",
                    "UPDATE server_account_entitlements SET granted_by = NULL WHERE granted_by = $1",
                    "DELETE FROM server_gdpr_restrictions WHERE user_id = $1",
                ] {
                    let done = sqlx::query(sql)
                        .bind(<$db as ServerDb>::uuid(user))
                        .execute(&mut *tx)
                        .await?;
                    if sql.starts_with("DELETE") {
                        gone += done.rows_affected();
                    }
                }
                tx.commit().await?;
                Ok(gone)
            }

            async fn forget_sessions(&self, user: Uuid) -> StoreResult<u64> {
                let mut tx = self.pool().begin().await?;
                let mut gone = 0;
                for table in ["server_sessions", "server_session_info"] {
                    let done = sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
                        .bind(user.to_string())
                        .execute(&mut *tx)
                        .await?;
                    gone += done.rows_affected();
                }
                tx.commit().await?;
                Ok(gone)
            }

            async fn set_restricted(
                &self,
                user: Uuid,
                restricted: bool,
                now: OffsetDateTime,
            ) -> StoreResult<bool> {
                let done = if restricted {
                    sqlx::query(
                        "INSERT INTO server_gdpr_restrictions (user_id, since) VALUES ($1, $2) \
                         ON CONFLICT (user_id) DO NOTHING",
                    )
                    .bind(<$db as ServerDb>::uuid(user))
                    .bind(to_micros(now)?)
                    .execute(self.pool())
                    .await?
                } else {
                    sqlx::query("DELETE FROM server_gdpr_restrictions WHERE user_id = $1")
                        .bind(<$db as ServerDb>::uuid(user))
                        .execute(self.pool())
                        .await?
                };
                Ok(done.rows_affected() > 0)
            }

            async fn is_restricted(&self, user: Uuid) -> StoreResult<bool> {
                let row = sqlx::query("SELECT 1 FROM server_gdpr_restrictions WHERE user_id = $1")
                    .bind(<$db as ServerDb>::uuid(user))
                    .fetch_optional(self.pool())
                    .await?;
                Ok(row.is_some())
            }

            async fn session_clients(
                &self,
                after: &str,
                limit: u32,
            ) -> StoreResult<Vec<(String, String, Option<String>, Option<String>)>> {
                let rows = sqlx::query(
                    "SELECT family, user_id, client_ip, user_agent FROM server_session_info \
                     WHERE family > $1 ORDER BY family LIMIT $2",
                )
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok((
                            row.try_get(0)?,
                            row.try_get(1)?,
                            row.try_get(2)?,
                            row.try_get(3)?,
                        ))
                    })
                    .collect()
            }

            async fn replace_session_client(
                &self,
                family: &str,
                old: (Option<&str>, Option<&str>),
                new: (Option<&str>, Option<&str>),
            ) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE server_session_info SET client_ip = $4, user_agent = $5 \
                     WHERE family = $1 AND client_ip IS NOT DISTINCT FROM $2 \
                     AND user_agent IS NOT DISTINCT FROM $3",
                )
                .bind(family)
                .bind(old.0)
                .bind(old.1)
                .bind(new.0)
                .bind(new.1)
                .execute(self.pool())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn expired_orders(
                &self,
                cutoff: OffsetDateTime,
                after: Option<&str>,
                limit: u32,
            ) -> StoreResult<Vec<ExpiredRow>> {
                let after = match after {
                    Some(a) => Some(a.parse::<Uuid>().map_err(|_| {
                        crate::storage::sql::StoreError::Corrupt {
                            table: "server_orders",
                            detail: "a retention cursor that is not an order id".to_owned(),
                        }
                    })?),
                    None => None,
                };
                let rows = sqlx::query(&format!(
                    "SELECT {ORDER_COLUMNS} FROM server_orders \
                     WHERE created_at < $1 AND ($2 OR id > $3) ORDER BY id LIMIT $4"
                ))
                .bind(to_micros(cutoff)?)
                .bind(after.is_none())
                .bind(<$db as ServerDb>::uuid(after.unwrap_or(Uuid::nil())))
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await?;
                rows.iter()
                    .map(|row| {
                        let (id, record) = Self::order_json(row)?;
                        let created = from_micros("server_orders", row.try_get(10)?)?;
                        Ok(ExpiredRow {
                            id: id.to_string(),
                            owner: <$db as ServerDb>::read_uuid(row, 1)?.to_string(),
                            created,
                            content: record.to_string().into_bytes(),
                        })
                    })
                    .collect()
            }

            async fn delete_orders(&self, ids: &[String]) -> StoreResult<u64> {
                if ids.is_empty() {
                    return Ok(0);
                }
                let sql = format!(
                    "DELETE FROM server_orders WHERE id IN ({})",
                    placeholders(1, ids.len())
                );
                let mut query = sqlx::query(&sql);
                for id in ids {
                    let id = id.parse::<Uuid>().map_err(|_| {
                        crate::storage::sql::StoreError::Corrupt {
                            table: "server_orders",
                            detail: "an order id that is not a UUID".to_owned(),
                        }
                    })?;
                    query = query.bind(<$db as ServerDb>::uuid(id));
                }
                Ok(query.execute(self.pool()).await?.rows_affected())
            }

            async fn expired_fills(
                &self,
                cutoff: OffsetDateTime,
                after: Option<&str>,
                limit: u32,
            ) -> StoreResult<Vec<ExpiredRow>> {
                let rows = sqlx::query(&format!(
                    "SELECT {FILL_COLUMNS} FROM server_executions \
                     WHERE executed_at < $1 AND id > $2 ORDER BY id LIMIT $3"
                ))
                .bind(to_micros(cutoff)?)
                .bind(after.unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await?;
                rows.iter()
                    .map(|row| {
                        let (id, record) = Self::fill_json(row)?;
                        Ok(ExpiredRow {
                            id,
                            owner: row.try_get(2)?,
                            created: from_micros("server_executions", row.try_get(11)?)?,
                            content: record.to_string().into_bytes(),
                        })
                    })
                    .collect()
            }

            async fn delete_fills(&self, ids: &[String]) -> StoreResult<u64> {
                if ids.is_empty() {
                    return Ok(0);
                }
                let sql = format!(
                    "DELETE FROM server_executions WHERE id IN ({})",
                    placeholders(1, ids.len())
                );
                let mut query = sqlx::query(&sql);
                for id in ids {
                    query = query.bind(id);
                }
                Ok(query.execute(self.pool()).await?.rows_affected())
            }
        }
    };
}

impl_gdpr_store!(sqlx::Sqlite);
impl_gdpr_store!(sqlx::Postgres);
