#![cfg(test)]
//! The security monitor with explicit event times: the default rules, windows per target,
//! address and user, sliding, cooldown, opt-in responses, bad rules, and bounded memory.

use finsec_audit::monitor::{DEFAULT_RULES, MAX_KEYS};
use finsec_audit::{
    Actor, AuditEvent, EventTime, MemoryIncidents, Monitor, Outcome, Per, Precision, Severity,
};
use time::OffsetDateTime;

const T0: i64 = 1_800_000_000;

fn at(secs: i64) -> EventTime {
    EventTime::new(
        OffsetDateTime::from_unix_timestamp(T0 + secs).unwrap(),
        Precision::Microsecond,
        "test",
    )
    .unwrap()
}

fn login_failure(secs: i64, ip: &str, target: &str) -> AuditEvent {
    AuditEvent::new("auth.login", Outcome::Failure, at(secs))
        .unwrap()
        .with_actor(Actor {
            ip: Some(ip.into()),
            ..Actor::default()
        })
        .unwrap()
        .with_resource("user", target)
        .unwrap()
}

fn request(secs: i64, user: &str, outcome: Outcome, bytes: i64) -> AuditEvent {
    AuditEvent::new("http.request", outcome, at(secs))
        .unwrap()
        .with_actor(Actor {
            user: Some(user.to_owned()),
            ip: Some("198.51.100.9".into()),
            ..Actor::default()
        })
        .unwrap()
        .with_detail("bytes", bytes)
        .unwrap()
}

fn fired(m: &Monitor, events: &[AuditEvent]) -> Vec<(String, Per, String)> {
    events
        .iter()
        .flat_map(|e| m.observe(e))
        .map(|a| (a.rule, a.per, a.key))
        .collect()
}

#[test]
fn the_default_rules_are_the_four_of_the_design_and_take_no_action() {
    let m = Monitor::with_default_rules().unwrap();
    let rules: Vec<(&str, Severity, u64, u64)> = m
        .rules()
        .iter()
        .map(|r| (r.name.as_str(), r.severity, r.threshold, r.window_secs))
        .collect();
    assert_eq!(
        rules,
        vec![
            ("brute_force", Severity::High, 5, 300),
            ("unauthorized_access", Severity::High, 10, 300),
            ("api_abuse", Severity::Medium, 1_000, 60),
            ("exfiltration", Severity::Critical, 1_000_000_000, 3_600),
        ]
    );
    assert!(m.rules().iter().all(|r| r.response.is_none()));
    assert!(DEFAULT_RULES.contains("[[rule]]"));
}

#[test]
fn brute_force_from_many_addresses_against_one_account() {
    let m = Monitor::with_default_rules().unwrap();
    let five: Vec<AuditEvent> = (0..5)
        .map(|i| login_failure(i * 10, &format!("203.0.113.{i}"), "bidx-alice"))
        .collect();
    assert!(fired(&m, &five).is_empty(), "five failures are allowed");
    let sixth = login_failure(60, "203.0.113.77", "bidx-alice");
    let alerts = m.observe(&sixth);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(
        (a.rule.as_str(), a.per, a.key.as_str(), a.observed),
        ("brute_force", Per::Target, "bidx-alice", 6)
    );
    assert_eq!(a.severity, Severity::High);
    assert_eq!(a.at_us, (T0 + 60) * 1_000_000);
    assert_eq!(a.response, None);
}

#[test]
fn one_address_spraying_many_accounts_unauthenticated() {
    let m = Monitor::with_default_rules().unwrap();
    let spray: Vec<AuditEvent> = (0..6)
        .map(|i| login_failure(i, "192.0.2.1", &format!("bidx-{i}")))
        .collect();
    assert_eq!(
        fired(&m, &spray),
        vec![("brute_force".to_owned(), Per::Ip, "192.0.2.1".to_owned())]
    );
}

#[test]
fn the_window_slides() {
    let m = Monitor::with_default_rules().unwrap();
    let mut events: Vec<AuditEvent> = (0..5)
        .map(|i| login_failure(i, &format!("203.0.113.{i}"), "bidx-bob"))
        .collect();
    // 300 s after the first: the first has left the window (it is `(t - 300 s, t]`).
    events.push(login_failure(300, "203.0.113.9", "bidx-bob"));
    assert!(fired(&m, &events).is_empty());
    // One more at the same time: six in the window.
    assert_eq!(
        fired(&m, &[login_failure(300, "203.0.113.10", "bidx-bob")]).len(),
        1
    );
}

#[test]
fn one_alert_per_key_per_cooldown() {
    let m = Monitor::with_default_rules().unwrap();
    let burst = |from: i64| -> Vec<AuditEvent> {
        (0..20)
            .map(|i| login_failure(from + i, &format!("203.0.113.{i}"), "bidx-carol"))
            .collect()
    };
    assert_eq!(fired(&m, &burst(0)).len(), 1);
    assert_eq!(fired(&m, &burst(600)).len(), 0, "within the 900 s cooldown");
    assert_eq!(fired(&m, &burst(1_000)).len(), 1, "after the cooldown");
}

#[test]
fn denials_abuse_and_exfiltration() {
    let m = Monitor::with_default_rules().unwrap();
    let denied: Vec<AuditEvent> = (0..11)
        .map(|i| request(i, "mallory", Outcome::Denied, 100))
        .collect();
    let mut got = fired(&m, &denied);
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                "unauthorized_access".to_owned(),
                Per::User,
                "mallory".to_owned()
            ),
            (
                "unauthorized_access".to_owned(),
                Per::Ip,
                "198.51.100.9".to_owned()
            ),
        ]
    );

    let m = Monitor::with_default_rules().unwrap();
    let calls: Vec<AuditEvent> = (0..1_001)
        .map(|i| request(i / 20, "scraper", Outcome::Success, 10))
        .collect();
    let got = fired(&m, &calls);
    assert!(
        got.contains(&("api_abuse".to_owned(), Per::User, "scraper".to_owned())),
        "{got:?}"
    );
    assert_eq!(
        m.observe(&request(49, "other", Outcome::Success, 1)),
        vec![]
    );

    let m = Monitor::with_default_rules().unwrap();
    let big: Vec<AuditEvent> = (0..4)
        .map(|i| request(i * 600, "exporter", Outcome::Success, 300_000_000))
        .collect();
    let alerts: Vec<_> = big.iter().flat_map(|e| m.observe(e)).collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].rule, "exfiltration");
    assert_eq!(alerts[0].severity, Severity::Critical);
    assert_eq!(alerts[0].observed, 1_200_000_000);
}

#[tokio::test]
async fn responses_are_opt_in_and_alerts_are_recorded_and_handled() {
    let m = Monitor::from_toml(
        r#"
        [[rule]]
        name = "lockout"
        severity = "high"
        actions = ["auth.*"]
        outcomes = ["failure"]
        per = ["ip"]
        threshold = 2
        window_secs = 60
        response = "block_ip"
        "#,
    )
    .unwrap();
    let incidents = MemoryIncidents::new();
    let mut raised = Vec::new();
    for i in 0..3 {
        raised.extend(
            m.process(&login_failure(i, "192.0.2.50", "bidx-x"), &incidents)
                .await
                .unwrap(),
        );
    }
    assert_eq!(incidents.alerts(), raised);
    assert_eq!(raised.len(), 1);
    assert_eq!(raised[0].response.as_deref(), Some("block_ip"));
    let event = raised[0].to_event().unwrap();
    assert_eq!(event.action(), "security.alert");
    let text = String::from_utf8(event.to_canonical().unwrap()).unwrap();
    assert!(text.contains("\"response\":\"block_ip\""), "{text}");
    assert!(text.contains("\"severity\":\"high\""), "{text}");
    assert_eq!(
        AuditEvent::from_canonical(text.as_bytes()).unwrap(),
        event,
        "an alert event round-trips"
    );
}

#[test]
fn bad_rules_are_refused_with_the_reason() {
    let cases = [
        (
            "[[rule]]\nname = \"x\"\nseverity = \"high\"\nper = []\nthreshold = 1\nwindow_secs = 1",
            "per",
        ),
        (
            "[[rule]]\nname = \"x\"\nseverity = \"high\"\nper = [\"ip\"]\nthreshold = 1\nwindow_secs = 0",
            "window",
        ),
        (
            "[[rule]]\nname = \"x\"\nseverity = \"loud\"\nper = [\"ip\"]\nthreshold = 1\nwindow_secs = 1",
            "loud",
        ),
        (
            "[[rule]]\nname = \"x\"\nseverity = \"high\"\nper = [\"ip\"]\nthreshold = 1\nwindow_secs = 1\ncolour = 1",
            "colour",
        ),
        (
            "[[rule]]\nname = \"x\"\nseverity = \"high\"\nper = [\"ip\"]\nthreshold = 1\nwindow_secs = 1\n[[rule]]\nname = \"x\"\nseverity = \"low\"\nper = [\"ip\"]\nthreshold = 1\nwindow_secs = 1",
            "two rules",
        ),
        (
            "[[rule]]\nname = \"x\"\nseverity = \"high\"\nper = [\"ip\"]\nthreshold = 5000000\nwindow_secs = 1",
            "threshold",
        ),
    ];
    let mut ran = 0;
    for (toml, needle) in cases {
        let err = Monitor::from_toml(toml).unwrap_err().to_string();
        assert!(err.contains(needle), "{needle}: {err}");
        ran += 1;
    }
    assert_eq!(ran, 6);
}

#[test]
fn memory_stays_bounded_under_a_flood_of_keys() {
    let m = Monitor::from_toml(
        "[[rule]]\nname = \"x\"\nseverity = \"low\"\nper = [\"ip\"]\nthreshold = 3\nwindow_secs = 60",
    )
    .unwrap();
    for i in 0..(MAX_KEYS + MAX_KEYS / 2) {
        let ip = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
        let e = login_failure(i64::try_from(i / 1_000).unwrap(), &ip, "t");
        m.observe(&e);
    }
    assert!(m.tracked_keys() <= MAX_KEYS, "{}", m.tracked_keys());
}
