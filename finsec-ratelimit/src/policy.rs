//! Named policies: which quotas apply to a kind of request, and what each is keyed by.
//!
//! A [`RateLimitPolicy`] is a name and a list of [`Rule`]s; each rule says what it counts per (the
//! client IP, the account, the API key, the authenticated subject, or a custom identity, see
//! [`KeyKind`]) and its [`Quota`]. The `login` policy, for example, allows 20 attempts a minute
//! per IP and 5 a minute per account. A [`Policies`] registry holds them by name and is loaded
//! from configuration.
//!
//! # Configuration
//!
//! The serde model ([`PoliciesConfig`]) is format-agnostic; the server reads it from TOML, and
//! JSON works the same:
//!
//! ```
//! use finsec_ratelimit::policy::{Policies, PoliciesConfig};
//!
//! let config: PoliciesConfig = serde_json::from_str(r#"{
//!     "login": [ {"per": "ip", "limit": 20, "period": "1m"},
//!                {"per": "account", "limit": 5, "period": "1m"} ],
//!     "api":   [ {"per": "key", "limit": 10, "period": "1s", "burst": 20} ]
//! }"#).unwrap();
//! let policies = Policies::from_config(&config)?;
//! assert_eq!(policies.get("api")?.rules()[0].quota().burst(), 20);
//! # Ok::<(), finsec_ratelimit::Error>(())
//! ```
//!
//! Each rule has:
//!
//! | field       | meaning                                                                   |
//! |-------------|---------------------------------------------------------------------------|
//! | `per`       | `ip`, `account`, `key` (or `api_key`), `subject`, or `custom:<name>`       |
//! | `limit`     | requests per period, at least 1                                           |
//! | `period`    | a whole number and a unit: `ms`, `s`, `m`, `h`, `d` (`500ms`, `1m`, `1d`)  |
//! | `burst`     | optional, GCRA only: requests a quiet key may make at once (default `limit`) |
//! | `algorithm` | optional: `gcra` (default), `sliding_window` or `fixed_window`            |
//! | `name`      | optional quota name for headers (default `<policy>.<per>`, e.g. `login.ip`) |
//!
//! Everything is checked when loading: an unknown algorithm or key kind, a bad period, a zero
//! limit, a burst on a window algorithm, a duplicate policy name or a duplicate quota name
//! within a policy is an [`Error::Config`] whose `path` names the place
//! (`policies.api[0].period`). Unknown fields are refused by the format (`deny_unknown_fields`).
//!
//! # Built-in defaults and nginx
//!
//! [`Policies::defaults`] reproduces the original deployment's nginx zones, plus a per-account
//! login limit and a global ceiling per IP:
//!
//! | policy   | rules                                                   |
//! |----------|---------------------------------------------------------|
//! | `global` | 50 r/s, burst 100, per IP (a flood ceiling, not a business limit) |
//! | `api`    | 10 r/s, burst 20, per API key (nginx `rate=10r/s burst=20`) |
//! | `auth`   | 1 r/s, burst 5, per IP (nginx `rate=1r/s burst=5`)      |
//! | `login`  | 20/min per IP, then 5/min per account                   |
//!
//! **How nginx's `burst` maps onto GCRA.** nginx's `limit_req` is a leaky bucket counting the
//! *excess* over the rate: a request is refused when the excess would exceed `burst`, and the
//! first request of a quiet client has an excess of zero. With `nodelay` it therefore admits
//! `burst + 1` requests at once and then one per `1/rate`; without `nodelay` it queues the
//! excess and releases it at the rate. GCRA with burst `B` admits `B` requests at once (its
//! tolerance is `B` emission intervals) and then one per emission interval, and never queues: a
//! request over the limit is denied with a `retry_after`. The same long-run rate, then, and a
//! burst one smaller than nginx's: the defaults keep nginx's numbers (`burst = 20`), which is
//! one request stricter at the very start of a burst; configure `burst = N + 1` to admit
//! exactly what nginx's `burst=N nodelay` admits.
//!
//! # Keys
//!
//! Rules with the same [`KeyKind`] share one key, `<policy>:<kind>:<identity>` (for example
//! `login:ip:203.0.113.9`), and are decided together, atomically. IPv6 clients are keyed by
//! their `/64` network, since one subscriber usually holds a whole `/64` and could otherwise
//! take a fresh address for every request. See [`RateLimiter::check_policy`] for how the keys of
//! a policy are checked.
//!
//! [`RateLimiter::check_policy`]: crate::failure::RateLimiter::check_policy

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::quota::{Algorithm, Quota};

/// The longest policy name, in bytes.
pub const MAX_POLICY_NAME_LEN: usize = 31;
/// The longest custom key kind name, in bytes.
pub const MAX_CUSTOM_KIND_LEN: usize = 32;

/// What a rule counts per.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum KeyKind {
    /// The client's IP address (IPv6 by `/64`), from the
    /// [client-IP extractor](crate::client_ip).
    Ip,
    /// The account (for example the user name or account id a login names).
    Account,
    /// The API key's id (never the secret).
    ApiKey,
    /// The authenticated subject (the user id of a session or token).
    Subject,
    /// A custom identity, for example a tenant; the name is 1 to [`MAX_CUSTOM_KIND_LEN`] bytes
    /// of ASCII letters, digits, `-` and `_`.
    Custom(String),
}

impl KeyKind {
    /// The name used in keys, default quota names and configuration: `ip`, `account`, `key`,
    /// `subject`, or the custom name.
    pub fn label(&self) -> &str {
        match self {
            Self::Ip => "ip",
            Self::Account => "account",
            Self::ApiKey => "key",
            Self::Subject => "subject",
            Self::Custom(name) => name,
        }
    }

    /// A custom key kind.
    ///
    /// # Errors
    /// [`Error::Config`] if the name is empty, too long, has another character, or is one of
    /// the built-in kinds.
    pub fn custom(name: &str) -> Result<Self> {
        check_custom_kind(name).map_err(|reason| Error::Config {
            path: format!("custom:{name}"),
            reason,
        })?;
        Ok(Self::Custom(name.to_owned()))
    }

    /// Parses the `per` field of a rule.
    fn parse(s: &str) -> std::result::Result<Self, String> {
        match s {
            "ip" => Ok(Self::Ip),
            "account" => Ok(Self::Account),
            "key" | "api_key" => Ok(Self::ApiKey),
            "subject" => Ok(Self::Subject),
            other => match other.strip_prefix("custom:") {
                Some(name) => {
                    check_custom_kind(name)?;
                    Ok(Self::Custom(name.to_owned()))
                }
                None => Err(format!(
                    "unknown key kind {other:?}; expected ip, account, key, subject or \
                     custom:<name>"
                )),
            },
        }
    }

    fn config_name(&self) -> String {
        match self {
            Self::Custom(name) => format!("custom:{name}"),
            other => other.label().to_owned(),
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.config_name())
    }
}

fn check_custom_kind(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name.len() > MAX_CUSTOM_KIND_LEN {
        return Err(format!(
            "custom key kind must be 1 to {MAX_CUSTOM_KIND_LEN} bytes, got {}",
            name.len()
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
    {
        return Err(format!(
            "custom key kind {name:?} may only hold ASCII letters, digits, '-' and '_'"
        ));
    }
    if matches!(name, "ip" | "account" | "key" | "api_key" | "subject") {
        return Err(format!("custom key kind {name:?} is a built-in kind"));
    }
    Ok(())
}

/// One quota of a policy and what it is keyed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    kind: KeyKind,
    quota: Quota,
}

impl Rule {
    /// A rule counting `quota` per `kind`.
    pub fn new(kind: KeyKind, quota: Quota) -> Self {
        Self { kind, quota }
    }

    /// What the rule counts per.
    pub fn kind(&self) -> &KeyKind {
        &self.kind
    }

    /// Its quota.
    pub fn quota(&self) -> &Quota {
        &self.quota
    }
}

/// Who a request is, for building a policy's keys. Set what the request has; a rule whose
/// identity is missing makes the check fail with [`Error::Config`] rather than silently skip a
/// limit.
///
/// Put only identifiers here, never secrets: the API key's id, not the key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    ip: Option<IpAddr>,
    account: Option<String>,
    api_key: Option<String>,
    subject: Option<String>,
    custom: BTreeMap<String, String>,
}

impl Identity {
    /// No identity yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// With the client's IP address (normalised: an IPv4-mapped IPv6 address is IPv4).
    pub fn with_ip(mut self, ip: IpAddr) -> Self {
        self.ip = Some(ip.to_canonical());
        self
    }

    /// With the account.
    pub fn with_account(mut self, account: impl Into<String>) -> Self {
        self.account = Some(account.into());
        self
    }

    /// With the API key's id.
    pub fn with_api_key(mut self, key_id: impl Into<String>) -> Self {
        self.api_key = Some(key_id.into());
        self
    }

    /// With the authenticated subject.
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// With a custom identity, for rules `per = "custom:<kind>"`.
    pub fn with_custom(mut self, kind: impl Into<String>, value: impl Into<String>) -> Self {
        self.custom.insert(kind.into(), value.into());
        self
    }

    /// The client IP, if set.
    pub fn ip(&self) -> Option<IpAddr> {
        self.ip
    }

    /// The key part for `kind`, if the identity has it.
    pub fn key_part(&self, kind: &KeyKind) -> Option<String> {
        match kind {
            KeyKind::Ip => self.ip.map(ip_key),
            KeyKind::Account => self.account.clone(),
            KeyKind::ApiKey => self.api_key.clone(),
            KeyKind::Subject => self.subject.clone(),
            KeyKind::Custom(name) => self.custom.get(name).cloned(),
        }
    }
}

/// The key part of an IP address: IPv4 as is, IPv6 by its `/64` network.
pub fn ip_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let net = ipnet::Ipv6Net::new(v6, 64).map(|n| n.trunc());
            match net {
                Ok(net) => net.to_string(),
                Err(_) => v6.to_string(),
            }
        }
    }
}

/// The quotas of a policy that share one key kind, decided together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleGroup {
    kind: KeyKind,
    quotas: Vec<Quota>,
}

impl RuleGroup {
    /// What the group counts per.
    pub fn kind(&self) -> &KeyKind {
        &self.kind
    }

    /// Its quotas, in configuration order.
    pub fn quotas(&self) -> &[Quota] {
        &self.quotas
    }
}

/// A named list of rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitPolicy {
    name: Arc<str>,
    rules: Vec<Rule>,
    groups: Vec<RuleGroup>,
}

impl RateLimitPolicy {
    /// A policy of `rules`, checked in order (grouped by key kind, in the order each kind first
    /// appears).
    ///
    /// # Errors
    /// [`Error::Config`] if the name is not 1 to [`MAX_POLICY_NAME_LEN`] bytes of ASCII
    /// letters, digits, `-` and `_`, there is no rule, or two quotas share a name.
    pub fn new(name: &str, rules: Vec<Rule>) -> Result<Self> {
        let path = format!("policies.{name}");
        check_policy_name(name).map_err(|reason| Error::Config {
            path: path.clone(),
            reason,
        })?;
        if rules.is_empty() {
            return Err(Error::Config {
                path,
                reason: "a policy needs at least one rule".into(),
            });
        }
        let mut groups: Vec<RuleGroup> = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            if let Some(j) = rules
                .iter()
                .take(i)
                .position(|r| r.quota.name() == rule.quota.name())
            {
                return Err(Error::Config {
                    path: format!("{path}[{i}].name"),
                    reason: format!(
                        "quota name {:?} is already used by rule {j}; give one of them a \
                         distinct `name`",
                        rule.quota.name()
                    ),
                });
            }
            match groups.iter_mut().find(|g| g.kind == rule.kind) {
                Some(group) => group.quotas.push(rule.quota.clone()),
                None => groups.push(RuleGroup {
                    kind: rule.kind.clone(),
                    quotas: vec![rule.quota.clone()],
                }),
            }
        }
        Ok(Self {
            name: Arc::from(name),
            rules,
            groups,
        })
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its rules, in configuration order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Its rules grouped by key kind, in the order they are checked.
    pub fn groups(&self) -> &[RuleGroup] {
        &self.groups
    }

    /// Every quota of the policy, in configuration order (for `RateLimit-Policy`).
    pub fn quotas(&self) -> Vec<Quota> {
        self.rules.iter().map(|r| r.quota.clone()).collect()
    }

    /// The storage key of `group` for `identity`: `<policy>:<kind>:<identity>`.
    ///
    /// # Errors
    /// [`Error::Config`] if `identity` lacks what the group is keyed by.
    pub fn key(&self, group: &RuleGroup, identity: &Identity) -> Result<String> {
        let part = identity
            .key_part(&group.kind)
            .ok_or_else(|| Error::Config {
                path: format!("policies.{}", self.name),
                reason: format!(
                    "the policy counts per {} but the request's identity has none",
                    group.kind
                ),
            })?;
        Ok(format!("{}:{}:{}", self.name, group.kind.label(), part))
    }
}

fn check_policy_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name.len() > MAX_POLICY_NAME_LEN {
        return Err(format!(
            "policy name must be 1 to {MAX_POLICY_NAME_LEN} bytes, got {}",
            name.len()
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
    {
        return Err(format!(
            "policy name {name:?} may only hold ASCII letters, digits, '-' and '_'"
        ));
    }
    Ok(())
}

/// Policies by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policies {
    by_name: BTreeMap<String, Arc<RateLimitPolicy>>,
}

impl Policies {
    /// No policy.
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in policies `global`, `api`, `auth` and `login` (see the
    /// [module docs](self#built-in-defaults-and-nginx)).
    pub fn defaults() -> Self {
        let mut out = Self::new();
        for policy in [
            default_global(),
            default_api(),
            default_auth(),
            default_login(),
        ]
        .into_iter()
        .flatten()
        {
            out.by_name
                .insert(policy.name().to_owned(), Arc::new(policy));
        }
        out
    }

    /// Builds and validates every policy of `config`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first problem's path.
    pub fn from_config(config: &PoliciesConfig) -> Result<Self> {
        let mut out = Self::new();
        for (name, rules) in &config.policies {
            if out.by_name.contains_key(name) {
                return Err(Error::Config {
                    path: format!("policies.{name}"),
                    reason: "the policy is defined twice".into(),
                });
            }
            let policy = build_policy(name, rules)?;
            out.by_name.insert(name.clone(), Arc::new(policy));
        }
        Ok(out)
    }

    /// Adds `policy`, replacing and returning one of the same name.
    pub fn insert(&mut self, policy: RateLimitPolicy) -> Option<Arc<RateLimitPolicy>> {
        self.by_name
            .insert(policy.name().to_owned(), Arc::new(policy))
    }

    /// Adds every policy of `other`, replacing those of the same name (for example configured
    /// policies over [`defaults`](Self::defaults)).
    pub fn extend(&mut self, other: Self) {
        self.by_name.extend(other.by_name);
    }

    /// The policy called `name`.
    ///
    /// # Errors
    /// [`Error::UnknownPolicy`] if there is none.
    pub fn get(&self, name: &str) -> Result<&Arc<RateLimitPolicy>> {
        self.by_name.get(name).ok_or_else(|| Error::UnknownPolicy {
            name: name.to_owned(),
        })
    }

    /// The policies, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<RateLimitPolicy>> {
        self.by_name.values()
    }

    /// How many policies there are.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

fn nz(v: u32) -> Option<NonZeroU32> {
    NonZeroU32::new(v)
}

fn default_global() -> Option<RateLimitPolicy> {
    let quota = Quota::per_second(nz(50)?)
        .with_burst(nz(100)?)
        .ok()?
        .named("global.ip")
        .ok()?;
    RateLimitPolicy::new("global", vec![Rule::new(KeyKind::Ip, quota)]).ok()
}

fn default_api() -> Option<RateLimitPolicy> {
    let quota = Quota::per_second(nz(10)?)
        .with_burst(nz(20)?)
        .ok()?
        .named("api.key")
        .ok()?;
    RateLimitPolicy::new("api", vec![Rule::new(KeyKind::ApiKey, quota)]).ok()
}

fn default_auth() -> Option<RateLimitPolicy> {
    let quota = Quota::per_second(nz(1)?)
        .with_burst(nz(5)?)
        .ok()?
        .named("auth.ip")
        .ok()?;
    RateLimitPolicy::new("auth", vec![Rule::new(KeyKind::Ip, quota)]).ok()
}

/// Per IP first: a client whose IP is over its limit is then stopped before it consumes the
/// account's budget, so one address cannot lock an account out beyond its own share.
fn default_login() -> Option<RateLimitPolicy> {
    let ip = Quota::per_minute(nz(20)?).named("login.ip").ok()?;
    let account = Quota::per_minute(nz(5)?).named("login.account").ok()?;
    RateLimitPolicy::new(
        "login",
        vec![
            Rule::new(KeyKind::Ip, ip),
            Rule::new(KeyKind::Account, account),
        ],
    )
    .ok()
}

fn build_policy(name: &str, rules: &[RuleConfig]) -> Result<RateLimitPolicy> {
    let path = format!("policies.{name}");
    check_policy_name(name).map_err(|reason| Error::Config {
        path: path.clone(),
        reason,
    })?;
    let mut built = Vec::with_capacity(rules.len());
    for (i, rule) in rules.iter().enumerate() {
        built.push(build_rule(name, &format!("{path}[{i}]"), rule)?);
    }
    RateLimitPolicy::new(name, built)
}

fn build_rule(policy: &str, path: &str, rule: &RuleConfig) -> Result<Rule> {
    let config = |field: &str, reason: String| Error::Config {
        path: format!("{path}.{field}"),
        reason,
    };
    let kind = KeyKind::parse(&rule.per).map_err(|r| config("per", r))?;
    let limit = NonZeroU32::new(rule.limit)
        .ok_or_else(|| config("limit", "the limit must be at least 1".into()))?;
    let period = parse_period(&rule.period).map_err(|r| config("period", r))?;
    let algorithm = match rule.algorithm.as_deref() {
        None | Some("gcra") => Algorithm::Gcra,
        Some("sliding_window") => Algorithm::SlidingWindow,
        Some("fixed_window") => Algorithm::FixedWindow,
        Some(other) => {
            return Err(config(
                "algorithm",
                format!(
                    "unknown algorithm {other:?}; expected gcra, sliding_window or fixed_window"
                ),
            ));
        }
    };
    let invalid = |field: &'static str| move |e: Error| config(field, e.to_string());
    let mut quota = Quota::new(limit, period)
        .map_err(invalid("period"))?
        .with_algorithm(algorithm)
        .map_err(invalid("algorithm"))?;
    if let Some(burst) = rule.burst {
        if algorithm != Algorithm::Gcra {
            return Err(config(
                "burst",
                format!("burst applies to gcra only, not to {algorithm}"),
            ));
        }
        let burst = NonZeroU32::new(burst)
            .ok_or_else(|| config("burst", "the burst must be at least 1".into()))?;
        quota = quota.with_burst(burst).map_err(invalid("burst"))?;
    }
    let name = match &rule.name {
        Some(name) => name.clone(),
        None => format!("{policy}.{}", kind.label()),
    };
    let quota = quota.named(&name).map_err(invalid("name"))?;
    Ok(Rule::new(kind, quota))
}

/// Parses a period: a whole number followed by `ms`, `s`, `m`, `h` or `d` (`500ms`, `1m`).
///
/// # Errors
/// A message saying what is wrong.
pub fn parse_period(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = s.split_at_checked(digits).unwrap_or((s, ""));
    let expected = "expected a whole number and a unit: ms, s, m, h or d (e.g. \"1m\")";
    if number.is_empty() {
        return Err(format!("period {s:?}: {expected}"));
    }
    let n: u64 = number
        .parse()
        .map_err(|_| format!("period {s:?}: the number is too large"))?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("period {s:?}: {expected}")),
    };
    let millis = n
        .checked_mul(millis_per_unit)
        .ok_or_else(|| format!("period {s:?} is too long"))?;
    if millis == 0 {
        return Err(format!("period {s:?} must be longer than zero"));
    }
    Ok(Duration::from_millis(millis))
}

/// One rule as configured (see the [module docs](self#configuration)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// `ip`, `account`, `key` (or `api_key`), `subject` or `custom:<name>`.
    pub per: String,
    /// Requests per period.
    pub limit: u32,
    /// `500ms`, `1s`, `1m`, `1h`, `1d`, ...
    pub period: String,
    /// GCRA burst (default: the limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// `gcra` (default), `sliding_window` or `fixed_window`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    /// The quota's name in headers (default `<policy>.<per>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Policies as configured: a map from policy name to its rules.
///
/// Deserialising keeps every entry in order, including a name given twice (which JSON allows
/// and a plain map would silently collapse), so [`Policies::from_config`] can refuse it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoliciesConfig {
    /// `(policy name, rules)` in the order they appear.
    pub policies: Vec<(String, Vec<RuleConfig>)>,
}

impl Serialize for PoliciesConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.policies.len()))?;
        for (name, rules) in &self.policies {
            map.serialize_entry(name, rules)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for PoliciesConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct PoliciesVisitor;

        impl<'de> Visitor<'de> for PoliciesVisitor {
            type Value = PoliciesConfig;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map from policy name to a list of rules")
            }

            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut policies = Vec::new();
                while let Some(entry) = map.next_entry::<String, Vec<RuleConfig>>()? {
                    policies.push(entry);
                }
                Ok(PoliciesConfig { policies })
            }
        }

        deserializer.deserialize_map(PoliciesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        assert_eq!(parse_period("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_period(" 1m "), Ok(Duration::from_secs(60)));
        assert_eq!(parse_period("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_period("1d"), Ok(Duration::from_secs(86_400)));
        for bad in [
            "",
            "m",
            "1",
            "1 m",
            "1.5s",
            "-1s",
            "1min",
            "0s",
            "99999999999999999999s",
        ] {
            assert!(parse_period(bad).is_err(), "{bad:?}");
        }
        assert!(parse_period("18446744073709551615d").is_err());
    }

    #[test]
    fn key_kinds() {
        assert_eq!(KeyKind::parse("api_key"), Ok(KeyKind::ApiKey));
        assert_eq!(
            KeyKind::parse("custom:tenant"),
            Ok(KeyKind::Custom("tenant".into()))
        );
        for bad in ["IP", "acount", "custom:", "custom:a b", "custom:ip", ""] {
            assert!(KeyKind::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ipv6_keys_by_slash_64() {
        assert_eq!(ip_key("203.0.113.9".parse().unwrap()), "203.0.113.9");
        assert_eq!(ip_key("::ffff:203.0.113.9".parse().unwrap()), "203.0.113.9");
        assert_eq!(
            ip_key("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
    }
}
