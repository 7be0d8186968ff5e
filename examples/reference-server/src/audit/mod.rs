//! The audit trail: every request that changes state and every authentication event, in a
//! finsec-audit Merkle log in the server's database, with the security monitor on the live
//! stream.
//!
//! - **The log** is finsec-audit's SQL sink on the server's own database (the `finsec.db`
//!   SQLite file under the data directory, or PostgreSQL with `--postgres-url`, where any
//!   number of instances append to one log). Events go through an [`AuditWriter`]
//!   (bounded queue, group commit, a checkpoint every `--audit-checkpoint-events` events or
//!   `--audit-checkpoint-secs` seconds and at shutdown); when the database fails for longer
//!   than the retry bound, events go to `DATA_DIR/audit.spool` and are replayed in order.
//! - **Checkpoints** are signed with an Ed25519 key whose seed is a server secret (sealed
//!   under the keyring's `server-secrets` key, shared by every instance), and each is also
//!   appended to a witness file (`--audit-witness`, default `DATA_DIR/audit-witness.jsonl`)
//!   to ship somewhere the database's operator does not control.
//! - **What is recorded** ([`layer`]): every request that is not `GET`/`HEAD`/`OPTIONS`,
//!   every request refused with 401, 403 or 429, and every read of `/audit`, as
//!   `http.request` events (method, path, status, bytes, duration, request id, user, API
//!   key, client address, user agent); and the security events the handlers report:
//!   `auth.login` (the attempted username as a keyed blind index, never in clear),
//!   `auth.mfa`, `auth.refresh` (reuse of a refresh token, an idle session),
//!   `auth.logout`, `auth.logout_all`, `auth.password_change` and `auth.mfa_enable` (with
//!   the sessions they ended), `auth.session_end` (`DELETE /sessions/{id}`),
//!   `auth.mfa_backup_codes`, `auth.mfa_disable`, a refused step-up
//!   (denied `api_key.create`, `auth.mfa_enroll`, `auth.mfa_confirm`,
//!   `auth.mfa_backup_codes`, `auth.mfa_disable`, `api_key.rotate`), `api_key.create`,
//!   `api_key.rotate`, `api_key.revoke`, `order.approve`, `rate_limit.deny`; the `roles`
//!   and `keys` commands record `role.grant`, `role.revoke`, `key.rotate` and `key.rewrap`.
//! - **The monitor** ([`finsec_audit::Monitor`], the default rules or `--audit-rules`)
//!   sees every request; its alerts are recorded as `security.alert` events and stored in
//!   the `server_incidents` table, read at `GET /audit/incidents`. Its windows are this
//!   process's: with several instances behind a balancer each counts the traffic it
//!   serves, so attempts spread over `n` instances trip a rule at up to `n` times its
//!   threshold (the shared rate limits still bound them). A rule's `response` is recorded
//!   on the incident; the server takes no automatic action on it.
//! - **Auditors** (`audit:read`, the generated policy's `auditor` role; `admin` has it too)
//!   read `GET /audit`, `/audit/checkpoint`, `/audit/proof/inclusion` and
//!   `/audit/proof/consistency` ([`routes`]).

pub mod incidents;
pub mod layer;
pub mod routes;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use finsec_audit::{
    Actor, AuditEvent, AuditLog, AuditQuery, AuditSink, AuditWriter, EncodedEvent, EventTime,
    FileWitness, Monitor, NoteSigner, NoteVerifier, Outcome, Precision, Spool, WriterOptions,
};
use finsec_crypto::{BlindIndex, Envelope, Key256, Keyring, Normalizer};

use crate::config::Config;
use crate::error::{Result, ServerError};
use crate::keys::secrets_key_name;
use crate::storage::Storage;

/// The default origin line of the log's checkpoints.
pub const DEFAULT_ORIGIN: &str = "finsec-reference-server/audit";

/// Audit-trail settings.
#[derive(Debug, Clone, Args)]
pub struct AuditConfig {
    /// The log's name, the first line of every signed checkpoint (for example
    /// `audit.example.com/trading`); every instance sharing a database must use the same.
    #[arg(long, env = "FINSEC_AUDIT_ORIGIN", default_value = DEFAULT_ORIGIN, global = true)]
    pub audit_origin: String,

    /// The security monitor's rules (TOML, `[[rule]]` tables) [default: the built-in
    /// rules: brute force, unauthorized access, API abuse, exfiltration].
    #[arg(long, env = "FINSEC_AUDIT_RULES", global = true)]
    pub audit_rules: Option<PathBuf>,

    /// The witness file every checkpoint is also appended to [default:
    /// DATA_DIR/audit-witness.jsonl]. Ship it to a place the database's operator does not
    /// control.
    #[arg(long, env = "FINSEC_AUDIT_WITNESS", global = true)]
    pub audit_witness: Option<PathBuf>,

    /// How client addresses go into the log: `plain`, or `keyed` (a keyed blind index:
    /// equal addresses still match, for the monitor and for searches, but none can be read
    /// back; for deployments that treat addresses as personal data).
    #[arg(
        long,
        env = "FINSEC_AUDIT_CLIENT_IP",
        value_enum,
        default_value_t = ClientIp::Plain,
        global = true
    )]
    pub audit_client_ip: ClientIp,

    /// A checkpoint is signed after this many events.
    #[arg(
        long,
        env = "FINSEC_AUDIT_CHECKPOINT_EVENTS",
        default_value_t = 1_000,
        global = true
    )]
    pub audit_checkpoint_events: u64,

    /// A checkpoint is signed this many seconds after the last, if events came since.
    #[arg(
        long,
        env = "FINSEC_AUDIT_CHECKPOINT_SECS",
        default_value_t = 60,
        global = true
    )]
    pub audit_checkpoint_secs: u64,
}

/// How client addresses are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientIp {
    /// As they are.
    Plain,
    /// As a keyed blind index (HMAC) under a server secret.
    Keyed,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            audit_origin: DEFAULT_ORIGIN.to_owned(),
            audit_rules: None,
            audit_witness: None,
            audit_client_ip: ClientIp::Plain,
            audit_checkpoint_events: 1_000,
            audit_checkpoint_secs: 60,
        }
    }
}

impl AuditConfig {
    /// The witness file.
    pub fn witness_path(&self, config: &Config) -> PathBuf {
        self.audit_witness
            .clone()
            .unwrap_or_else(|| config.data_dir().join("audit-witness.jsonl"))
    }
}

/// What the log is stored in: a sink that can also be searched.
pub trait LogStore: AuditSink + AuditQuery {}

impl<T: AuditSink + AuditQuery> LogStore for T {}

/// The server's log.
pub type ServerLog = AuditLog<Arc<dyn LogStore>>;

/// The audit trail of a running server. Cheap to clone.
#[derive(Clone)]
pub struct Audit {
    inner: Arc<Inner>,
}

struct Inner {
    log: ServerLog,
    writer: AuditWriter,
    monitor: Monitor,
    usernames: BlindIndex,
    addresses: Option<BlindIndex>,
    incidents: incidents::Incidents,
    /// Carries out a rule's suggested response (see [`crate::controls::Responder`]).
    responder: Arc<dyn finsec_audit::IncidentHandler>,
    verifier: NoteVerifier,
    /// Seals the address and user agent of a known user's events under their key.
    subject_keys: crate::state::ServerSubjectKeys,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("log", &self.inner.log)
            .field("rules", &self.inner.monitor.rules().len())
            .finish_non_exhaustive()
    }
}

fn audit_err(what: &str) -> impl FnOnce(finsec_audit::Error) -> ServerError + '_ {
    move |e| ServerError::Config(format!("audit {what}: {e}"))
}

/// The log's sink on the server's database (migrated by `capabilities::migrate`).
pub fn sink(storage: &Storage) -> Arc<dyn LogStore> {
    match storage {
        Storage::Sqlite(pool) => Arc::new(finsec_audit::sqlite::SqliteSink::new(pool.clone())),
        Storage::Postgres(pool) => Arc::new(finsec_audit::postgres::PgSink::new(pool.clone())),
    }
}

/// The log's note signer: the seed is the server secret `audit_checkpoint_seed`.
pub async fn signer(storage: &Storage, keyring: &Arc<Keyring>, origin: &str) -> Result<NoteSigner> {
    let envelope = Envelope::new(Arc::clone(keyring), secrets_key_name()?);
    let now = time::OffsetDateTime::now_utc();
    let stores = storage.stores();
    let seed = crate::auth::secrets::server_secret(
        &*stores.secrets,
        &envelope,
        "audit_checkpoint_seed",
        now,
    )
    .await?;
    NoteSigner::from_seed(origin, Key256::from_bytes(*seed))
        .map_err(|e| ServerError::Config(format!("--audit-origin {origin:?}: {e}")))
}

/// Appends an administrative event straight to the log, durably (for the `roles` and
/// `keys` commands, which run beside the server and stop right after). The actor is the
/// operating-system user that ran the command.
///
/// # Errors
/// [`ServerError::Config`] if the event cannot be built or the log refuses it.
pub async fn record_command(
    storage: &Storage,
    action: &str,
    resource: (&str, &str),
    details: &[(&str, &str)],
) -> Result<()> {
    let now = time::OffsetDateTime::now_utc();
    let time = EventTime::new(now, Precision::Microsecond, "system")
        .map_err(|e| ServerError::Config(format!("audit event: {e}")))?;
    let operator = std::env::var("USER").unwrap_or_else(|_| "operator".to_owned());
    let mut event = AuditEvent::new(action, Outcome::Success, time)
        .and_then(|e| {
            e.with_actor(Actor {
                user: Some(format!("os:{operator}")),
                ..Actor::default()
            })
        })
        .and_then(|e| e.with_resource(resource.0, resource.1))
        .map_err(|e| ServerError::Config(format!("audit event: {e}")))?;
    for (name, value) in details {
        event = event
            .with_detail(name, *value)
            .map_err(|e| ServerError::Config(format!("audit event: {e}")))?;
    }
    let encoded = EncodedEvent::new(&event).map_err(audit_err("encode"))?;
    sink(storage)
        .append(&[encoded])
        .await
        .map_err(|e| ServerError::Storage {
            backend: storage.backend().as_str(),
            target: "the audit log".to_owned(),
            source: Box::new(e),
        })?;
    Ok(())
}

impl Audit {
    /// Opens the trail on the migrated database: the log, its signer and witness, the
    /// writer (with the spool in the data directory) and the monitor.
    ///
    /// # Errors
    /// [`ServerError::Config`] for a bad origin or rules file; the secret store's errors.
    pub async fn open(
        config: &Config,
        storage: &Storage,
        keyring: &Arc<Keyring>,
        responder: Arc<dyn finsec_audit::IncidentHandler>,
    ) -> Result<Self> {
        let settings = &config.audit;
        let signer = signer(storage, keyring, &settings.audit_origin).await?;
        let verifier = signer.verifier();
        let witness = Arc::new(FileWitness::new(settings.witness_path(config)));
        let log = AuditLog::new(sink(storage), settings.audit_origin.clone(), signer)
            .map_err(audit_err("log"))?
            .with_witness(witness);
        let monitor = match &settings.audit_rules {
            None => Monitor::with_default_rules(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ServerError::Config(format!("--audit-rules {}: {e}", path.display()))
                })?;
                Monitor::from_toml(&text)
            }
        }
        .map_err(audit_err("rules"))?;
        let spool =
            Spool::open(config.data_dir().join("audit.spool")).map_err(audit_err("spool"))?;
        let options = WriterOptions {
            checkpoint_every: settings.audit_checkpoint_events.max(1),
            checkpoint_interval: Duration::from_secs(settings.audit_checkpoint_secs.max(1)),
            ..WriterOptions::default()
        };
        let writer = AuditWriter::spawn(log.clone(), options, Some(spool));
        let envelope = Envelope::new(Arc::clone(keyring), secrets_key_name()?);
        let key = crate::auth::secrets::server_secret(
            &*storage.stores().secrets,
            &envelope,
            "audit_username_index",
            time::OffsetDateTime::now_utc(),
        )
        .await?;
        // Usernames are compared case-folded at login, so the index folds case too.
        let usernames = BlindIndex::new(
            &Key256::from_bytes(*key),
            "audit.attempted_username",
            Normalizer::CaseInsensitive,
            16,
        )
        .map_err(|e| ServerError::Config(format!("audit username index: {e}")))?;
        // The same secret, another column: the two indexes never share values.
        let addresses = match settings.audit_client_ip {
            ClientIp::Plain => None,
            ClientIp::Keyed => Some(
                BlindIndex::new(
                    &Key256::from_bytes(*key),
                    "audit.client_ip",
                    Normalizer::Trimmed,
                    16,
                )
                .map_err(|e| ServerError::Config(format!("audit address index: {e}")))?,
            ),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                log,
                writer,
                monitor,
                usernames,
                addresses,
                incidents: incidents::Incidents::new(storage.clone()),
                responder,
                verifier,
                subject_keys: crate::state::subject_keys(storage, keyring)?,
            }),
        })
    }

    /// The log (for proofs and queries).
    pub fn log(&self) -> &ServerLog {
        &self.inner.log
    }

    /// The writer.
    pub fn writer(&self) -> &AuditWriter {
        &self.inner.writer
    }

    /// The checkpoints' verifier key.
    pub fn verifier(&self) -> &NoteVerifier {
        &self.inner.verifier
    }

    /// The incident table.
    pub fn incidents(&self) -> &incidents::Incidents {
        &self.inner.incidents
    }

    /// The keyed blind index of a username (as recorded for login attempts).
    pub fn username_index(&self, username: &str) -> Option<String> {
        self.inner
            .usernames
            .compute(username)
            .ok()
            .map(|v| v.to_hex())
    }

    /// A client address as the log records it (`--audit-client-ip`).
    pub fn client_ip(&self, ip: &str) -> Option<finsec_audit::Text> {
        match &self.inner.addresses {
            None => Some(finsec_audit::Text::Plain(ip.to_owned())),
            Some(index) => finsec_audit::Personal::keyed(index, ip)
                .ok()
                .map(Into::into),
        }
    }

    /// A known user's client address and user agent as their events record them: sealed
    /// under the user's subject key (finsec-audit's `Personal`, labels `actor.ip` and
    /// `actor.user_agent`), so erasing the user makes them unreadable while the log stays
    /// verifiable. A value that cannot be sealed (the user was erased) is left out.
    pub async fn seal_actor(
        &self,
        user: &str,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> (Option<finsec_audit::Text>, Option<finsec_audit::Text>) {
        let Ok(id) = user.parse::<uuid::Uuid>() else {
            return (None, None);
        };
        let subject = crate::gdpr::sealing::user_subject(id);
        let now = time::OffsetDateTime::now_utc();
        let keys = &self.inner.subject_keys;
        let seal = |label: &'static str, value: Option<&str>| {
            let subject = subject.clone();
            let value = value.map(str::to_owned);
            async move {
                let value = value?;
                finsec_audit::Personal::encrypt(keys, &subject, label, &value, now)
                    .await
                    .ok()
                    .map(finsec_audit::Text::from)
            }
        };
        (
            seal("actor.ip", ip).await,
            seal("actor.user_agent", user_agent).await,
        )
    }

    /// Shows an event to the monitor and, if `keep`, queues it for the log. Alerts are
    /// recorded and stored as incidents. Never fails the request: a failure is logged.
    pub async fn observe(&self, event: AuditEvent, keep: bool) {
        self.observe_as(&event, keep.then_some(&event)).await;
    }

    /// Shows `seen` to the monitor and queues `kept` for the log (the same event, its
    /// personal details sealed). Never fails the request: a failure is logged.
    pub async fn observe_as(&self, seen: &AuditEvent, kept: Option<&AuditEvent>) {
        let alerts = self.inner.monitor.observe(seen);
        if let Some(event) = kept
            && let Err(e) = self.inner.writer.record(event).await
        {
            tracing::error!(error = %e, action = event.action(), "audit event not queued");
        }
        for alert in alerts {
            tracing::warn!(alert = %alert, "security alert");
            match alert.to_event() {
                Ok(e) => {
                    if let Err(e) = self.inner.writer.record(&e).await {
                        tracing::error!(error = %e, "audit alert not queued");
                    }
                }
                Err(e) => tracing::error!(error = %e, "audit alert not encoded"),
            }
            if let Err(e) =
                finsec_audit::IncidentHandler::incident(&self.inner.incidents, &alert).await
            {
                tracing::error!(error = %e, "incident not stored");
            }
            if let Err(e) = self.inner.responder.incident(&alert).await {
                tracing::error!(error = %e, "incident response failed");
            }
        }
    }

    /// Writes everything queued, signs a last checkpoint and stops the writer.
    pub async fn shutdown(&self) {
        match self.inner.writer.shutdown().await {
            Ok(Some(cp)) => tracing::info!(size = cp.checkpoint().size(), "audit log checkpointed"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "audit log shutdown"),
        }
    }
}
