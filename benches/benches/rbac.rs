//! finsec-rbac: `Policy::check` on a policy of 100 roles x 50 rules, for a principal with
//! three roles (one of which inherits two more), next to a naive interpreter that walks
//! the same roles and rules in order (the uncompiled baseline).
//!
//! - `allow`: the action is allowed by a rule of an inherited role, with an ownership
//!   condition; every deny of the principal's roles must still be ruled out.
//! - `deny_rule`: a deny rule matches (and wins over an allow of another role).
//! - `no_match`: no rule matches (default deny), the worst case for the naive walk.
#![expect(
    clippy::unwrap_used,
    reason = "benchmark setup and measured calls: any failure must abort the run"
)]

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use finsec_rbac::{Condition, Effect, Permission, Policy, Principal, Request, Resource, RoleName};

const ROLES: usize = 100;
const RULES: usize = 50;

/// Role `i` has 50 rules over resources `res{i*7+j % 300}`: mostly allows of one action,
/// every 5th a wildcard, every 10th a deny, every 3rd with an ownership condition. Role
/// `i` inherits roles `i-1` and `i-2` when `i % 10 == 0`.
fn policy() -> Policy {
    let mut doc = String::new();
    for i in 0..ROLES {
        writeln!(doc, "[roles.role{i}]").unwrap();
        if i % 10 == 0 && i >= 2 {
            writeln!(doc, "inherits = [\"role{}\", \"role{}\"]", i - 1, i - 2).unwrap();
        }
        for j in 0..RULES {
            let res = (i * 7 + j) % 300;
            let effect = if j % 10 == 9 { "deny" } else { "allow" };
            let pattern = if j % 5 == 0 {
                format!("res{res}:*")
            } else {
                format!("res{res}:action{}", j % 4)
            };
            writeln!(doc, "[[roles.role{i}.rules]]").unwrap();
            writeln!(doc, "effect = \"{effect}\"\npermissions = [\"{pattern}\"]").unwrap();
            if j % 3 == 0 {
                writeln!(doc, "conditions = [{{ kind = \"owner\" }}]").unwrap();
            }
        }
    }
    Policy::from_toml(&doc).unwrap()
}

/// The uncompiled baseline: walk each role, its ancestors, and every rule in order.
fn naive(policy: &Policy, request: &Request<'_>) -> bool {
    fn walk(policy: &Policy, role: &str, request: &Request<'_>, allow: &mut bool) -> bool {
        let Some(role) = policy.role(role) else {
            return true;
        };
        for rule in role.rules() {
            if !rule.patterns().iter().any(|p| p.matches(request.action())) {
                continue;
            }
            let owner_ok = rule.conditions().iter().all(|c| match c {
                Condition::Owner => request
                    .resource()
                    .and_then(|r| r.owner())
                    .is_some_and(|o| o == request.principal().id()),
                _ => false,
            });
            match rule.effect() {
                Effect::Deny => {
                    if owner_ok || rule.conditions().is_empty() {
                        return true;
                    }
                }
                Effect::Allow => *allow |= owner_ok,
            }
        }
        role.parents()
            .iter()
            .any(|p| walk(policy, p.as_str(), request, allow))
    }
    let mut allow = false;
    for role in request.principal().roles() {
        if walk(policy, role.as_str(), request, &mut allow) {
            return false;
        }
    }
    allow
}

fn bench(c: &mut Criterion) {
    let policy = policy();
    let principal = ["role3", "role41", "role70"]
        .into_iter()
        .fold(Principal::new("alice").unwrap(), |p, r| {
            p.with_role(RoleName::new(r).unwrap())
        });
    let own = Resource::new().with_owner("alice").unwrap();
    // role69 (inherited by role70), j = 48: res(69*7+48 % 300) = res231, action 0.
    let allow = Permission::new("res231:action0").unwrap();
    // role41, j = 9 -> res296, a deny of action1.
    let deny = Permission::new("res296:action1").unwrap();
    let none = Permission::new("nothing:here").unwrap();
    let cases = [("allow", &allow), ("deny_rule", &deny), ("no_match", &none)];

    let mut group = c.benchmark_group("rbac_check");
    for (name, action) in cases {
        let request = Request::new(&principal, action).on(&own);
        let compiled = policy.check(&request).is_allowed();
        assert_eq!(compiled, naive(&policy, &request), "{name}");
        assert_eq!(
            compiled,
            name == "allow",
            "{name}: {}",
            policy.check(&request)
        );
        group.bench_function(format!("finsec_compiled/{name}"), |b| {
            b.iter(|| black_box(&policy).check(black_box(&request)));
        });
        group.bench_function(format!("naive_walk/{name}"), |b| {
            b.iter(|| naive(black_box(&policy), black_box(&request)));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
