//! Trading-account entitlements (`server_account_entitlements`): which users may act on
//! which trading accounts.
//!
//! A user may place an order only for an account they are entitled to, and read (or
//! approve) an order only if they are entitled to its account; this holds for sessions and
//! API keys alike, since both act as their user. Holders of [`ACCOUNTS_READ_ANY`] (admin,
//! through `*`) may read any account's orders without an entitlement, for supervision;
//! nobody places or approves orders on an account without one. Entitlements are read on
//! every request, so a grant or a revocation applies at the next request, on every
//! instance sharing the database.
//!
//! Entitlements are managed by admins over HTTP (`/admin/users/{id}/accounts`, needing
//! [`ACCOUNTS_ADMIN`] and a recent login) or by operators with the `accounts` subcommand.
//!
//! [`ACCOUNTS_READ_ANY`]: crate::rbac::ACCOUNTS_READ_ANY
//! [`ACCOUNTS_ADMIN`]: crate::rbac::ACCOUNTS_ADMIN

use std::fmt;
use std::io::Write;
use std::sync::Arc;

use async_trait::async_trait;
use finsec_validate::request::AccountId;
use serde::Serialize;
use sqlx::Row as _;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::users::Username;
use crate::config::Config;
use crate::error::ServerError;
use crate::storage::Storage;
use crate::storage::sql::{ServerDb, SqlStore, StoreError, StoreResult, from_micros, to_micros};

/// The table, for errors.
pub(crate) const TABLE: &str = "server_account_entitlements";

/// The most entitlements one user may hold (a grant beyond it is refused), which bounds
/// what `GET /accounts` returns and what every order check reads.
pub const MAX_ACCOUNTS_PER_USER: usize = 1000;

/// One user's entitlement to one trading account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entitlement {
    /// The account.
    pub account_id: AccountId,
    /// The admin who granted it; `None` when an operator granted it from the command line
    /// (or the admin's account was deleted since).
    pub granted_by: Option<Uuid>,
    /// When it was granted.
    pub granted_at: OffsetDateTime,
}

/// An entitlement as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AccountEntitlement {
    /// The trading account.
    #[schema(example = "ACC-1")]
    pub account_id: String,
    /// The id of the admin who granted it; absent when an operator granted it from the
    /// command line.
    pub granted_by: Option<String>,
    /// When it was granted (RFC 3339, UTC).
    pub granted_at: String,
}

impl From<&Entitlement> for AccountEntitlement {
    fn from(e: &Entitlement) -> Self {
        Self {
            account_id: e.account_id.to_string(),
            granted_by: e.granted_by.map(|id| id.to_string()),
            granted_at: e
                .granted_at
                .format(&Rfc3339)
                .unwrap_or_else(|_| e.granted_at.to_string()),
        }
    }
}

/// The outcome of [`EntitlementStore::grant`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granted {
    /// The entitlement was added.
    Added,
    /// The user held it already (nothing changed).
    Existing,
    /// The user holds [`MAX_ACCOUNTS_PER_USER`] entitlements already (nothing changed).
    LimitReached,
}

/// Users' trading-account entitlements, on the server's database. Implemented by
/// [`SqlStore`] on SQLite and PostgreSQL.
#[async_trait]
pub trait EntitlementStore: fmt::Debug + Send + Sync + 'static {
    /// Whether user `user_id` is entitled to `account`.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    async fn is_entitled(&self, user_id: Uuid, account: &AccountId) -> StoreResult<bool>;

    /// User `user_id`'s entitlements, sorted by account id (byte order, the same on both
    /// databases); empty if none or no such user.
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`] if a stored account id or time
    /// does not decode (the table's `CHECK`s prevent it).
    async fn accounts_of(&self, user_id: Uuid) -> StoreResult<Vec<Entitlement>>;

    /// Entitles user `user_id` to `account`, granted by `by` (an admin) at `now`. Of two
    /// racing grants of the same entitlement, exactly one answers [`Granted::Added`].
    ///
    /// # Errors
    /// [`StoreError::Database`], also when the user does not exist (foreign key);
    /// [`StoreError::TimeOutOfRange`] if `now` cannot be stored.
    async fn grant(
        &self,
        user_id: Uuid,
        account: &AccountId,
        by: Option<Uuid>,
        now: OffsetDateTime,
    ) -> StoreResult<Granted>;

    /// Takes user `user_id`'s entitlement to `account` away: `true` if it was removed,
    /// `false` if there was none.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    async fn revoke(&self, user_id: Uuid, account: &AccountId) -> StoreResult<bool>;
}

/// A stored account id as an [`AccountId`].
///
/// # Errors
/// [`StoreError::Corrupt`] if it is not one (the table's `CHECK` prevents it).
pub(crate) fn account_id(text: &str) -> StoreResult<AccountId> {
    text.parse().map_err(|e| StoreError::Corrupt {
        table: TABLE,
        detail: format!("invalid account id: {e}"),
    })
}

const IS_ENTITLED: &str =
    "SELECT 1 FROM server_account_entitlements WHERE user_id = $1 AND account_id = $2";

const ACCOUNTS_OF: &str = "SELECT account_id, granted_by, granted_at \
     FROM server_account_entitlements WHERE user_id = $1";

/// One statement, so a grant never passes the bound by itself: the row is inserted only
/// while the user holds fewer than `$5` entitlements. (Grants of different accounts to one
/// user racing each other may each see the count below the bound; admins granting in
/// parallel to one user is the only way past it, by at most their number.)
const GRANT: &str = "INSERT INTO server_account_entitlements \
     (user_id, account_id, granted_by, granted_at) \
     SELECT $1, $2, $3, $4 WHERE \
     (SELECT count(*) FROM server_account_entitlements WHERE user_id = $1) < $5 \
     ON CONFLICT (user_id, account_id) DO NOTHING";

const REVOKE: &str =
    "DELETE FROM server_account_entitlements WHERE user_id = $1 AND account_id = $2";

/// The trait implementation, expanded once per backend.
macro_rules! impl_entitlement_store {
    ($db:ty) => {
        #[async_trait]
        impl EntitlementStore for SqlStore<$db> {
            async fn is_entitled(&self, user_id: Uuid, account: &AccountId) -> StoreResult<bool> {
                let found = sqlx::query(IS_ENTITLED)
                    .bind(<$db as ServerDb>::uuid(user_id))
                    .bind(account.as_str())
                    .fetch_optional(self.pool())
                    .await?;
                Ok(found.is_some())
            }

            async fn accounts_of(&self, user_id: Uuid) -> StoreResult<Vec<Entitlement>> {
                let rows = sqlx::query(ACCOUNTS_OF)
                    .bind(<$db as ServerDb>::uuid(user_id))
                    .fetch_all(self.pool())
                    .await?;
                let mut all = rows
                    .iter()
                    .map(|row| {
                        let account: String = row.try_get(0)?;
                        let granted_by: Option<<$db as ServerDb>::Uuid> = row.try_get(1)?;
                        Ok(Entitlement {
                            account_id: account_id(&account)?,
                            granted_by: match granted_by {
                                Some(_) => Some(<$db as ServerDb>::read_uuid(row, 1)?),
                                None => None,
                            },
                            granted_at: from_micros(TABLE, row.try_get(2)?)?,
                        })
                    })
                    .collect::<StoreResult<Vec<_>>>()?;
                all.sort_unstable_by(|a, b| a.account_id.cmp(&b.account_id));
                Ok(all)
            }

            async fn grant(
                &self,
                user_id: Uuid,
                account: &AccountId,
                by: Option<Uuid>,
                now: OffsetDateTime,
            ) -> StoreResult<Granted> {
                let bound = i64::try_from(MAX_ACCOUNTS_PER_USER).unwrap_or(i64::MAX);
                let done = sqlx::query(GRANT)
                    .bind(<$db as ServerDb>::uuid(user_id))
                    .bind(account.as_str())
                    .bind(by.map(<$db as ServerDb>::uuid))
                    .bind(to_micros(now)?)
                    .bind(bound)
                    .execute(self.pool())
                    .await?;
                if done.rows_affected() == 1 {
                    return Ok(Granted::Added);
                }
                Ok(if self.is_entitled(user_id, account).await? {
                    Granted::Existing
                } else {
                    Granted::LimitReached
                })
            }

            async fn revoke(&self, user_id: Uuid, account: &AccountId) -> StoreResult<bool> {
                let done = sqlx::query(REVOKE)
                    .bind(<$db as ServerDb>::uuid(user_id))
                    .bind(account.as_str())
                    .execute(self.pool())
                    .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

impl_entitlement_store!(sqlx::Sqlite);
impl_entitlement_store!(sqlx::Postgres);

/// Entitlement operations for operators, on the same database as a running server (for
/// the first admin's accounts, or without HTTP).
#[derive(Debug, Clone, clap::Subcommand)]
pub enum AccountsCommand {
    /// Entitle a user to a trading account.
    Grant {
        /// The user's name.
        username: String,
        /// The trading account (1 to 64 ASCII letters, digits, `-` or `_`).
        #[arg(value_parser = parse_account)]
        account: AccountId,
    },
    /// Take a user's entitlement to a trading account away.
    Revoke {
        /// The user's name.
        username: String,
        /// The trading account.
        #[arg(value_parser = parse_account)]
        account: AccountId,
    },
    /// Print the accounts a user is entitled to, one per line.
    List {
        /// The user's name.
        username: String,
    },
}

fn parse_account(s: &str) -> Result<AccountId, String> {
    s.parse::<AccountId>().map_err(|e| e.to_string())
}

fn db_error<E>(storage: &Storage) -> impl Fn(E) -> ServerError + '_
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |source| ServerError::Storage {
        backend: storage.backend().as_str(),
        target: TABLE.to_owned(),
        source: Box::new(source),
    }
}

/// Runs an `accounts` subcommand, printing its result to `out`.
///
/// # Errors
/// An unknown user, a user at [`MAX_ACCOUNTS_PER_USER`] (for `grant`), the database, or
/// writing to `out`.
pub async fn run_command(
    config: &Config,
    command: &AccountsCommand,
    out: &mut dyn Write,
) -> crate::error::Result<()> {
    let storage = Storage::open(config).await?;
    let result = run_on(config, &storage, command, out).await;
    storage.close().await;
    result
}

async fn run_on(
    config: &Config,
    storage: &Storage,
    command: &AccountsCommand,
    out: &mut dyn Write,
) -> crate::error::Result<()> {
    crate::capabilities::migrate(storage).await?;
    let stores = storage.stores();
    let sealed_users = crate::gdpr::sealing::command_users(config, storage).await?;
    let user = |username: &str| {
        let username = username.to_owned();
        let users = Arc::clone(&sealed_users);
        async move {
            let name = Username::parse(&username)
                .map_err(|e| ServerError::Config(format!("invalid username: {e}")))?;
            let user = users
                .find_by_name(name.key())
                .await?
                .ok_or_else(|| ServerError::Config(format!("no user named {username:?}")))?;
            Ok::<_, ServerError>(user.id)
        }
    };
    let store = &stores.entitlements;
    let text = match command {
        AccountsCommand::Grant { username, account } => {
            let id = user(username).await?;
            let granted = store
                .grant(id, account, None, OffsetDateTime::now_utc())
                .await
                .map_err(db_error(storage))?;
            match granted {
                Granted::Added => {
                    let user_id = id.to_string();
                    crate::audit::record_command(
                        storage,
                        "account.grant",
                        ("user", user_id.as_str()),
                        &[("account", account.as_str())],
                    )
                    .await?;
                    format!("entitled {username} to {account}")
                }
                Granted::Existing => format!("{username} is entitled to {account} already"),
                Granted::LimitReached => {
                    return Err(ServerError::Config(format!(
                        "{username} holds {MAX_ACCOUNTS_PER_USER} entitlements, the most one \
                         user may hold"
                    )));
                }
            }
        }
        AccountsCommand::Revoke { username, account } => {
            let id = user(username).await?;
            if store.revoke(id, account).await.map_err(db_error(storage))? {
                let user_id = id.to_string();
                crate::audit::record_command(
                    storage,
                    "account.revoke",
                    ("user", user_id.as_str()),
                    &[("account", account.as_str())],
                )
                .await?;
                format!("revoked {username}'s entitlement to {account}")
            } else {
                format!("{username} is not entitled to {account}")
            }
        }
        AccountsCommand::List { username } => {
            let id = user(username).await?;
            let all = store.accounts_of(id).await.map_err(db_error(storage))?;
            let lines: Vec<&str> = all.iter().map(|e| e.account_id.as_str()).collect();
            if lines.is_empty() {
                return Ok(());
            }
            lines.join("\n")
        }
    };
    writeln!(out, "{text}").map_err(|e| ServerError::io("cannot write to", "standard output", e))
}
