//! Flows shared by the SQL store tests.

use finsec_rbac::approval::{approve_at, authorize_with_approval_at, request_approval_at};
use finsec_rbac::{ApprovalStore, Error, Permission, Policy, Principal, Request, RoleName};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const POLICY: &str = r#"
[roles.payments]
rules = [{ effect = "allow", permissions = ["payments:release"], approval = { approver = "payments:approve", quorum = 2, within_seconds = 600 } }]

[roles.checker]
rules = [{ effect = "allow", permissions = ["payments:approve"] }]
"#;

const T0: OffsetDateTime = datetime!(2026-03-01 09:00:00.123456 UTC);

fn who(id: &str, role: &str) -> Principal {
    Principal::new(id)
        .unwrap()
        .with_role(RoleName::new(role).unwrap())
}

/// Request, self-approval refused, one approver twice, a second approver, use once.
pub(crate) async fn flow<S: ApprovalStore>(store: &S) {
    let policy = Policy::from_toml(POLICY).unwrap();
    let maker = who("maker", "payments");
    let action = Permission::new("payments:release").unwrap();
    let req = Request::new(&maker, &action);
    let opened = request_approval_at(&policy, store, &req, "pay-1", T0)
        .await
        .unwrap();
    assert!(matches!(
        approve_at(&policy, store, &opened.id, &who("maker", "checker"), T0).await,
        Err(Error::SelfApproval { .. })
    ));
    let a = who("alice", "checker");
    approve_at(&policy, store, &opened.id, &a, T0)
        .await
        .unwrap();
    let st = approve_at(&policy, store, &opened.id, &a, T0)
        .await
        .unwrap();
    assert_eq!((st.approvals, st.newly_recorded), (1, false));
    assert!(
        authorize_with_approval_at(&policy, store, &req, "pay-1", &opened.id, T0)
            .await
            .is_denied()
    );
    let late = T0 + Duration::seconds(600);
    assert!(matches!(
        approve_at(&policy, store, &opened.id, &who("bob", "checker"), late).await,
        Err(Error::ApprovalExpired { .. })
    ));
    approve_at(&policy, store, &opened.id, &who("bob", "checker"), T0)
        .await
        .unwrap();
    let d = authorize_with_approval_at(&policy, store, &req, "pay-1", &opened.id, T0).await;
    assert!(d.is_allowed(), "{}", d.explain());
    assert_eq!(d.audit_record().approvers, ["alice", "bob"]);
    assert!(
        authorize_with_approval_at(&policy, store, &req, "pay-1", &opened.id, T0)
            .await
            .is_denied()
    );
    let stored = store.get(&opened.id).await.unwrap().unwrap();
    assert_eq!(stored.request, opened);
    assert_eq!(stored.consumed_at, Some(T0));
}
