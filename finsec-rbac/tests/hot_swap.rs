//! `SharedPolicy`: policies swapped while checks run on other threads; every check sees
//! one whole policy, and a policy that fails to load never replaces the running one.

#![cfg(test)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use finsec_rbac::{Permission, Policy, Principal, Request, RoleName, SharedPolicy};

/// Generation A (`allow`): `r` inherits `pa`, which allows `x:*` and `y:*`. Generation B:
/// `r` inherits `pb`, which denies both. Padded with 100 roles so a swap replaces a
/// sizeable structure.
fn generation(allow: bool) -> Policy {
    let mut doc = String::new();
    let (parent, effect) = if allow {
        ("pa", "allow")
    } else {
        ("pb", "deny")
    };
    doc.push_str(&format!(
        "[roles.r]\ninherits = [\"{parent}\"]\nrules = [{{ effect = \"allow\", permissions = [\"x:*\", \"y:*\"] }}]\n\
         [roles.{parent}]\nrules = [{{ effect = \"{effect}\", permissions = [\"x:*\"] }}, {{ effect = \"{effect}\", permissions = [\"y:*\"] }}]\n"
    ));
    for i in 0..100 {
        doc.push_str(&format!(
            "[roles.pad{i}]\nrules = [{{ effect = \"allow\", permissions = [\"p{i}:*\"] }}]\n"
        ));
    }
    Policy::from_toml(&doc).unwrap()
}

#[test]
fn checks_during_swaps_always_see_a_whole_policy() {
    let shared = Arc::new(SharedPolicy::new(generation(true)));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let shared = Arc::clone(&shared);
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut swaps = 0u32;
            let mut allow = false;
            while !stop.load(Ordering::Relaxed) || swaps < 200 {
                shared.swap(generation(allow));
                allow = !allow;
                swaps += 1;
                if swaps >= 2_000 {
                    break;
                }
            }
            swaps
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let shared = Arc::clone(&shared);
            thread::spawn(move || {
                let who = Principal::new("u")
                    .unwrap()
                    .with_role(RoleName::new("r").unwrap());
                let x = Permission::new("x:1").unwrap();
                let y = Permission::new("y:1").unwrap();
                let (mut seen_a, mut seen_b) = (0u32, 0u32);
                for _ in 0..20_000 {
                    let d = shared.check(&Request::new(&who, &x));
                    let role = d.rule().unwrap().role().as_str().to_owned();
                    match (d.is_allowed(), role.as_str()) {
                        (true, "r" | "pa") => seen_a += 1,
                        (false, "pb") => seen_b += 1,
                        other => panic!("torn decision {other:?}: {}", d.explain()),
                    }
                    // One snapshot answers both actions from the same generation.
                    let snap = shared.load();
                    let dx = snap.check(&Request::new(&who, &x)).is_allowed();
                    let dy = snap.check(&Request::new(&who, &y)).is_allowed();
                    assert_eq!(dx, dy, "one snapshot, one generation");
                }
                (seen_a, seen_b)
            })
        })
        .collect();
    let mut totals = (0, 0);
    for r in readers {
        let (a, b) = r.join().unwrap();
        totals.0 += a;
        totals.1 += b;
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = writer.join().unwrap();
    assert!(swaps >= 200, "{swaps}");
    assert_eq!(totals.0 + totals.1, 60_000);
    assert!(
        totals.0 > 0 && totals.1 > 0,
        "both generations observed: {totals:?}"
    );
}

#[test]
fn a_failed_reload_keeps_the_running_policy() {
    let shared = SharedPolicy::new(generation(true));
    let who = Principal::new("u")
        .unwrap()
        .with_role(RoleName::new("r").unwrap());
    let x = Permission::new("x:1").unwrap();
    let err = shared
        .reload(|| Policy::from_toml("[roles.r]\ninherits = [\"ghost\"]\n"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "role \"r\" inherits unknown role \"ghost\""
    );
    assert!(shared.check(&Request::new(&who, &x)).is_allowed());
    let previous = shared.reload(|| Ok(generation(false))).unwrap();
    assert!(previous.check(&Request::new(&who, &x)).is_allowed());
    assert!(shared.check(&Request::new(&who, &x)).is_denied());
}
