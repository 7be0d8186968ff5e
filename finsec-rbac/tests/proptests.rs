//! Properties of the policy semantics over random policies and requests:
//! a deny always wins, adding an allow never removes access, removing a role never adds
//! access, and wildcard matching agrees with a naive reference matcher.

#![cfg(test)]

use std::net::IpAddr;

use finsec_rbac::{
    Condition, Permission, PermissionPattern, Policy, Principal, Request, Resource, Role, RoleName,
    Rule,
};
use proptest::prelude::*;

const SEGMENTS: &[&str] = &["a", "b", "c", "trade", "trades"];

fn segment() -> impl Strategy<Value = String> {
    prop::sample::select(SEGMENTS).prop_map(str::to_owned)
}

fn pattern_segment() -> impl Strategy<Value = String> {
    prop_oneof![3 => segment(), 1 => Just("*".to_owned())]
}

fn permission_text() -> impl Strategy<Value = String> {
    prop::collection::vec(segment(), 1..=4).prop_map(|s| s.join(":"))
}

fn pattern_text() -> impl Strategy<Value = String> {
    prop::collection::vec(pattern_segment(), 1..=4).prop_map(|s| s.join(":"))
}

/// Policies and requests use fewer, shorter names so that rules often match.
fn small_segment() -> impl Strategy<Value = String> {
    prop::sample::select(&["a", "b", "trade"][..]).prop_map(str::to_owned)
}

fn small_permission() -> impl Strategy<Value = String> {
    prop::collection::vec(small_segment(), 1..=3).prop_map(|s| s.join(":"))
}

fn small_pattern() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![3 => small_segment(), 1 => Just("*".to_owned())],
        1..=3,
    )
    .prop_map(|s| s.join(":"))
}

/// The reference: a recursive reading of the documented rules.
fn naive(pattern: &[&str], permission: &[&str]) -> bool {
    match (pattern, permission) {
        ([], []) => true,
        (["*"], rest) => !rest.is_empty(),
        ([p, prest @ ..], [s, srest @ ..]) => (*p == "*" || p == s) && naive(prest, srest),
        _ => false,
    }
}

#[derive(Debug, Clone)]
enum Cond {
    Owner,
    DeskFx,
    Office,
}

#[derive(Debug, Clone)]
struct RuleSpec {
    deny: bool,
    patterns: Vec<String>,
    conditions: Vec<Cond>,
}

#[derive(Debug, Clone)]
struct PolicySpec {
    /// Role i's rules and parents (parents always have a smaller index: no cycles).
    roles: Vec<(Vec<RuleSpec>, Vec<usize>)>,
}

#[derive(Debug, Clone)]
struct Req {
    roles: Vec<usize>,
    action: String,
    desk: Option<&'static str>,
    owner: Option<&'static str>,
    ip: Option<&'static str>,
}

fn cond() -> impl Strategy<Value = Cond> {
    prop_oneof![Just(Cond::Owner), Just(Cond::DeskFx), Just(Cond::Office)]
}

fn rule_spec() -> impl Strategy<Value = RuleSpec> {
    (
        prop::bool::weighted(0.25),
        prop::collection::vec(small_pattern(), 1..=2),
        prop::collection::vec(cond(), 0..=2),
    )
        .prop_map(|(deny, patterns, conditions)| RuleSpec {
            deny,
            patterns,
            conditions,
        })
}

fn policy_spec() -> impl Strategy<Value = PolicySpec> {
    prop::collection::vec(
        (
            prop::collection::vec(rule_spec(), 0..=4),
            prop::collection::vec(0usize..8, 0..=2),
        ),
        1..=6,
    )
    .prop_map(|roles| PolicySpec {
        roles: roles
            .into_iter()
            .enumerate()
            .map(|(i, (rules, parents))| {
                let mut ps: Vec<usize> = parents.into_iter().filter(|&p| p < i).collect();
                ps.dedup();
                (rules, ps)
            })
            .collect(),
    })
}

fn req() -> impl Strategy<Value = Req> {
    (
        prop::collection::vec(0usize..6, 0..=3),
        small_permission(),
        prop::sample::select(vec![None, Some("fx"), Some("rates")]),
        prop::sample::select(vec![None, Some("me"), Some("other")]),
        prop::sample::select(vec![None, Some("10.1.1.1"), Some("192.0.2.1")]),
    )
        .prop_map(|(roles, action, desk, owner, ip)| Req {
            roles,
            action,
            desk,
            owner,
            ip,
        })
}

fn name(i: usize) -> RoleName {
    RoleName::new(&format!("r{i}")).unwrap()
}

fn build_rule(spec: &RuleSpec) -> Rule {
    let mut patterns = spec
        .patterns
        .iter()
        .map(|p| PermissionPattern::new(p).unwrap());
    let first = patterns.next().unwrap();
    let mut rule = if spec.deny {
        Rule::deny(first)
    } else {
        Rule::allow(first)
    };
    for p in patterns {
        rule = rule.or(p);
    }
    for c in &spec.conditions {
        rule = rule.when(match c {
            Cond::Owner => Condition::Owner,
            Cond::DeskFx => Condition::PrincipalAttr {
                key: "desk".into(),
                value: "fx".into(),
            },
            Cond::Office => Condition::IpIn(vec!["10.0.0.0/8".parse().unwrap()]),
        });
    }
    rule
}

fn build(spec: &PolicySpec) -> Policy {
    Policy::new(
        spec.roles
            .iter()
            .enumerate()
            .map(|(i, (rules, parents))| {
                let role = parents
                    .iter()
                    .fold(Role::new(name(i)), |r, &p| r.inherits(name(p)));
                rules.iter().fold(role, |r, s| r.rule(build_rule(s)))
            })
            .collect(),
    )
    .unwrap()
}

/// Points the request's roles at roles of a policy with `n` roles.
fn fit(mut r: Req, n: usize) -> Req {
    for i in &mut r.roles {
        *i %= n;
    }
    r
}

/// Decides `r` against `policy`; `true` if allowed.
fn allowed(policy: &Policy, r: &Req) -> bool {
    let mut who = r
        .roles
        .iter()
        .fold(Principal::new("me").unwrap(), |p, &i| p.with_role(name(i)));
    if let Some(d) = r.desk {
        who = who.with_attribute("desk", d).unwrap();
    }
    let action = Permission::new(&r.action).unwrap();
    let resource = r.owner.map(|o| Resource::new().with_owner(o).unwrap());
    let mut request = Request::new(&who, &action);
    if let Some(res) = &resource {
        request = request.on(res);
    }
    if let Some(ip) = r.ip {
        request = request.from_ip(ip.parse::<IpAddr>().unwrap());
    }
    policy.check(&request).is_allowed()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn wildcard_matching_agrees_with_reference(p in pattern_text(), s in permission_text()) {
        let pattern = PermissionPattern::new(&p).unwrap();
        let permission = Permission::new(&s).unwrap();
        let ps: Vec<&str> = p.split(':').collect();
        let ss: Vec<&str> = s.split(':').collect();
        prop_assert_eq!(pattern.matches(&permission), naive(&ps, &ss), "{} vs {}", p, s);
    }

    #[test]
    fn parsers_never_panic_and_round_trip(s in "[a-z*:_ .\\-]{0,40}|\\PC{0,40}") {
        if let Ok(p) = Permission::new(&s) {
            prop_assert_eq!(p.as_str(), s.as_str());
            prop_assert!(PermissionPattern::new(&s).unwrap().matches(&p));
        }
        if let Ok(p) = PermissionPattern::new(&s) {
            prop_assert_eq!(p.to_string(), s.clone());
        }
        let _ = Policy::from_toml(&s);
        let _ = Policy::from_yaml(&s);
        let _ = Policy::from_json(&s);
        let _ = RoleName::new(&s);
    }

    #[test]
    fn a_deny_always_wins(spec in policy_spec(), r in req(), target in 0usize..6) {
        // An unconditional deny for the action, added to one of the principal's roles or
        // to an ancestor of one, denies the request whatever else the policy says.
        let mut spec = spec;
        let n = spec.roles.len();
        let mut r = fit(r, n);
        let target = target % n;
        r.roles.push(n - 1);
        // Make the target an ancestor of role n-1 (or n-1 itself).
        if target != n - 1
            && let Some((_, parents)) = spec.roles.last_mut()
        {
            parents.push(target);
        }
        let deny = RuleSpec { deny: true, patterns: vec![r.action.clone()], conditions: vec![] };
        spec.roles[target].0.push(deny);
        prop_assert!(!allowed(&build(&spec), &r));
    }

    #[test]
    fn conditional_deny_wins_whenever_it_applies(spec in policy_spec(), r in req()) {
        let mut spec = spec;
        let mut r = fit(r, spec.roles.len());
        r.roles.push(0);
        let deny = RuleSpec {
            deny: true,
            patterns: vec!["*".into()],
            conditions: vec![Cond::DeskFx],
        };
        spec.roles[0].0.push(deny);
        let policy = build(&spec);
        if r.desk != Some("rates") {
            // desk is fx or unknown: the deny applies (unknown fails closed).
            prop_assert!(!allowed(&policy, &r));
        }
    }

    #[test]
    fn adding_an_allow_never_removes_access(
        spec in policy_spec(),
        r in req(),
        extra in rule_spec(),
        target in 0usize..6,
    ) {
        let r = fit(r, spec.roles.len());
        let before = allowed(&build(&spec), &r);
        let mut spec2 = spec.clone();
        let n = spec2.roles.len();
        let mut extra = extra;
        extra.deny = false;
        spec2.roles[target % n].0.push(extra);
        let after = allowed(&build(&spec2), &r);
        prop_assert!(!before || after);
    }

    #[test]
    fn removing_a_role_never_adds_access(spec in policy_spec(), r in req(), target in 0usize..6) {
        let policy = build(&spec);
        let r = fit(r, spec.roles.len());
        let victim = format!("r{}", target % spec.roles.len());
        match policy.without_role(&victim).unwrap() {
            Ok(smaller) => prop_assert!(!allowed(&smaller, &r) || allowed(&policy, &r)),
            // Another role inherits from the victim: removal is refused, like a load.
            Err(e) => prop_assert!(e.to_string().contains("inherits unknown role"), "{}", e),
        }
    }

    #[test]
    fn removing_a_leaf_role_never_adds_access(spec in policy_spec(), r in req()) {
        // The last role is never a parent, so its removal always compiles.
        let policy = build(&spec);
        let r = fit(r, spec.roles.len());
        let victim = format!("r{}", spec.roles.len() - 1);
        let smaller = policy.without_role(&victim).unwrap().unwrap();
        prop_assert!(!allowed(&smaller, &r) || allowed(&policy, &r));
    }
}

/// The generators are not vacuous: a fair share of random requests is allowed (otherwise
/// the monotonicity properties would hold trivially).
#[test]
fn generated_requests_are_often_allowed() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = (policy_spec(), req());
    let total = 1000;
    let mut allowed_count = 0;
    for _ in 0..total {
        let (spec, r) = strategy.new_tree(&mut runner).unwrap().current();
        let r = fit(r, spec.roles.len());
        if allowed(&build(&spec), &r) {
            allowed_count += 1;
        }
    }
    eprintln!("allowed {allowed_count} of {total}");
    assert!(
        allowed_count >= total / 10,
        "only {allowed_count} of {total} allowed"
    );
}
