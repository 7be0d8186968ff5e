//! Order entry: validated, RBAC-guarded orders with maker-checker approval of large ones.
//!
//! # Placing an order (`POST /orders`)
//!
//! In this order, so that nothing is revealed to a caller who may not trade:
//!
//! 1. the caller's roles are read from `server_user_roles` (every request: a grant or a
//!    revocation applies at once) and the policy must allow [`TRADE_EXECUTE`]; a request
//!    made with an API key also needs a key scope matching it. Otherwise 403 with the
//!    decision's reason code and deciding rule ([`Denial`]); the full explanation and the
//!    audit record are logged at info level;
//! 2. the body is checked (see [`body`]): 400 if it is not JSON, 422 listing every field
//!    error otherwise; notes are cleaned and sanitised; then the caller must be entitled to
//!    the order's trading account ([`accounts`]), or 403 `account_not_entitled`. A retry
//!    with an `Idempotency-Key` gets its first order back only while the caller is still
//!    entitled to that order's account;
//!
//! Every error is a [`Problem`]: field errors in its `errors`, a 403's reason code and
//! deciding rule in the extension members `reason` and `rule`, a 409's code (`not_pending`,
//! `approval_expired`, ...) in `code`;
//! 3. the order is valued ([`valuation`]): at quantity x the larger of its limit and the
//!    symbol's reference price (`--reference-prices`); a limit further from the reference
//!    than `--price-band-percent` is a 422 (`price_band`). **A sell or a market order
//!    without a reference has no value the server can trust: it always goes through
//!    approval.** A known value is added to the trader's and the account's totals for the
//!    UTC day, and the order is above the threshold (`--approval-notional`) if its value or
//!    either total is. An order that is then not placed (refused, or a replay) is taken
//!    back out of the totals;
//! 4. at or below the threshold the order is stored `accepted` (201). Above it an API key
//!    must carry a scope matching [`ORDERS_EXECUTE_LARGE`] (else 403 `api_key_scope`), and
//!    the policy is asked about it: allowed outright (admin's `*`) stores it
//!    `accepted` (201); "approval required" opens a finsec-rbac approval request whose
//!    subject is the order id and stores the order `pending_approval` (202, with the
//!    approval id); anything else is 403.
//!
//! # Approving (`POST /orders/{id}/approve`)
//!
//! The approver needs [`ORDERS_APPROVE`] (and a matching scope with an API key) and an
//! entitlement to the order's account (403 `account_not_entitled`: supervisors who may
//! read every account approve only on their own). finsec-rbac
//! refuses the initiator (403, `self_approval`), a principal without the approver
//! permission (403), an expired request (409, `approval_expired`; the order becomes
//! `expired`) and a used one. When the quorum the policy's rule sets is reached, the
//! initiator's request is authorized with the approval (which uses it up, atomically) under
//! the initiator's roles *at that moment*: if they may still trade, and are still entitled
//! to the account, the order becomes `accepted`, otherwise `rejected`.
//!
//! IP conditions in the policy are evaluated with the TCP peer's address where the server
//! decides ([`TRADE_EXECUTE`] and [`ORDERS_READ`], and the first check of
//! [`ORDERS_APPROVE`]). finsec-rbac's approval steps decide without an address (the
//! approver permission when an approval is recorded, [`ORDERS_EXECUTE_LARGE`] when it is
//! used), and the initiator is not connected when the quorum is reached, so an IP
//! condition on [`ORDERS_APPROVE`], [`ORDERS_EXECUTE_LARGE`] or [`TRADE_EXECUTE`] makes
//! large orders fail closed: refused approvals, or orders `rejected` at completion.
//!
//! # Reading (`GET /orders/{id}`, `GET /orders`)
//!
//! An order is readable when the policy allows [`ORDERS_READ`] on a resource owned by the
//! order's owner: the preset's trader rule (`resource.owner == principal.id`) gives traders
//! their own orders, admin's `*` gives every order. The reader must also be entitled to the
//! order's account, unless the policy allows them [`ACCOUNTS_READ_ANY`]. Anyone else gets
//! 404 whether or not the order exists. `GET /orders` lists the caller's own orders on
//! accounts they are entitled to (newest first, at most [`store::LIST_LIMIT`] before that
//! filter) and is 403 for a caller who may not read their own orders.
//!
//! # Threat model
//!
//! Defends against: privilege escalation by role (policy checked per request, roles read
//! per request, API-key scopes can only narrow); trading on, or reading, an account the
//! caller has no business with (entitlements per account, read per request, checked when
//! an order is placed, read, replayed, approved and completed); a single person moving a
//! large amount
//! (maker-checker, self-approval refused, approvals expire and are single-use); stored XSS
//! through notes (finsec-validate's `notes` sanitiser); order enumeration (404 for orders
//! the caller may not read, ids are UUIDv7 and not sequential); oversized or malformed
//! bodies (64 KiB limit, every field validated, numbers as decimal text only); leaking
//! policy internals (denials carry only the reason code and the rule's role and index).
//!
//! Does not defend against: an administrator placing large orders alone (admin's `*` is a
//! plain allow; see [`crate::rbac::generated_policy`]); stale or wrong reference prices
//! (the prices file is trusted as given); market risk beyond the threshold and the price
//! band (no position limits); a compromised database (rows are not signed; record
//! decisions in an audit log). Concurrent orders of one trader on one account may go to
//! approval a little early (each day total orders them its own way), never late.

pub mod accounts;
pub mod admin;
pub mod body;
pub mod routes;
mod sql;
pub mod store;
#[cfg(test)]
pub(crate) mod suite;
#[cfg(test)]
mod tests;
pub mod valuation;

use std::fmt;
use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use finsec_rbac::approval::{self, ApprovalStatus};
use finsec_rbac::{
    ApprovalId, ApprovalStore, Permission, Policy, Principal, Reason, Request, Resource,
};
use rust_decimal::Decimal;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{Result as ServerResult, ServerError};
use crate::problem::{FieldError, Problem, ProblemType};
use crate::rbac::roles::RoleStore;
use crate::rbac::{
    ACCOUNTS_READ_ANY, Access, Actor, Denial, ORDERS_APPROVE, ORDERS_EXECUTE_LARGE, ORDERS_READ,
    RbacConfig, TRADE_EXECUTE, log_decision, permission,
};
use crate::storage::sql::{StoreError, is_unique_violation};
use crate::storage::{Storage, Stores};
use accounts::EntitlementStore;
use body::{BodyError, BodyRules, CheckedOrder};
use finsec_validate::request::AccountId;
use store::{Idempotency, NewOrderRow, Order, OrderStatus, OrderStore};
use valuation::{NoPrices, PriceFile, ReferencePrices};

/// The largest `POST /orders` body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Why an order operation failed; each maps to one HTTP status.
#[derive(Debug)]
#[non_exhaustive]
pub enum OrderError {
    /// The body is not JSON (400).
    Malformed(String),
    /// The body is not declared as JSON (415).
    UnsupportedMediaType,
    /// The body is larger than [`MAX_BODY_BYTES`] (413).
    TooLarge,
    /// Field errors (422).
    Invalid(finsec_validate::ValidationErrors),
    /// Refused by the policy or the API key's scopes (403).
    Forbidden(Denial),
    /// No such order, or the caller may not see it (404).
    NotFound,
    /// The order is not in a state that allows the operation (409).
    Conflict {
        /// The stable code.
        code: &'static str,
        /// What happened.
        message: String,
    },
    /// The `Idempotency-Key` header is not 1 to 255 visible ASCII characters (400).
    BadIdempotencyKey,
    /// The `Idempotency-Key` was used before for a request with another body (422).
    IdempotencyKeyReused,
    /// A database or approval-store failure (500; the detail is logged, not sent).
    Internal(String),
}

impl fmt::Display for OrderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(m) => write!(f, "malformed body: {m}"),
            Self::UnsupportedMediaType => f.write_str("body is not application/json"),
            Self::TooLarge => write!(f, "body is larger than {MAX_BODY_BYTES} bytes"),
            Self::Invalid(e) => write!(f, "{e}"),
            Self::Forbidden(d) => write!(f, "forbidden: {}", d.reason),
            Self::NotFound => f.write_str("not found"),
            Self::Conflict { code, message } => write!(f, "{code}: {message}"),
            Self::BadIdempotencyKey => f.write_str("malformed Idempotency-Key"),
            Self::IdempotencyKeyReused => {
                f.write_str("Idempotency-Key already used for another request")
            }
            Self::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for OrderError {}

impl From<StoreError> for OrderError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<ServerError> for OrderError {
    fn from(e: ServerError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl OrderError {
    /// The problem answered for this error (an internal error's cause is logged here, not
    /// sent).
    pub fn problem(self) -> Problem {
        let whole_body = |code: &str, message: String| FieldError::new("", code, message);
        match self {
            Self::Malformed(message) => Problem::bad_request("the body is not valid JSON")
                .errors([whole_body("malformed_json", message)]),
            Self::UnsupportedMediaType => Problem::new(ProblemType::UnsupportedMediaType)
                .detail("the body must be sent with Content-Type: application/json")
                .errors([whole_body(
                    "content_type",
                    "the body must be sent with Content-Type: application/json".to_owned(),
                )]),
            Self::TooLarge => {
                let message = format!("the body is larger than {MAX_BODY_BYTES} bytes");
                Problem::new(ProblemType::PayloadTooLarge)
                    .detail(message.clone())
                    .errors([whole_body("too_large", message)])
            }
            Self::Invalid(errors) => Problem::validation(
                errors
                    .errors
                    .into_iter()
                    .map(|e| FieldError::new(e.path, e.code.into_owned(), e.message))
                    .collect(),
            ),
            Self::Forbidden(denial) => {
                let mut problem = Problem::new(ProblemType::Forbidden)
                    .detail(format!("denied: {}", denial.reason))
                    .extension("reason", denial.reason);
                if let Some(rule) = denial.rule {
                    problem = problem.extension("rule", rule);
                }
                problem
            }
            Self::NotFound => Problem::not_found("no such order"),
            Self::Conflict { code, message } => Problem::conflict(message).extension("code", code),
            Self::BadIdempotencyKey => {
                let message = format!(
                    "the Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII \
                     characters (optionally in double quotes)"
                );
                Problem::bad_request(message.clone()).errors([FieldError::new(
                    "Idempotency-Key",
                    "idempotency_key",
                    message,
                )])
            }
            Self::IdempotencyKeyReused => Problem::validation(vec![FieldError::new(
                "Idempotency-Key",
                "idempotency_key_reused",
                "this Idempotency-Key was used for a request with another body; a retry must \
                 send the same body, a new order a new key"
                    .to_owned(),
            )]),
            Self::Internal(detail) => Problem::internal(&format_args!("order operation: {detail}")),
        }
    }
}

impl IntoResponse for OrderError {
    fn into_response(self) -> Response {
        self.problem().into_response()
    }
}

impl From<BodyError> for OrderError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::Syntax(message) => Self::Malformed(message),
            BodyError::Invalid(errors) => Self::Invalid(errors),
        }
    }
}

/// A result of this module.
pub type Result<T, E = OrderError> = std::result::Result<T, E>;

/// The outcome of an approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Approved {
    /// The order after the approval (`accepted` once the quorum is reached).
    pub order: Order,
    /// Distinct approvals recorded so far.
    pub approvals: usize,
    /// How many the policy's rule requires.
    pub quorum: u8,
}

/// The permissions the service checks, parsed once.
#[derive(Debug, Clone)]
struct Permissions {
    execute: Permission,
    large: Permission,
    approve: Permission,
    read: Permission,
    read_any: Permission,
}

/// Order entry on the server's database, policy and approval store.
#[derive(Clone)]
pub struct Orders {
    access: Access,
    approvals: Arc<dyn ApprovalStore>,
    orders: Arc<dyn OrderStore>,
    roles: Arc<dyn RoleStore>,
    entitlements: Arc<dyn EntitlementStore>,
    rules: Arc<BodyRules>,
    approval_notional: Decimal,
    prices: Arc<dyn ReferencePrices>,
    price_band_percent: Decimal,
    permissions: Arc<Permissions>,
    controls: Arc<crate::controls::Watcher>,
    fills: Option<Arc<crate::compliance::Compliance>>,
}

impl fmt::Debug for Orders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Orders")
            .field("access", &self.access)
            .field("approvals", &self.approvals)
            .field("approval_notional", &self.approval_notional)
            .field("prices", &self.prices)
            .field("price_band_percent", &self.price_band_percent)
            .finish_non_exhaustive()
    }
}

impl Orders {
    /// Sets order entry up on a migrated database (see [`crate::capabilities::migrate`]):
    /// records the default role for new users, and checks orders against `policy` with the
    /// threshold in `config`.
    ///
    /// # Errors
    /// [`ServerError::Storage`] if a migration or the default-role update fails.
    pub async fn open(
        storage: &Storage,
        policy: Policy,
        config: &RbacConfig,
    ) -> ServerResult<Self> {
        let stores = storage.stores();
        let default_role = config.default_role()?;
        stores
            .roles
            .set_default_role(&default_role)
            .await
            .map_err(|source| ServerError::Storage {
                backend: storage.backend().as_str(),
                target: "server_role_settings".to_owned(),
                source: Box::new(source),
            })?;
        let orders = Self::new(Access::new(policy), &stores, config.approval_notional)?;
        Ok(match &config.reference_prices {
            Some(path) => {
                let file = Arc::new(PriceFile::open(path)?);
                tracing::info!(path = %path.display(), symbols = file.len(), "reference prices loaded");
                file.watch();
                orders.with_prices(file, config.price_band_percent)
            }
            None => orders,
        })
    }

    /// Values orders with `prices` and refuses limit orders further than
    /// `band_percent` percent from their reference (see [`valuation`]).
    #[must_use]
    pub fn with_prices(mut self, prices: Arc<dyn ReferencePrices>, band_percent: Decimal) -> Self {
        self.prices = prices;
        self.price_band_percent = band_percent;
        self
    }

    /// Order entry with `access`, the approval, order and role stores of `stores`, and the
    /// approval threshold `approval_notional`.
    ///
    /// # Errors
    /// [`ServerError::Config`] if the built-in rules or permissions do not parse (never
    /// in practice; unit tests build them).
    pub fn new(access: Access, stores: &Stores, approval_notional: Decimal) -> ServerResult<Self> {
        let rules = BodyRules::server_default().map_err(ServerError::Config)?;
        Ok(Self {
            access,
            approvals: Arc::clone(&stores.crates.approvals),
            orders: Arc::clone(&stores.orders),
            roles: Arc::clone(&stores.roles),
            entitlements: Arc::clone(&stores.entitlements),
            rules: Arc::new(rules),
            approval_notional,
            prices: Arc::new(NoPrices),
            price_band_percent: Decimal::TEN,
            controls: Arc::new(finsec_rbac::controls::ControlWatcher::new(Arc::clone(
                &stores.crates.controls,
            ))),
            fills: None,
            permissions: Arc::new(Permissions {
                execute: permission(TRADE_EXECUTE)?,
                large: permission(ORDERS_EXECUTE_LARGE)?,
                approve: permission(ORDERS_APPROVE)?,
                read: permission(ORDERS_READ)?,
                read_any: permission(ACCOUNTS_READ_ANY)?,
            }),
        })
    }

    /// Refuses new orders in the halts `controls` keeps current (by default, a watcher of
    /// its own over the database's controls, which nobody refreshes).
    #[must_use]
    pub fn with_controls(mut self, controls: Arc<crate::controls::Watcher>) -> Self {
        self.controls = controls;
        self
    }

    /// Fills every order that becomes accepted with `compliance` (see
    /// [`crate::compliance`]).
    #[must_use]
    pub fn with_fills(mut self, compliance: Arc<crate::compliance::Compliance>) -> Self {
        self.fills = Some(compliance);
        self
    }

    /// The reference prices orders are valued with.
    pub fn prices(&self) -> &Arc<dyn ReferencePrices> {
        &self.prices
    }

    /// The incident controls new orders are checked against.
    pub fn controls(&self) -> &Arc<crate::controls::Watcher> {
        &self.controls
    }

    /// Users' trading-account entitlements.
    pub fn entitlements(&self) -> &dyn EntitlementStore {
        self.entitlements.as_ref()
    }

    /// The access checks.
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// The user's principal (its id and its roles as stored right now), for access checks
    /// outside order entry.
    ///
    /// # Errors
    /// As the role store.
    pub async fn principal_of(&self, user_id: &str) -> Result<Principal> {
        self.principal(user_id).await
    }

    /// The user's principal: its id and its roles as stored right now.
    async fn principal(&self, user_id: &str) -> Result<Principal> {
        let roles = self.roles.roles_of(parse_user_id(user_id)?).await?;
        let principal =
            Principal::new(user_id).map_err(|e| OrderError::Internal(format!("user id: {e}")))?;
        Ok(roles.into_iter().fold(principal, Principal::with_role))
    }

    /// Whether user `user` is entitled to trading account `account`.
    ///
    /// # Errors
    /// As the entitlement store.
    pub async fn is_entitled(&self, user: Uuid, account: &AccountId) -> Result<bool> {
        Ok(self.entitlements.is_entitled(user, account).await?)
    }

    /// Whether `actor` may read the orders of stored account `account`: entitled to it, or
    /// allowed [`ACCOUNTS_READ_ANY`] by the policy (and by the API key's scopes).
    async fn may_read_account(
        &self,
        actor: &Actor,
        principal: &Principal,
        user: Uuid,
        account: &str,
    ) -> Result<bool> {
        if let Ok(account) = account.parse::<AccountId>()
            && self.is_entitled(user, &account).await?
        {
            return Ok(true);
        }
        Ok(self.reads_any_account(actor, principal))
    }

    /// Whether `actor` holds [`ACCOUNTS_READ_ANY`] (policy and API-key scope).
    fn reads_any_account(&self, actor: &Actor, principal: &Principal) -> bool {
        let read_any = &self.permissions.read_any;
        actor.scope_allows(read_any)
            && self
                .access
                .decide(actor, principal, read_any, None)
                .is_allowed()
    }

    /// A retried request's first order, if its body is the same and the caller is still
    /// entitled to the order's account (a replay is a read).
    async fn replay(
        &self,
        owner: Uuid,
        (order, digest): (Order, [u8; 32]),
        retry: &Idempotency,
    ) -> Result<Placed> {
        if digest != retry.request_sha256 {
            return Err(OrderError::IdempotencyKeyReused);
        }
        let entitled = match order.account_id.parse::<AccountId>() {
            Ok(account) => self.is_entitled(owner, &account).await?,
            Err(_) => false,
        };
        if !entitled {
            return Err(OrderError::Forbidden(Denial::not_entitled()));
        }
        Ok(Placed {
            order,
            replayed: true,
        })
    }

    /// Places an order for `actor` from the request body at `now`. `body` is the body, or
    /// why it could not be read (wrong media type, too large); that error is returned only
    /// after authorization, so a caller who may not trade learns nothing from it.
    ///
    /// # Errors
    /// See the [module docs](self): 403, 400, 413, 415, 422, or an internal error.
    pub async fn place_at(
        &self,
        actor: &Actor,
        body: Result<&[u8]>,
        now: OffsetDateTime,
    ) -> Result<Order> {
        self.place_keyed_at(actor, None, body, now)
            .await
            .map(|placed| placed.order)
    }

    /// [`place_at`](Self::place_at) with the request's `Idempotency-Key` header, if any.
    ///
    /// A key is the caller's (unique per user): the first request with it places the order
    /// and stores the key with a digest of its body; a retry with the key and the same body
    /// gets that order back (`replayed`) and places nothing, and the key with another body
    /// is [`OrderError::IdempotencyKeyReused`]. Of concurrent requests with one key, one
    /// places the order and the others get it back.
    pub async fn place_keyed_at(
        &self,
        actor: &Actor,
        key: Option<&str>,
        body: Result<&[u8]>,
        now: OffsetDateTime,
    ) -> Result<Placed> {
        let principal = self.principal(actor.user_id()).await?;
        self.access
            .check(actor, &principal, &self.permissions.execute, None)
            .map_err(OrderError::Forbidden)?;
        let owner = parse_user_id(actor.user_id())?;
        let body = body?;
        let idempotency = match key {
            Some(key) => Some(Idempotency {
                key: idempotency_key(key)?,
                request_sha256: Sha256::digest(body).into(),
            }),
            None => None,
        };
        if let Some(first) = &idempotency
            && let Some(found) = self.orders.find_idempotent(owner, &first.key).await?
        {
            return self.replay(owner, found, first).await;
        }
        let checked = self.rules.check(body)?;
        // The policy says the caller may trade; the entitlements say on which accounts.
        if !self.is_entitled(owner, &checked.order.account_id).await? {
            return Err(OrderError::Forbidden(Denial::not_entitled()));
        }
        // A halt (global, of the account or of the instrument) refuses new orders; a retry
        // of an order placed before it was answered above.
        if let Some(halt) = self.controls.current().halt_for(
            checked.order.account_id.as_str(),
            checked.order.symbol.as_str(),
            now,
        ) {
            tracing::info!(halt = halt.id, scope = %halt.control.target(), "order refused: trading halted");
            return Err(OrderError::Forbidden(Denial::halted()));
        }
        let reference = self.prices.price(checked.order.symbol.as_str());
        self.check_band(&checked, reference)?;
        // The order counts toward its trader's and account's totals for the day before it
        // is decided, so concurrent orders see each other; if it is not placed after all,
        // it is taken back out.
        let value = valuation::value(&checked.order, reference);
        let day = now.unix_timestamp().div_euclid(86_400);
        let account = &checked.order.account_id;
        let over = match value {
            Some(value) => {
                let (user_total, account_total) = self.count(owner, account, day, value).await?;
                [value, user_total, account_total]
                    .iter()
                    .any(|total| *total > self.approval_notional)
            }
            None => true,
        };
        let result = self
            .store_order(
                actor,
                &principal,
                owner,
                checked.clone(),
                over,
                idempotency,
                now,
            )
            .await;
        if let Some(value) = value
            && !result.as_ref().is_ok_and(|placed| !placed.replayed)
        {
            self.uncount(owner, account, day, value).await;
        }
        result
    }

    /// Refuses a limit order further from `reference` than the price band (422).
    fn check_band(&self, checked: &CheckedOrder, reference: Option<Decimal>) -> Result<()> {
        let (Some(limit), Some(reference)) = (checked.order.kind.limit_price(), reference) else {
            return Ok(());
        };
        if !valuation::outside_band(limit.value(), reference, self.price_band_percent) {
            return Ok(());
        }
        let mut v = finsec_validate::request::Validator::new();
        v.error(
            "limit_price",
            "price_band",
            format!(
                "the limit price is more than {}% from the reference price {reference}",
                self.price_band_percent.normalize()
            ),
        );
        Err(OrderError::Invalid(
            v.finish(|| None::<()>).err().unwrap_or_default(),
        ))
    }

    /// Adds `value` to the day's totals of user `owner` and of `account`; returns both.
    async fn count(
        &self,
        owner: Uuid,
        account: &AccountId,
        day: i64,
        value: Decimal,
    ) -> Result<(Decimal, Decimal)> {
        let user_scope = format!("user:{owner}");
        let user_total = self.orders.add_notional(&user_scope, day, value).await?;
        match self
            .orders
            .add_notional(&format!("account:{account}"), day, value)
            .await
        {
            Ok(account_total) => Ok((user_total, account_total)),
            Err(e) => {
                if let Err(undo) = self.orders.add_notional(&user_scope, day, -value).await {
                    tracing::warn!(error = %undo, user = %owner, "an order's value stays counted");
                }
                Err(e.into())
            }
        }
    }

    /// Takes `value` back out of the day's totals (an order that was not placed). A
    /// failure leaves it counted, which only makes the threshold stricter, and is logged.
    async fn uncount(&self, owner: Uuid, account: &AccountId, day: i64, value: Decimal) {
        for scope in [format!("user:{owner}"), format!("account:{account}")] {
            if let Err(e) = self.orders.add_notional(&scope, day, -value).await {
                tracing::warn!(error = %e, scope, "an order that was not placed stays counted");
            }
        }
    }

    /// Stores a checked order: pending approval when `needs_approval` (or refused), else
    /// accepted; a concurrent first request with the same idempotency key wins.
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site, every argument distinct"
    )]
    async fn store_order(
        &self,
        actor: &Actor,
        principal: &Principal,
        owner: Uuid,
        checked: CheckedOrder,
        needs_approval: bool,
        idempotency: Option<Idempotency>,
        now: OffsetDateTime,
    ) -> Result<Placed> {
        let id = new_order_id(now);
        let (status, approval_id) = if needs_approval {
            self.open_approval(actor, principal, &id, now).await?
        } else {
            (OrderStatus::Accepted, None)
        };
        let order = &checked.order;
        let row = NewOrderRow {
            id,
            owner,
            account_id: order.account_id.to_string(),
            symbol: order.symbol.to_string(),
            side: order.side.as_str(),
            order_type: order.kind.order_type().as_str(),
            quantity: order.quantity.to_string(),
            limit_price: order.kind.limit_price().map(|p| p.to_string()),
            notes: checked.notes.map(finsec_validate::SafeHtml::into_string),
            status,
            approval_id,
            created_at: now,
            idempotency,
        };
        let stored = match self.orders.insert(&row).await {
            Ok(stored) => stored,
            Err(StoreError::Database(e))
                if row.idempotency.is_some() && is_unique_violation(&e) =>
            {
                // A concurrent request with the same key placed its order first.
                if let Some(first) = &row.idempotency
                    && let Some(found) = self.orders.find_idempotent(owner, &first.key).await?
                {
                    return self.replay(owner, found, first).await;
                }
                return Err(StoreError::Database(e).into());
            }
            Err(e) => return Err(e.into()),
        };
        tracing::info!(
            order = %stored.id,
            user = %actor.user_id(),
            status = stored.status.as_str(),
            "order placed"
        );
        if stored.status == OrderStatus::Accepted
            && let Some(fills) = &self.fills
        {
            fills.order_accepted(&stored).await;
        }
        Ok(Placed {
            order: stored,
            replayed: false,
        })
    }

    /// For an order above the threshold: accepted if the policy allows large orders
    /// outright, pending with a new approval request if it requires approval, else 403.
    async fn open_approval(
        &self,
        actor: &Actor,
        principal: &Principal,
        id: &Uuid,
        now: OffsetDateTime,
    ) -> Result<(OrderStatus, Option<String>)> {
        let policy = self.access.policy();
        let large = &self.permissions.large;
        let decision = self.access.decide(actor, principal, large, None);
        let scope_ok = actor.scope_allows(large);
        log_decision(actor, large, &decision, scope_ok);
        // An API key places a large order only if scoped for it, whether its owner may
        // place one outright or with approval: a key scoped to `trade:execute` cannot skip
        // the threshold on behalf of an admin, nor open approval requests for a trader.
        if !scope_ok {
            return Err(OrderError::Forbidden(Denial::scope()));
        }
        if decision.is_allowed() {
            return Ok((OrderStatus::Accepted, None));
        }
        if !matches!(decision.reason(), Reason::ApprovalRequired(_)) {
            return Err(OrderError::Forbidden(Denial::from_decision(&decision)));
        }
        let mut request = Request::new(principal, large);
        if let Some(ip) = actor.ip() {
            request = request.from_ip(ip);
        }
        let opened = approval::request_approval_at(
            &policy,
            self.approvals.as_ref(),
            &request,
            &subject(id),
            now,
        )
        .await
        .map_err(|e| OrderError::Internal(format!("opening an approval request: {e}")))?;
        tracing::info!(
            order = %id,
            approval = %opened.id,
            quorum = opened.quorum,
            expires_at = %opened.expires_at,
            "order needs approval"
        );
        Ok((OrderStatus::PendingApproval, Some(opened.id.to_string())))
    }

    /// Records `actor`'s approval of order `id` at `now`; completes the order when the
    /// quorum is reached.
    ///
    /// # Errors
    /// See the [module docs](self): 403, 404, 409, or an internal error.
    pub async fn approve_at(
        &self,
        actor: &Actor,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<Approved> {
        let principal = self.principal(actor.user_id()).await?;
        self.access
            .check(actor, &principal, &self.permissions.approve, None)
            .map_err(OrderError::Forbidden)?;
        let id = parse_order_id(id)?;
        let order = self.orders.get(id).await?.ok_or(OrderError::NotFound)?;
        // The checker acts on the account too: a supervisor who may read every account
        // still needs an entitlement to approve on one.
        let approver = parse_user_id(actor.user_id())?;
        let entitled = match order.account_id.parse::<AccountId>() {
            Ok(account) => self.is_entitled(approver, &account).await?,
            Err(_) => false,
        };
        if !entitled {
            return Err(OrderError::Forbidden(Denial::not_entitled()));
        }
        if order.status != OrderStatus::PendingApproval {
            return Err(OrderError::Conflict {
                code: "not_pending",
                message: format!(
                    "the order is {}, not waiting for approval",
                    order.status.as_str()
                ),
            });
        }
        let approval_id = order
            .approval_id
            .as_deref()
            .map(ApprovalId::parse)
            .transpose()
            .map_err(|e| OrderError::Internal(format!("stored approval id: {e}")))?
            .ok_or_else(|| OrderError::Internal("pending order without approval".to_owned()))?;
        let policy = self.access.policy();
        let status = match approval::approve_at(
            &policy,
            self.approvals.as_ref(),
            &approval_id,
            &principal,
            now,
        )
        .await
        {
            Ok(status) => status,
            Err(e) => return Err(self.approval_refused(&id, e, now).await),
        };
        tracing::info!(
            order = %id,
            approval = %approval_id,
            approver = %actor.user_id(),
            approvals = status.approvals,
            quorum = status.quorum,
            "order approval recorded"
        );
        if status.is_complete() {
            self.complete(&order, &id, &approval_id, now).await?;
        }
        let order = self.orders.get(id).await?.ok_or(OrderError::NotFound)?;
        Ok(approved(order, status))
    }

    /// Maps a refused approval to the response, marking the order expired if its window
    /// closed.
    async fn approval_refused(
        &self,
        id: &Uuid,
        error: finsec_rbac::Error,
        now: OffsetDateTime,
    ) -> OrderError {
        let denial = |reason: &str| {
            OrderError::Forbidden(Denial {
                reason: reason.to_owned(),
                rule: None,
            })
        };
        match error {
            finsec_rbac::Error::SelfApproval { .. } => denial("self_approval"),
            finsec_rbac::Error::NotAnApprover { .. } => denial("not_an_approver"),
            finsec_rbac::Error::ApprovalExpired { .. } => {
                if let Err(e) = self
                    .orders
                    .transition(*id, OrderStatus::PendingApproval, OrderStatus::Expired, now)
                    .await
                {
                    return e.into();
                }
                OrderError::Conflict {
                    code: "approval_expired",
                    message: "the approval window of this order has closed".to_owned(),
                }
            }
            finsec_rbac::Error::ApprovalConsumed { .. } => OrderError::Conflict {
                code: "approval_used",
                message: "this order's approval was already used".to_owned(),
            },
            other => OrderError::Internal(format!("recording an approval: {other}")),
        }
    }

    /// With the quorum reached: authorizes the initiator's large order with the approval
    /// (using it up) under the initiator's current roles, then accepts or rejects it.
    async fn complete(
        &self,
        order: &Order,
        id: &Uuid,
        approval_id: &ApprovalId,
        now: OffsetDateTime,
    ) -> Result<()> {
        let policy = self.access.policy();
        let initiator = self.principal(&order.owner).await?;
        let actor = Actor::user(order.owner.clone());
        let execute = &self.permissions.execute;
        let may_trade = self.access.decide(&actor, &initiator, execute, None);
        log_decision(&actor, execute, &may_trade, true);
        let still_entitled = match order.account_id.parse::<AccountId>() {
            Ok(account) => {
                self.is_entitled(parse_user_id(&order.owner)?, &account)
                    .await?
            }
            Err(_) => false,
        };
        if !still_entitled {
            // Entitlement revoked while the order waited: it is refused, not placed.
            self.orders
                .transition(
                    *id,
                    OrderStatus::PendingApproval,
                    OrderStatus::Rejected,
                    now,
                )
                .await?;
            tracing::info!(order = %id, "approved order rejected: no longer entitled to its account");
            return Ok(());
        }
        let decision = if may_trade.is_allowed() {
            let large = &self.permissions.large;
            let decision = approval::authorize_with_approval_at(
                &policy,
                self.approvals.as_ref(),
                &Request::new(&initiator, large),
                &subject(id),
                approval_id,
                now,
            )
            .await;
            log_decision(&actor, large, &decision, true);
            decision
        } else {
            may_trade
        };
        let to = match decision.reason() {
            _ if decision.is_allowed() => OrderStatus::Accepted,
            Reason::NoRuleMatched | Reason::DeniedByRule(_) | Reason::UnknownRole(_) => {
                OrderStatus::Rejected
            }
            Reason::Internal(detail) => {
                return Err(OrderError::Internal(format!(
                    "authorizing an approved order: {detail}"
                )));
            }
            // Used by a concurrent approval that completed first, or expired this instant:
            // the order's state says which.
            _ => {
                let current = self.orders.get(*id).await?.ok_or(OrderError::NotFound)?;
                if current.status != OrderStatus::PendingApproval {
                    return Ok(());
                }
                let used = self
                    .approvals
                    .get(approval_id)
                    .await
                    .map_err(|e| OrderError::Internal(format!("reading an approval: {e}")))?
                    .is_some_and(|record| record.consumed_at.is_some());
                return Err(if used {
                    OrderError::Conflict {
                        code: "approval_used",
                        message: "another approval completed this order at the same moment"
                            .to_owned(),
                    }
                } else {
                    OrderError::Conflict {
                        code: "approval_refused",
                        message: "the approval could not be used for this order".to_owned(),
                    }
                });
            }
        };
        self.orders
            .transition(*id, OrderStatus::PendingApproval, to, now)
            .await?;
        tracing::info!(order = %id, status = to.as_str(), "order approval completed");
        if to == OrderStatus::Accepted
            && let Some(fills) = &self.fills
            && let Some(order) = self.orders.get(*id).await?
        {
            fills.order_accepted(&order).await;
        }
        Ok(())
    }

    /// The order `id` if `actor` may read it; [`OrderError::NotFound`] otherwise, whether
    /// or not it exists.
    ///
    /// # Errors
    /// 403 if an API key lacks the `orders:read` scope, 404, or an internal error.
    pub async fn get(&self, actor: &Actor, id: &str) -> Result<Order> {
        let read = &self.permissions.read;
        if !actor.scope_allows(read) {
            return Err(OrderError::Forbidden(Denial::scope()));
        }
        let Ok(id) = parse_order_id(id) else {
            return Err(OrderError::NotFound);
        };
        let principal = self.principal(actor.user_id()).await?;
        let order = self.orders.get(id).await?.ok_or(OrderError::NotFound)?;
        let resource = owned_by(&order.owner)?;
        self.access
            .check(actor, &principal, read, Some(&resource))
            .map_err(|_| OrderError::NotFound)?;
        let reader = parse_user_id(actor.user_id())?;
        if !self
            .may_read_account(actor, &principal, reader, &order.account_id)
            .await?
        {
            return Err(OrderError::NotFound);
        }
        Ok(order)
    }

    /// `actor`'s own orders, newest first.
    ///
    /// # Errors
    /// 403 if the policy does not let `actor` read their own orders (or an API key lacks
    /// the scope), or an internal error.
    pub async fn list(&self, actor: &Actor) -> Result<Vec<Order>> {
        let principal = self.principal(actor.user_id()).await?;
        let resource = owned_by(actor.user_id())?;
        self.access
            .check(actor, &principal, &self.permissions.read, Some(&resource))
            .map_err(OrderError::Forbidden)?;
        let owner = parse_user_id(actor.user_id())?;
        let mut orders = self.orders.list_by_owner(owner).await?;
        if !self.reads_any_account(actor, &principal) {
            let accounts = self.entitlements.accounts_of(owner).await?;
            orders.retain(|order| {
                accounts
                    .iter()
                    .any(|e| e.account_id.as_str() == order.account_id)
            });
        }
        Ok(orders)
    }
}

fn approved(order: Order, status: ApprovalStatus) -> Approved {
    Approved {
        order,
        approvals: status.approvals,
        quorum: status.quorum,
    }
}

fn owned_by(owner: &str) -> Result<Resource> {
    Resource::new()
        .with_owner(owner)
        .map_err(|e| OrderError::Internal(format!("order owner: {e}")))
}

/// What an approval request is bound to: the order id.
fn subject(id: &Uuid) -> String {
    format!("order:{}", id.hyphenated())
}

/// A UUIDv7 for an order placed at `now`.
pub fn new_order_id(now: OffsetDateTime) -> Uuid {
    let nanos = now.unix_timestamp_nanos();
    let seconds = u64::try_from(nanos.div_euclid(1_000_000_000)).unwrap_or(0);
    let subsec = u32::try_from(nanos.rem_euclid(1_000_000_000)).unwrap_or(0);
    Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, seconds, subsec))
}

/// Parses a user id (a session's subject, an API key's owner, an order's owner): always a
/// user's UUID, so anything else is an internal error.
/// The longest `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// An order placed, or found again for a retried request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// The order.
    pub order: Order,
    /// Whether it was placed by an earlier request with the same `Idempotency-Key`.
    pub replayed: bool,
}

/// The key of an `Idempotency-Key` header: 1 to [`MAX_IDEMPOTENCY_KEY`] visible ASCII
/// characters, as sent or as a structured-field string (in double quotes).
fn idempotency_key(header: &str) -> Result<String> {
    let key = header
        .strip_prefix('"')
        .and_then(|k| k.strip_suffix('"'))
        .unwrap_or(header);
    let visible = key.bytes().all(|b| b.is_ascii_graphic() && b != b'"');
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY || !visible {
        return Err(OrderError::BadIdempotencyKey);
    }
    Ok(key.to_owned())
}

fn parse_user_id(text: &str) -> Result<Uuid> {
    Uuid::try_parse(text).map_err(|_| OrderError::Internal("user id is not a UUID".to_owned()))
}

/// Parses an order id; anything that is not a UUID is "not found" (the routes refuse such
/// an id earlier, with a 400, when they parse the path).
fn parse_order_id(text: &str) -> Result<Uuid> {
    Uuid::try_parse(text).map_err(|_| OrderError::NotFound)
}
