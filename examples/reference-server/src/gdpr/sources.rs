//! The server's personal-data sources: what it keeps about a user, where, why, and what
//! erasure does to it.
//!
//! | source | record class | lawful basis | on erasure |
//! |---|---|---|---|
//! | `profile` (name, roles, accounts, restriction) | `profile` | contract | deleted (the row stays as a tombstone named by the pseudonym) |
//! | `sessions` (logins, addresses, user agents, remembered devices) | `sessions` | legitimate interests | deleted, every session ended |
//! | `api_keys` | `credentials` | contract | revoked, names deleted |
//! | `mfa` (TOTP secret, backup codes) | `credentials` | contract | deleted |
//! | `orders` | `orders` | legal obligation | kept, notes emptied |
//! | `executions` (fills) | `trades` | legal obligation | kept, the user replaced by the pseudonym |
//! | `mifid_reports` (reports naming the user as a client) | `trades` | legal obligation | kept, the person replaced by the pseudonym, the client record forgotten |
//! | `consent` | `consent` | legal obligation (Art. 7(1)) | deleted |
//! | `audit` (events the user acted in) | `audit` | legal obligation | kept; their addresses and user agents were sealed under the user's key, which erasure shreds |

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use finsec_audit::event::Personal;
use finsec_audit::{AuditQuery as _, Query, Text};
use finsec_auth::mfa::MfaUserId;
use finsec_compliance::gdpr::registry::{
    Erased, ErasureMode, ErasureRule, PersonalDataSource, RecordSink, SourceDescriptor,
};
use finsec_compliance::gdpr::{LawfulBasis, RecordClass};
use finsec_compliance::{Error, Result};
use finsec_crypto::SubjectId;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::sealing::{ERASED, subject_user};
use super::store::GdprStore;
use crate::audit::Audit;
use crate::auth::Auth;
use crate::auth::users::Username;
use crate::compliance::Compliance;
use crate::storage::Storage;

/// Rows read per page while a source streams its records.
const PAGE: u32 = 500;

/// What every source works with.
#[derive(Clone)]
pub struct Env {
    /// The database.
    pub storage: Storage,
    /// Users, sessions, API keys.
    pub auth: Arc<Auth>,
    /// The GDPR reads and writes on the server's tables.
    pub store: Arc<dyn GdprStore>,
    /// Fills, clients and reports.
    pub compliance: Arc<Compliance>,
    /// The audit log.
    pub audit: Audit,
    /// The keyed pseudonyms erased users are kept under.
    pub pseudonymizer: Arc<finsec_compliance::gdpr::Pseudonymizer>,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("storage", &self.storage)
            .finish_non_exhaustive()
    }
}

/// `Debug` for a source: its name.
macro_rules! source_debug {
    ($($name:ident),+) => {$(
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("name", &self.descriptor.name)
                    .finish_non_exhaustive()
            }
        }
    )+};
}

source_debug!(
    Profile,
    Sessions,
    ApiKeys,
    Mfa,
    Orders,
    Executions,
    MifidReports,
    AuditTrail
);

fn store_err(e: impl std::fmt::Display) -> Error {
    Error::store(e.to_string())
}

fn user_of(subject: &SubjectId) -> Result<Uuid> {
    subject_user(subject).ok_or_else(|| Error::Invalid {
        field: "subject",
        reason: "not a user of this server (user:<id>)".to_owned(),
    })
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn descriptor(
    name: &str,
    description: &str,
    categories: &[&str],
    lawful_basis: LawfulBasis,
    class: &str,
    on_erasure: ErasureRule,
) -> SourceDescriptor {
    SourceDescriptor {
        name: name.to_owned(),
        version: 1,
        description: description.to_owned(),
        categories: categories.iter().map(|c| (*c).to_owned()).collect(),
        lawful_basis,
        class: match RecordClass::new(class) {
            Ok(c) => c,
            Err(e) => unreachable!("constant record class {class}: {e}"),
        },
        on_erasure,
    }
}

fn kept(obligation: &str) -> ErasureRule {
    ErasureRule::Pseudonymise {
        obligation: obligation.to_owned(),
    }
}

/// The user's account: name, second-factor flag, roles, trading accounts, restriction.
pub struct Profile {
    env: Env,
    descriptor: SourceDescriptor,
}

impl Profile {
    /// The source.
    pub fn new(env: Env) -> Self {
        Self {
            env,
            descriptor: descriptor(
                "profile",
                "the user account: name, roles, trading accounts, whether processing is restricted",
                &["username", "roles", "trading accounts"],
                LawfulBasis::Contract,
                "profile",
                ErasureRule::Delete,
            ),
        }
    }
}

#[async_trait]
impl PersonalDataSource for Profile {
    fn descriptor(&self) -> &SourceDescriptor {
        &self.descriptor
    }

    async fn count(&self, subject: &SubjectId) -> Result<u64> {
        let user = user_of(subject)?;
        let found = self
            .env
            .auth
            .users()
            .find_by_id(user)
            .await
            .map_err(store_err)?;
        Ok(u64::from(found.is_some()))
    }

    async fn export(&self, subject: &SubjectId, sink: &mut dyn RecordSink) -> Result<()> {
        let user = user_of(subject)?;
        let Some(found) = self
            .env
            .auth
            .users()
            .find_by_id(user)
            .await
            .map_err(store_err)?
        else {
            return Ok(());
        };
        let stores = self.env.storage.stores();
        let roles = stores.roles.roles_of(user).await.map_err(store_err)?;
        let accounts = stores
            .entitlements
            .accounts_of(user)
            .await
            .map_err(store_err)?;
        sink.record(&json!({
            "id": user,
            "username": found.username,
            "mfa_enabled": found.mfa_enabled,
            "roles": roles.iter().map(|r| r.as_str().to_owned()).collect::<Vec<_>>(),
            "accounts": accounts.iter().map(|a| json!({
                "account_id": a.account_id.as_str(),
                "granted_at": rfc3339(a.granted_at),
            })).collect::<Vec<_>>(),
            "restricted": self.env.store.is_restricted(user).await.map_err(store_err)?,
        }))
        .await
    }

    async fn erase(&self, subject: &SubjectId, mode: ErasureMode<'_>) -> Result<Erased> {
        let user = user_of(subject)?;
        let ErasureMode::Delete = mode else {
            return Err(Error::State(
                "the profile is deleted, never kept".to_owned(),
            ));
        };
        let pseudonym = self.env.pseudonymizer.pseudonym(subject);
        // The row stays (orders and fills kept for record keeping point at its id) as a
        // tombstone: no name, no password, no second factor, no roles, no accounts.
        let tombstone = format!("{ERASED}{pseudonym}");
        let erased = self
            .env
            .auth
            .users()
            .erase_user(user, &tombstone, OffsetDateTime::now_utc())
            .await
            .map_err(store_err)?;
        self.env.store.forget_links(user).await.map_err(store_err)?;
        Ok(Erased {
            records: u64::from(erased),
            newest: None,
        })
    }

    async fn rectify(
        &self,
        subject: &SubjectId,
        changes: &BTreeMap<String, Value>,
    ) -> Result<Vec<String>> {
        let user = user_of(subject)?;
        let Some(value) = changes.get("username") else {
            return Ok(Vec::new());
        };
        let name = value
            .as_str()
            .ok_or_else(|| Error::Invalid {
                field: "username",
                reason: "a string".to_owned(),
            })
            .and_then(|v| {
                Username::parse(v).map_err(|reason| Error::Invalid {
                    field: "username",
                    reason,
                })
            })?;
        let raw = self.env.storage.stores().users;
        let Some(row) = raw.find_by_id(user).await.map_err(store_err)? else {
            return Ok(Vec::new());
        };
        let sealing = self.env.auth.sealing();
        let sealed = sealing
            .seal(
                user,
                "server_users.username",
                name.as_str(),
                OffsetDateTime::now_utc(),
            )
            .await
            .map_err(store_err)?;
        let key = sealing.name_key(name.key());
        // Through the user store in front of the cache, so the new name is seen at once.
        let replaced = self
            .env
            .auth
            .users()
            .replace_name(user, &row.username, &sealed, &key)
            .await;
        match replaced {
            Ok(true) => Ok(vec!["username".to_owned()]),
            Ok(false) => Err(Error::State(
                "the user changed meanwhile; try again".to_owned(),
            )),
            Err(crate::storage::sql::StoreError::Database(e))
                if crate::storage::sql::is_unique_violation(&e) =>
            {
                Err(Error::Invalid {
                    field: "username",
                    reason: "the name is taken".to_owned(),
                })
            }
            Err(e) => Err(store_err(e)),
        }
    }

    async fn restrict(&self, subject: &SubjectId, restricted: bool) -> Result<u64> {
        let user = user_of(subject)?;
        let now = OffsetDateTime::now_utc();
        if self.count(subject).await? == 0 {
            return Ok(0);
        }
        self.env
            .store
            .set_restricted(user, restricted, now)
            .await
            .map_err(store_err)?;
        if restricted {
            // Restricted processing: nothing but storage. Every session ends now.
            crate::auth::routes::revoke_credentials(&self.env.auth, user, None, false, now)
                .await
                .map_err(|e| store_err(format!("{e:?}")))?;
        }
        Ok(1)
    }
}

/// The user's sessions: when, from which address and user agent (sealed under the user's
/// key), and their remembered devices.
pub struct Sessions {
    env: Env,
    descriptor: SourceDescriptor,
}

impl Sessions {
    /// The source.
    pub fn new(env: Env) -> Self {
        Self {
            env,
            descriptor: descriptor(
                "sessions",
                "logins: when each began and was last used, from which address and user agent",
                &["IP address", "user agent", "login times"],
                LawfulBasis::LegitimateInterests,
                "sessions",
                ErasureRule::Delete,
            ),
        }
    }

    async fn all(&self, user: Uuid) -> Result<Vec<crate::auth::sessions::SessionInfo>> {
        self.env
            .auth
            .sessions()
            .list_sessions(user, OffsetDateTime::UNIX_EPOCH, OffsetDateTime::UNIX_EPOCH)
            .await
            .map_err(store_err)
    }
}

#[async_trait]
impl PersonalDataSource for Sessions {
    fn descriptor(&self) -> &SourceDescriptor {
        &self.descriptor
    }

    async fn count(&self, subject: &SubjectId) -> Result<u64> {
        Ok(super::count(self.all(user_of(subject)?).await?.len()))
    }

    async fn export(&self, subject: &SubjectId, sink: &mut dyn RecordSink) -> Result<()> {
        let user = user_of(subject)?;
        let sealing = self.env.auth.sealing();
        for s in self.all(user).await? {
            sink.record(&json!({
                "id": s.id,
                "created_at": rfc3339(s.created_at),
                "last_used_at": rfc3339(s.last_used_at),
                "client_ip": sealing
                    .open_optional(user, "server_session_info.client_ip", s.client_ip)
                    .await,
                "user_agent": sealing
                    .open_optional(user, "server_session_info.user_agent", s.user_agent)
                    .await,
            }))
            .await?;
        }
        Ok(())
    }

    async fn erase(&self, subject: &SubjectId, _mode: ErasureMode<'_>) -> Result<Erased> {
        let user = user_of(subject)?;
        let now = OffsetDateTime::now_utc();
        crate::auth::routes::revoke_credentials(&self.env.auth, user, None, false, now)
            .await
            .map_err(|e| store_err(format!("{e:?}")))?;
        let gone = self
            .env
            .store
            .forget_sessions(user)
            .await
            .map_err(store_err)?;
        Ok(Erased {
            records: gone,
            newest: None,
        })
    }
}

/// The user's API keys.
pub struct ApiKeys {
    env: Env,
    descriptor: SourceDescriptor,
}

impl ApiKeys {
    /// The source.
    pub fn new(env: Env) -> Self {
        Self {
            env,
            descriptor: descriptor(
                "api_keys",
                "API keys: name, scopes, lifetime, last use (never the secret)",
                &["API key names", "usage times"],
                LawfulBasis::Contract,
                "credentials",
                ErasureRule::Delete,
            ),
        }
    }
}

#[async_trait]
impl PersonalDataSource for ApiKeys {
    fn descriptor(&self) -> &SourceDescriptor {
        &self.descriptor
    }

    async fn count(&self, subject: &SubjectId) -> Result<u64> {
        let user = user_of(subject)?;
        let keys = self
            .env
            .auth
            .api_keys()
            .store()
            .list_for_owner(&user.to_string())
            .await
            .map_err(store_err)?;
        Ok(super::count(keys.len()))
    }

    async fn export(&self, subject: &SubjectId, sink: &mut dyn RecordSink) -> Result<()> {
        let user = user_of(subject)?;
        let keys = self
            .env
            .auth
            .api_keys()
            .store()
            .list_for_owner(&user.to_string())
            .await
            .map_err(store_err)?;
        let names = self
            .env
            .auth
            .users()
            .key_names(user)
            .await
            .map_err(store_err)?;
        for k in keys {
            let name = names
                .iter()
                .find(|n| n.key_id == k.id)
                .map(|n| n.name.clone());
            sink.record(&json!({
                "id": k.id.to_string(),
                "name": name,
                "scopes": k.scopes.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "created_at": rfc3339(k.created_at),
                "expires_at": k.expires_at.map(rfc3339),
                "revoked_at": k.revoked_at.map(rfc3339),
                "last_used_at": k.last_used_at.map(rfc3339),
                "use_count": k.use_count,
            }))
            .await?;
        }
        Ok(())
    }

    async fn erase(&self, subject: &SubjectId, _mode: ErasureMode<'_>) -> Result<Erased> {
        let user = user_of(subject)?;
        let now = OffsetDateTime::now_utc();
        let api = self.env.auth.api_keys();
        let keys = api
            .store()
            .list_for_owner(&user.to_string())
            .await
            .map_err(store_err)?;
        for key in keys.iter().filter(|k| k.revoked_at.is_none()) {
            api.revoke_at(&key.id, now).await.map_err(store_err)?;
        }
        // Their names go with the profile's erasure.
        Ok(Erased {
            records: super::count(keys.len()),
            newest: None,
        })
    }
}

/// The user's second factor.
pub struct Mfa {
    env: Env,
    descriptor: SourceDescriptor,
}

impl Mfa {
    /// The source.
    pub fn new(env: Env) -> Self {
        Self {
            env,
            descriptor: descriptor(
                "mfa",
                "the second factor: whether it is on and how many backup codes are left \
                 (never the secret or the codes)",
                &["second factor"],
                LawfulBasis::Contract,
                "credentials",
                ErasureRule::Delete,
            ),
        }
    }

    fn mfa_user(user: Uuid) -> Result<MfaUserId> {
        MfaUserId::new(user.to_string()).map_err(store_err)
    }
}

#[async_trait]
impl PersonalDataSource for Mfa {
    fn descriptor(&self) -> &SourceDescriptor {
        &self.descriptor
    }

    async fn count(&self, subject: &SubjectId) -> Result<u64> {
        let user = user_of(subject)?;
        let secret = self
            .env
            .auth
            .users()
            .mfa_secret(user)
            .await
            .map_err(store_err)?;
        Ok(u64::from(secret.is_some()))
    }

    async fn export(&self, subject: &SubjectId, sink: &mut dyn RecordSink) -> Result<()> {
        let user = user_of(subject)?;
        let Some(secret) = self
            .env
            .auth
            .users()
            .mfa_secret(user)
            .await
            .map_err(store_err)?
        else {
            return Ok(());
        };
        let remaining = self
            .env
            .storage
            .stores()
            .crates
            .backup_codes
            .remaining(&Self::mfa_user(user)?)
            .await
            .map_err(store_err)?;
        sink.record(&json!({
            "confirmed": secret.confirmed,
            "backup_codes_remaining": remaining,
        }))
        .await
    }

    async fn erase(&self, subject: &SubjectId, _mode: ErasureMode<'_>) -> Result<Erased> {
        let user = user_of(subject)?;
        let had = self.count(subject).await?;
        let now = OffsetDateTime::now_utc();
        self.env
            .auth
            .users()
            .disable_mfa(user, now)
            .await
            .map_err(store_err)?;
        self.env
            .storage
            .stores()
            .crates
            .backup_codes
            .replace(&Self::mfa_user(user)?, Vec::new())
            .await
            .map_err(store_err)?;
        Ok(Erased {
            records: had,
            newest: None,
        })
    }
}

/// The user's orders.
pub struct Orders {
    env: Env,
    descriptor: SourceDescriptor,
}

impl Orders {
    /// The source.
    pub fn new(env: Env) -> Self {
        Self {
            env,
            descriptor: descriptor(
                "orders",
                "orders placed: account, instrument, side, quantity, price, notes, status",
                &["orders", "free-text notes"],
                LawfulBasis::LegalObligation,
                "orders",
                kept("MiFID II Art. 16(6) and MiFIR Art. 25(1): records of orders"),
            ),
        }
    }
}

#[async_trait]
impl PersonalDataSource for Orders {
    fn descriptor(&self) -> &SourceDescriptor {
        &self.descriptor
    }

    async fn count(&self, subject: &SubjectId) -> Result<u64> {
        self.env
            .store
            .count_orders(user_of(subject)?)
            .await
            .map_err(store_err)
    }

    async fn export(&self, subject: &SubjectId, sink: &mut dyn RecordSink) -> Result<()> {
        let user = user_of(subject)?;
        let mut after = None;
        loop {
            let page = self
                .env
                .store
                .orders_of(user, after, PAGE)
                .await
                .map_err(store_err)?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            for order in &page {
                sink.record(&order.record).await?;
            }
        }
        Ok(())
    }

    async fn erase(&self, subject: &SubjectId, _mode: ErasureMode<'_>) -> Result<Erased> {
        let (records, newest) = self
            .env
            .store
            .clear_order_notes(user_of(subject)?)
            .await
            .map_err(store_err)?;
        Ok(Erased { records, newest })
    }
}

/// The fills of the user's orders.
pub struct Executions {
    env: Env,
    descriptor: SourceDescriptor,
}

impl Executions {
    /// The source.
    pub fn new(env: Env) -> Self {
        Self {
            env,
            descriptor: descriptor(
                "executions",
                "the fills of the user's orders",
                &["trades"],
                LawfulBasis::LegalObligation,
                "trades",
                kept("MiFIR Art. 25(1): records of transactions"),
            ),
        }
    }
}

#[async_trait]
impl PersonalDataSource for Executions {
    fn descriptor(&self) -> &SourceDescriptor {
        &self.descriptor
    }

    async fn count(&self, subject: &SubjectId) -> Result<u64> {
        let user = user_of(subject)?.to_string();
        self.env.store.count_fills(&user).await.map_err(store_err)
    }

    async fn export(&self, subject: &SubjectId, sink: &mut dyn RecordSink) -> Result<()> {
        let user = user_of(subject)?.to_string();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .env
                .store
                .fills_of(&user, after.as_deref(), PAGE)
                .await
                .map_err(store_err)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (_, fill) in &page {
                sink.record(fill).await?;
            }
        }
        Ok(())
    }

    async fn erase(&self, subject: &SubjectId, mode: ErasureMode<'_>) -> Result<Erased> {
        let user = user_of(subject)?.to_string();
        let ErasureMode::Pseudonymise(pseudonym) = mode else {
            return Err(Error::State("fills are kept, never deleted".to_owned()));
        };
        let (records, newest) = self
            .env
            .store
            .pseudonymise_fills(&user, pseudonym.as_str())
            .await
            .map_err(store_err)?;
        Ok(Erased { records, newest })
    }
}

/// The MiFIR transaction reports that name the user as a natural-person client.
pub struct MifidReports {
    env: Env,
    descriptor: SourceDescriptor,
}

impl MifidReports {
    /// The source.
    pub fn new(env: Env) -> Self {
        Self {
            env,
            descriptor: descriptor(
                "mifid_reports",
                "MiFIR transaction reports naming the user as a client, and the client record \
                 (names, birth date, national client identifier)",
                &["name", "date of birth", "national identifier", "trades"],
                LawfulBasis::LegalObligation,
                "trades",
                kept("MiFIR Art. 25(1) and Art. 26: transaction reports"),
            ),
        }
    }

    async fn references(&self, account: &str) -> Result<Vec<(String, OffsetDateTime)>> {
        self.env
            .store
            .references_of(account)
            .await
            .map_err(store_err)
    }
}

fn reference(text: &str) -> Result<finsec_compliance::mifid::TransactionReference> {
    text.parse()
        .map_err(|_| Error::Corrupt(format!("stored reference {text:?}")))
}

#[async_trait]
impl PersonalDataSource for MifidReports {
    fn descriptor(&self) -> &SourceDescriptor {
        &self.descriptor
    }

    async fn count(&self, subject: &SubjectId) -> Result<u64> {
        let user = user_of(subject)?;
        let mut n = 0;
        for (account, _) in self.env.store.clients_of(user).await.map_err(store_err)? {
            n += super::count(self.references(&account).await?.len());
        }
        Ok(n)
    }

    async fn export(&self, subject: &SubjectId, sink: &mut dyn RecordSink) -> Result<()> {
        let user = user_of(subject)?;
        let reports = self.env.compliance.reports();
        for (account, sealed) in self.env.store.clients_of(user).await.map_err(store_err)? {
            if let Some((_, client)) = self
                .env
                .compliance
                .unseal_person(&account, &sealed)
                .await
                .map_err(store_err)?
            {
                sink.record(&json!({"client": client})).await?;
            }
            for (text, _) in self.references(&account).await? {
                for stored in reports.history(&reference(&text)?).await? {
                    let report = serde_json::to_value(&stored.report)
                        .map_err(|e| Error::Corrupt(e.to_string()))?;
                    sink.record(&json!({
                        "transaction_reference": text,
                        "version": stored.version,
                        "recorded_at": rfc3339(stored.recorded_at),
                        "report": report,
                    }))
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn erase(&self, subject: &SubjectId, mode: ErasureMode<'_>) -> Result<Erased> {
        let user = user_of(subject)?;
        let ErasureMode::Pseudonymise(pseudonym) = mode else {
            return Err(Error::State("reports are kept, never deleted".to_owned()));
        };
        let now = OffsetDateTime::now_utc();
        let mut out = Erased::default();
        for (account, sealed) in self.env.store.clients_of(user).await.map_err(store_err)? {
            let references = self.references(&account).await?;
            if let Some((person, _)) = self
                .env
                .compliance
                .unseal_person(&account, &sealed)
                .await
                .map_err(store_err)?
            {
                let refs = references
                    .iter()
                    .map(|(t, _)| reference(t))
                    .collect::<Result<Vec<_>>>()?;
                out.records += self
                    .env
                    .compliance
                    .reports()
                    .pseudonymise(&refs, &person, pseudonym)
                    .await?;
            }
            out.newest = out.newest.max(references.iter().map(|(_, t)| *t).max());
            // The client record (names, birth date, identifier) goes for good.
            self.env
                .compliance
                .shred_client(&account, now)
                .await
                .map_err(store_err)?;
            self.env
                .store
                .forget_client(&account)
                .await
                .map_err(store_err)?;
        }
        Ok(out)
    }
}

/// The audit events the user acted in.
pub struct AuditTrail {
    env: Env,
    descriptor: SourceDescriptor,
}

impl AuditTrail {
    /// The source.
    pub fn new(env: Env) -> Self {
        Self {
            env,
            descriptor: descriptor(
                "audit",
                "audit events of the user's requests and security events: action, time, \
                 outcome, and the address and user agent (sealed under the user's key)",
                &["IP address", "user agent", "activity"],
                LawfulBasis::LegalObligation,
                "audit",
                kept(
                    "MiFID II Art. 16(6) record keeping and GDPR Art. 5(2) accountability: a \
                     tamper-evident log is never rewritten; the personal details in it were \
                     sealed under the user's key, which erasure shreds",
                ),
            ),
        }
    }

    /// Walks the user's events page by page.
    async fn each(
        &self,
        user: Uuid,
        mut f: impl FnMut(u64, finsec_audit::AuditEvent) -> std::result::Result<(), ()>,
    ) -> Result<()> {
        let mut query = Query {
            user: Some(user.to_string()),
            limit: finsec_audit::query::MAX_PAGE,
            ..Query::default()
        };
        loop {
            let page = self
                .env
                .audit
                .log()
                .sink()
                .query(&query)
                .await
                .map_err(store_err)?;
            for (position, event) in page.events {
                if f(position, event).is_err() {
                    return Ok(());
                }
            }
            match page.next {
                Some(next) => query.after = Some(next),
                None => return Ok(()),
            }
        }
    }
}

/// A plain or sealed actor field as the export shows it.
async fn open_text(
    keys: &crate::state::ServerSubjectKeys,
    text: Option<&Text>,
    label: &str,
) -> Value {
    match text {
        None => Value::Null,
        Some(Text::Plain(p)) => Value::String(p.clone()),
        Some(Text::Personal(p @ Personal::Encrypted { .. })) => {
            match p.decrypt(keys, label).await {
                Ok(plain) => Value::String(plain),
                Err(_) => json!({"unreadable": true}),
            }
        }
        Some(Text::Personal(Personal::Keyed { .. })) => json!({"keyed_hash": true}),
    }
}

#[async_trait]
impl PersonalDataSource for AuditTrail {
    fn descriptor(&self) -> &SourceDescriptor {
        &self.descriptor
    }

    async fn count(&self, subject: &SubjectId) -> Result<u64> {
        let mut n = 0;
        self.each(user_of(subject)?, |_, _| {
            n += 1;
            Ok(())
        })
        .await?;
        Ok(n)
    }

    async fn export(&self, subject: &SubjectId, sink: &mut dyn RecordSink) -> Result<()> {
        let user = user_of(subject)?;
        let keys = self.env.auth.sealing().keys();
        let mut query = Query {
            user: Some(user.to_string()),
            limit: finsec_audit::query::MAX_PAGE,
            ..Query::default()
        };
        loop {
            let page = self
                .env
                .audit
                .log()
                .sink()
                .query(&query)
                .await
                .map_err(store_err)?;
            for (position, e) in &page.events {
                let actor = e.actor();
                sink.record(&json!({
                    "position": position,
                    "id": e.id(),
                    "action": e.action(),
                    "outcome": e.outcome().as_str(),
                    "time_us": e.time().unix_micros(),
                    "resource": e.resource().map(|r| json!({"type": r.kind, "id": r.id})),
                    "client_ip": open_text(keys, actor.ip.as_ref(), "actor.ip").await,
                    "user_agent": open_text(keys, actor.user_agent.as_ref(), "actor.user_agent").await,
                }))
                .await?;
            }
            match page.next {
                Some(next) => query.after = Some(next),
                None => return Ok(()),
            }
        }
    }

    async fn erase(&self, subject: &SubjectId, _mode: ErasureMode<'_>) -> Result<Erased> {
        // Nothing is rewritten: the key shredding that ends the erasure makes the sealed
        // details unreadable.
        let mut out = Erased::default();
        self.each(user_of(subject)?, |_, e| {
            out.records += 1;
            out.newest = out.newest.max(e.time().to_datetime());
            Ok(())
        })
        .await?;
        Ok(out)
    }
}
