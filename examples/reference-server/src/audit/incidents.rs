//! The incident table (`server_incidents`): the monitor's alerts, newest first.

use finsec_audit::Alert;
use serde::Serialize;
use sqlx::Row as _;
use utoipa::ToSchema;

use crate::error::{Result, ServerError};
use crate::storage::Storage;
use crate::storage::sql::{StoreError, from_micros};

/// One stored alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Incident {
    /// Its id (ascending in the order alerts were stored).
    pub id: i64,
    /// When it was raised (RFC 3339, UTC).
    pub at: String,
    /// The rule.
    pub rule: String,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// What the window was kept per: `user`, `ip`, `api_key` or `target`.
    pub per: String,
    /// The user id, address (or its blind index), API key id or target account.
    pub subject: String,
    /// What the window held.
    pub observed: i64,
    /// The rule's threshold.
    pub threshold: i64,
    /// The window, in seconds.
    pub window_secs: i64,
    /// The response the rule suggests, if any.
    pub response: Option<String>,
}

/// The incident table on the server's database.
#[derive(Debug, Clone)]
pub struct Incidents {
    storage: Storage,
}

fn store_err(e: sqlx::Error) -> ServerError {
    ServerError::Store(StoreError::Database(e))
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Runs the same query text on whichever pool the storage has.
macro_rules! on_pool {
    ($storage:expr, |$pool:ident| $body:expr) => {
        match $storage {
            Storage::Sqlite($pool) => $body,
            Storage::Postgres($pool) => $body,
        }
    };
}

const INSERT: &str = "INSERT INTO server_incidents \
     (at_us, rule, severity, per, subject, observed, threshold, window_secs, response) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

const LIST: &str = "SELECT id, at_us, rule, severity, per, subject, observed, threshold, \
     window_secs, response FROM server_incidents WHERE id < $1 ORDER BY id DESC LIMIT $2";

impl Incidents {
    /// The table on `storage`.
    pub fn new(storage: Storage) -> Self {
        Self { storage }
    }

    /// Stores an alert.
    ///
    /// # Errors
    /// [`ServerError::Store`] if the database fails.
    pub async fn insert(&self, alert: &Alert) -> Result<()> {
        let subject: String = alert.key.chars().take(256).collect();
        on_pool!(&self.storage, |pool| {
            let _done = sqlx::query(INSERT)
                .bind(alert.at_us)
                .bind(&alert.rule)
                .bind(alert.severity.as_str())
                .bind(alert.per.as_str())
                .bind(&subject)
                .bind(int(alert.observed))
                .bind(int(alert.threshold))
                .bind(int(alert.window_secs))
                .bind(alert.response.as_deref())
                .execute(pool)
                .await
                .map_err(store_err)?;
        });
        Ok(())
    }

    /// Up to `limit` incidents with ids below `before` (all when `None`), newest first.
    ///
    /// # Errors
    /// [`ServerError::Store`] if the database fails.
    pub async fn list(&self, before: Option<i64>, limit: i64) -> Result<Vec<Incident>> {
        let before = before.unwrap_or(i64::MAX);
        let rows = on_pool!(&self.storage, |pool| {
            sqlx::query(LIST)
                .bind(before)
                .bind(limit)
                .fetch_all(pool)
                .await
                .map_err(store_err)?
                .iter()
                .map(|row| {
                    let raw = (|| {
                        Ok::<_, sqlx::Error>((
                            row.try_get::<i64, _>("at_us")?,
                            Incident {
                                id: row.try_get("id")?,
                                at: String::new(),
                                rule: row.try_get("rule")?,
                                severity: row.try_get("severity")?,
                                per: row.try_get("per")?,
                                subject: row.try_get("subject")?,
                                observed: row.try_get("observed")?,
                                threshold: row.try_get("threshold")?,
                                window_secs: row.try_get("window_secs")?,
                                response: row.try_get("response")?,
                            },
                        ))
                    })();
                    let (at_us, mut incident) = raw.map_err(store_err)?;
                    incident.at = rfc3339(at_us)?;
                    Ok(incident)
                })
                .collect::<Result<Vec<_>>>()?
        });
        Ok(rows)
    }
}

/// The monitor's alerts go to the table through finsec-audit's handler trait.
#[async_trait::async_trait]
impl finsec_audit::IncidentHandler for Incidents {
    async fn incident(&self, alert: &Alert) -> finsec_audit::Result<()> {
        self.insert(alert).await.map_err(finsec_audit::Error::store)
    }
}

/// A stored time as RFC 3339 text.
fn rfc3339(us: i64) -> Result<String> {
    let t = from_micros(TABLE, us)?;
    t.format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            ServerError::Store(StoreError::Corrupt {
                table: TABLE,
                detail: format!("timestamp {us} not representable: {e}"),
            })
        })
}

/// The table.
const TABLE: &str = "server_incidents";
