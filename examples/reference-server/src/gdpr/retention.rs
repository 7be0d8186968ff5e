//! Retention of the server's records: orders (`orders`) and fills (`trades`) past their
//! period are archived ([`FileArchive`]), then deleted, in batches, skipping what a legal
//! hold covers, every deletion audited; `retention run` does it (resuming a run a crash
//! stopped), `retention dry-run` and `GET /gdpr/retention/{class}` say what would go.

use std::io::Write;
use std::sync::Arc;

use async_trait::async_trait;
use finsec_audit::{AuditEvent, EncodedEvent};
use finsec_compliance::gdpr::hold::SqlHoldStore;
use finsec_compliance::gdpr::retention::{
    DryRun, ExpiredRecord, RetentionRun, RetentionSource, RetentionStateStore, RunState,
    SqlRetentionStateStore,
};
use finsec_compliance::gdpr::{Auditor, RecordClass};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::archive::FileArchive;
use super::sealing::user_subject;
use super::store::{ExpiredRow, GdprStore};
use crate::config::Config;
use crate::error::{Result, ServerError};
use crate::storage::Storage;

/// The classes the server runs retention for.
pub const CLASSES: [&str; 2] = ["orders", "trades"];

/// Orders or fills past their period.
#[derive(Clone)]
pub struct TableSource {
    class: RecordClass,
    store: Arc<dyn GdprStore>,
}

impl TableSource {
    /// The source of `class` (`orders` or `trades`).
    ///
    /// # Errors
    /// [`ServerError::Config`] for another class.
    pub fn new(class: &str, store: Arc<dyn GdprStore>) -> Result<Self> {
        if !CLASSES.contains(&class) {
            return Err(ServerError::Config(format!(
                "no retention source for {class:?}: one of {}",
                CLASSES.join(", ")
            )));
        }
        Ok(Self {
            class: RecordClass::new(class)
                .map_err(|e| ServerError::Config(format!("record class: {e}")))?,
            store,
        })
    }
}

impl std::fmt::Debug for TableSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableSource")
            .field("class", &self.class)
            .finish_non_exhaustive()
    }
}

fn store_err(e: impl std::fmt::Display) -> finsec_compliance::Error {
    finsec_compliance::Error::store(e.to_string())
}

fn record(row: ExpiredRow) -> ExpiredRecord {
    // An order's owner is a user id; a pseudonymised fill's owner is no subject.
    let subject = row.owner.parse().ok().map(user_subject);
    ExpiredRecord {
        key: row.id,
        subject,
        created: row.created,
        content: row.content,
    }
}

#[async_trait]
impl RetentionSource for TableSource {
    fn class(&self) -> &RecordClass {
        &self.class
    }

    async fn expired(
        &self,
        cutoff: OffsetDateTime,
        after: Option<&str>,
        limit: u32,
    ) -> finsec_compliance::Result<Vec<ExpiredRecord>> {
        let rows = if self.class.as_str() == "orders" {
            self.store.expired_orders(cutoff, after, limit).await
        } else {
            self.store.expired_fills(cutoff, after, limit).await
        };
        Ok(rows.map_err(store_err)?.into_iter().map(record).collect())
    }

    async fn delete(&self, keys: &[String]) -> finsec_compliance::Result<u64> {
        let done = if self.class.as_str() == "orders" {
            self.store.delete_orders(keys).await
        } else {
            self.store.delete_fills(keys).await
        };
        done.map_err(store_err)
    }
}

/// Appends events straight to the log of the database (for the operator command, which
/// runs beside the server).
#[derive(Debug)]
pub struct CommandAuditor {
    storage: Storage,
}

#[async_trait]
impl Auditor for CommandAuditor {
    async fn audit(&self, event: &AuditEvent) -> finsec_compliance::Result<()> {
        let encoded =
            EncodedEvent::new(event).map_err(|e| finsec_compliance::Error::Audit(e.to_string()))?;
        crate::audit::sink(&self.storage)
            .append(&[encoded])
            .await
            .map(|_| ())
            .map_err(|e| finsec_compliance::Error::Audit(e.to_string()))
    }
}

/// Retention operations for operators, on the same database as a running server.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum RetentionCommand {
    /// Show what a run would delete and keep, and why. Changes nothing.
    DryRun {
        /// `orders` or `trades`.
        #[arg(long)]
        class: String,
        /// How many records of each kind to list.
        #[arg(long, default_value_t = 20)]
        list: usize,
    },
    /// Archive, then delete, the records of `--class` past their period (resuming a run
    /// that was stopped).
    Run {
        /// `orders` or `trades`.
        #[arg(long)]
        class: String,
        /// Records per batch.
        #[arg(long, default_value_t = 1000)]
        batch: u32,
    },
}

/// Runs a `retention` command; prints what it did to `out`.
///
/// # Errors
/// A bad class or policy file, the keyring, the database, the archive.
pub async fn run_command(
    config: &Config,
    command: &RetentionCommand,
    out: &mut dyn Write,
) -> Result<()> {
    let storage = Storage::open(config).await?;
    let result = run_on(config, &storage, command, out).await;
    storage.close().await;
    result
}

async fn run_on(
    config: &Config,
    storage: &Storage,
    command: &RetentionCommand,
    out: &mut dyn Write,
) -> Result<()> {
    crate::capabilities::migrate(storage).await?;
    let policies = config.gdpr.policies()?;
    let keyring = Arc::new(crate::keys::KeyringFile::for_server(config)?.load_or_create()?);
    let store = super::gdpr_store(storage);
    let (holds, runs): (
        Arc<dyn finsec_compliance::gdpr::hold::HoldStore>,
        Arc<dyn RetentionStateStore>,
    ) = match storage {
        Storage::Sqlite(pool) => (
            Arc::new(SqlHoldStore::new(pool.clone())),
            Arc::new(SqlRetentionStateStore::new(pool.clone())),
        ),
        Storage::Postgres(pool) => (
            Arc::new(SqlHoldStore::new(pool.clone())),
            Arc::new(SqlRetentionStateStore::new(pool.clone())),
        ),
    };
    let archive = FileArchive::new(
        config.gdpr.archive_dir(config),
        Arc::clone(&keyring),
        crate::keys::pii_key_name()?,
    );
    let auditor = CommandAuditor {
        storage: storage.clone(),
    };
    let operator = std::env::var("USER").unwrap_or_else(|_| "operator".to_owned());
    let failed = |e: finsec_compliance::Error| ServerError::Config(format!("retention: {e}"));
    let now = OffsetDateTime::now_utc();
    let write = |e: std::io::Error| ServerError::Config(format!("writing the output: {e}"));
    match command {
        RetentionCommand::DryRun { class, list } => {
            let source = TableSource::new(class, store)?;
            let runner = RetentionRun::new(&policies, &*holds, &*runs, &archive, &auditor);
            let dry = runner.dry_run(&source, now, *list).await.map_err(failed)?;
            print_dry_run(out, &dry).map_err(write)
        }
        RetentionCommand::Run { class, batch } => {
            let source = TableSource::new(class, store)?;
            let runner = RetentionRun::new(&policies, &*holds, &*runs, &archive, &auditor)
                .with_batch(*batch)
                .with_actor(format!("os:{operator}"));
            let state = runner.run(&source, now).await.map_err(failed)?;
            print_run(out, &state).map_err(write)?;
            // Keys were used to wrap the archive's data keys: keep the counters.
            crate::keys::KeyringFile::for_server(config)?.save_counters(&keyring)
        }
    }
}

fn print_dry_run(out: &mut dyn Write, dry: &DryRun) -> std::io::Result<()> {
    writeln!(
        out,
        "{}: kept {}; records created before {} expire",
        dry.class,
        dry.period,
        dry.cutoff.format(&Rfc3339).unwrap_or_default()
    )?;
    writeln!(
        out,
        "would delete {} record(s); {} held",
        dry.would_delete, dry.held
    )?;
    for c in &dry.deleted {
        writeln!(out, "  delete {}: {}", c.key, c.reason)?;
    }
    for c in &dry.kept {
        writeln!(out, "  keep   {}: {}", c.key, c.reason)?;
    }
    Ok(())
}

fn print_run(out: &mut dyn Write, state: &RunState) -> std::io::Result<()> {
    writeln!(
        out,
        "retention run {} of {}: {} batch(es), {} archived, {} deleted, {} held",
        state.id, state.class, state.batches, state.archived, state.deleted, state.held
    )
}
