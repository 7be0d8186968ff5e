//! Role-based access control for the server: the policy file, the permissions the routes
//! check, users' roles, and the `roles` operator subcommands.
//!
//! # The policy file
//!
//! The policy is `<data-dir>/rbac.toml` unless `--rbac-policy` names another file (TOML,
//! YAML or JSON, chosen by its extension). On the first start the server writes the default
//! file there: finsec-rbac's [`preset`] (admin, trader, analyst, viewer) extended with the
//! two rules order entry needs and the preset lacks (see [`generated_policy`]). It is
//! written atomically (temporary file, `fsync`, hard link) and never over an existing
//! file, so an operator's edits are never replaced and two instances starting at once
//! agree on one file. A file named with `--rbac-policy` is never created: if it is missing
//! that is a configuration mistake, and start-up stops.
//!
//! The file is created with mode `0600`, like the other files in the data directory.
//! Nothing in it is secret, but whoever can change it can grant themselves every right,
//! so the server refuses to start if the policy file is writable by anyone but its owner
//! ([`ServerError::PolicyPermissions`]); being readable by others is allowed, so `0644` is
//! a valid choice for an operator who wants monitoring to read it.
//!
//! The file is loaded with finsec-rbac's loader at start-up; a file that does not load
//! stops start-up with the loader's error, which names the role, rule and field (or the
//! line) that is wrong. The policy is loaded once; restart to apply changes.
//!
//! # Permissions the server checks
//!
//! | permission | checked for | preset roles that hold it |
//! |---|---|---|
//! | [`TRADE_EXECUTE`] | `POST /orders` | trader (`trade:*`), admin |
//! | [`ORDERS_READ`] | `GET /orders/{id}`, `GET /orders`, on a resource owned by the order's owner | trader for own orders, admin for all |
//! | [`ORDERS_EXECUTE_LARGE`] | an order above the approval threshold (and every market order) | trader with approval, admin outright |
//! | [`ORDERS_APPROVE`] | `POST /orders/{id}/approve`, and by finsec-rbac as the approver permission | trader, admin |
//! | [`ACCOUNTS_READ_ANY`] | reading orders of accounts the caller is not entitled to | admin |
//! | [`ACCOUNTS_ADMIN`] | `/admin/users/{id}/accounts` (granting and revoking entitlements) | admin |
//! | [`USERS_ADMIN`] | `/admin/users/{id}/lockout` (failed-login state, unlocking) | admin |
//! | [`INCIDENTS_ADMIN`] | `/admin/controls`, `/admin/blocks`, `/admin/halts`, `/admin/users/{id}/suspension` (lifting a global halt needs two holders) | admin |
//! | [`ROLES_ADMIN`] | `/admin/users/{id}/roles`, `/admin/role-grants/{id}/approve` (a grant needs two holders) | admin |
//!
//! An API key must also carry a scope matching the permission ([`Access::check`]).
//!
//! Orders also need an entitlement to their trading account (see
//! [`crate::orders::accounts`]): the policy says what a user may do, the entitlements on
//! which accounts.
//!
//! # Roles
//!
//! A user's roles are rows of `server_user_roles`, read on every request, so a grant or a
//! revocation takes effect on the next request. A new user gets the `--default-role` role
//! (`viewer` unless set) in the same transaction that creates the user: a trigger on
//! `server_users` copies it from `server_role_settings`, which start-up fills from the
//! flag (see [`roles`]). A role that the policy does not define denies everything (a
//! finsec-rbac rule), so a stale row never grants access.

pub mod admin;
pub mod roles;
mod sql;
#[cfg(test)]
pub(crate) mod suite;

use std::fmt;
use std::io::Read as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use finsec_rbac::policy::{MAX_POLICY_BYTES, preset};
use finsec_rbac::{
    AccessDecision, Permission, PermissionPattern, Policy, Principal, Reason, Request, Resource,
    RoleName, SharedPolicy,
};
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{Result, ServerError};
use crate::keys::{create_file_atomically, mode_with, open_regular_file};

/// The name of the policy file inside the data directory (unless overridden).
pub const POLICY_FILE: &str = "rbac.toml";

/// Placing an order. The preset's trader holds it through `trade:*`.
pub const TRADE_EXECUTE: &str = "trade:execute";
/// Reading an order; checked on a resource whose owner is the order's owner, so the
/// preset's trader rule (`orders:read` when `resource.owner == principal.id`) lets traders
/// read their own orders only.
pub const ORDERS_READ: &str = "orders:read";
/// Placing an order whose notional is above the approval threshold. The generated policy
/// grants it to traders behind a maker-checker approval by [`ORDERS_APPROVE`] holders.
pub const ORDERS_EXECUTE_LARGE: &str = "orders:execute_large";
/// Approving someone else's large order (the approver permission of the maker-checker
/// rule). The preset has no approver permission; the generated policy grants it to traders.
pub const ORDERS_APPROVE: &str = "orders:approve";

/// Reading any trading account's orders without an entitlement to it (supervision). Admin
/// holds it through `*`; it never lets anyone place or approve an order on such an account.
pub const ACCOUNTS_READ_ANY: &str = "accounts:read_any";
/// Granting and revoking users' trading-account entitlements (the admin API). Admin holds
/// it through `*`.
pub const ACCOUNTS_ADMIN: &str = "accounts:admin";
/// Requesting, approving and revoking users' roles over HTTP (see [`admin`]); a grant also
/// needs a second holder's approval. Admin holds it through `*`.
pub const ROLES_ADMIN: &str = "roles:admin";
/// Reading a user's failed-login state and unlocking the account (`/admin/users/{id}/lockout`).
/// Admin holds it through `*`.
pub const USERS_ADMIN: &str = "users:admin";

/// Suspending users, blocking client networks and halting trading (`/admin/controls`,
/// `/admin/blocks`, `/admin/halts`, `/admin/users/{id}/suspension`). Admin holds it through
/// `*`; lifting a global halt needs two holders.
pub const INCIDENTS_ADMIN: &str = "incidents:admin";

/// Reading the audit log, its checkpoints and proofs, and the incident list. The generated
/// policy's `auditor` role holds it (and `admin`, through `*`).
pub const AUDIT_READ: &str = "audit:read";

pub use crate::compliance::{COMPLIANCE_ADMIN, COMPLIANCE_READ};
pub use crate::gdpr::{GDPR_ADMIN, GDPR_READ};

/// How many distinct approvers the generated policy requires for a large order.
pub const GENERATED_QUORUM: u8 = 1;
/// How long, in seconds, the generated policy leaves a large order open for approval (one
/// day).
pub const GENERATED_APPROVAL_SECONDS: i64 = 86_400;

/// The default `--default-role`.
pub const DEFAULT_ROLE: &str = "viewer";

/// The default `--approval-notional`: orders above one million (in the account's
/// currency) need a second person's approval.
pub const DEFAULT_APPROVAL_NOTIONAL: &str = "1000000";

/// Access-control and order-entry settings.
#[derive(Debug, Clone, Args)]
pub struct RbacConfig {
    /// The RBAC policy file (TOML, YAML or JSON by extension) [default: DATA_DIR/rbac.toml,
    /// created from the built-in preset on first start]. A file named here must exist.
    #[arg(long, env = "FINSEC_RBAC_POLICY", global = true)]
    pub rbac_policy: Option<PathBuf>,

    /// The role every newly registered user gets [default: viewer]; it must be defined in
    /// the policy.
    #[arg(long, env = "FINSEC_DEFAULT_ROLE", value_parser = parse_role, global = true)]
    pub default_role: Option<RoleName>,

    /// Orders that take their trader's or their account's total for the UTC day above this
    /// amount wait for a second person's approval. An order is valued at quantity x the
    /// larger of its limit and the reference price; market orders and sells without a
    /// reference price always wait.
    #[arg(
        long,
        env = "FINSEC_APPROVAL_NOTIONAL",
        default_value = DEFAULT_APPROVAL_NOTIONAL,
        value_parser = parse_notional,
        global = true
    )]
    pub approval_notional: Decimal,

    /// Reference prices: a file of `SYMBOL,PRICE` lines, read at start and again whenever
    /// it changes (see `orders::valuation`). Without it, limit buys are valued at their
    /// limit and every other order waits for approval.
    #[arg(long, env = "FINSEC_REFERENCE_PRICES", global = true)]
    pub reference_prices: Option<PathBuf>,

    /// Limit orders further than this percentage from their symbol's reference price are
    /// refused (422, `price_band`).
    #[arg(
        long,
        env = "FINSEC_PRICE_BAND_PERCENT",
        default_value = DEFAULT_PRICE_BAND_PERCENT,
        value_parser = parse_band,
        global = true
    )]
    pub price_band_percent: Decimal,
}

/// The default `--price-band-percent`.
pub const DEFAULT_PRICE_BAND_PERCENT: &str = "10";

impl Default for RbacConfig {
    fn default() -> Self {
        Self {
            rbac_policy: None,
            default_role: None,
            approval_notional: Decimal::from(1_000_000),
            reference_prices: None,
            price_band_percent: Decimal::TEN,
        }
    }
}

fn parse_band(s: &str) -> Result<Decimal, String> {
    let value = finsec_validate::numbers::parse_decimal(s).map_err(|e| e.to_string())?;
    if value <= Decimal::ZERO || value > Decimal::ONE_HUNDRED {
        return Err("must be above 0 and at most 100".to_owned());
    }
    Ok(value)
}

fn parse_role(s: &str) -> Result<RoleName, String> {
    RoleName::new(s).map_err(|e| e.to_string())
}

fn parse_notional(s: &str) -> Result<Decimal, String> {
    let value = finsec_validate::numbers::parse_decimal(s).map_err(|e| e.to_string())?;
    if value <= Decimal::ZERO {
        return Err("must be greater than zero".to_owned());
    }
    Ok(value)
}

impl RbacConfig {
    /// The role new users get: `--default-role`, or [`DEFAULT_ROLE`].
    ///
    /// # Errors
    /// Never in practice: [`DEFAULT_ROLE`] is a valid role name.
    pub fn default_role(&self) -> Result<RoleName> {
        match &self.default_role {
            Some(role) => Ok(role.clone()),
            None => RoleName::new(DEFAULT_ROLE)
                .map_err(|e| ServerError::Config(format!("default role: {e}"))),
        }
    }

    /// The policy file: `--rbac-policy`, or [`POLICY_FILE`] in `data_dir`.
    pub fn policy_path(&self, data_dir: &Path) -> PathBuf {
        self.rbac_policy
            .clone()
            .unwrap_or_else(|| data_dir.join(POLICY_FILE))
    }
}

/// The policy document the server writes on first start: finsec-rbac's preset with two
/// rules added to the `trader` role:
///
/// - allow [`ORDERS_EXECUTE_LARGE`] with approval by [`GENERATED_QUORUM`] holder of
///   [`ORDERS_APPROVE`] within [`GENERATED_APPROVAL_SECONDS`] (large orders need four eyes);
/// - allow [`ORDERS_APPROVE`] (traders check each other's large orders; the initiator can
///   never approve their own).
///
/// Admin's `*` allows [`ORDERS_EXECUTE_LARGE`] outright, so an admin's large order needs
/// no approval (finsec-rbac: a plain allow is stronger than an approval-gated one). To put
/// admins under four eyes too, replace admin's `*` with an explicit list in the file.
///
/// The rules are inserted as text at the end of the trader's `rules` array, so the file
/// keeps the preset's layout and inline style, and the preset's rule indices
/// (shown in denials) are unchanged.
///
/// # Errors
/// [`ServerError::Config`] if the preset does not have the expected shape, or
/// [`ServerError::Policy`] if the result does not load (a finsec-rbac change this crate's
/// tests catch).
pub fn generated_policy() -> Result<String> {
    let preset = preset::PRESET_TOML;
    let shape = || {
        ServerError::Config(
            "the rbac preset no longer has a `[roles.trader]` table with an inline `rules` \
             array; update the server's policy generator"
                .to_owned(),
        )
    };
    // The end of the trader's `rules = [ ... ]` array: the first line holding only `]`
    // after `[roles.trader]`. The added rules go just before it, in the preset's style.
    let trader = preset.find("[roles.trader]").ok_or_else(shape)?;
    let after = preset.get(trader..).ok_or_else(shape)?;
    let rules = after.find("\nrules = [\n").ok_or_else(shape)?;
    let close = after
        .get(rules..)
        .and_then(|rest| rest.find("\n]\n"))
        .map(|i| trader + rules + i)
        .ok_or_else(shape)?;
    let (head, tail) = (
        preset.get(..close).ok_or_else(shape)?,
        preset.get(close..).ok_or_else(shape)?,
    );
    let document = format!(
        "# finsec reference server RBAC policy (finsec-rbac format).\n\
         #\n\
         # Generated on first start from finsec-rbac's built-in preset (admin, trader,\n\
         # analyst, viewer), with the last two rules of `trader` added for order entry:\n\
         #   - {ORDERS_EXECUTE_LARGE}: orders above --approval-notional (and market orders)\n\
         #     need approval by another holder of {ORDERS_APPROVE};\n\
         #   - {ORDERS_APPROVE}: traders approve each other's large orders.\n\
         # an `auditor` role that reads the audit log ({AUDIT_READ}), and a `compliance`\n\
         # role for MiFID II reports, best execution and clients ({COMPLIANCE_READ},\n\
         # {COMPLIANCE_ADMIN}), and a `privacy` role for the privacy officer: data-subject\n\
         # requests of any user, deadlines, legal holds, retention ({GDPR_READ}, {GDPR_ADMIN}).\n\
         # Edit freely; the server loads this file at start-up and refuses to start if it\n\
         # does not load. It is never overwritten.\n\
         {head}\n    \
         {{ effect = \"allow\", permissions = [\"{ORDERS_EXECUTE_LARGE}\"], \
         approval = {{ approver = \"{ORDERS_APPROVE}\", quorum = {GENERATED_QUORUM}, \
         within_seconds = {GENERATED_APPROVAL_SECONDS} }} }},\n    \
         {{ effect = \"allow\", permissions = [\"{ORDERS_APPROVE}\"] }},{tail}\n\
         [roles.auditor]\n\
         description = \"the audit log, its checkpoints and proofs, and the incident list\"\n\
         rules = [{{ effect = \"allow\", permissions = [\"{AUDIT_READ}\"] }}]\n\
         \n\
         [roles.compliance]\n\
         description = \"MiFID II transaction reports, best execution and the firm's clients\"\n\
         rules = [{{ effect = \"allow\", permissions = [\"{COMPLIANCE_READ}\", \"{COMPLIANCE_ADMIN}\"] }}]\n\
         \n\
         [roles.privacy]\n\
         description = \"GDPR: data-subject requests of any user, deadlines, legal holds, retention\"\n\
         rules = [{{ effect = \"allow\", permissions = [\"{GDPR_READ}\", \"{GDPR_ADMIN}\"] }}]\n"
    );
    // The document must load; the unit tests check it adds exactly these two rules.
    Policy::from_toml(&document).map_err(|source| ServerError::Policy {
        path: PathBuf::from("(generated)"),
        source,
    })?;
    Ok(document)
}

/// Loads the policy at `path` with finsec-rbac's loader; the format follows the extension
/// (`.yaml`/`.yml`, `.json`, anything else TOML).
///
/// # Errors
/// [`ServerError::Io`] if the file cannot be read; [`ServerError::PolicyPermissions`] if
/// others may write it; [`ServerError::Policy`] with the loader's error if it does not load.
pub fn load_policy(path: &Path) -> Result<Policy> {
    let (mut file, meta) = open_regular_file(path, "rbac policy")?;
    if let Some(mode) = mode_with(&meta, 0o022) {
        return Err(ServerError::PolicyPermissions {
            path: path.to_owned(),
            mode,
        });
    }
    // One byte over the limit is enough for the loader to refuse the document by size.
    let limit = u64::try_from(MAX_POLICY_BYTES).unwrap_or(u64::MAX);
    let mut bytes = Vec::new();
    file.by_ref()
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| ServerError::io("cannot read rbac policy", path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| ServerError::Policy {
        path: path.to_owned(),
        source: finsec_rbac::Error::Parse {
            format: "file",
            message: format!("not valid UTF-8 at byte {}", e.utf8_error().valid_up_to()),
        },
    })?;
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let loaded = match extension.as_deref() {
        Some("yaml" | "yml") => Policy::from_yaml(&text),
        Some("json") => Policy::from_json(&text),
        _ => Policy::from_toml(&text),
    };
    loaded.map_err(|source| ServerError::Policy {
        path: path.to_owned(),
        source,
    })
}

/// The policy for a server with `data_dir` and `config`: the file is created from
/// [`generated_policy`] if it is the default file and missing, then loaded. Also checks
/// that the default role is defined in it.
///
/// # Errors
/// As [`load_policy`]; [`ServerError::Config`] if `--rbac-policy` names a missing file or
/// the default role is not defined; [`ServerError::Io`] if the file cannot be created.
pub fn load_or_create_policy(data_dir: &Path, config: &RbacConfig) -> Result<Policy> {
    let path = config.policy_path(data_dir);
    if config.rbac_policy.is_some() {
        if !path.exists() {
            return Err(ServerError::Config(format!(
                "rbac policy {} does not exist; omit --rbac-policy to have the server create \
                 {POLICY_FILE} in the data directory",
                path.display()
            )));
        }
    } else if !path.exists() && create_file_atomically(&path, generated_policy()?.as_bytes())? {
        tracing::info!(path = %path.display(), "created the rbac policy from the preset");
    }
    let policy = load_policy(&path)?;
    check_default_role(&policy, &config.default_role()?, &path)?;
    tracing::info!(
        path = %path.display(),
        roles = policy.roles().len(),
        "loaded the rbac policy"
    );
    Ok(policy)
}

/// Refuses a default role the policy does not define (every new user would be denied
/// everything, silently).
fn check_default_role(policy: &Policy, role: &RoleName, path: &Path) -> Result<()> {
    if policy.role(role.as_str()).is_some() {
        return Ok(());
    }
    Err(ServerError::Config(format!(
        "--default-role {role} is not defined in the rbac policy {}",
        path.display()
    )))
}

/// Who is asking: an authenticated user, the API-key scopes limiting the request (if it
/// came with an API key) and the client address.
#[derive(Clone, PartialEq, Eq)]
pub struct Actor {
    user_id: String,
    scopes: Option<Vec<PermissionPattern>>,
    ip: Option<IpAddr>,
}

impl fmt::Debug for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scopes: Option<Vec<String>> = self
            .scopes
            .as_ref()
            .map(|s| s.iter().map(ToString::to_string).collect());
        f.debug_struct("Actor")
            .field("user_id", &self.user_id)
            .field("scopes", &scopes)
            .field("ip", &self.ip)
            .finish()
    }
}

impl Actor {
    /// A user authenticated with a session (bearer token): limited by the policy only.
    pub fn user(user_id: impl Into<String>) -> Self {
        Self {
            user_id: user_id.into(),
            scopes: None,
            ip: None,
        }
    }

    /// A user authenticated with an API key: limited by the policy and the key's scopes.
    pub fn api_key(user_id: impl Into<String>, scopes: Vec<PermissionPattern>) -> Self {
        Self {
            user_id: user_id.into(),
            scopes: Some(scopes),
            ip: None,
        }
    }

    /// The actor an authenticated request acts as: the user, limited by the API key's
    /// scopes when it came with one.
    pub fn from_principal(principal: &crate::auth::extract::Principal) -> Self {
        let user_id = principal.user_id.hyphenated().to_string();
        match principal.scopes() {
            Some(scopes) => Self::api_key(user_id, scopes.to_vec()),
            None => Self::user(user_id),
        }
    }

    /// Sets the client address (for IP conditions in the policy).
    #[must_use]
    pub fn from_ip(mut self, ip: IpAddr) -> Self {
        self.ip = Some(ip);
        self
    }

    /// The user id.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The API key's scopes, if the request came with one.
    pub fn scopes(&self) -> Option<&[PermissionPattern]> {
        self.scopes.as_deref()
    }

    /// The client address, if known.
    pub fn ip(&self) -> Option<IpAddr> {
        self.ip
    }

    /// Whether the API key (if any) has a scope matching `action`.
    pub fn scope_allows(&self, action: &Permission) -> bool {
        self.scopes
            .as_ref()
            .is_none_or(|scopes| scopes.iter().any(|s| s.matches(action)))
    }
}

/// Why a request was refused, in the form safe to send to the client: the stable reason
/// code and, when a rule decided, the role and rule index. Never the patterns, conditions,
/// attributes or internal errors (those go to the log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Denial {
    /// `no_rule_matched`, `deny_rule`, `approval_required`, `approval_refused`,
    /// `unknown_role`, `internal`, `api_key_scope` (the API key lacks a scope for
    /// the action), `account_not_entitled` (the caller is not entitled to the trading
    /// account), or `trading_halted` (an incident control halts the order's scope).
    pub reason: String,
    /// The deciding rule, as `ROLE rule INDEX`, when one decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

impl Denial {
    /// The client-safe form of a denying decision.
    pub fn from_decision(decision: &AccessDecision) -> Self {
        let record = decision.audit_record();
        let rule = match decision.reason() {
            // The internal detail and the unknown role stay in the log.
            Reason::Internal(_) | Reason::UnknownRole(_) => None,
            _ => decision
                .rule()
                .map(|r| format!("{} rule {}", r.role(), r.index())),
        };
        Self {
            reason: record.reason.to_owned(),
            rule,
        }
    }

    /// The caller is not entitled to the order's trading account.
    pub fn not_entitled() -> Self {
        Self {
            reason: "account_not_entitled".to_owned(),
            rule: None,
        }
    }

    /// Trading is halted for the order (globally, its account or its instrument; see
    /// [`crate::controls`]).
    pub fn halted() -> Self {
        Self {
            reason: "trading_halted".to_owned(),
            rule: None,
        }
    }

    /// The API key has no scope for the action.
    pub fn scope() -> Self {
        Self {
            reason: "api_key_scope".to_owned(),
            rule: None,
        }
    }
}

/// The loaded policy and the checks the routes make with it.
#[derive(Clone)]
pub struct Access {
    policy: Arc<SharedPolicy>,
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Access")
            .field("roles", &self.policy.load().roles().len())
            .finish()
    }
}

impl Access {
    /// Checks against `policy`.
    pub fn new(policy: Policy) -> Self {
        Self {
            policy: Arc::new(SharedPolicy::new(policy)),
        }
    }

    /// The current policy.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.load()
    }

    /// Decides whether `principal` (acting as `actor`) may do `action` (on `resource`):
    /// the policy must allow it and, for API-key requests, a scope of the key must match.
    /// Every decision is logged at info level with its explanation and audit record.
    ///
    /// # Errors
    /// The [`Denial`] to send to the client.
    pub fn check(
        &self,
        actor: &Actor,
        principal: &Principal,
        action: &Permission,
        resource: Option<&Resource>,
    ) -> Result<(), Denial> {
        let decision = self.decide(actor, principal, action, resource);
        let scope_ok = actor.scope_allows(action);
        log_decision(actor, action, &decision, scope_ok);
        if decision.is_denied() {
            return Err(Denial::from_decision(&decision));
        }
        if !scope_ok {
            return Err(Denial::scope());
        }
        Ok(())
    }

    /// The policy's decision alone (no API-key scopes, nothing logged).
    pub fn decide(
        &self,
        actor: &Actor,
        principal: &Principal,
        action: &Permission,
        resource: Option<&Resource>,
    ) -> AccessDecision {
        let mut request = Request::new(principal, action);
        if let Some(resource) = resource {
            request = request.on(resource);
        }
        if let Some(ip) = actor.ip() {
            request = request.from_ip(ip);
        }
        self.policy.check(&request)
    }
}

/// Logs an authorization decision: who, what, the explanation and the audit record.
pub fn log_decision(actor: &Actor, action: &Permission, decision: &AccessDecision, scope_ok: bool) {
    let audit = serde_json::to_string(&decision.audit_record())
        .unwrap_or_else(|e| format!("{{\"unserialisable\":\"{e}\"}}"));
    tracing::info!(
        target: "finsec_reference_server::authz",
        user = %actor.user_id(),
        via = if actor.scopes().is_some() { "api_key" } else { "session" },
        action = %action,
        allowed = decision.is_allowed() && scope_ok,
        api_key_scope = scope_ok,
        explain = %decision.explain(),
        audit = %audit,
        "authorization decision"
    );
}

/// Parses one of this module's permission constants.
///
/// # Errors
/// Never in practice: the constants are valid permissions.
pub fn permission(name: &str) -> Result<Permission> {
    Permission::new(name).map_err(|e| ServerError::Config(format!("permission {name}: {e}")))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn principal(id: &str, roles: &[&str]) -> Principal {
        roles.iter().fold(Principal::new(id).unwrap(), |p, r| {
            p.with_role(RoleName::new(r).unwrap())
        })
    }

    fn perm(name: &str) -> Permission {
        Permission::new(name).unwrap()
    }

    #[test]
    fn flags() {
        use clap::Parser as _;
        let cli = crate::Cli::try_parse_from(["x"]).unwrap();
        let rbac = &cli.config.rbac;
        assert_eq!(rbac.default_role().unwrap().as_str(), DEFAULT_ROLE);
        assert_eq!(rbac.approval_notional, Decimal::from(1_000_000));
        assert_eq!(
            rbac.policy_path(Path::new("/d")),
            PathBuf::from("/d/rbac.toml")
        );
        let cli = crate::Cli::try_parse_from([
            "x",
            "--default-role",
            "analyst",
            "--approval-notional",
            "250000.50",
            "--rbac-policy",
            "/etc/finsec/policy.yaml",
        ])
        .unwrap();
        let rbac = &cli.config.rbac;
        assert_eq!(rbac.default_role().unwrap().as_str(), "analyst");
        assert_eq!(rbac.approval_notional.to_string(), "250000.50");
        assert_eq!(
            rbac.policy_path(Path::new("/d")),
            PathBuf::from("/etc/finsec/policy.yaml")
        );
        for bad in [
            &["x", "--default-role", "Admin"][..],
            &["x", "--approval-notional", "0"],
            &["x", "--approval-notional", "-5"],
            &["x", "--approval-notional", "1e6"],
            &["x", "roles", "grant", "alice", "no spaces"],
        ] {
            assert!(crate::Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
        let cli = crate::Cli::try_parse_from(["x", "roles", "grant", "alice", "trader"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(crate::Command::Roles(roles::RolesCommand::Grant { ref username, ref role }))
                if username == "alice" && role.as_str() == "trader"
        ));
    }

    #[test]
    fn generated_policy_extends_the_preset_and_nothing_else() {
        let text = generated_policy().unwrap();
        let generated = Policy::from_toml(&text).unwrap();
        let original = preset::original().unwrap();
        let names = |p: &Policy| -> Vec<String> {
            p.roles().iter().map(|r| r.name().to_string()).collect()
        };
        let mut expected = names(&original);
        expected.push("auditor".to_owned());
        expected.push("compliance".to_owned());
        expected.push("privacy".to_owned());
        let mut got = names(&generated);
        expected.sort();
        got.sort();
        assert_eq!(got, expected);
        for role in original.roles() {
            let new = generated.role(role.name().as_str()).unwrap();
            assert_eq!(new.parents(), role.parents());
            // The preset's rules come first and unchanged, so their indices (shown in
            // denials) are the preset's.
            assert_eq!(&new.rules()[..role.rules().len()], role.rules());
            let added = new.rules().len() - role.rules().len();
            assert_eq!(
                added,
                if role.name().as_str() == "trader" {
                    2
                } else {
                    0
                }
            );
        }
    }

    #[test]
    fn generated_policy_grants_what_order_entry_needs() {
        let policy = Policy::from_toml(&generated_policy().unwrap()).unwrap();
        let trader = principal("t1", &["trader"]);
        let admin = principal("a1", &["admin"]);
        let viewer = principal("v1", &["viewer"]);
        let analyst = principal("n1", &["analyst"]);

        let execute = perm(TRADE_EXECUTE);
        assert!(policy.is_allowed(&Request::new(&trader, &execute)));
        assert!(policy.is_allowed(&Request::new(&admin, &execute)));
        assert!(!policy.is_allowed(&Request::new(&viewer, &execute)));
        assert!(!policy.is_allowed(&Request::new(&analyst, &execute)));

        let large = perm(ORDERS_EXECUTE_LARGE);
        let decision = policy.check(&Request::new(&trader, &large));
        assert!(matches!(decision.reason(), Reason::ApprovalRequired(_)));
        let approval = decision.rule().unwrap().rule().approval().unwrap();
        assert_eq!(approval.approver().as_str(), ORDERS_APPROVE);
        assert_eq!(approval.quorum(), GENERATED_QUORUM);
        assert_eq!(
            approval.within().whole_seconds(),
            GENERATED_APPROVAL_SECONDS
        );
        assert!(policy.is_allowed(&Request::new(&admin, &large)));
        assert!(matches!(
            policy.check(&Request::new(&viewer, &large)).reason(),
            Reason::NoRuleMatched
        ));

        let approve = perm(ORDERS_APPROVE);
        assert!(policy.is_allowed(&Request::new(&trader, &approve)));
        assert!(!policy.is_allowed(&Request::new(&viewer, &approve)));
        assert!(!policy.is_allowed(&Request::new(&analyst, &approve)));

        let read = perm(ORDERS_READ);
        let own = Resource::new().with_owner("t1").unwrap();
        let other = Resource::new().with_owner("t2").unwrap();
        assert!(policy.is_allowed(&Request::new(&trader, &read).on(&own)));
        assert!(!policy.is_allowed(&Request::new(&trader, &read).on(&other)));
        assert!(policy.is_allowed(&Request::new(&admin, &read).on(&other)));
        assert!(!policy.is_allowed(&Request::new(&viewer, &read).on(&own)));
    }

    #[test]
    fn policy_file_is_created_once_and_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let config = RbacConfig::default();
        let policy = load_or_create_policy(dir.path(), &config).unwrap();
        // The preset's four, the auditor, compliance and privacy.
        assert_eq!(policy.roles().len(), 7);
        let path = dir.path().join(POLICY_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // An operator's edit is kept on the next start.
        let edited = "[roles.viewer]\nrules = []\n";
        fs::write(&path, edited).unwrap();
        let policy = load_or_create_policy(dir.path(), &config).unwrap();
        assert_eq!(policy.roles().len(), 1);
        assert_eq!(fs::read_to_string(&path).unwrap(), edited);
    }

    #[test]
    fn bad_policy_files_are_refused_with_the_loaders_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        let config = RbacConfig {
            rbac_policy: Some(path.clone()),
            ..RbacConfig::default()
        };
        let err = load_or_create_policy(dir.path(), &config).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        assert!(!path.exists());

        fs::write(
            &path,
            "[roles.viewer]\nrules = [{ effect = \"allow\", permissions = [\"trade*\"] }]\n",
        )
        .unwrap();
        let err = load_or_create_policy(dir.path(), &config).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ServerError::Policy { .. }), "{text}");
        assert!(text.contains("policy.toml"), "{text}");
        assert!(
            text.contains("role \"viewer\" rule 0 field `permissions[0]`"),
            "{text}"
        );

        fs::write(&path, "[roles.trader]\ninherits = [\"nobody\"]\n").unwrap();
        let text = load_or_create_policy(dir.path(), &config)
            .unwrap_err()
            .to_string();
        assert!(text.contains("inherits unknown role \"nobody\""), "{text}");

        // Loads, but the default role is missing.
        fs::write(&path, "[roles.trader]\nrules = []\n").unwrap();
        let text = load_or_create_policy(dir.path(), &config)
            .unwrap_err()
            .to_string();
        assert!(text.contains("--default-role viewer"), "{text}");

        let yaml = dir.path().join("policy.yaml");
        fs::write(&yaml, "roles:\n  viewer:\n    rulez: []\n").unwrap();
        let text = load_policy(&yaml).unwrap_err().to_string();
        assert!(text.contains("policy yaml does not parse"), "{text}");
        assert!(text.contains("rulez"), "{text}");

        let json = dir.path().join("policy.json");
        fs::write(&json, r#"{"roles":{"viewer":{"rules":[]}}}"#).unwrap();
        assert_eq!(load_policy(&json).unwrap().roles().len(), 1);

        fs::write(&json, [0xff, 0xfe]).unwrap();
        let text = load_policy(&json).unwrap_err().to_string();
        assert!(text.contains("not valid UTF-8"), "{text}");
    }

    #[cfg(unix)]
    #[test]
    fn a_policy_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rbac.toml");
        fs::write(&path, generated_policy().unwrap()).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        load_policy(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o664)).unwrap();
        let err = load_policy(&path).unwrap_err();
        assert!(
            matches!(err, ServerError::PolicyPermissions { mode: 0o664, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod"), "{err}");
    }

    #[test]
    fn api_key_scopes_narrow_the_policy() {
        let access = Access::new(Policy::from_toml(&generated_policy().unwrap()).unwrap());
        let trader = principal("t1", &["trader"]);
        let execute = perm(TRADE_EXECUTE);
        let session = Actor::user("t1");
        assert!(access.check(&session, &trader, &execute, None).is_ok());
        let read_only = Actor::api_key("t1", vec![PermissionPattern::new("orders:read").unwrap()]);
        assert_eq!(
            access
                .check(&read_only, &trader, &execute, None)
                .unwrap_err(),
            Denial::scope()
        );
        let trading = Actor::api_key("t1", vec![PermissionPattern::new("trade:*").unwrap()]);
        assert!(access.check(&trading, &trader, &execute, None).is_ok());
        // A scope never adds what the policy does not allow.
        let viewer = principal("v1", &["viewer"]);
        let everything = Actor::api_key("v1", vec![PermissionPattern::new("*").unwrap()]);
        let denial = access
            .check(&everything, &viewer, &execute, None)
            .unwrap_err();
        assert_eq!(denial.reason, "no_rule_matched");
        assert_eq!(denial.rule, None);
    }

    #[test]
    fn denials_show_the_rule_and_nothing_more() {
        let policy = Policy::from_toml(
            r#"
[roles.desk]
rules = [
    { effect = "deny", permissions = ["trade:*"], conditions = [{ kind = "ip", networks = ["10.9.0.0/16"] }] },
    { effect = "allow", permissions = ["trade:execute"] },
]
"#,
        )
        .unwrap();
        let access = Access::new(policy);
        let desk = principal("d1", &["desk"]);
        let actor = Actor::user("d1").from_ip("10.9.1.1".parse().unwrap());
        let denial = access
            .check(&actor, &desk, &perm(TRADE_EXECUTE), None)
            .unwrap_err();
        assert_eq!(denial.reason, "deny_rule");
        assert_eq!(denial.rule.as_deref(), Some("desk rule 0"));
        let body = serde_json::to_string(&denial).unwrap();
        assert!(!body.contains("10.9"), "{body}");
        assert!(!body.contains("trade:"), "{body}");

        let elsewhere = Actor::user("d1").from_ip("192.0.2.1".parse().unwrap());
        assert!(
            access
                .check(&elsewhere, &desk, &perm(TRADE_EXECUTE), None)
                .is_ok()
        );

        let stale = principal("d1", &["removed_role"]);
        let denial = access
            .check(&elsewhere, &stale, &perm(TRADE_EXECUTE), None)
            .unwrap_err();
        assert_eq!(denial.reason, "unknown_role");
        assert_eq!(denial.rule, None);
        assert!(
            !serde_json::to_string(&denial)
                .unwrap()
                .contains("removed_role")
        );
    }
}
