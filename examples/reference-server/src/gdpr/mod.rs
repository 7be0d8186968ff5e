//! GDPR in the reference server: data-subject requests, consent, legal holds and
//! retention, over finsec-compliance's [`gdpr`](finsec_compliance::gdpr) workflows.
//!
//! - **Sealed personal data** ([`sealing`]): user names, session addresses and user agents,
//!   and the personal details of audit events, are encrypted under each user's subject key;
//!   names are looked up by a keyed blind index. Rows from before are sealed at start.
//! - **Sources** ([`sources`]): profile, sessions, API keys, MFA, orders, executions, MiFIR
//!   reports, consent and audit details, each declaring its lawful basis, record class and
//!   what erasure does to it.
//! - **Requests** ([`routes`]): `POST /gdpr/requests` (access, portability, erasure,
//!   rectification, restriction; for oneself, or by a privacy officer for another user),
//!   `GET /gdpr/requests/{id}`, the export as a streamed download, the list of requests due
//!   or overdue, extensions; consent; legal holds; retention dry runs (`privacy` role:
//!   `gdpr:read`, `gdpr:admin`).
//! - **Retention** ([`retention`]): orders and fills past their period are archived to
//!   stream-encrypted files, then deleted (`retention run`), skipping held records.
//!
//! An erasure ends with the user's key shredded: their name, session details and audit
//! details no longer decrypt anywhere, the audit log still verifies, and what MiFID II
//! requires (orders, fills, reports) stays, pseudonymised, until its retention ends.

pub mod archive;
pub mod retention;
pub mod routes;
pub mod sealing;
pub mod sources;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use clap::Args;
use finsec_audit::AuditEvent;
use finsec_compliance::gdpr::consent::{ConsentSource, ConsentStore, SqlConsentStore};
use finsec_compliance::gdpr::hold::{HoldStore, SqlHoldStore};
use finsec_compliance::gdpr::registry::{
    DataSubjectRegistry, ErasureContext, ErasureReport, PersonalDataSource,
};
use finsec_compliance::gdpr::request::{RequestStore, SqlRequestStore};
use finsec_compliance::gdpr::retention::{
    RetentionPeriod, RetentionPolicies, RetentionStateStore, SqlRetentionStateStore,
};
use finsec_compliance::gdpr::{Auditor, Pseudonymizer, RecordClass};
use finsec_crypto::{Envelope, Key256, Keyring, SubjectId};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::Audit;
use crate::auth::Auth;
use crate::compliance::Compliance;
use crate::config::Config;
use crate::error::{Result, ServerError};
use crate::keys::secrets_key_name;
use crate::storage::Storage;
use crate::storage::sql::StoreResult;
use sources::Env;
use store::GdprStore;

/// Reads data-subject requests, consent records, holds and retention dry runs of anyone.
pub const GDPR_READ: &str = "gdpr:read";
/// Files requests for other users, extends deadlines, places and releases legal holds.
pub const GDPR_ADMIN: &str = "gdpr:admin";

/// GDPR settings.
#[derive(Debug, Clone, Default, Args)]
pub struct GdprConfig {
    /// Retention periods per record class (TOML, `class = "7y"`, `"90d"`, `"24h"`), over
    /// the defaults: trades, orders and audit 7 years, logs 90 days, temp 24 hours.
    #[arg(
        long,
        env = "FINSEC_RETENTION_POLICIES",
        value_name = "PATH",
        global = true
    )]
    pub retention_policies: Option<PathBuf>,

    /// Where retention runs archive what they delete (stream-encrypted files); default
    /// `DATA_DIR/archive`.
    #[arg(
        long,
        env = "FINSEC_RETENTION_ARCHIVE",
        value_name = "DIR",
        global = true
    )]
    pub retention_archive: Option<PathBuf>,
}

impl GdprConfig {
    /// The policies: the defaults, `audit = "7y"`, and the file's classes over them.
    ///
    /// # Errors
    /// [`ServerError::Config`] if the file does not read or parse.
    pub fn policies(&self) -> Result<RetentionPolicies> {
        let text = match &self.retention_policies {
            Some(path) => std::fs::read_to_string(path).map_err(|e| {
                ServerError::Config(format!("retention policies {}: {e}", path.display()))
            })?,
            None => String::new(),
        };
        let mut policies = RetentionPolicies::from_toml(&text)
            .map_err(|e| ServerError::Config(format!("retention policies: {e}")))?;
        if !file_sets(&text, &audit_class()) {
            policies.set(audit_class(), RetentionPeriod::Years(7));
        }
        Ok(policies)
    }

    /// The archive directory.
    pub fn archive_dir(&self, config: &Config) -> PathBuf {
        self.retention_archive
            .clone()
            .unwrap_or_else(|| config.data_dir().join("archive"))
    }
}

/// Whether the TOML text sets `class` itself (rather than leaving its default).
fn file_sets(text: &str, class: &RecordClass) -> bool {
    toml::from_str::<std::collections::BTreeMap<String, String>>(text)
        .map(|t| t.contains_key(class.as_str()))
        .unwrap_or(false)
}

fn audit_class() -> RecordClass {
    match RecordClass::new("audit") {
        Ok(c) => c,
        Err(e) => unreachable!("constant class: {e}"),
    }
}

/// Lossless `usize` to `u64`.
pub(crate) fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// GDPR steps go into the server's audit log through its writer.
#[async_trait]
impl Auditor for Audit {
    async fn audit(&self, event: &AuditEvent) -> finsec_compliance::Result<()> {
        self.writer()
            .record(event)
            .await
            .map_err(|e| finsec_compliance::Error::Audit(e.to_string()))
    }
}

/// The GDPR service.
pub struct Gdpr {
    registry: DataSubjectRegistry,
    requests: Arc<dyn RequestStore>,
    holds: Arc<dyn HoldStore>,
    consent: Arc<dyn ConsentStore>,
    runs: Arc<dyn RetentionStateStore>,
    policies: RetentionPolicies,
    pseudonymizer: Arc<Pseudonymizer>,
    env: Env,
    keyring: Arc<Keyring>,
    archive_dir: PathBuf,
}

impl std::fmt::Debug for Gdpr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gdpr")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

/// What [`Gdpr::open`] needs.
#[derive(Debug)]
pub struct Parts {
    /// The database.
    pub storage: Storage,
    /// Authentication.
    pub auth: Arc<Auth>,
    /// MiFID II.
    pub compliance: Arc<Compliance>,
    /// The audit trail.
    pub audit: Audit,
    /// The keyring (the pseudonym key's secret, archive encryption).
    pub keyring: Arc<Keyring>,
}

/// The GDPR store on the server's database.
pub fn gdpr_store(storage: &Storage) -> Arc<dyn GdprStore> {
    match storage {
        Storage::Sqlite(pool) => Arc::new(crate::storage::sql::SqlStore::new(pool.clone())),
        Storage::Postgres(pool) => Arc::new(crate::storage::sql::SqlStore::new(pool.clone())),
    }
}

macro_rules! on_pool {
    ($storage:expr, $make:path) => {
        match $storage {
            Storage::Sqlite(pool) => Arc::new($make(pool.clone())) as _,
            Storage::Postgres(pool) => Arc::new($make(pool.clone())) as _,
        }
    };
}

impl Gdpr {
    /// The service on a migrated database.
    ///
    /// # Errors
    /// [`ServerError::Config`] for bad retention policies; the pseudonym key's secret.
    pub async fn open(config: &Config, parts: Parts) -> Result<Self> {
        let policies = config.gdpr.policies()?;
        let envelope = Envelope::new(Arc::clone(&parts.keyring), secrets_key_name()?);
        let key = crate::auth::secrets::server_secret(
            &*parts.storage.stores().secrets,
            &envelope,
            "gdpr_pseudonym_key",
            OffsetDateTime::now_utc(),
        )
        .await?;
        let pseudonymizer = Arc::new(
            Pseudonymizer::new(&Key256::from_bytes(*key))
                .map_err(|e| ServerError::Config(format!("pseudonym key: {e}")))?,
        );
        let consent: Arc<dyn ConsentStore> = on_pool!(&parts.storage, SqlConsentStore::new);
        let env = Env {
            storage: parts.storage.clone(),
            auth: parts.auth,
            store: gdpr_store(&parts.storage),
            compliance: parts.compliance,
            audit: parts.audit,
            pseudonymizer: Arc::clone(&pseudonymizer),
        };
        seal_plain_sessions(&env).await?;
        let registry = registry(&env, Arc::clone(&consent))?;
        Ok(Self {
            registry,
            requests: on_pool!(&parts.storage, SqlRequestStore::new),
            holds: on_pool!(&parts.storage, SqlHoldStore::new),
            consent,
            runs: on_pool!(&parts.storage, SqlRetentionStateStore::new),
            policies,
            pseudonymizer,
            env,
            keyring: parts.keyring,
            archive_dir: config.gdpr.archive_dir(config),
        })
    }

    /// The sources.
    pub fn registry(&self) -> &DataSubjectRegistry {
        &self.registry
    }

    /// The requests.
    pub fn requests(&self) -> &Arc<dyn RequestStore> {
        &self.requests
    }

    /// The legal holds.
    pub fn holds(&self) -> &Arc<dyn HoldStore> {
        &self.holds
    }

    /// The consent ledger.
    pub fn consent(&self) -> &Arc<dyn ConsentStore> {
        &self.consent
    }

    /// The retention runs.
    pub fn runs(&self) -> &Arc<dyn RetentionStateStore> {
        &self.runs
    }

    /// The retention policies.
    pub fn policies(&self) -> &RetentionPolicies {
        &self.policies
    }

    /// The audit trail the steps are recorded in.
    pub fn auditor(&self) -> &Audit {
        &self.env.audit
    }

    /// The sources' shared handles.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// The keyring.
    pub fn keyring(&self) -> &Arc<Keyring> {
        &self.keyring
    }

    /// Where retention archives go.
    pub fn archive_dir(&self) -> &std::path::Path {
        &self.archive_dir
    }

    /// Whether `user`'s processing is restricted.
    ///
    /// # Errors
    /// The database.
    pub async fn is_restricted(&self, user: Uuid) -> StoreResult<bool> {
        self.env.store.is_restricted(user).await
    }

    /// The erasure's collaborators, acting as `actor` at `now`.
    fn context<'a>(&'a self, actor: &'a str, now: OffsetDateTime) -> ErasureContext<'a> {
        ErasureContext {
            holds: &*self.holds,
            policies: &self.policies,
            pseudonymizer: &self.pseudonymizer,
            keys: self.env.auth.sealing().keys(),
            auditor: &self.env.audit,
            actor,
            now,
        }
    }

    /// Erases `subject` (see [`DataSubjectRegistry::erase`]).
    ///
    /// # Errors
    /// A source's, the key store's or the audit trail's failure; running it again
    /// completes it.
    pub async fn erase(
        &self,
        subject: &SubjectId,
        actor: &str,
        now: OffsetDateTime,
    ) -> finsec_compliance::Result<ErasureReport> {
        self.registry
            .erase(subject, &self.context(actor, now))
            .await
    }

    /// What erasing `subject` would do.
    ///
    /// # Errors
    /// A source's or the hold store's failure.
    pub async fn plan_erasure(
        &self,
        subject: &SubjectId,
        actor: &str,
        now: OffsetDateTime,
    ) -> finsec_compliance::Result<ErasureReport> {
        self.registry
            .plan_erasure(subject, &self.context(actor, now))
            .await
    }
}

/// Seals the client address and user agent of session rows written before they were
/// sealed, 500 rows at a time, each by compare-and-set (safe beside other instances).
async fn seal_plain_sessions(env: &Env) -> Result<u64> {
    let sealing = env.auth.sealing();
    let mut after = String::new();
    let mut sealed = 0;
    let now = OffsetDateTime::now_utc();
    let plain = |v: &Option<String>| {
        v.as_deref()
            .is_some_and(|v| !v.starts_with(sealing::SEALED))
    };
    loop {
        let page = env.store.session_clients(&after, 500).await?;
        let Some(last) = page.last() else { break };
        after.clone_from(&last.0);
        for (family, user, ip, agent) in &page {
            if !plain(ip) && !plain(agent) {
                continue;
            }
            let Ok(user) = user.parse::<Uuid>() else {
                continue;
            };
            let client = crate::auth::sessions::SessionClient {
                ip: ip.clone().filter(|_| plain(ip)),
                user_agent: agent.clone().filter(|_| plain(agent)),
            };
            let new = sealing.seal_client(user, &client, now).await;
            let new_ip = if plain(ip) { new.ip } else { ip.clone() };
            let new_agent = if plain(agent) {
                new.user_agent
            } else {
                agent.clone()
            };
            if env
                .store
                .replace_session_client(
                    family,
                    (ip.as_deref(), agent.as_deref()),
                    (new_ip.as_deref(), new_agent.as_deref()),
                )
                .await?
            {
                sealed += 1;
            }
        }
    }
    if sealed > 0 {
        tracing::info!(rows = sealed, "sealed plain session details");
    }
    Ok(sealed)
}

/// Every source, in the order erasure visits them: what needs the subject's key or the
/// user's links first (MiFIR reports read the client record; sessions end before the
/// profile goes).
fn registry(env: &Env, consent: Arc<dyn ConsentStore>) -> Result<DataSubjectRegistry> {
    let sources: [Arc<dyn PersonalDataSource>; 9] = [
        Arc::new(sources::MifidReports::new(env.clone())),
        Arc::new(sources::Executions::new(env.clone())),
        Arc::new(sources::Orders::new(env.clone())),
        Arc::new(sources::Sessions::new(env.clone())),
        Arc::new(sources::ApiKeys::new(env.clone())),
        Arc::new(sources::Mfa::new(env.clone())),
        Arc::new(ConsentSource::new(consent)),
        Arc::new(sources::AuditTrail::new(env.clone())),
        Arc::new(sources::Profile::new(env.clone())),
    ];
    let mut registry = DataSubjectRegistry::new();
    for source in sources {
        registry
            .register(source)
            .map_err(|e| ServerError::Config(format!("GDPR sources: {e}")))?;
    }
    Ok(registry)
}
