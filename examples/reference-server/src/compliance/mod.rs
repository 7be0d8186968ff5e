//! MiFID II: simulated fills, transaction reports, best execution and the firm's clients.
//!
//! The server is a reference, not an exchange: with a firm configuration
//! (`--firm-config`, TOML, see [`FirmConfig`]) and reference prices (`--reference-prices`),
//! every order that becomes `accepted` (at once, or when its approval completes) is filled
//! in full against its symbol's reference price, on the venue the firm configuration gives
//! the symbol: a market order always, a limit buy when the reference is at or below its
//! limit, a limit sell when it is at or above. An order without an instrument or a
//! reference stays accepted and unfilled.
//!
//! Each fill:
//! 1. is stamped by the business clock (system time, millisecond granularity, the
//!    divergence from UTC the operator declares with `--clock-divergence-us`; beyond
//!    RTS 25's 1 ms the report's lineage carries a flag);
//! 2. is recorded as an `order.fill` audit event and stored in `server_executions`;
//! 3. is reported: a MiFIR transaction report (`AOTC`: the client on the order's side, the
//!    venue on the other, the firm's execution algorithm or the trader as executor) built
//!    from the account's client (`PUT /admin/clients/{account}`), checked, recorded as a
//!    `mifid.report` audit event, and kept in finsec-compliance's report store with its
//!    lineage (the two audit event ids and the clock flag). Without a client for the
//!    account the report cannot be built: the failure is audited (`mifid.report`,
//!    outcome `failure`) and logged, and the fill is reported when the account's client
//!    is set. At start the server also reports every fill that has no report (one lost
//!    to a failure between storing the fill and keeping its report).
//!
//! Compliance officers (the `compliance` role: [`COMPLIANCE_READ`], [`COMPLIANCE_ADMIN`])
//! read `GET /reports/mifid` (XML or CSV, streamed), cancel with
//! `POST /reports/mifid/{reference}/cancel`, review `GET /best-execution`, and set clients
//! with `PUT /admin/clients/{account}`. The `reports mifid` command writes a period's XML
//! to a file with a progress bar.
//!
//! A client's names, birth date and national client identifier are sealed under the
//! client's subject key (`client:<account>`), so erasing the subject makes them unreadable.
//! The reports kept for MiFIR hold them in clear in the report store, as the report file
//! must; that store is the record-keeping copy (nothing in it can be deleted within seven
//! years).

pub mod command;
pub mod routes;
pub mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use finsec_audit::{Actor as AuditActor, AuditEvent, EventTime, Outcome, Precision};
use finsec_compliance::mifid::best_execution::{BestExecution, Execution, MarketDataSource, Side};
use finsec_compliance::mifid::clock::{ClockSource, SystemClock};
use finsec_compliance::mifid::concat::{
    HeldIdentifier, IdentifierKind, PersonDetails, national_client_id, priorities,
    reporting_nationality,
};
use finsec_compliance::mifid::{
    AlgorithmId, CheckContext, Counterparty, Executor, FirmPerson, Granularity, IdScheme,
    InstrumentClass, Lineage, NaturalPerson, Party, PersonId, Price, Quantity, StoredReport,
    TradingCapacity, TransactionReport, TransactionReportStore, Transmission, VenueTransactionId,
};
use finsec_crypto::SubjectId;
use finsec_validate::identifiers::{Country, Currency, Isin, Lei, Mic};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::audit::Audit;
use crate::auth::users::UserStore;
use crate::error::{Result, ServerError};
use crate::orders::store::Order;
use crate::orders::valuation::ReferencePrices;
use crate::state::ServerSubjectKeys;
use crate::storage::Storage;
use store::{ClientRow, ComplianceStore, ExecutionRow};

/// Reads transaction reports and the best-execution review.
pub const COMPLIANCE_READ: &str = "compliance:read";
/// Cancels transaction reports and sets the firm's clients.
pub const COMPLIANCE_ADMIN: &str = "compliance:admin";

/// MiFID II settings.
#[derive(Debug, Clone, Args)]
pub struct ComplianceConfig {
    /// The firm's MiFIR configuration (TOML: LEI, branch country, competent authority,
    /// execution algorithm, instruments, decision makers). Without it orders are not
    /// filled and nothing is reported.
    #[arg(long, env = "FINSEC_FIRM_CONFIG", value_name = "PATH", global = true)]
    pub firm_config: Option<PathBuf>,
    /// How far the server's clock may be from UTC, in microseconds, as the operator knows
    /// it from the time daemon. A fill stamped while this exceeds RTS 25's 1 ms is flagged
    /// in its report's lineage.
    #[arg(
        long,
        env = "FINSEC_CLOCK_DIVERGENCE_US",
        default_value_t = 100,
        value_name = "US",
        global = true
    )]
    pub clock_divergence_us: u64,
    /// The best-execution threshold in basis points: a fill further than this from the
    /// arrival or the reference price is listed as a breach.
    #[arg(
        long,
        env = "FINSEC_BEST_EXECUTION_BPS",
        default_value_t = 50,
        value_name = "BPS",
        global = true
    )]
    pub best_execution_bps: u32,
}

impl Default for ComplianceConfig {
    fn default() -> Self {
        Self {
            firm_config: None,
            clock_divergence_us: 100,
            best_execution_bps: 50,
        }
    }
}

/// An instrument the firm trades: what a symbol is, for reports and best execution.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentConfig {
    /// The symbol orders use.
    pub symbol: String,
    /// Its ISIN.
    pub isin: Isin,
    /// `equity`, `etf` or `bond`.
    pub class: InstrumentClass,
    /// The venue (segment MIC) fills happen on.
    pub venue: Mic,
    /// The currency it trades in.
    pub currency: Currency,
}

/// A person of the firm who decides or executes (RTS 22 fields 57 to 60).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionMakerConfig {
    /// The server username.
    pub username: String,
    /// The country of the person's branch.
    pub branch_country: Country,
    /// `NIDN`, `CCPT` or `CONCAT`.
    pub scheme: IdScheme,
    /// The identifier, country code first.
    pub id: String,
}

impl std::fmt::Debug for DecisionMakerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionMakerConfig")
            .field("username", &self.username)
            .field("branch_country", &self.branch_country)
            .finish_non_exhaustive()
    }
}

/// The firm, as its MiFIR reports describe it (`--firm-config`).
///
/// ```toml
/// lei = "5493001KJTIIGC8Y1R12"
/// branch_country = "FR"
/// authority = "FR"
/// algorithm = "FINSECFILL1"
///
/// [[instruments]]
/// symbol = "AIR"
/// isin = "NL0000235190"
/// class = "equity"
/// venue = "XPAR"
/// currency = "EUR"
///
/// [[decision_makers]]
/// username = "alice"
/// branch_country = "FR"
/// scheme = "NIDN"
/// id = "FR1234567890"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirmConfig {
    /// The firm's LEI (executing and submitting entity).
    pub lei: Lei,
    /// The country of the branch that trades (field 37).
    pub branch_country: Country,
    /// The competent authority the reports go to (the application header's `To`).
    pub authority: Country,
    /// The algorithm that executes the simulated fills (field 59).
    pub algorithm: AlgorithmId,
    /// The instruments.
    #[serde(default)]
    pub instruments: Vec<InstrumentConfig>,
    /// People of the firm; a fill of an order they placed names them as executor.
    #[serde(default)]
    pub decision_makers: Vec<DecisionMakerConfig>,
}

impl FirmConfig {
    /// Loads and checks the file.
    ///
    /// # Errors
    /// [`ServerError::Config`] naming the file and what is wrong.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ServerError::Config(format!("--firm-config {}: {e}", path.display())))?;
        let firm: Self = toml::from_str(&text)
            .map_err(|e| ServerError::Config(format!("--firm-config {}: {e}", path.display())))?;
        let mut seen = std::collections::HashSet::new();
        for i in &firm.instruments {
            if !seen.insert(i.symbol.as_str()) {
                return Err(ServerError::Config(format!(
                    "--firm-config {}: symbol {} is listed twice",
                    path.display(),
                    i.symbol
                )));
            }
        }
        for d in &firm.decision_makers {
            PersonId::new(d.scheme, d.id.clone()).map_err(|e| {
                ServerError::Config(format!(
                    "--firm-config {}: decision maker {}: {e}",
                    path.display(),
                    d.username
                ))
            })?;
        }
        Ok(firm)
    }

    fn instrument(&self, symbol: &str) -> Option<&InstrumentConfig> {
        self.instruments.iter().find(|i| i.symbol == symbol)
    }

    fn person(&self, username: &str) -> Option<FirmPerson> {
        let d = self
            .decision_makers
            .iter()
            .find(|d| d.username.eq_ignore_ascii_case(username))?;
        Some(FirmPerson {
            branch_country: d.branch_country,
            id: PersonId::new(d.scheme, d.id.clone()).ok()?,
        })
    }
}

time::serde::format_description!(iso_date, Date, "[year]-[month]-[day]");

/// A natural-person client's details as sealed in `server_clients`.
#[derive(Serialize, Deserialize)]
struct PersonRecord {
    first_names: String,
    surnames: String,
    #[serde(with = "iso_date")]
    birth_date: Date,
    id: PersonId,
}

/// A client as `PUT /admin/clients/{account}` sets it: exactly one of `lei` and `person`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1, max_properties = 1)]
pub struct ClientBody {
    /// A legal entity's LEI.
    #[schema(value_type = Option<String>, example = "529900T8BM49AURSDO55", pattern = "^[A-Z0-9]{18}[0-9]{2}$")]
    pub lei: Option<Lei>,
    /// A natural person.
    pub person: Option<PersonBody>,
}

/// The most nationalities a person is given with.
pub const MAX_NATIONALITIES: usize = 8;
/// The most identifiers a person is given with.
pub const MAX_IDENTIFIERS: usize = 8;

/// A name: 1 to 140 characters, no control character or `;`, no surrounding whitespace.
fn name_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .min_length(Some(1))
        .max_length(Some(140))
        .pattern(Some(
            r"^[^\s\x00-\x1F\x7F-\x9F;]([^\x00-\x1F\x7F-\x9F;]*[^\s\x00-\x1F\x7F-\x9F;])?$",
        ))
        .description(Some(
            "1 to 140 characters as written; no control character or `;`",
        ))
        .build()
}

/// Nationalities: 1 to [`MAX_NATIONALITIES`] ISO 3166-1 alpha-2 codes.
fn nationalities_schema() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(
            utoipa::openapi::schema::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .pattern(Some("^[A-Z]{2}$")),
        )
        .min_items(Some(1))
        .max_items(Some(MAX_NATIONALITIES))
        .description(Some(
            "Every nationality, ISO 3166-1 alpha-2 (assigned codes)",
        ))
        .build()
}

/// A natural person: what RTS 22 needs to identify them.
#[derive(Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonBody {
    /// First names as written.
    #[schema(schema_with = name_schema)]
    pub first_names: String,
    /// Surnames as written.
    #[schema(schema_with = name_schema)]
    pub surnames: String,
    /// Date of birth, `YYYY-MM-DD`.
    #[schema(value_type = String, format = Date)]
    #[serde(with = "iso_date")]
    pub birth_date: Date,
    /// Every nationality (ISO 3166-1 alpha-2).
    #[schema(schema_with = nationalities_schema)]
    pub nationalities: Vec<Country>,
    /// Identifiers held for the reporting nationality.
    #[serde(default)]
    #[schema(max_items = 8)]
    pub identifiers: Vec<IdentifierBody>,
    /// The server user this person is, if they are one: erasing that user (GDPR Art. 17)
    /// pseudonymises this client's reports and forgets the client.
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
    pub user_id: Option<Uuid>,
}

impl std::fmt::Debug for PersonBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonBody")
            .field("nationalities", &self.nationalities)
            .finish_non_exhaustive()
    }
}

/// An identifier a person holds. `Debug` hides the number.
#[derive(Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentifierBody {
    /// `national` (the country's national identifier, the first of its Annex II row),
    /// `identity_card` or `passport`.
    pub kind: IdentifierKindBody,
    /// The number, without the country code.
    #[schema(pattern = "^[A-Z0-9+-]{1,33}$")]
    pub number: String,
}

impl std::fmt::Debug for IdentifierBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentifierBody")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// The kinds of [`IdentifierBody`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdentifierKindBody {
    /// The national identifier.
    National,
    /// A national identity card.
    IdentityCard,
    /// A passport.
    Passport,
}

/// A client as the API shows it: how they are identified, never their personal data.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClientView {
    /// The trading account.
    pub account_id: String,
    /// `lei` or `person`.
    pub kind: String,
    /// The LEI of a legal entity.
    pub lei: Option<String>,
    /// A person's identifier scheme: `NIDN`, `CCPT` or `CONCAT`.
    pub id_scheme: Option<String>,
    /// The country of a person's identifier.
    pub id_country: Option<String>,
}

/// What the compliance service needs from outside.
pub struct Parts {
    /// The database.
    pub storage: Storage,
    /// Reference prices (shared with order entry).
    pub prices: Arc<dyn ReferencePrices>,
    /// The audit trail.
    pub audit: Audit,
    /// The subject keys.
    pub subject_keys: ServerSubjectKeys,
    /// The users (to name a trader in a report).
    pub users: Arc<dyn UserStore>,
}

impl std::fmt::Debug for Parts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parts").finish_non_exhaustive()
    }
}

/// The MiFID II service: fills, reports, clients, best execution.
pub struct Compliance {
    firm: Option<FirmConfig>,
    store: Arc<dyn ComplianceStore>,
    reports: Arc<dyn TransactionReportStore>,
    prices: Arc<dyn ReferencePrices>,
    audit: Audit,
    subject_keys: ServerSubjectKeys,
    users: Arc<dyn UserStore>,
    clock: Arc<dyn ClockSource>,
    best_execution: BestExecution,
}

impl std::fmt::Debug for Compliance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compliance")
            .field("firm", &self.firm.as_ref().map(|f| f.lei))
            .field("best_execution", &self.best_execution)
            .finish_non_exhaustive()
    }
}

/// The report store on the server's database.
pub fn report_store(storage: &Storage) -> Arc<dyn TransactionReportStore> {
    match storage {
        Storage::Sqlite(pool) => Arc::new(finsec_compliance::mifid::store::SqlReportStore::new(
            pool.clone(),
        )),
        Storage::Postgres(pool) => Arc::new(finsec_compliance::mifid::store::SqlReportStore::new(
            pool.clone(),
        )),
    }
}

/// The capability's store on the server's database.
pub fn compliance_store(storage: &Storage) -> Arc<dyn ComplianceStore> {
    match storage {
        Storage::Sqlite(pool) => Arc::new(crate::storage::sql::SqlStore::new(pool.clone())),
        Storage::Postgres(pool) => Arc::new(crate::storage::sql::SqlStore::new(pool.clone())),
    }
}

/// The subject whose key seals the client of `account`.
pub(crate) fn client_subject(account: &str) -> Result<SubjectId> {
    Ok(SubjectId::new(format!("client:{account}"))?)
}

/// The execution reference a fill is reported under: `E` and the execution id's 32 hex
/// digits, upper case.
fn report_reference(execution: Uuid) -> String {
    format!("E{}", execution.simple()).to_ascii_uppercase()
}

/// Why a fill was not reported.
#[derive(Debug)]
enum NotReported {
    NoClient,
    Invalid(finsec_compliance::Error),
    Failed(String),
}

impl Compliance {
    /// The service; reads the firm configuration if one is given.
    ///
    /// # Errors
    /// [`ServerError::Config`] for a firm configuration that does not load, or a threshold
    /// of zero.
    pub fn open(config: &ComplianceConfig, parts: Parts) -> Result<Self> {
        let firm = config
            .firm_config
            .as_deref()
            .map(FirmConfig::load)
            .transpose()?;
        let best_execution =
            BestExecution::with_threshold_bps(Decimal::from(config.best_execution_bps))
                .map_err(|e| ServerError::Config(format!("--best-execution-bps: {e}")))?;
        Ok(Self {
            firm,
            store: compliance_store(&parts.storage),
            reports: report_store(&parts.storage),
            prices: parts.prices,
            audit: parts.audit,
            subject_keys: parts.subject_keys,
            users: parts.users,
            clock: Arc::new(SystemClock::new(Duration::from_micros(
                config.clock_divergence_us,
            ))),
            best_execution,
        })
    }

    /// Replaces the business clock (tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn ClockSource>) -> Self {
        self.clock = clock;
        self
    }

    /// The firm configuration, if any.
    pub fn firm(&self) -> Option<&FirmConfig> {
        self.firm.as_ref()
    }

    /// The report store.
    pub fn reports(&self) -> &Arc<dyn TransactionReportStore> {
        &self.reports
    }

    /// The capability's store.
    pub fn store(&self) -> &Arc<dyn ComplianceStore> {
        &self.store
    }

    /// The best-execution check.
    pub fn best_execution(&self) -> &BestExecution {
        &self.best_execution
    }

    /// The audit trail.
    pub fn audit(&self) -> &Audit {
        &self.audit
    }

    /// Sets the client of `account`: a person's details are checked, their national client
    /// identifier worked out (Annex II priority, CONCAT where it applies) and everything
    /// sealed under the client's subject key.
    ///
    /// # Errors
    /// [`finsec_compliance::Error`] (as text) for details that do not identify a person;
    /// storage and encryption failures.
    pub async fn put_client(
        &self,
        account: &str,
        client: &ClientBody,
        now: OffsetDateTime,
    ) -> std::result::Result<ClientView, ClientError> {
        let (row, view) = match (&client.lei, &client.person) {
            (Some(lei), None) => (
                ClientRow::Lei(lei.to_string()),
                ClientView {
                    account_id: account.to_owned(),
                    kind: "lei".into(),
                    lei: Some(lei.to_string()),
                    id_scheme: None,
                    id_country: None,
                },
            ),
            (None, Some(p))
                if p.nationalities.len() > MAX_NATIONALITIES
                    || p.identifiers.len() > MAX_IDENTIFIERS =>
            {
                return Err(ClientError::Invalid(finsec_compliance::Error::Invalid {
                    field: "person",
                    reason: format!(
                        "at most {MAX_NATIONALITIES} nationalities and {MAX_IDENTIFIERS} identifiers"
                    ),
                }));
            }
            (None, Some(p)) => {
                let id = person_id(p).map_err(ClientError::Invalid)?;
                let person = NaturalPerson::new(
                    p.first_names.clone(),
                    p.surnames.clone(),
                    p.birth_date,
                    id.clone(),
                )
                .map_err(ClientError::Invalid)?;
                let record = PersonRecord {
                    first_names: person.first_names().to_owned(),
                    surnames: person.surnames().to_owned(),
                    birth_date: person.birth_date(),
                    id: id.clone(),
                };
                let json = serde_json::to_vec(&record)
                    .map_err(|e| ClientError::Failed(format!("client record: {e}")))?;
                let subject =
                    client_subject(account).map_err(|e| ClientError::Failed(e.to_string()))?;
                let sealed = self
                    .subject_keys
                    .encrypt_at(&subject, &json, b"server_clients", now)
                    .await
                    .map_err(|e| ClientError::Failed(format!("sealing a client: {e}")))?;
                (
                    ClientRow::Person(sealed),
                    ClientView {
                        account_id: account.to_owned(),
                        kind: "person".into(),
                        lei: None,
                        id_scheme: Some(id.scheme().code().to_owned()),
                        id_country: Some(id.country().to_owned()),
                    },
                )
            }
            _ => {
                return Err(ClientError::Invalid(finsec_compliance::Error::Invalid {
                    field: "client",
                    reason: "give exactly one of lei and person".to_owned(),
                }));
            }
        };
        let user = client.person.as_ref().and_then(|p| p.user_id);
        if let Some(id) = user {
            let known = self
                .users
                .find_by_id(id)
                .await
                .map_err(|e| ClientError::Failed(format!("reading a user: {e}")))?;
            if known.is_none() {
                return Err(ClientError::Invalid(finsec_compliance::Error::Invalid {
                    field: "person.user_id",
                    reason: "no user has this id".to_owned(),
                }));
            }
        }
        self.store
            .put_client(account, &row, user, now)
            .await
            .map_err(|e| ClientError::Failed(format!("storing a client: {e}")))?;
        Ok(view)
    }

    /// The national client identifier in a person client's sealed record, and the record
    /// as JSON (for an export); `None` once the client's key is shredded.
    pub(crate) async fn unseal_person(
        &self,
        account: &str,
        sealed: &[u8],
    ) -> Result<Option<(PersonId, serde_json::Value)>> {
        let subject = client_subject(account)?;
        let json = match self
            .subject_keys
            .decrypt(&subject, sealed, b"server_clients")
            .await
        {
            Ok(json) => json,
            Err(finsec_crypto::Error::SubjectErased { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let record: PersonRecord = serde_json::from_slice(&json)
            .map_err(|e| ServerError::Config(format!("stored client record: {e}")))?;
        let view = serde_json::json!({
            "account_id": account,
            "first_names": record.first_names,
            "surnames": record.surnames,
            "birth_date": record.birth_date.to_string(),
            "id_scheme": record.id.scheme().code(),
            "id_country": record.id.country(),
            "id": record.id.expose(),
        });
        Ok(Some((record.id, view)))
    }

    /// Shreds the key of `account`'s client: its sealed record no longer opens.
    pub(crate) async fn shred_client(&self, account: &str, now: OffsetDateTime) -> Result<()> {
        self.subject_keys
            .shred_at(&client_subject(account)?, now)
            .await?;
        Ok(())
    }

    /// The party for the client of `account`, unsealed.
    async fn client_party(&self, account: &str) -> std::result::Result<Party, NotReported> {
        let row = self
            .store
            .client(account)
            .await
            .map_err(|e| NotReported::Failed(e.to_string()))?
            .ok_or(NotReported::NoClient)?;
        match row {
            ClientRow::Lei(lei) => lei
                .parse()
                .map(Party::Lei)
                .map_err(|e| NotReported::Failed(format!("stored client LEI: {e}"))),
            ClientRow::Person(sealed) => {
                let subject =
                    client_subject(account).map_err(|e| NotReported::Failed(e.to_string()))?;
                let json = self
                    .subject_keys
                    .decrypt(&subject, &sealed, b"server_clients")
                    .await
                    .map_err(|e| NotReported::Failed(format!("unsealing a client: {e}")))?;
                let r: PersonRecord = serde_json::from_slice(&json)
                    .map_err(|e| NotReported::Failed(format!("client record: {e}")))?;
                NaturalPerson::new(r.first_names, r.surnames, r.birth_date, r.id)
                    .map(Party::Person)
                    .map_err(NotReported::Invalid)
            }
        }
    }

    /// Fills an order that has just been accepted, audits and reports the fill. Never
    /// fails the caller: what goes wrong is logged and audited.
    pub async fn order_accepted(&self, order: &Order) {
        if let Err(e) = self.fill(order).await {
            tracing::error!(order = %order.id, error = %e, "fill not recorded");
        }
    }

    async fn fill(&self, order: &Order) -> Result<()> {
        let Some(firm) = &self.firm else {
            return Ok(());
        };
        let Some(instrument) = firm.instrument(&order.symbol) else {
            tracing::info!(order = %order.id, symbol = %order.symbol, "not filled: the firm configuration has no such instrument");
            return Ok(());
        };
        let Some(reference) = self.prices.price(&order.symbol) else {
            tracing::info!(order = %order.id, symbol = %order.symbol, "not filled: no reference price");
            return Ok(());
        };
        let decimal = |text: &str, what: &str| {
            Decimal::from_str_exact(text)
                .map_err(|e| ServerError::Compliance(format!("stored order {what}: {e}")))
        };
        let quantity = decimal(&order.quantity, "quantity")?;
        let limit = order
            .limit_price
            .as_deref()
            .map(|l| decimal(l, "limit price"))
            .transpose()?;
        let buy = order.side == "buy";
        let fills = match limit {
            None => true,
            Some(limit) if buy => reference <= limit,
            Some(limit) => reference >= limit,
        };
        if !fills {
            tracing::info!(order = %order.id, "not filled: the limit is not reached at the reference price");
            return Ok(());
        }
        let reading = self.clock.read();
        let (time, flag) = reading.stamp(Granularity::Millisecond);
        let ordered_at = OffsetDateTime::parse(
            &order.created_at,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|e| ServerError::Compliance(format!("stored order time: {e}")))?;
        let id = Uuid::now_v7();
        let reference_id = report_reference(id);
        let fill_event = event("order.fill", Outcome::Success, time.at(), &order.owner)?
            .with_resource("execution", &id.to_string())
            .and_then(|e| e.with_detail("order", order.id.as_str()))
            .and_then(|e| e.with_detail("venue", instrument.venue.as_str()))
            .and_then(|e| e.with_detail("price", reference.to_string().as_str()))
            .and_then(|e| e.with_detail("quantity", order.quantity.as_str()))
            .map_err(|e| ServerError::Compliance(format!("fill audit event: {e}")))?;
        let row = ExecutionRow {
            id: id.to_string(),
            order_id: order.id.clone(),
            owner: order.owner.clone(),
            account_id: order.account_id.clone(),
            symbol: order.symbol.clone(),
            isin: instrument.isin.to_string(),
            class: instrument.class.as_str().to_owned(),
            venue: instrument.venue.to_string(),
            side: order.side.clone(),
            quantity: quantity.normalize().to_string(),
            price: reference.normalize().to_string(),
            currency: instrument.currency.code().to_owned(),
            ordered_at,
            executed_at: time.at(),
            audit_event: fill_event.id().to_string(),
            report_ref: reference_id,
            clock_flag_us: flag.map(|f| i64::try_from(f.divergence_us).unwrap_or(i64::MAX)),
        };
        let inserted = self
            .store
            .insert_execution(&row)
            .await
            .map_err(|e| ServerError::Compliance(format!("storing a fill: {e}")))?;
        if !inserted {
            return Ok(());
        }
        self.audit.observe(fill_event, true).await;
        tracing::info!(order = %order.id, execution = %id, price = %reference, "order filled");
        self.report_execution(&row, false).await.map(drop)
    }

    /// Reports a stored fill: builds the report from the fill and the account's client,
    /// audits the attempt as `mifid.report` (`reconciled` when it is a later try) and keeps
    /// the report with its lineage. Returns whether it was kept.
    async fn report_execution(&self, row: &ExecutionRow, reconciled: bool) -> Result<bool> {
        let report = self.build_report(row).await;
        let outcome = match &report {
            Ok(_) => Outcome::Success,
            Err(NotReported::Failed(_)) => Outcome::Error,
            Err(_) => Outcome::Failure,
        };
        let mut report_event = event(
            "mifid.report",
            outcome,
            OffsetDateTime::now_utc(),
            &row.owner,
        )?
        .with_resource("transaction_report", &row.report_ref)
        .and_then(|e| e.with_detail("execution", row.id.as_str()))
        .and_then(|e| e.with_detail("reconciled", reconciled))
        .map_err(|e| ServerError::Compliance(format!("report audit event: {e}")))?;
        if let Err(why) = &report {
            let reason = match why {
                NotReported::NoClient => "client_unidentified".to_owned(),
                NotReported::Invalid(e) => format!("invalid: {e}"),
                NotReported::Failed(e) => format!("failed: {e}"),
            };
            tracing::warn!(order = %row.order_id, execution = %row.id, %reason, "fill not reported");
            report_event = report_event
                .with_detail("reason", reason.as_str())
                .map_err(|e| ServerError::Compliance(format!("report audit event: {e}")))?;
        }
        let allowed = finsec_compliance::mifid::clock::max_divergence(Granularity::Millisecond);
        let lineage = Lineage {
            execution_event: row.audit_event.parse().ok(),
            report_event: Some(report_event.id()),
            clock: row
                .clock_flag_us
                .map(|d| finsec_compliance::mifid::ClockFlag {
                    divergence_us: u64::try_from(d).unwrap_or_default(),
                    allowed_us: u64::try_from(allowed.as_micros()).unwrap_or(u64::MAX),
                }),
        };
        self.audit.observe(report_event, true).await;
        let Ok(report) = report else {
            return Ok(false);
        };
        self.reports
            .submit(&report, &lineage, OffsetDateTime::now_utc())
            .await
            .map_err(|e| ServerError::Compliance(format!("keeping a report: {e}")))?;
        Ok(true)
    }

    /// Reports the fills that have no report yet (of `account`, or of every account): the
    /// ones whose account had no client when they were filled, or whose report was lost to
    /// a failure between storing the fill and keeping its report. Run at start and after
    /// a client is set. Returns `(reported, still unreported)`.
    ///
    /// # Errors
    /// Storage failures while reading the fills.
    pub async fn reconcile(&self, account: Option<&str>) -> Result<(u64, u64)> {
        if self.firm.is_none() {
            return Ok((0, 0));
        }
        let (mut reported, mut left) = (0, 0);
        let mut after = None;
        loop {
            let page = self
                .store
                .unreported(account, after.clone(), 500)
                .await
                .map_err(|e| ServerError::Compliance(format!("reading unreported fills: {e}")))?;
            let Some(last) = page.last() else { break };
            after = Some((last.executed_at, last.id.clone()));
            for row in &page {
                match self.report_execution(row, true).await {
                    Ok(true) => reported += 1,
                    Ok(false) => left += 1,
                    Err(e) => {
                        left += 1;
                        tracing::error!(execution = %row.id, error = %e, "fill not reported");
                    }
                }
            }
        }
        if reported + left > 0 {
            tracing::info!(reported, left, "unreported fills reconciled");
        }
        Ok((reported, left))
    }

    /// The report of a stored fill.
    async fn build_report(
        &self,
        row: &ExecutionRow,
    ) -> std::result::Result<TransactionReport, NotReported> {
        let Some(firm) = &self.firm else {
            return Err(NotReported::Failed("no firm configuration".into()));
        };
        let instrument = firm.instrument(&row.symbol).ok_or_else(|| {
            NotReported::Failed(format!(
                "{} is no longer in the firm configuration",
                row.symbol
            ))
        })?;
        let client = self.client_party(&row.account_id).await?;
        let decimal = |text: &str| {
            Decimal::from_str_exact(text)
                .map_err(|e| NotReported::Failed(format!("stored fill {}: {e}", row.id)))
        };
        let (quantity, price) = (decimal(&row.quantity)?, decimal(&row.price)?);
        let trader = match row.owner.parse::<Uuid>() {
            Ok(owner) => self
                .users
                .find_by_id(owner)
                .await
                .map_err(|e| NotReported::Failed(e.to_string()))?
                .and_then(|u| firm.person(&u.username)),
            Err(_) => None,
        };
        let client_side = Counterparty::single(client, Some(firm.branch_country));
        let venue_side = Counterparty::single(Party::Mic(instrument.venue), None);
        let (buyer, seller) = if row.side == "buy" {
            (client_side, venue_side)
        } else {
            (venue_side, client_side)
        };
        let venue_id =
            VenueTransactionId::new(format!("V{}", row.id.replace('-', "")).to_ascii_uppercase())
                .map_err(NotReported::Invalid)?;
        let report = TransactionReport {
            reference: row.report_ref.parse().map_err(NotReported::Invalid)?,
            venue_transaction_id: Some(venue_id),
            executing_entity: firm.lei,
            investment_firm: true,
            submitting_entity: firm.lei,
            buyer,
            seller,
            transmission: Transmission::default(),
            trading_time: finsec_compliance::mifid::TradingTime::new(
                row.executed_at,
                Granularity::Millisecond,
            ),
            capacity: TradingCapacity::AnyOther,
            quantity: Quantity::Units(quantity),
            price: Price::Monetary {
                value: price,
                currency: instrument.currency,
            },
            net_amount: None,
            venue: instrument.venue,
            branch_country: Some(firm.branch_country),
            instrument: instrument.isin,
            investment_decision: None,
            executor: match trader {
                Some(person) => Executor::Person(person),
                None => Executor::Algorithm(firm.algorithm.clone()),
            },
            waivers: Vec::new(),
            short_selling: None,
            otc_post_trade: Vec::new(),
            commodity_derivative: None,
            securities_financing: false,
        };
        let ctx = CheckContext::new(OffsetDateTime::now_utc(), instrument.class);
        report.check(&ctx).map_err(NotReported::Invalid)?;
        Ok(report)
    }

    /// The fills executed in `[from, to)`, as best execution sees them, in pages.
    ///
    /// # Errors
    /// Storage failures; a stored fill that does not parse.
    pub async fn executions_page(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        after: Option<(OffsetDateTime, String)>,
        limit: u32,
    ) -> Result<Vec<Execution>> {
        let rows = self
            .store
            .executions(from, to, after, limit)
            .await
            .map_err(|e| ServerError::Compliance(format!("reading fills: {e}")))?;
        rows.iter().map(execution_of).collect()
    }

    /// The business clock's current reading and whether it is within RTS 25 for
    /// millisecond timestamps.
    pub fn clock(&self) -> &Arc<dyn ClockSource> {
        &self.clock
    }

    /// Every record kept under `reference`, oldest first (none for a malformed one).
    ///
    /// # Errors
    /// The report store's.
    pub async fn history(&self, reference: &str) -> Result<Vec<StoredReport>> {
        let Ok(reference) = reference.parse() else {
            return Ok(Vec::new());
        };
        self.reports
            .history(&reference)
            .await
            .map_err(|e| ServerError::Compliance(format!("reading reports: {e}")))
    }
}

/// A report file being written, XML or CSV.
pub(crate) enum FileWriter<W: std::io::Write> {
    Xml(finsec_compliance::mifid::xml::XmlReportWriter<W>),
    Csv(Box<finsec_compliance::mifid::csv::CsvReportWriter<W>>),
}

impl<W: std::io::Write> FileWriter<W> {
    /// An auth.016 file with `header`.
    pub(crate) fn xml(
        out: W,
        header: &finsec_compliance::mifid::xml::AppHeader,
    ) -> finsec_compliance::Result<Self> {
        finsec_compliance::mifid::xml::XmlReportWriter::new(out, header).map(Self::Xml)
    }

    /// A CSV file.
    pub(crate) fn csv(out: W) -> finsec_compliance::Result<Self> {
        finsec_compliance::mifid::csv::CsvReportWriter::new(out).map(|w| Self::Csv(Box::new(w)))
    }

    /// Writes one record.
    pub(crate) fn write(
        &mut self,
        r: &finsec_compliance::mifid::Report,
    ) -> finsec_compliance::Result<()> {
        match (self, r) {
            // A report whose client was erased (GDPR Art. 17) is kept pseudonymised for
            // record keeping; it was sent before and is never sent again, so the file for
            // the regulator leaves it out. The CSV review file shows it.
            (Self::Xml(_), finsec_compliance::mifid::Report::New(report))
                if report.is_pseudonymised() =>
            {
                Ok(())
            }
            (Self::Xml(w), r) => w.write(r),
            (Self::Csv(w), r) => w.write(r),
        }
    }

    /// Closes the file and returns the output.
    pub(crate) fn finish(self) -> finsec_compliance::Result<W> {
        match self {
            Self::Xml(w) => w.finish(),
            Self::Csv(w) => w.finish(),
        }
    }
}

/// A stored fill as finsec-compliance's [`Execution`]: the order's arrival price is the
/// fill's reference (the simulator fills at the price of the moment it was accepted).
fn execution_of(r: &ExecutionRow) -> Result<Execution> {
    let bad = |what: &str| ServerError::Compliance(format!("stored fill {}: bad {what}", r.id));
    let class = match r.class.as_str() {
        "equity" => InstrumentClass::Equity,
        "etf" => InstrumentClass::Etf,
        "bond" => InstrumentClass::Bond,
        _ => return Err(bad("class")),
    };
    let quantity = Decimal::from_str_exact(&r.quantity).map_err(|_| bad("quantity"))?;
    let price = Decimal::from_str_exact(&r.price).map_err(|_| bad("price"))?;
    Ok(Execution {
        id: r.id.clone(),
        order_id: r.order_id.clone(),
        instrument: r.isin.parse().map_err(|_| bad("isin"))?,
        class,
        venue: r.venue.parse().map_err(|_| bad("venue"))?,
        side: if r.side == "buy" {
            Side::Buy
        } else {
            Side::Sell
        },
        quantity,
        price,
        currency: r.currency.parse().map_err(|_| bad("currency"))?,
        costs: Decimal::ZERO,
        order_quantity: quantity,
        ordered_at: r.ordered_at,
        executed_at: r.executed_at,
        arrival_price: None,
    })
}

/// The reference prices as best execution's market data: the price file has one price per
/// symbol, so the reference of an instrument is its symbol's price whatever the time.
#[derive(Debug)]
pub struct PriceFileMarket {
    by_isin: std::collections::HashMap<Isin, Decimal>,
}

impl PriceFileMarket {
    /// The prices of the firm's instruments.
    pub fn new(firm: Option<&FirmConfig>, prices: &dyn ReferencePrices) -> Self {
        let by_isin = firm
            .map(|f| {
                f.instruments
                    .iter()
                    .filter_map(|i| prices.price(&i.symbol).map(|p| (i.isin, p)))
                    .collect()
            })
            .unwrap_or_default();
        Self { by_isin }
    }
}

#[async_trait::async_trait]
impl MarketDataSource for PriceFileMarket {
    async fn price_at(
        &self,
        instrument: &Isin,
        _at: OffsetDateTime,
    ) -> finsec_compliance::Result<Option<Decimal>> {
        Ok(self.by_isin.get(instrument).copied())
    }
}

/// Why a client was refused.
#[derive(Debug)]
pub enum ClientError {
    /// The details do not identify the person (422).
    Invalid(finsec_compliance::Error),
    /// Storage or encryption failed (500).
    Failed(String),
}

fn person_id(p: &PersonBody) -> finsec_compliance::Result<PersonId> {
    let country = reporting_nationality(&p.nationalities);
    let row = country.map(priorities).unwrap_or_default();
    let held: Vec<HeldIdentifier> = p
        .identifiers
        .iter()
        .filter_map(|i| {
            let kind = match i.kind {
                IdentifierKindBody::Passport => IdentifierKind::Passport,
                IdentifierKindBody::IdentityCard => IdentifierKind::IdentityCard,
                IdentifierKindBody::National => *row
                    .iter()
                    .find(|k| matches!(k, IdentifierKind::National(_)))?,
            };
            Some(HeldIdentifier {
                kind,
                number: i.number.clone(),
            })
        })
        .collect();
    national_client_id(&PersonDetails {
        nationalities: &p.nationalities,
        birth_date: p.birth_date,
        first_names: &p.first_names,
        surnames: &p.surnames,
        held: &held,
    })
}

/// An audit event by the system on behalf of user `user`.
fn event(action: &str, outcome: Outcome, at: OffsetDateTime, user: &str) -> Result<AuditEvent> {
    let time = EventTime::new(at, Precision::Microsecond, "system")
        .map_err(|e| ServerError::Compliance(format!("audit event: {e}")))?;
    AuditEvent::new(action, outcome, time)
        .and_then(|e| {
            e.with_actor(AuditActor {
                user: Some(user.to_owned()),
                ..AuditActor::default()
            })
        })
        .map_err(|e| ServerError::Compliance(format!("audit event: {e}")))
}
