//! Decisions: the preset's exact permissions, deny precedence, conditions failing closed,
//! `explain` and the audit record, and programmatic policies.

#![cfg(test)]

use finsec_rbac::policy::preset;
use finsec_rbac::{
    Condition, Error, Permission, PermissionPattern, Policy, Principal, Reason, Request, Resource,
    Role, RoleName, Rule,
};

fn role(name: &str) -> RoleName {
    RoleName::new(name).unwrap()
}
fn pat(p: &str) -> PermissionPattern {
    PermissionPattern::new(p).unwrap()
}
fn perm(p: &str) -> Permission {
    Permission::new(p).unwrap()
}

/// (role, action, resource owner (None: no resource), allowed?)
const PRESET: &[(&str, &str, Option<&str>, bool)] = &[
    ("admin", "trade:execute", None, true),
    ("admin", "users:delete", None, true),
    ("admin", "reports:write", None, true),
    ("admin", "orders:write", Some("someone"), true),
    ("trader", "trade:execute", None, true),
    ("trader", "trade:cancel", None, true),
    ("trader", "trades:execute", None, false),
    ("trader", "orders:read", Some("u1"), true),
    ("trader", "orders:write", Some("u1"), true),
    ("trader", "orders:read", Some("u2"), false),
    ("trader", "orders:write", Some("u2"), false),
    ("trader", "orders:write", None, false),
    ("trader", "orders:delete", Some("u1"), false),
    ("trader", "market_data:read", None, true),
    ("trader", "market_data:write", None, false),
    ("trader", "portfolio:read", Some("u1"), true),
    ("trader", "portfolio:read", Some("u2"), false),
    ("trader", "portfolio:write", Some("u1"), false),
    ("trader", "reports:read", None, false),
    ("trader", "analytics:run", None, false),
    ("analyst", "market_data:read", None, true),
    ("analyst", "reports:read", None, true),
    ("analyst", "analytics:run", None, true),
    ("analyst", "analytics:model:train", None, true),
    ("analyst", "reports:write", None, false),
    ("analyst", "trade:execute", None, false),
    ("analyst", "orders:read", Some("u1"), false),
    ("viewer", "market_data:read", None, true),
    ("viewer", "reports:read", None, true),
    ("viewer", "market_data:write", None, false),
    ("viewer", "analytics:run", None, false),
    ("viewer", "trade:execute", None, false),
    ("viewer", "orders:read", Some("u1"), false),
];

#[test]
fn preset_grants_exactly_the_documented_permissions() {
    let policy = preset::original().unwrap();
    let mut ran = 0;
    for (r, action, owner, expected) in PRESET {
        let who = Principal::new("u1").unwrap().with_role(role(r));
        let action = perm(action);
        let resource = owner.map(|o| Resource::new().with_owner(o).unwrap());
        let mut req = Request::new(&who, &action);
        if let Some(res) = &resource {
            req = req.on(res);
        }
        let d = policy.check(&req);
        assert_eq!(
            d.is_allowed(),
            *expected,
            "{r} {action} {owner:?}: {}",
            d.explain()
        );
        ran += 1;
    }
    assert_eq!(ran, 33);
    // No role: nothing. Unknown role: nothing.
    let nobody = Principal::new("x").unwrap();
    let ghost = Principal::new("x").unwrap().with_role(role("ghost"));
    let md = perm("market_data:read");
    assert!(policy.check(&Request::new(&nobody, &md)).is_denied());
    assert!(policy.check(&Request::new(&ghost, &md)).is_denied());
}

fn two_roles() -> Policy {
    Policy::new(vec![
        Role::new(role("wide")).rule(Rule::allow(PermissionPattern::any())),
        Role::new(role("restricted"))
            .rule(Rule::deny(pat("payments:*")))
            .rule(
                Rule::deny(pat("orders:write")).when(Condition::PrincipalAttr {
                    key: "status".into(),
                    value: "suspended".into(),
                }),
            ),
    ])
    .unwrap()
}

#[test]
fn deny_wins_across_roles_and_order() {
    let policy = two_roles();
    let pay = perm("payments:send");
    for roles in [["wide", "restricted"], ["restricted", "wide"]] {
        let who = Principal::new("x")
            .unwrap()
            .with_role(role(roles[0]))
            .with_role(role(roles[1]));
        let d = policy.check(&Request::new(&who, &pay));
        assert!(matches!(d.reason(), Reason::DeniedByRule(_)));
        assert_eq!(
            d.explain(),
            "denied by rule 0 of role \"restricted\" (deny payments:*), matched by pattern \
             payments:* (deny rules win over allows)"
        );
        let rec = d.audit_record();
        assert_eq!(
            serde_json::to_value(&rec).unwrap(),
            serde_json::json!({
                "outcome": "deny", "reason": "deny_rule", "role": "restricted", "rule": 0,
                "pattern": "payments:*", "approval": null, "approvers": [],
                "break_glass": false, "detail": null
            })
        );
    }
}

#[test]
fn conditional_deny_fails_closed_on_unknowns() {
    let policy = two_roles();
    let write = perm("orders:write");
    let base = Principal::new("x")
        .unwrap()
        .with_role(role("wide"))
        .with_role(role("restricted"));
    // Attribute missing: the deny cannot be ruled out, so it applies.
    assert!(policy.check(&Request::new(&base, &write)).is_denied());
    let active = base.clone().with_attribute("status", "active").unwrap();
    assert!(policy.check(&Request::new(&active, &write)).is_allowed());
    let suspended = base.with_attribute("status", "suspended").unwrap();
    assert!(policy.check(&Request::new(&suspended, &write)).is_denied());
}

#[test]
fn allow_explain_and_audit() {
    let policy = two_roles();
    let who = Principal::new("x").unwrap().with_role(role("wide"));
    let a = perm("anything:at:all");
    let d = policy.check(&Request::new(&who, &a));
    assert!(d.is_allowed() && !d.is_denied() && !d.is_break_glass());
    assert_eq!(
        d.to_string(),
        "allowed by rule 0 of role \"wide\" (allow *), matched by pattern *"
    );
    assert_eq!(d.audit_record().outcome, "allow");
    assert_eq!(d.rule().unwrap().index(), 0);
    let none = Principal::new("y").unwrap();
    let d = policy.check(&Request::new(&none, &a));
    assert!(d.rule().is_none());
    assert_eq!(d.audit_record().reason, "no_rule_matched");
}

#[test]
fn explain_lists_conditions() {
    let policy = Policy::new(vec![
        Role::new(role("r")).rule(
            Rule::allow(pat("orders:read"))
                .or(pat("orders:list"))
                .when(Condition::Owner)
                .when(Condition::IpIn(vec!["10.0.0.0/8".parse().unwrap()])),
        ),
    ])
    .unwrap();
    let who = Principal::new("me").unwrap().with_role(role("r"));
    let mine = Resource::new().with_owner("me").unwrap();
    let list = perm("orders:list");
    let d = policy.check(
        &Request::new(&who, &list)
            .on(&mine)
            .from_ip("10.0.0.1".parse().unwrap()),
    );
    assert_eq!(
        d.explain(),
        "allowed by rule 0 of role \"r\" (allow orders:read, orders:list when resource.owner == \
         principal.id and ip in [10.0.0.0/8]), matched by pattern orders:list"
    );
}

#[test]
fn programmatic_policy_errors() {
    let dup = Policy::new(vec![Role::new(role("a")), Role::new(role("a"))]).unwrap_err();
    assert!(matches!(dup, Error::DuplicateRole { .. }));
    assert_eq!(dup.to_string(), "role \"a\" is defined more than once");
    let too_many = Policy::new(
        vec![Role::new(role("a")).rule(Rule::allow(pat("x"))); 1]
            .into_iter()
            .map(|r| {
                (0..=finsec_rbac::policy::MAX_RULES_PER_ROLE)
                    .fold(r, |r, _| r.rule(Rule::allow(pat("x"))))
            })
            .collect(),
    )
    .unwrap_err();
    assert!(
        matches!(too_many, Error::LimitExceeded { .. }),
        "{too_many}"
    );
    for bad in ["", "A", "_x", "a b", &"a".repeat(65)] {
        assert!(RoleName::new(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn without_role_and_unknown_roles_fail_closed() {
    let policy = preset::original().unwrap();
    // analyst inherits viewer: removing viewer leaves an unknown parent.
    let err = policy.without_role("viewer").unwrap().unwrap_err();
    assert_eq!(
        err.to_string(),
        "role \"analyst\" inherits unknown role \"viewer\""
    );
    assert!(policy.without_role("ghost").is_none());

    let smaller = policy.without_role("trader").unwrap().unwrap();
    assert!(smaller.role("trader").is_none());
    let both = Principal::new("x")
        .unwrap()
        .with_role(role("viewer"))
        .with_role(role("trader"));
    let md = perm("market_data:read");
    assert!(policy.check(&Request::new(&both, &md)).is_allowed());
    let d = smaller.check(&Request::new(&both, &md));
    assert!(matches!(d.reason(), Reason::UnknownRole(_)));
    assert_eq!(
        d.explain(),
        "denied: principal holds role \"trader\", which the policy does not define"
    );
    assert_eq!(d.audit_record().reason, "unknown_role");
}
