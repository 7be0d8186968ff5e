//! Maker-checker flows against the in-memory store: self-approval, quorum counted once per
//! approver, expiry, single use, binding to initiator/action/subject, approver permission,
//! and break-glass.

#![cfg(test)]

use finsec_rbac::approval::{
    ApprovalId, approve_at, authorize_with_approval_at, request_approval_at,
};
use finsec_rbac::danger::break_glass;
use finsec_rbac::{
    Error, MemoryApprovalStore, Permission, Policy, Principal, Reason, Request, RoleName,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const POLICY: &str = r#"
[roles.payments]
rules = [
    { effect = "allow", permissions = ["payments:release"], approval = { approver = "payments:approve", quorum = 2, within_seconds = 3600 } },
    { effect = "allow", permissions = ["payments:view"] },
]

[roles.checker]
inherits = ["payments"]
rules = [{ effect = "allow", permissions = ["payments:approve"] }]

[roles.emergency]
rules = [{ effect = "allow", permissions = ["rbac:break_glass"] }]
"#;

const T0: OffsetDateTime = datetime!(2026-03-01 09:00 UTC);

fn policy() -> Policy {
    Policy::from_toml(POLICY).unwrap()
}

fn who(id: &str, roles: &[&str]) -> Principal {
    roles.iter().fold(Principal::new(id).unwrap(), |p, r| {
        p.with_role(RoleName::new(r).unwrap())
    })
}

fn release() -> Permission {
    Permission::new("payments:release").unwrap()
}

struct Setup {
    policy: Policy,
    store: MemoryApprovalStore,
    maker: Principal,
    id: ApprovalId,
}

async fn setup() -> Setup {
    let policy = policy();
    let store = MemoryApprovalStore::new();
    let maker = who("maker", &["checker"]);
    let action = release();
    let decision = policy.check(&Request::new(&maker, &action));
    assert!(matches!(decision.reason(), Reason::ApprovalRequired(_)));
    assert_eq!(
        decision.explain(),
        "denied until approved: rule 0 of role \"payments\" (allow payments:release with \
         approval by 2 holder(s) of payments:approve within 3600s), matched by pattern \
         payments:release"
    );
    let req = request_approval_at(
        &policy,
        &store,
        &Request::new(&maker, &action),
        "pay-42",
        T0,
    )
    .await
    .unwrap();
    assert_eq!(req.quorum, 2);
    assert_eq!(req.expires_at, T0 + Duration::hours(1));
    Setup {
        policy,
        store,
        maker,
        id: req.id,
    }
}

async fn authorize(s: &Setup, subject: &str, now: OffsetDateTime) -> finsec_rbac::AccessDecision {
    let action = release();
    authorize_with_approval_at(
        &s.policy,
        &s.store,
        &Request::new(&s.maker, &action),
        subject,
        &s.id,
        now,
    )
    .await
}

#[tokio::test]
async fn quorum_of_two_distinct_checkers_allows_once() {
    let s = setup().await;
    let a = who("alice", &["checker"]);
    let b = who("bob", &["checker"]);
    let t = T0 + Duration::minutes(5);
    let st = approve_at(&s.policy, &s.store, &s.id, &a, t).await.unwrap();
    assert_eq!(
        (st.approvals, st.is_complete(), st.newly_recorded),
        (1, false, true)
    );
    let d = authorize(&s, "pay-42", t).await;
    assert!(d.is_denied());
    assert_eq!(d.audit_record().reason, "approval_refused");
    let st = approve_at(&s.policy, &s.store, &s.id, &b, t).await.unwrap();
    assert!(st.is_complete());
    let d = authorize(&s, "pay-42", t).await;
    assert!(d.is_allowed(), "{}", d.explain());
    let rec = d.audit_record();
    assert_eq!(rec.reason, "approved");
    assert_eq!(rec.approvers, ["alice", "bob"]);
    // Single use.
    let again = authorize(&s, "pay-42", t).await;
    assert!(again.is_denied());
    assert!(
        again.explain().contains("already used"),
        "{}",
        again.explain()
    );
    assert!(matches!(
        approve_at(&s.policy, &s.store, &s.id, &who("carol", &["checker"]), t).await,
        Err(Error::ApprovalConsumed { .. })
    ));
}

#[tokio::test]
async fn self_approval_is_refused() {
    let s = setup().await;
    let err = approve_at(&s.policy, &s.store, &s.id, &s.maker, T0)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SelfApproval { .. }), "{err}");
    // A second principal object with the same id is the same principal.
    let twin = who("maker", &["checker"]);
    assert!(matches!(
        approve_at(&s.policy, &s.store, &s.id, &twin, T0).await,
        Err(Error::SelfApproval { .. })
    ));
    let rec = s.store_record().await;
    assert!(rec.approvals.is_empty());
}

impl Setup {
    async fn store_record(&self) -> finsec_rbac::approval::ApprovalRecord {
        use finsec_rbac::ApprovalStore;
        self.store.get(&self.id).await.unwrap().unwrap()
    }
}

#[tokio::test]
async fn quorum_counts_each_approver_once() {
    let s = setup().await;
    let a = who("alice", &["checker"]);
    for _ in 0..3 {
        approve_at(&s.policy, &s.store, &s.id, &a, T0)
            .await
            .unwrap();
    }
    let st = approve_at(&s.policy, &s.store, &s.id, &a, T0)
        .await
        .unwrap();
    assert_eq!((st.approvals, st.newly_recorded), (1, false));
    let d = authorize(&s, "pay-42", T0).await;
    assert!(d.is_denied());
    assert!(
        d.explain().contains("has 1 of 2 approvals"),
        "{}",
        d.explain()
    );
}

#[tokio::test]
async fn expired_approvals_are_refused() {
    let s = setup().await;
    let a = who("alice", &["checker"]);
    let b = who("bob", &["checker"]);
    approve_at(&s.policy, &s.store, &s.id, &a, T0)
        .await
        .unwrap();
    let late = T0 + Duration::hours(1);
    assert!(matches!(
        approve_at(&s.policy, &s.store, &s.id, &b, late).await,
        Err(Error::ApprovalExpired { .. })
    ));
    approve_at(&s.policy, &s.store, &s.id, &b, late - Duration::seconds(1))
        .await
        .unwrap();
    // Quorum reached, but the action is attempted after the window.
    let d = authorize(&s, "pay-42", late).await;
    assert!(d.is_denied());
    assert!(d.explain().contains("expired"), "{}", d.explain());
    // Inside the window it would have been allowed.
    assert!(
        authorize(&s, "pay-42", late - Duration::seconds(1))
            .await
            .is_allowed()
    );
}

#[tokio::test]
async fn approvers_need_the_approver_permission() {
    let s = setup().await;
    let outsider = who("eve", &["payments"]);
    let err = approve_at(&s.policy, &s.store, &s.id, &outsider, T0)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "principal \"eve\" lacks approver permission payments:approve for request {}",
            s.id
        )
    );
    let unknown = ApprovalId::random().unwrap();
    assert!(matches!(
        approve_at(&s.policy, &s.store, &unknown, &outsider, T0).await,
        Err(Error::ApprovalNotFound { .. })
    ));
}

#[tokio::test]
async fn approval_is_bound_to_initiator_action_and_subject() {
    let s = setup().await;
    for c in ["alice", "bob"] {
        approve_at(&s.policy, &s.store, &s.id, &who(c, &["checker"]), T0)
            .await
            .unwrap();
    }
    assert!(authorize(&s, "pay-43", T0).await.is_denied());
    let other = who("mallory", &["payments"]);
    let action = release();
    let d = authorize_with_approval_at(
        &s.policy,
        &s.store,
        &Request::new(&other, &action),
        "pay-42",
        &s.id,
        T0,
    )
    .await;
    assert!(d.is_denied());
    assert!(authorize(&s, "pay-42", T0).await.is_allowed());
}

#[tokio::test]
async fn actions_without_requirement_pass_through() {
    let policy = policy();
    let store = MemoryApprovalStore::new();
    let maker = who("maker", &["payments"]);
    let view = Permission::new("payments:view").unwrap();
    let req = Request::new(&maker, &view);
    assert!(matches!(
        request_approval_at(&policy, &store, &req, "x", T0).await,
        Err(Error::ApprovalNotRequired { .. })
    ));
    let d = authorize_with_approval_at(
        &policy,
        &store,
        &req,
        "x",
        &ApprovalId::random().unwrap(),
        T0,
    )
    .await;
    assert!(matches!(d.reason(), Reason::AllowedByRule(_)));
    let nothing = who("nobody", &[]);
    let d = authorize_with_approval_at(
        &policy,
        &store,
        &Request::new(&nothing, &release()),
        "x",
        &ApprovalId::random().unwrap(),
        T0,
    )
    .await;
    assert!(matches!(d.reason(), Reason::NoRuleMatched));
    assert!(matches!(
        request_approval_at(&policy, &store, &Request::new(&maker, &release()), "", T0).await,
        Err(Error::InvalidValue { .. })
    ));
}

#[test]
fn break_glass_is_flagged_and_restricted() {
    let policy = policy();
    let action = release();
    let plain = who("maker", &["payments"]);
    let d = break_glass(&policy, &Request::new(&plain, &action), "outage");
    assert!(d.is_denied());
    assert!(
        d.explain().contains("may not break glass"),
        "{}",
        d.explain()
    );

    let entitled = who("maker", &["payments", "emergency"]);
    let d = break_glass(&policy, &Request::new(&entitled, &action), "   ");
    assert!(d.is_denied());
    let d = break_glass(
        &policy,
        &Request::new(&entitled, &action),
        "INC-1234 settlement outage",
    );
    assert!(d.is_allowed());
    assert!(d.is_break_glass());
    let rec = d.audit_record();
    assert!(rec.break_glass);
    assert_eq!(rec.reason, "break_glass");
    assert_eq!(rec.detail.as_deref(), Some("INC-1234 settlement outage"));

    // Never grants what no rule allows, never overrides a deny.
    let other = Permission::new("payments:delete").unwrap();
    let d = break_glass(&policy, &Request::new(&entitled, &other), "please");
    assert!(matches!(d.reason(), Reason::NoRuleMatched));
    assert!(!d.is_break_glass());
}

#[test]
fn approval_ids_parse() {
    let id = ApprovalId::random().unwrap();
    assert_eq!(ApprovalId::parse(id.as_str()).unwrap(), id);
    assert!(ApprovalId::parse("ABC").is_err());
    assert!(ApprovalId::parse(&"A".repeat(32)).is_err());
    assert_ne!(ApprovalId::random().unwrap(), ApprovalId::random().unwrap());
}

#[tokio::test]
async fn a_stricter_policy_invalidates_earlier_approvals() {
    let s = setup().await;
    for c in ["alice", "bob"] {
        approve_at(&s.policy, &s.store, &s.id, &who(c, &["checker"]), T0)
            .await
            .unwrap();
    }
    let action = release();
    let req = Request::new(&s.maker, &action);
    let t = T0 + Duration::minutes(5);
    let stricter = |quorum: u8, within: u32| {
        Policy::from_toml(&POLICY.replace(
            "quorum = 2, within_seconds = 3600",
            &format!("quorum = {quorum}, within_seconds = {within}"),
        ))
        .unwrap()
    };
    let more_approvers = stricter(3, 3600);
    let d = authorize_with_approval_at(&more_approvers, &s.store, &req, "pay-42", &s.id, t).await;
    assert!(
        d.explain().contains("different approval requirement"),
        "{}",
        d.explain()
    );
    let shorter = stricter(2, 60);
    let d = authorize_with_approval_at(&shorter, &s.store, &req, "pay-42", &s.id, t).await;
    assert!(d.explain().contains("expired"), "{}", d.explain());
    // Refusals do not use the approval up: under the original policy it still works.
    assert!(authorize(&s, "pay-42", t).await.is_allowed());
}
