//! The compliance routes: transaction reports (read as a streamed auth.016 XML or CSV file,
//! cancel), the best-execution review, and the firm's clients.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{FromRef, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use finsec_audit::Outcome;
use finsec_compliance::mifid::best_execution::{Review, ReviewBuilder};
use finsec_compliance::mifid::xml::AppHeader;
use finsec_compliance::mifid::{Lineage, ReportFilter, StoredReport};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::mpsc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{
    COMPLIANCE_ADMIN, COMPLIANCE_READ, ClientBody, ClientError, ClientView, FileWriter,
    PriceFileMarket,
};
use crate::audit::layer::{AuditNotes, Note};
use crate::auth::extract::Principal;
use crate::http::json::Json as JsonBody;
use crate::http::query::Query;
use crate::problem::{FieldError, Problem};
use crate::rbac::Actor;
use crate::rbac::admin::{internal, require_permission, require_permission_now, rfc3339};
use crate::state::AppState;

/// Records read from the store per page while a file is streamed.
const PAGE: u32 = 500;

/// The compliance routes.
pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    AppState: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(mifid_reports))
        .routes(routes!(report_summary))
        .routes(routes!(report_history))
        .routes(routes!(cancel_report))
        .routes(routes!(best_execution))
        .routes(routes!(put_client))
}

/// A period and a file format.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    /// Trades at or after this time (RFC 3339).
    from: String,
    /// Trades before this time (RFC 3339).
    to: String,
    /// `xml` (ISO 20022 auth.016, the default) or `csv`.
    format: Option<String>,
}

/// A period.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodParams {
    /// Executions at or after this time (RFC 3339).
    from: String,
    /// Executions before this time (RFC 3339).
    to: String,
}

/// `[from, to)` from the query, or what is wrong with it (a 400).
fn period(from: &str, to: &str) -> Result<(OffsetDateTime, OffsetDateTime), String> {
    let parse = |name: &str, text: &str| {
        OffsetDateTime::parse(text, &Rfc3339)
            .map_err(|_| format!("{name} must be an RFC 3339 time"))
    };
    let (from, to) = (parse("from", from)?, parse("to", to)?);
    if from >= to {
        return Err("from must be before to".to_owned());
    }
    // The store keeps times as microseconds since 1970 in an i64.
    let in_range = |t: OffsetDateTime| finsec_sql::time::to_micros(t).is_ok();
    if !in_range(from) || !in_range(to) {
        return Err("the period is out of range".to_owned());
    }
    Ok((from, to))
}

/// A writer that hands what is written to the response in chunks.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Shared {
    fn take(&self) -> Bytes {
        let mut buf = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Bytes::from(std::mem::take(&mut *buf))
    }
}

impl std::io::Write for Shared {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A response body fed by a channel: each message is a chunk, an error ends the
/// response abruptly (the client sees a truncated file, never a complete-looking one).
struct ChannelBody(mpsc::Receiver<std::io::Result<Bytes>>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|m| m.map(|r| r.map(http_body::Frame::data)))
    }
}

/// The transaction reports of a period, as one file.
#[utoipa::path(
    get,
    path = "/reports/mifid",
    tag = "compliance",
    params(
        ("from" = String, Query, format = DateTime, description = "Trades at or after this time (RFC 3339)"),
        ("to" = String, Query, format = DateTime, description = "Trades before this time (RFC 3339)"),
        ("format" = Option<String>, Query, description = "xml (ISO 20022 auth.016, the default) or csv", pattern = "^(xml|csv)$"),
    ),
    responses(
        (status = 200, description = "The records (new reports and cancellations) of trades in the period, oldest first, streamed: an ISO 20022 auth.016.001.01 file with its head.001 header (`application/xml`), or CSV with a header row (`text/csv`)", content(
            (String = "application/xml"),
            (String = "text/csv"),
        )),
        (status = 204, description = "XML asked for and the period holds no record (an auth.016 file holds at least one)"),
        (status = 400, description = "A time does not parse, or from is not before to", body = Problem),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 403, description = "No compliance:read permission", body = Problem),
        (status = 409, description = "The server has no firm configuration (--firm-config)", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn mifid_reports(
    State(state): State<AppState>,
    actor: Actor,
    Query(p): Query<ReportParams>,
) -> Result<Response, Problem> {
    require_permission(&state, &actor, COMPLIANCE_READ).await?;
    let (from, to) = period(&p.from, &p.to).map_err(Problem::bad_request)?;
    let csv = match p.format.as_deref() {
        None | Some("xml") => false,
        Some("csv") => true,
        Some(_) => return Err(Problem::bad_request("format must be xml or csv")),
    };
    let compliance = Arc::clone(state.compliance());
    let Some(firm) = compliance.firm() else {
        return Err(Problem::conflict(
            "the server has no firm configuration (--firm-config)",
        ));
    };
    let filter = ReportFilter {
        from: Some(from),
        to: Some(to),
        ..ReportFilter::default()
    };
    let first = compliance
        .reports()
        .query(&filter, 0, PAGE)
        .await
        .map_err(|e| internal("reading reports", &e))?;
    if first.is_empty() && !csv {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let shared = Shared::default();
    let writer = if csv {
        FileWriter::csv(shared.clone()).map_err(|e| internal("csv", &e))?
    } else {
        let header = AppHeader::new(
            firm.lei,
            firm.authority,
            message_id(from),
            OffsetDateTime::now_utc(),
        )
        .map_err(|e| internal("report header", &e))?;
        FileWriter::xml(shared.clone(), &header).map_err(|e| internal("xml", &e))?
    };
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(stream_reports(
        compliance, filter, first, writer, shared, tx,
    ));
    let mut response = Body::new(ChannelBody(rx)).into_response();
    let (content_type, file) = if csv {
        ("text/csv; charset=utf-8", "mifid-transactions.csv")
    } else {
        ("application/xml", "mifid-transactions.xml")
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// A report file's id: `FINSEC`, the period's first day and a random suffix.
pub(crate) fn message_id(from: OffsetDateTime) -> String {
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    format!(
        "FINSEC-{:04}{:02}{:02}-{}",
        from.year(),
        u8::from(from.month()),
        from.day(),
        suffix.get(20..).unwrap_or_default()
    )
}

/// Writes every record of the period, page after page, into the channel.
async fn stream_reports(
    compliance: Arc<super::Compliance>,
    filter: ReportFilter,
    first: Vec<StoredReport>,
    mut writer: FileWriter<Shared>,
    shared: Shared,
    tx: mpsc::Sender<std::io::Result<Bytes>>,
) {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "report file: {what}");
        std::io::Error::other(format!("report file: {what}"))
    };
    let mut page = first;
    while let Some(last) = page.last().map(|r| r.seq) {
        for record in &page {
            if let Err(e) = writer.write(&record.report) {
                let _ = tx.send(Err(fail("writing", &e))).await;
                return;
            }
        }
        if tx.send(Ok(shared.take())).await.is_err() {
            return; // the client went away
        }
        page = match compliance.reports().query(&filter, last, PAGE).await {
            Ok(page) => page,
            Err(e) => {
                let _ = tx.send(Err(fail("reading", &e))).await;
                return;
            }
        };
    }
    if let Err(e) = writer.finish().map(drop) {
        let _ = tx.send(Err(fail("finishing", &e))).await;
        return;
    }
    let _ = tx.send(Ok(shared.take())).await;
}

/// A kept report record, as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportRecord {
    /// The store's sequence number.
    pub seq: i64,
    /// The record's version within its reference.
    pub version: i64,
    /// The transaction reference.
    pub reference: String,
    /// `NEWT` or `CANC`.
    pub status: String,
    /// The instrument's ISIN.
    pub instrument: String,
    /// The trading time (ISO 8601, UTC, with its granularity's digits).
    pub trading_time: String,
    /// When the record was kept (RFC 3339).
    pub recorded_at: String,
    /// The audit event of the execution.
    pub execution_event: Option<String>,
    /// The audit event of this record's creation.
    pub report_event: Option<String>,
    /// Set when the clock that stamped the execution was further from UTC than RTS 25
    /// allows for the timestamp's granularity.
    pub clock: Option<ClockView>,
}

/// A clock divergence beyond RTS 25's maximum.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClockView {
    /// The divergence the clock declared, microseconds.
    pub divergence_us: u64,
    /// The maximum for the timestamp's granularity, microseconds.
    pub allowed_us: u64,
}

impl From<&StoredReport> for ReportRecord {
    fn from(r: &StoredReport) -> Self {
        Self {
            seq: r.seq,
            version: r.version,
            reference: r.report.reference().to_string(),
            status: r.report.status().code().to_owned(),
            instrument: r.instrument.to_string(),
            trading_time: r.trading_time.to_iso(),
            recorded_at: rfc3339(r.recorded_at),
            execution_event: r.lineage.execution_event.map(|u| u.to_string()),
            report_event: r.lineage.report_event.map(|u| u.to_string()),
            clock: r.lineage.clock.map(|c| ClockView {
                divergence_us: c.divergence_us,
                allowed_us: c.allowed_us,
            }),
        }
    }
}

/// The live reports of a period, totalled.
#[utoipa::path(
    get,
    path = "/reports/mifid/summary",
    tag = "compliance",
    params(
        ("from" = String, Query, format = DateTime, description = "Trades at or after this time (RFC 3339)"),
        ("to" = String, Query, format = DateTime, description = "Trades before this time (RFC 3339)"),
    ),
    responses(
        (status = 200, description = "The reports live now (not cancelled) of trades in the period: how many, and per currency their count, volume (quantity) and value (quantity × price), exact decimals", body = SummaryView),
        (status = 400, description = "A time does not parse, or from is not before to", body = Problem),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 403, description = "No compliance:read permission", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn report_summary(
    State(state): State<AppState>,
    actor: Actor,
    Query(p): Query<PeriodParams>,
) -> Result<Json<SummaryView>, Problem> {
    require_permission(&state, &actor, COMPLIANCE_READ).await?;
    let (from, to) = period(&p.from, &p.to).map_err(Problem::bad_request)?;
    let summary = state
        .compliance()
        .reports()
        .summary(from, to)
        .await
        .map_err(|e| internal("summarising reports", &e))?;
    Ok(Json(SummaryView { summary }))
}

/// A period's totals.
#[derive(Debug, Serialize, ToSchema)]
pub struct SummaryView {
    /// `count`, `by_currency` (`count`, `volume`, `value` as decimal text) and `unvalued`.
    #[schema(value_type = Object)]
    #[serde(flatten)]
    pub summary: finsec_compliance::mifid::PeriodSummary,
}

/// Every record kept under a transaction reference, with its lineage: the audit events of
/// the execution and of each record, which an auditor proves with
/// `/audit/proof/inclusion`.
#[utoipa::path(
    get,
    path = "/reports/mifid/{reference}",
    tag = "compliance",
    params(("reference" = String, Path, description = "The transaction reference", pattern = "^[A-Z0-9]{1,52}$")),
    responses(
        (status = 200, description = "The records, oldest first", body = [ReportRecord]),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 403, description = "No compliance:read permission", body = Problem),
        (status = 404, description = "No report has this reference", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn report_history(
    State(state): State<AppState>,
    actor: Actor,
    Path(reference): Path<String>,
) -> Result<Json<Vec<ReportRecord>>, Problem> {
    require_permission(&state, &actor, COMPLIANCE_READ).await?;
    let history = state
        .compliance()
        .history(&reference)
        .await
        .map_err(|e| internal("reading reports", &e))?;
    if history.is_empty() {
        return Err(Problem::not_found("no report has this reference"));
    }
    Ok(Json(history.iter().map(ReportRecord::from).collect()))
}

/// Cancels a kept report (compliance admin, recent login): a `CANC` record is kept, and
/// the next file of its period carries it.
#[utoipa::path(
    post,
    path = "/reports/mifid/{reference}/cancel",
    tag = "compliance",
    params(("reference" = String, Path, description = "The transaction reference", pattern = "^[A-Z0-9]{1,52}$")),
    responses(
        (status = 200, description = "The cancellation record", body = ReportRecord),
        (status = 401, description = "Not authenticated, or the login is not recent (step-up needed)", body = Problem),
        (status = 403, description = "No compliance:admin permission, or an API key was used", body = Problem),
        (status = 404, description = "No report has this reference", body = Problem),
        (status = 409, description = "The report is already cancelled", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn cancel_report(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    notes: AuditNotes,
    Path(reference): Path<String>,
) -> Result<Json<ReportRecord>, Problem> {
    require_permission_now(
        &state,
        &principal,
        &actor,
        &notes,
        COMPLIANCE_ADMIN,
        "mifid.cancel",
    )
    .await?;
    let compliance = state.compliance();
    let Ok(parsed) = reference.parse::<finsec_compliance::mifid::TransactionReference>() else {
        return Err(Problem::not_found("no report has this reference"));
    };
    let history = compliance
        .reports()
        .history(&parsed)
        .await
        .map_err(|e| internal("reading reports", &e))?;
    if history.is_empty() {
        return Err(Problem::not_found("no report has this reference"));
    }
    let now = OffsetDateTime::now_utc();
    let event = super::event(
        "mifid.cancel",
        Outcome::Success,
        now,
        &principal.user_id.to_string(),
    )
    .and_then(|e| {
        e.with_resource("transaction_report", parsed.as_str())
            .map_err(|e| crate::error::ServerError::Compliance(format!("audit event: {e}")))
    })
    .map_err(|e| internal("audit event", &e))?;
    let lineage = Lineage {
        execution_event: history.last().and_then(|r| r.lineage.execution_event),
        report_event: Some(event.id()),
        clock: None,
    };
    match compliance.reports().cancel(&parsed, &lineage, now).await {
        Ok(record) => {
            compliance.audit().observe(event, true).await;
            notes.note(
                Note::new("mifid.cancel", Outcome::Success)
                    .resource("transaction_report", &reference),
            );
            Ok(Json(ReportRecord::from(&record)))
        }
        Err(finsec_compliance::Error::NotLive { .. }) => {
            Err(Problem::conflict("the report is already cancelled").extension("code", "not_live"))
        }
        Err(e) => Err(internal("cancelling a report", &e)),
    }
}

/// Best execution over the fills of a period.
#[utoipa::path(
    get,
    path = "/best-execution",
    tag = "compliance",
    params(
        ("from" = String, Query, format = DateTime, description = "Executions at or after this time (RFC 3339)"),
        ("to" = String, Query, format = DateTime, description = "Executions before this time (RFC 3339)"),
    ),
    responses(
        (status = 200, description = "Every fill of the period compared with the reference price (slippage in bps, signed so a cost is positive), the breaches of the threshold, and per instrument class the five venues with the most executed quantity", body = ReviewView),
        (status = 400, description = "A time does not parse, or from is not before to", body = Problem),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 403, description = "No compliance:read permission", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn best_execution(
    State(state): State<AppState>,
    actor: Actor,
    Query(p): Query<PeriodParams>,
) -> Result<Json<ReviewView>, Problem> {
    require_permission(&state, &actor, COMPLIANCE_READ).await?;
    let (from, to) = period(&p.from, &p.to).map_err(Problem::bad_request)?;
    let compliance = state.compliance();
    let market = PriceFileMarket::new(compliance.firm(), state.orders().prices().as_ref());
    let mut review = ReviewBuilder::new();
    let mut after = None;
    loop {
        let page = compliance
            .executions_page(from, to, after.clone(), 1000)
            .await
            .map_err(|e| internal("reading fills", &e))?;
        let Some(last) = page.last() else { break };
        after = Some((last.executed_at, last.id.clone()));
        for e in &page {
            let reference = finsec_compliance::mifid::best_execution::MarketDataSource::price_at(
                &market,
                &e.instrument,
                e.executed_at,
            )
            .await
            .map_err(|err| internal("market data", &err))?;
            let a = compliance
                .best_execution()
                .assess(e, reference)
                .map_err(|err| internal("assessing a fill", &err))?;
            review.add(e, a);
        }
    }
    Ok(Json(ReviewView {
        threshold_bps: compliance.best_execution().threshold_bps().to_string(),
        review: review.finish(),
    }))
}

/// A best-execution review.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewView {
    /// The threshold a breach exceeds, in bps.
    pub threshold_bps: String,
    /// The review.
    #[schema(value_type = Object)]
    pub review: Review,
}

/// Sets the client of a trading account (compliance admin, recent login): a legal entity
/// by LEI, or a natural person whose national client identifier is worked out from their
/// nationality (RTS 22 Annex II; CONCAT where it applies). A person's details are sealed
/// under the client's subject key; the answer shows only how they are identified.
#[utoipa::path(
    put,
    path = "/admin/clients/{account}",
    tag = "compliance",
    params(("account" = String, Path, description = "The trading account", pattern = "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")),
    request_body = ClientBody,
    responses(
        (status = 200, description = "The client as reports will identify it", body = ClientView),
        (status = 400, description = "The body is not JSON", body = Problem),
        (status = 401, description = "Not authenticated, or the login is not recent (step-up needed)", body = Problem),
        (status = 403, description = "No compliance:admin permission, or an API key was used", body = Problem),
        (status = 404, description = "The account name is not a trading account id", body = Problem),
        (status = 422, description = "The details do not identify the client (a name without letters, no nationality, no identifier the nationality accepts, ...)", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn put_client(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    notes: AuditNotes,
    Path(account): Path<String>,
    JsonBody(body): JsonBody<ClientBody>,
) -> Result<Json<ClientView>, Problem> {
    require_permission_now(
        &state,
        &principal,
        &actor,
        &notes,
        COMPLIANCE_ADMIN,
        "client.set",
    )
    .await?;
    let Ok(account) = account.parse::<finsec_validate::request::AccountId>() else {
        return Err(Problem::not_found("not a trading account id"));
    };
    match state
        .compliance()
        .put_client(account.as_str(), &body, OffsetDateTime::now_utc())
        .await
    {
        Ok(view) => {
            notes.note(
                Note::new("client.set", Outcome::Success).resource("account", account.as_str()),
            );
            // The account's fills that could not be reported without a client are now.
            if let Err(e) = state.compliance().reconcile(Some(account.as_str())).await {
                tracing::error!(error = %e, "reconciling an account's fills");
            }
            Ok(Json(view))
        }
        Err(ClientError::Invalid(e)) => Err(Problem::validation(vec![FieldError::new(
            "",
            e.code(),
            e.to_string(),
        )])),
        Err(ClientError::Failed(e)) => Err(internal("setting a client", &e)),
    }
}
