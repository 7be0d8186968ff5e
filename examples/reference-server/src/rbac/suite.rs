//! The [`RoleStore`] contract, run on both backends by `crate::storage::suite`.

use std::sync::Arc;

use finsec_rbac::RoleName;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::roles::{GrantRequest, RoleStore, role_names};
use crate::storage::sql::StoreError;
use crate::storage::suite::new_user;
use crate::storage::{Storage, Stores};

const NOW: OffsetDateTime = datetime!(2026-03-02 09:30:00 UTC);

fn role(name: &str) -> RoleName {
    RoleName::new(name).unwrap()
}

/// Checks every method of `stores.roles`; `storage` creates the users.
pub(crate) async fn run(stores: &Stores, storage: &Storage) {
    let roles = &stores.roles;
    default_role_goes_to_new_users_only(roles.as_ref(), storage).await;
    grant_and_revoke(roles.as_ref(), storage).await;
    roles_are_sorted_by_name(roles.as_ref(), storage).await;
    concurrent_grants_add_once(roles, storage).await;
    corrupt_names_are_reported();
    grant_requests_take_effect_once_when_approved(roles, storage).await;
}

async fn grant_requests_take_effect_once_when_approved(
    roles: &Arc<dyn RoleStore>,
    storage: &Storage,
) {
    let (user, asker, approver) = (
        new_user(storage).await,
        new_user(storage).await,
        new_user(storage).await,
    );
    let request = GrantRequest {
        id: Uuid::now_v7(),
        user,
        role: role("trader"),
        requested_by: asker,
        requested_at: NOW,
        expires_at: NOW + Duration::hours(24),
        approved: None,
    };
    assert!(roles.grant_request(request.id).await.unwrap().is_none());
    roles.request_grant(&request).await.unwrap();
    assert_eq!(
        roles.grant_request(request.id).await.unwrap().unwrap(),
        request,
        "read back unchanged"
    );
    assert!(
        !roles
            .roles_of(user)
            .await
            .unwrap()
            .contains(&role("trader")),
        "a request gives nothing by itself"
    );
    // Two approvals at once: one wins, the role is given once.
    let approve = |by: Uuid| {
        let roles = Arc::clone(roles);
        let id = request.id;
        tokio::spawn(async move { roles.approve_grant(id, by, NOW + Duration::hours(1)).await })
    };
    let (a, b) = (approve(approver), approve(approver));
    let (a, b) = (a.await.unwrap().unwrap(), b.await.unwrap().unwrap());
    assert!(a ^ b, "exactly one approval wins: {a} {b}");
    assert!(
        roles
            .roles_of(user)
            .await
            .unwrap()
            .contains(&role("trader"))
    );
    let stored = roles.grant_request(request.id).await.unwrap().unwrap();
    assert_eq!(
        stored.approved,
        Some((Some(approver), NOW + Duration::hours(1)))
    );
    // An expired request cannot be approved, and gives nothing.
    let late = GrantRequest {
        id: Uuid::now_v7(),
        role: role("auditor"),
        ..request.clone()
    };
    roles.request_grant(&late).await.unwrap();
    assert!(
        !roles
            .approve_grant(late.id, approver, NOW + Duration::hours(24))
            .await
            .unwrap()
    );
    assert!(
        !roles
            .roles_of(user)
            .await
            .unwrap()
            .contains(&role("auditor"))
    );
    assert!(
        !roles
            .approve_grant(Uuid::now_v7(), approver, NOW)
            .await
            .unwrap()
    );
    // A request naming a missing user is refused by the database.
    let orphan = GrantRequest {
        id: Uuid::now_v7(),
        user: Uuid::now_v7(),
        ..request
    };
    assert!(matches!(
        roles.request_grant(&orphan).await,
        Err(StoreError::Database(_))
    ));
}

async fn default_role_goes_to_new_users_only(roles: &dyn RoleStore, storage: &Storage) {
    roles.set_default_role(&role("viewer")).await.unwrap();
    let vera = new_user(storage).await;
    assert_eq!(roles.roles_of(vera).await.unwrap(), [role("viewer")]);
    // Setting it again replaces it; existing users keep theirs.
    roles.set_default_role(&role("analyst")).await.unwrap();
    let ana = new_user(storage).await;
    assert_eq!(roles.roles_of(ana).await.unwrap(), [role("analyst")]);
    assert_eq!(roles.roles_of(vera).await.unwrap(), [role("viewer")]);
    roles.set_default_role(&role("viewer")).await.unwrap();
    assert_eq!(
        roles.roles_of(new_user(storage).await).await.unwrap(),
        [role("viewer")]
    );
    // A user that does not exist has no roles.
    assert!(roles.roles_of(Uuid::now_v7()).await.unwrap().is_empty());
}

async fn grant_and_revoke(roles: &dyn RoleStore, storage: &Storage) {
    let user = new_user(storage).await;
    let other = new_user(storage).await;
    let trader = role("trader");
    assert!(roles.grant(user, &trader, NOW).await.unwrap(), "new grant");
    assert!(
        !roles.grant(user, &trader, NOW).await.unwrap(),
        "held already"
    );
    assert_eq!(
        roles.roles_of(user).await.unwrap(),
        [role("trader"), role("viewer")]
    );
    // Another user's roles are untouched.
    assert_eq!(roles.roles_of(other).await.unwrap(), [role("viewer")]);
    assert!(!roles.revoke(other, &trader).await.unwrap(), "not held");

    assert!(roles.revoke(user, &trader).await.unwrap(), "held");
    assert!(
        !roles.revoke(user, &trader).await.unwrap(),
        "revoked already"
    );
    assert_eq!(roles.roles_of(user).await.unwrap(), [role("viewer")]);
    assert!(roles.revoke(user, &role("viewer")).await.unwrap());
    assert!(roles.roles_of(user).await.unwrap().is_empty());
    // Granting again after a revocation adds it again.
    assert!(roles.grant(user, &trader, NOW).await.unwrap());
    assert_eq!(roles.roles_of(user).await.unwrap(), [role("trader")]);

    // Roles belong to existing users only (foreign key); revoking from nobody is a no-op.
    let nobody = Uuid::now_v7();
    assert!(matches!(
        roles.grant(nobody, &trader, NOW).await,
        Err(StoreError::Database(_))
    ));
    assert!(!roles.revoke(nobody, &trader).await.unwrap());
    assert!(roles.roles_of(nobody).await.unwrap().is_empty());
}

async fn roles_are_sorted_by_name(roles: &dyn RoleStore, storage: &Storage) {
    let user = new_user(storage).await;
    // Byte order, whatever the database's collation: '-' < '.' < '0' < '_' < 'a'.
    let names = [
        "desk_b", "desk.b", "desk-b", "deskb", "desk0", "admin", "zeta",
    ];
    for name in names {
        assert!(roles.grant(user, &role(name), NOW).await.unwrap());
    }
    let got: Vec<String> = roles
        .roles_of(user)
        .await
        .unwrap()
        .iter()
        .map(|r| r.as_str().to_owned())
        .collect();
    assert_eq!(
        got,
        [
            "admin", "desk-b", "desk.b", "desk0", "desk_b", "deskb", "viewer", "zeta"
        ]
    );
}

async fn concurrent_grants_add_once(roles: &Arc<dyn RoleStore>, storage: &Storage) {
    for _ in 0..8 {
        let user = new_user(storage).await;
        let grant = || {
            let roles = Arc::clone(roles);
            tokio::spawn(async move { roles.grant(user, &role("approver"), NOW).await.unwrap() })
        };
        let (a, b) = (grant(), grant());
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        assert!(a ^ b, "exactly one concurrent grant adds the role: {a} {b}");
        assert_eq!(
            roles.roles_of(user).await.unwrap(),
            [role("approver"), role("viewer")]
        );
    }
}

fn corrupt_names_are_reported() {
    assert!(matches!(
        role_names(vec!["viewer".to_owned(), "Not A Role".to_owned()]),
        Err(StoreError::Corrupt {
            table: "server_user_roles",
            ..
        })
    ));
    assert_eq!(
        role_names(vec!["b".to_owned(), "a".to_owned()]).unwrap(),
        [role("a"), role("b")]
    );
}
