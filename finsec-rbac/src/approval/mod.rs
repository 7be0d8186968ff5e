//! Maker-checker (four eyes) approvals.
//!
//! An allow rule with an [`Approval`](crate::Approval) requirement does not allow its action by itself:
//! [`Policy::check`] answers [`Reason::ApprovalRequired`]. The flow is:
//!
//! 1. the initiator (maker) opens a request with [`request_approval_at`], naming the
//!    *subject*: the exact thing to be done (an order id, a digest of the payload). The
//!    request records the initiator, action, subject, the approver permission, the quorum
//!    and an expiry of `now + within`;
//! 2. checkers call [`approve_at`]. An approval is refused from the initiator
//!    ([`Error::SelfApproval`]), from a principal the policy does not allow the approver
//!    permission ([`Error::NotAnApprover`]), after expiry ([`Error::ApprovalExpired`]) and
//!    after use ([`Error::ApprovalConsumed`]). The same approver approving twice counts
//!    once;
//! 3. the initiator performs the action through [`authorize_with_approval_at`], which
//!    returns a [`AccessDecision`]: allowed only if the policy still requires exactly this
//!    approval, the request matches (same initiator, action and subject), it has not
//!    expired, at least `quorum` distinct approvers other than the initiator approved
//!    before expiry, and it has not been used. Using it marks it used (atomically in the
//!    store), so one approval authorizes one action.
//!
//! The approver permission is checked when an approval is given, against the policy of
//! that moment; it is not re-checked when the approval is used. If the policy changes in
//! between, the approval is refused unless the rule still requires the same approver
//! permission and at most the same quorum, and the shorter of the stored and the current
//! approval windows applies.
//!
//! Every function takes the time explicitly (`*_at(now)`). A store failure during
//! authorization is a deny ([`Reason::Internal`]).
//!
//! A break-glass override that skips step 2 lives in [`crate::danger`].

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;
mod store;

use std::fmt;

use rand::RngCore;
use time::OffsetDateTime;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use self::sql::SqlApprovalStore;
pub use self::store::{ApprovalStore, MemoryApprovalStore};
use crate::decision::{AccessDecision, Reason, RuleMatch};
use crate::error::{Error, Result, echo};
use crate::permission::Permission;
use crate::policy::Policy;
use crate::request::{MAX_VALUE_LEN, Principal, Request};

/// The id of an approval request: 32 lowercase hex digits (128 random bits).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApprovalId(String);

impl ApprovalId {
    /// A fresh random id from the operating system's generator.
    ///
    /// # Errors
    /// [`Error::Random`] if the generator fails.
    pub fn random() -> Result<Self> {
        let mut bytes = [0u8; 16];
        // finsec-rbac does not depend on finsec-crypto: its one read of the operating
        // system's generator, fallible as `finsec_crypto::fill_random` is (clippy.toml).
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(|_| Error::Random)?;
        Ok(Self(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }

    /// Parses an id.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] unless `text` is 32 lowercase hex digits.
    pub fn parse(text: &str) -> Result<Self> {
        if text.len() == 32
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(text.to_owned()))
        } else {
            Err(Error::InvalidValue {
                field: "approval id",
                reason: "it must be 32 lowercase hex digits",
            })
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApprovalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApprovalId({})", self.0)
    }
}

impl fmt::Display for ApprovalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An approval request as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRequest {
    /// The id.
    pub id: ApprovalId,
    /// The principal who will perform the action (and may not approve it).
    pub initiator: String,
    /// The action.
    pub action: Permission,
    /// What exactly is approved (an order id, a payload digest).
    pub subject: String,
    /// The permission approvers must hold.
    pub approver: Permission,
    /// How many distinct approvers are needed.
    pub quorum: u8,
    /// When the request was made (whole microseconds).
    pub created_at: OffsetDateTime,
    /// When approvals stop being accepted and the action may no longer run.
    pub expires_at: OffsetDateTime,
}

/// A stored request with its approvals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRecord {
    /// The request.
    pub request: ApprovalRequest,
    /// `(approver id, when)`, in the order recorded, each approver once.
    pub approvals: Vec<(String, OffsetDateTime)>,
    /// When the approval was used to perform the action, if it was.
    pub consumed_at: Option<OffsetDateTime>,
}

impl ApprovalRecord {
    /// The distinct approvers, other than the initiator, who approved before expiry.
    pub fn valid_approvers(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (who, at) in &self.approvals {
            if *who != self.request.initiator && *at < self.request.expires_at && !out.contains(who)
            {
                out.push(who.clone());
            }
        }
        out
    }
}

/// Progress of an approval request after [`approve_at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovalStatus {
    /// Distinct valid approvals so far.
    pub approvals: usize,
    /// How many are needed.
    pub quorum: u8,
    /// Whether this call recorded a new approval (`false`: this approver had already).
    pub newly_recorded: bool,
}

impl ApprovalStatus {
    /// Whether the quorum is reached.
    pub fn is_complete(&self) -> bool {
        self.approvals >= usize::from(self.quorum)
    }
}

/// Truncates to whole microseconds (what SQL backends store).
fn micros(t: OffsetDateTime) -> OffsetDateTime {
    let nanos = t.nanosecond();
    t.replace_nanosecond(nanos - nanos % 1_000).unwrap_or(t)
}

/// Opens an approval request for `request` (the initiator's own request) on `subject`.
///
/// # Errors
/// [`Error::ApprovalNotRequired`] if the policy does not answer "approval required" for
/// `request` (it is allowed or denied outright); [`Error::InvalidValue`] for a bad
/// subject; store errors.
pub async fn request_approval_at<S: ApprovalStore + ?Sized>(
    policy: &Policy,
    store: &S,
    request: &Request<'_>,
    subject: &str,
    now: OffsetDateTime,
) -> Result<ApprovalRequest> {
    if subject.is_empty() || subject.len() > MAX_VALUE_LEN {
        return Err(Error::InvalidValue {
            field: "approval subject",
            reason: "it must be 1 to 256 bytes",
        });
    }
    let decision = policy.check(request);
    let Reason::ApprovalRequired(rule) = decision.reason() else {
        return Err(Error::ApprovalNotRequired {
            action: request.action().to_string(),
            principal: echo(request.principal().id()),
            decision: decision.explain(),
        });
    };
    let Some(approval) = rule.rule().approval() else {
        return Err(Error::ApprovalNotRequired {
            action: request.action().to_string(),
            principal: echo(request.principal().id()),
            decision: decision.explain(),
        });
    };
    let now = micros(now);
    let record = ApprovalRequest {
        id: ApprovalId::random()?,
        initiator: request.principal().id().to_owned(),
        action: request.action().clone(),
        subject: subject.to_owned(),
        approver: approval.approver().clone(),
        quorum: approval.quorum(),
        created_at: now,
        expires_at: now + approval.within(),
    };
    store.create(&record).await?;
    Ok(record)
}

/// Records `approver`'s approval of request `id`.
///
/// # Errors
/// [`Error::ApprovalNotFound`], [`Error::ApprovalConsumed`], [`Error::ApprovalExpired`],
/// [`Error::SelfApproval`], [`Error::NotAnApprover`] (checked against `policy`), store
/// errors.
pub async fn approve_at<S: ApprovalStore + ?Sized>(
    policy: &Policy,
    store: &S,
    id: &ApprovalId,
    approver: &Principal,
    now: OffsetDateTime,
) -> Result<ApprovalStatus> {
    let record = store
        .get(id)
        .await?
        .ok_or_else(|| Error::ApprovalNotFound { id: id.to_string() })?;
    let request = &record.request;
    if record.consumed_at.is_some() {
        return Err(Error::ApprovalConsumed { id: id.to_string() });
    }
    if now >= request.expires_at {
        return Err(Error::ApprovalExpired { id: id.to_string() });
    }
    if approver.id() == request.initiator {
        return Err(Error::SelfApproval {
            id: id.to_string(),
            principal: echo(approver.id()),
        });
    }
    if !policy
        .check(&Request::new(approver, &request.approver))
        .is_allowed()
    {
        return Err(Error::NotAnApprover {
            id: id.to_string(),
            principal: echo(approver.id()),
            permission: request.approver.to_string(),
        });
    }
    let newly_recorded = store.add_approval(id, approver.id(), micros(now)).await?;
    let approvals = store
        .get(id)
        .await?
        .map_or(0, |r| r.valid_approvers().len());
    Ok(ApprovalStatus {
        approvals,
        quorum: request.quorum,
        newly_recorded,
    })
}

/// Decides `request` on `subject`, using approval request `id` if the policy requires
/// approval. Uses the approval up when it allows. Never fails: problems are denies.
pub async fn authorize_with_approval_at<S: ApprovalStore + ?Sized>(
    policy: &Policy,
    store: &S,
    request: &Request<'_>,
    subject: &str,
    id: &ApprovalId,
    now: OffsetDateTime,
) -> AccessDecision {
    let decision = policy.check(request);
    let Reason::ApprovalRequired(rule) = decision.reason() else {
        return decision;
    };
    let rule = rule.clone();
    let refuse = |problem: String| {
        AccessDecision::new(Reason::ApprovalRefused {
            rule: rule.clone(),
            problem,
        })
    };
    let Some(required) = rule.rule().approval() else {
        return AccessDecision::new(Reason::Internal(
            "approval-gated rule without requirement".to_owned(),
        ));
    };
    let record = match store.get(id).await {
        Ok(Some(r)) => r,
        Ok(None) => return refuse(format!("approval request {id} not found")),
        Err(e) => return AccessDecision::new(Reason::Internal(e.to_string())),
    };
    let r = &record.request;
    if r.initiator != request.principal().id()
        || r.action != *request.action()
        || r.subject != subject
    {
        return refuse(format!(
            "approval request {id} is for another initiator, action or subject"
        ));
    }
    if r.approver != *required.approver() || r.quorum < required.quorum() {
        return refuse(format!(
            "approval request {id} was made under a different approval requirement"
        ));
    }
    // The stored expiry, or the current rule's window if the policy has shortened it.
    let deadline = r.expires_at.min(r.created_at + required.within());
    if now >= deadline {
        return refuse(format!("approval request {id} expired"));
    }
    if record.consumed_at.is_some() {
        return refuse(format!("approval request {id} was already used"));
    }
    let approvers = record.valid_approvers();
    if approvers.len() < usize::from(required.quorum()) {
        return refuse(format!(
            "approval request {id} has {} of {} approvals",
            approvers.len(),
            required.quorum()
        ));
    }
    match store.consume(id, micros(now)).await {
        Ok(true) => AccessDecision::new(Reason::AllowedWithApproval {
            rule: RuleMatch::clone(&rule),
            approval: id.clone(),
            approvers,
        }),
        Ok(false) => refuse(format!("approval request {id} was already used")),
        Err(e) => AccessDecision::new(Reason::Internal(e.to_string())),
    }
}

/// [`request_approval_at`] at the current system time.
///
/// # Errors
/// As [`request_approval_at`].
pub async fn request_approval<S: ApprovalStore + ?Sized>(
    policy: &Policy,
    store: &S,
    request: &Request<'_>,
    subject: &str,
) -> Result<ApprovalRequest> {
    request_approval_at(policy, store, request, subject, OffsetDateTime::now_utc()).await
}

/// [`approve_at`] at the current system time.
///
/// # Errors
/// As [`approve_at`].
pub async fn approve<S: ApprovalStore + ?Sized>(
    policy: &Policy,
    store: &S,
    id: &ApprovalId,
    approver: &Principal,
) -> Result<ApprovalStatus> {
    approve_at(policy, store, id, approver, OffsetDateTime::now_utc()).await
}

/// [`authorize_with_approval_at`] at the current system time.
pub async fn authorize_with_approval<S: ApprovalStore + ?Sized>(
    policy: &Policy,
    store: &S,
    request: &Request<'_>,
    subject: &str,
    id: &ApprovalId,
) -> AccessDecision {
    authorize_with_approval_at(
        policy,
        store,
        request,
        subject,
        id,
        OffsetDateTime::now_utc(),
    )
    .await
}
