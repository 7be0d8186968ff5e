//! The security monitor: sliding-window rules over the live event stream, raising
//! [`Alert`]s to an [`IncidentHandler`].
//!
//! Rules are TOML ([`Monitor::from_toml`]); [`DEFAULT_RULES`] holds the four the design
//! starts from:
//!
//! | rule | counts | per | more than | in | severity |
//! |---|---|---|---|---|---|
//! | `brute_force` | failed `auth.login` / `auth.mfa` / `auth.password_change` (a wrong current password) | target account, client IP, user | 5 | 300 s | high |
//! | `unauthorized_access` | denied requests | user, client IP | 10 | 300 s | high |
//! | `api_abuse` | requests | user, API key, client IP | 1,000 | 60 s | medium |
//! | `exfiltration` | bytes served (`bytes` detail) | user, API key | 1 GB | 3,600 s | critical |
//!
//! Each rule keeps one window per key of each kind it is `per`: brute force from many
//! addresses against one account trips the `target` window, one address spraying many
//! accounts trips the `ip` window, and unauthenticated attempts (no user) still count
//! against their target and address. The target of an event is its resource id when the
//! resource is a `user` or an `account` (the server records the attempted username's blind
//! index there).
//!
//! Time comes from the events (`observe` is deterministic: tests give explicit times and
//! never sleep). An alert for one rule and key is raised once per `cooldown`. A rule's
//! `response` (for example `block_ip`) is only a suggestion carried on the alert, and only
//! when the rule sets it: none of the defaults does, because an attacker must not be able
//! to lock a real user out by failing logins in their name. The [`IncidentHandler`] decides
//! what to do. Record [`Alert::to_event`] in the log so alerts are audited too.
//!
//! Memory is bounded: a counting window keeps at most `threshold + 1` timestamps, a sum
//! window one entry per second, and each rule tracks at most [`MAX_KEYS`] keys, dropping
//! the stalest first.
//!
//! Windows live in the `Monitor` value: several processes behind one balancer each see
//! only the events they observe. Feed one monitor every instance's events (for example
//! from the shared log) where a rule must count across instances.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::event::{AuditEvent, Detail, EventTime, Outcome, Personal, Precision, Text};

/// Keys one rule tracks at most, per kind.
pub const MAX_KEYS: usize = 100_000;

/// The default rules, in the TOML [`Monitor::from_toml`] reads.
pub const DEFAULT_RULES: &str = r#"
[[rule]]
name = "brute_force"
description = "repeated failed logins or MFA checks"
severity = "high"
actions = ["auth.login", "auth.mfa", "auth.password_change"]
outcomes = ["failure"]
per = ["target", "ip", "user"]
threshold = 5
window_secs = 300
cooldown_secs = 900

[[rule]]
name = "unauthorized_access"
description = "repeated requests refused by authorization"
severity = "high"
outcomes = ["denied"]
per = ["user", "ip"]
threshold = 10
window_secs = 300
cooldown_secs = 900

[[rule]]
name = "api_abuse"
description = "more API calls than any client should make"
severity = "medium"
actions = ["http.request"]
per = ["user", "api_key", "ip"]
threshold = 1000
window_secs = 60
cooldown_secs = 300

[[rule]]
name = "exfiltration"
description = "more data served than any client should take"
severity = "critical"
actions = ["http.request"]
sum_detail = "bytes"
per = ["user", "api_key"]
threshold = 1000000000
window_secs = 3600
cooldown_secs = 3600
"#;

/// How serious an alert is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look.
    Low,
    /// Worth a look soon.
    Medium,
    /// Act now.
    High,
    /// Act now, and wake someone.
    Critical,
}

impl Severity {
    /// The name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

/// What a rule keeps a window per.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    /// The acting user.
    User,
    /// The client address (plain, or its blind index; an encrypted address is skipped).
    Ip,
    /// The API key.
    ApiKey,
    /// The account acted on: the resource id of a `user` or `account` resource.
    Target,
}

impl Per {
    /// The name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Ip => "ip",
            Self::ApiKey => "api_key",
            Self::Target => "target",
        }
    }

    fn key(self, event: &AuditEvent) -> Option<&str> {
        let actor = event.actor();
        match self {
            Self::User => actor.user.as_deref(),
            Self::ApiKey => actor.api_key.as_deref(),
            Self::Ip => match actor.ip.as_ref()? {
                Text::Plain(ip) => Some(ip),
                Text::Personal(Personal::Keyed { hmac }) => Some(hmac),
                Text::Personal(Personal::Encrypted { .. }) => None,
            },
            Self::Target => event
                .resource()
                .filter(|r| r.kind == "user" || r.kind == "account")
                .map(|r| r.id.as_str()),
        }
    }
}

/// One rule, as configured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Its name (in alerts and the log).
    pub name: String,
    /// What it finds.
    #[serde(default)]
    pub description: String,
    /// How serious its alerts are.
    pub severity: Severity,
    /// The actions it counts (`auth.*` matches a prefix); empty: every action.
    #[serde(default)]
    pub actions: Vec<String>,
    /// The outcomes it counts; empty: every outcome.
    #[serde(default)]
    pub outcomes: Vec<Outcome>,
    /// What it keeps a window per.
    pub per: Vec<Per>,
    /// An alert is raised when the window holds more than this.
    pub threshold: u64,
    /// The window.
    pub window_secs: u64,
    /// Sum this integer detail instead of counting events.
    #[serde(default)]
    pub sum_detail: Option<String>,
    /// One alert per key at most this often (default: the window).
    #[serde(default)]
    pub cooldown_secs: Option<u64>,
    /// A response the incident handler may take (for example `block_ip`); none unless set.
    #[serde(default)]
    pub response: Option<String>,
}

impl Rule {
    fn check(&self) -> Result<()> {
        let bad = |why: &str| Err(Error::InvalidRule(format!("rule {:?}: {why}", self.name)));
        if self.name.is_empty() || self.name.len() > 64 {
            return bad("the name must be 1 to 64 bytes");
        }
        if self.per.is_empty() {
            return bad("`per` names nothing to keep windows per");
        }
        if self.window_secs == 0 || self.window_secs > 31 * 86_400 {
            return bad("the window must be 1 s to 31 days");
        }
        if self.sum_detail.is_none() && self.threshold > 1_000_000 {
            return bad("a counting threshold above 1,000,000 would keep too many timestamps");
        }
        Ok(())
    }

    fn matches(&self, event: &AuditEvent) -> bool {
        let action = event.action();
        let action_ok = self.actions.is_empty()
            || self.actions.iter().any(|a| match a.strip_suffix('*') {
                Some(prefix) => action.starts_with(prefix),
                None => a == action,
            });
        action_ok && (self.outcomes.is_empty() || self.outcomes.contains(&event.outcome()))
    }

    fn amount(&self, event: &AuditEvent) -> u64 {
        match &self.sum_detail {
            None => 1,
            Some(name) => match event.details().get(name) {
                Some(Detail::Int(n)) => u64::try_from(*n).unwrap_or(0),
                _ => 0,
            },
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rule: Vec<Rule>,
}

/// An alert a rule raised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Alert {
    /// The rule.
    pub rule: String,
    /// Its description.
    pub description: String,
    /// Its severity.
    pub severity: Severity,
    /// The kind of key the window is kept per.
    pub per: Per,
    /// The key (a user id, an address or its blind index, an API key id, a target).
    pub key: String,
    /// What the window held (events, or the summed detail).
    pub observed: u64,
    /// The rule's threshold.
    pub threshold: u64,
    /// The window, in seconds.
    pub window_secs: u64,
    /// When the alert was raised: the time of the event that tripped it, unix µs.
    pub at_us: i64,
    /// The response the rule suggests, if it sets one.
    pub response: Option<String>,
}

impl Alert {
    /// The alert as an audit event (`security.alert`) to record in the log.
    ///
    /// # Errors
    /// [`Error::Event`] if the alert cannot be encoded (a key too long for a detail).
    pub fn to_event(&self) -> Result<AuditEvent> {
        let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.at_us) * 1_000)
            .map_err(|_| Error::InvalidRule("alert time out of range".to_owned()))?;
        let mut e = AuditEvent::new(
            "security.alert",
            Outcome::Success,
            EventTime::new(at, Precision::Microsecond, "event")?,
        )?
        .with_resource("alert_rule", &self.rule)?
        .with_detail("severity", self.severity.as_str())?
        .with_detail("per", self.per.as_str())?
        .with_detail("key", self.key.as_str())?
        .with_detail("observed", i64::try_from(self.observed).unwrap_or(i64::MAX))?
        .with_detail(
            "threshold",
            i64::try_from(self.threshold).unwrap_or(i64::MAX),
        )?
        .with_detail(
            "window_secs",
            i64::try_from(self.window_secs).unwrap_or(i64::MAX),
        )?;
        if let Some(r) = &self.response {
            e = e.with_detail("response", r.as_str())?;
        }
        Ok(e)
    }
}

impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}] {}: {} {} {} over {} in {} s ({})",
            self.severity.as_str(),
            self.rule,
            self.per.as_str(),
            self.key,
            self.observed,
            self.threshold,
            self.window_secs,
            self.description
        )
    }
}

/// Where alerts go: a pager, a ticket queue, an incident table.
#[async_trait]
pub trait IncidentHandler: Send + Sync {
    /// Takes one alert.
    async fn incident(&self, alert: &Alert) -> Result<()>;
}

#[async_trait]
impl<H: IncidentHandler + ?Sized> IncidentHandler for Arc<H> {
    async fn incident(&self, alert: &Alert) -> Result<()> {
        (**self).incident(alert).await
    }
}

#[async_trait]
impl<H: IncidentHandler + ?Sized> IncidentHandler for &H {
    async fn incident(&self, alert: &Alert) -> Result<()> {
        (**self).incident(alert).await
    }
}

#[async_trait]
impl<H: IncidentHandler + ?Sized> IncidentHandler for Box<H> {
    async fn incident(&self, alert: &Alert) -> Result<()> {
        (**self).incident(alert).await
    }
}

/// An [`IncidentHandler`] that keeps alerts in memory.
#[derive(Debug, Default)]
pub struct MemoryIncidents {
    alerts: Mutex<Vec<Alert>>,
}

impl MemoryIncidents {
    /// No alerts yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every alert taken, in order.
    pub fn alerts(&self) -> Vec<Alert> {
        self.alerts.lock().clone()
    }
}

#[async_trait]
impl IncidentHandler for MemoryIncidents {
    async fn incident(&self, alert: &Alert) -> Result<()> {
        self.alerts.lock().push(alert.clone());
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Window {
    /// `(time µs, amount)`, oldest first.
    entries: VecDeque<(i64, u64)>,
    sum: u64,
    newest: i64,
    last_alert: Option<i64>,
}

#[derive(Debug, Default)]
struct RuleState {
    windows: HashMap<(Per, String), Window>,
}

/// The monitor. See the [module docs](self).
#[derive(Debug)]
pub struct Monitor {
    rules: Vec<Rule>,
    state: Vec<Mutex<RuleState>>,
}

impl Monitor {
    /// A monitor with these rules.
    ///
    /// # Errors
    /// [`Error::InvalidRule`] for a rule that cannot work, or two rules of one name.
    pub fn new(rules: Vec<Rule>) -> Result<Self> {
        for (i, r) in rules.iter().enumerate() {
            r.check()?;
            if rules.iter().take(i).any(|o| o.name == r.name) {
                return Err(Error::InvalidRule(format!(
                    "two rules are named {:?}",
                    r.name
                )));
            }
        }
        let state = rules.iter().map(|_| Mutex::default()).collect();
        Ok(Self { rules, state })
    }

    /// A monitor with the rules of a TOML document (`[[rule]]` tables; see
    /// [`DEFAULT_RULES`]).
    ///
    /// # Errors
    /// [`Error::InvalidRule`] naming the problem.
    pub fn from_toml(text: &str) -> Result<Self> {
        let file: RulesFile =
            toml::from_str(text).map_err(|e| Error::InvalidRule(e.message().to_owned()))?;
        Self::new(file.rule)
    }

    /// A monitor with [`DEFAULT_RULES`].
    ///
    /// # Errors
    /// Never in practice (the defaults are tested).
    pub fn with_default_rules() -> Result<Self> {
        Self::from_toml(DEFAULT_RULES)
    }

    /// The rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Counts one event and returns the alerts it raised.
    pub fn observe(&self, event: &AuditEvent) -> Vec<Alert> {
        let at = event.time().unix_micros();
        let mut alerts = Vec::new();
        for (rule, state) in self.rules.iter().zip(&self.state) {
            if !rule.matches(event) {
                continue;
            }
            let amount = rule.amount(event);
            if amount == 0 {
                continue;
            }
            let window_us = i64::try_from(rule.window_secs)
                .unwrap_or(i64::MAX / 1_000_000)
                .saturating_mul(1_000_000);
            let cooldown_us = i64::try_from(rule.cooldown_secs.unwrap_or(rule.window_secs))
                .unwrap_or(i64::MAX / 1_000_000)
                .saturating_mul(1_000_000);
            let mut state = state.lock();
            for per in &rule.per {
                let Some(key) = per.key(event) else {
                    continue;
                };
                if state.windows.len() >= MAX_KEYS
                    && !state.windows.contains_key(&(*per, key.to_owned()))
                {
                    evict(&mut state.windows, at.saturating_sub(window_us));
                }
                let w = state.windows.entry((*per, key.to_owned())).or_default();
                w.newest = w.newest.max(at);
                let horizon = w.newest.saturating_sub(window_us);
                while w.entries.front().is_some_and(|(t, _)| *t <= horizon) {
                    if let Some((_, a)) = w.entries.pop_front() {
                        w.sum -= a;
                    }
                }
                match (&rule.sum_detail, w.entries.back_mut()) {
                    // A sum: one entry per second.
                    (Some(_), Some(last)) if last.0 / 1_000_000 == at / 1_000_000 => {
                        last.1 = last.1.saturating_add(amount);
                    }
                    _ => w.entries.push_back((at, amount)),
                }
                w.sum = w.sum.saturating_add(amount);
                if rule.sum_detail.is_none() {
                    // A count above the threshold is known from the newest threshold + 1.
                    while w.entries.len() as u64 > rule.threshold.saturating_add(1) {
                        if let Some((_, a)) = w.entries.pop_front() {
                            w.sum -= a;
                        }
                    }
                }
                if w.sum > rule.threshold
                    && w.last_alert
                        .is_none_or(|t| at >= t.saturating_add(cooldown_us))
                {
                    w.last_alert = Some(at);
                    alerts.push(Alert {
                        rule: rule.name.clone(),
                        description: rule.description.clone(),
                        severity: rule.severity,
                        per: *per,
                        key: key.to_owned(),
                        observed: w.sum,
                        threshold: rule.threshold,
                        window_secs: rule.window_secs,
                        at_us: at,
                        response: rule.response.clone(),
                    });
                }
            }
        }
        alerts
    }

    /// Counts one event and hands each alert it raised to `handler`.
    ///
    /// # Errors
    /// The first error of the handler (the other alerts are still handed over).
    pub async fn process<H: IncidentHandler + ?Sized>(
        &self,
        event: &AuditEvent,
        handler: &H,
    ) -> Result<Vec<Alert>> {
        let alerts = self.observe(event);
        let mut first_error = None;
        for a in &alerts {
            if let Err(e) = handler.incident(a).await {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(alerts),
        }
    }

    /// Keys tracked now, over all rules.
    pub fn tracked_keys(&self) -> usize {
        self.state.iter().map(|s| s.lock().windows.len()).sum()
    }
}

/// Makes room: drops windows with nothing newer than `horizon`, then, if still full, the
/// stalest tenth.
fn evict(windows: &mut HashMap<(Per, String), Window>, horizon: i64) {
    windows.retain(|_, w| w.newest > horizon || w.last_alert.is_some_and(|t| t > horizon));
    if windows.len() >= MAX_KEYS {
        let mut ages: Vec<i64> = windows.values().map(|w| w.newest).collect();
        let cut = ages.len() / 10;
        ages.select_nth_unstable(cut);
        let limit = ages.get(cut).copied().unwrap_or(i64::MIN);
        windows.retain(|_, w| w.newest > limit);
    }
}
