//! Loading policies from TOML, YAML and JSON; the format is documented in the
//! [policy module](super#loading).

use std::fmt;
use std::marker::PhantomData;

use ipnet::IpNet;
use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use time::Duration;

use super::{Approval, Policy, Role, RoleName, Rule};
use crate::condition::Condition;
use crate::error::{Error, Result, echo};
use crate::permission::{Permission, PermissionPattern};

/// The largest policy document accepted, in bytes (4 MiB).
pub const MAX_POLICY_BYTES: usize = 4 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    roles: UniqueMap<RawRole>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRole {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    inherits: Vec<String>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    effect: String,
    permissions: Vec<String>,
    #[serde(default)]
    conditions: Vec<RawCondition>,
    #[serde(default)]
    approval: Option<RawApproval>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    kind: String,
    key: Option<String>,
    value: Option<String>,
    principal: Option<String>,
    resource: Option<String>,
    networks: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApproval {
    approver: String,
    quorum: u8,
    within_seconds: i64,
}

/// A map that refuses duplicate keys (JSON parsers otherwise keep the last silently),
/// keeping document order.
struct UniqueMap<V>(Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for UniqueMap<V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V2<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V2<V> {
            type Value = UniqueMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of role names to roles")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut out: Vec<(String, V)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, V>()? {
                    if out.iter().any(|(existing, _)| *existing == k) {
                        return Err(serde::de::Error::custom(format!(
                            "role {:?} is defined more than once",
                            echo(&k)
                        )));
                    }
                    out.push((k, v));
                }
                Ok(UniqueMap(out))
            }
        }
        d.deserialize_map(V2(PhantomData))
    }
}

fn size_check(text: &str) -> Result<()> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(Error::PolicyTooLarge {
            len: text.len(),
            max: MAX_POLICY_BYTES,
        });
    }
    Ok(())
}

impl Policy {
    /// Loads a policy from TOML (see the [format](crate::policy#loading)).
    ///
    /// # Errors
    /// [`Error::Parse`] (with line and column), [`Error::PolicyTooLarge`], and every
    /// validation error of [`Policy::new`] and of the rules (naming role, rule and field).
    pub fn from_toml(text: &str) -> Result<Self> {
        size_check(text)?;
        let raw: RawPolicy = toml::from_str(text).map_err(|e| Error::Parse {
            format: "toml",
            message: e.to_string().trim_end().to_owned(),
        })?;
        from_raw(raw)
    }

    /// Loads a policy from YAML (same shape as TOML).
    ///
    /// # Errors
    /// As [`from_toml`](Self::from_toml).
    pub fn from_yaml(text: &str) -> Result<Self> {
        size_check(text)?;
        let raw: RawPolicy = serde_norway::from_str(text).map_err(|e| Error::Parse {
            format: "yaml",
            message: e.to_string(),
        })?;
        from_raw(raw)
    }

    /// Loads a policy from JSON (same shape as TOML).
    ///
    /// # Errors
    /// As [`from_toml`](Self::from_toml).
    pub fn from_json(text: &str) -> Result<Self> {
        size_check(text)?;
        let raw: RawPolicy = serde_json::from_str(text).map_err(|e| Error::Parse {
            format: "json",
            message: e.to_string(),
        })?;
        from_raw(raw)
    }
}

struct At<'a> {
    role: &'a str,
    rule: usize,
}

impl At<'_> {
    fn err(&self, field: impl Into<String>, source: Error) -> Error {
        Error::InvalidRule {
            role: echo(self.role),
            rule: self.rule,
            field: field.into(),
            source: Box::new(source),
        }
    }

    fn bad(&self, field: impl Into<String>, reason: impl Into<String>) -> Error {
        self.err(
            field,
            Error::InvalidField {
                reason: reason.into(),
            },
        )
    }
}

fn from_raw(raw: RawPolicy) -> Result<Policy> {
    let mut raw_roles = raw.roles.0;
    // TOML tables come back sorted; sort the others too so one policy loads the same
    // from every format.
    raw_roles.sort_by(|a, b| a.0.cmp(&b.0));
    let mut roles = Vec::with_capacity(raw_roles.len());
    for (name, raw_role) in raw_roles {
        let role_name = RoleName::new(&name)?;
        let mut role = Role::new(role_name);
        if let Some(d) = raw_role.description {
            role = role.described(&d);
        }
        for parent in raw_role.inherits {
            role = role.inherits(RoleName::new(&parent)?);
        }
        for (index, raw_rule) in raw_role.rules.into_iter().enumerate() {
            let at = At {
                role: &name,
                rule: index,
            };
            role = role.rule(rule(&at, raw_rule)?);
        }
        roles.push(role);
    }
    Policy::new(roles)
}

fn rule(at: &At<'_>, raw: RawRule) -> Result<Rule> {
    let mut patterns = Vec::with_capacity(raw.permissions.len());
    for (i, p) in raw.permissions.iter().enumerate() {
        patterns
            .push(PermissionPattern::new(p).map_err(|e| at.err(format!("permissions[{i}]"), e))?);
    }
    let mut patterns = patterns.into_iter();
    let Some(first) = patterns.next() else {
        return Err(at.bad("permissions", "a rule needs at least one permission"));
    };
    let mut rule = match (raw.effect.as_str(), raw.approval) {
        ("allow", None) => Rule::allow(first),
        ("allow", Some(a)) => Rule::allow_with_approval(first, approval(at, a)?),
        ("deny", None) => Rule::deny(first),
        ("deny", Some(_)) => {
            return Err(at.bad("approval", "only allow rules can require approval"));
        }
        (other, _) => {
            return Err(at.bad(
                "effect",
                format!("expected \"allow\" or \"deny\", found {:?}", echo(other)),
            ));
        }
    };
    for p in patterns {
        rule = rule.or(p);
    }
    for (i, c) in raw.conditions.into_iter().enumerate() {
        rule = rule.when(condition(at, i, c)?);
    }
    Ok(rule)
}

fn approval(at: &At<'_>, raw: RawApproval) -> Result<Approval> {
    let approver = Permission::new(&raw.approver).map_err(|e| at.err("approval.approver", e))?;
    Approval::new(approver, raw.quorum, Duration::seconds(raw.within_seconds))
        .map_err(|e| at.err("approval", e))
}

fn condition(at: &At<'_>, index: usize, raw: RawCondition) -> Result<Condition> {
    let field = |name: &str| format!("conditions[{index}].{name}");
    let (needed, found): (&[&str], Condition) = match raw.kind.as_str() {
        "owner" => (&[], Condition::Owner),
        "principal_attr" | "resource_attr" => {
            let key = required(at, &field("key"), raw.key.as_deref())?;
            let value = required(at, &field("value"), raw.value.as_deref())?;
            let c = if raw.kind == "principal_attr" {
                Condition::PrincipalAttr { key, value }
            } else {
                Condition::ResourceAttr { key, value }
            };
            (&["key", "value"], c)
        }
        "attr_match" => {
            let principal = required(at, &field("principal"), raw.principal.as_deref())?;
            let resource = required(at, &field("resource"), raw.resource.as_deref())?;
            (
                &["principal", "resource"],
                Condition::AttrMatch {
                    principal,
                    resource,
                },
            )
        }
        "ip" => {
            let list = raw.networks.as_deref().unwrap_or_default();
            if list.is_empty() {
                return Err(at.bad(
                    field("networks"),
                    "an ip condition needs at least one network",
                ));
            }
            let mut networks = Vec::with_capacity(list.len());
            for (j, n) in list.iter().enumerate() {
                let net: IpNet = n.parse().map_err(|_| {
                    at.bad(
                        format!("conditions[{index}].networks[{j}]"),
                        format!("{:?} is not a CIDR network such as 10.0.0.0/8", echo(n)),
                    )
                })?;
                networks.push(net);
            }
            (&["networks"], Condition::IpIn(networks))
        }
        other => {
            return Err(Error::UnknownCondition {
                role: echo(at.role),
                rule: at.rule,
                condition: index,
                kind: echo(other),
            });
        }
    };
    let present = [
        ("key", raw.key.is_some()),
        ("value", raw.value.is_some()),
        ("principal", raw.principal.is_some()),
        ("resource", raw.resource.is_some()),
        ("networks", raw.networks.is_some()),
    ];
    for (name, is_set) in present {
        if is_set && !needed.contains(&name) {
            return Err(at.bad(
                field(name),
                format!("not a field of a {:?} condition", raw.kind),
            ));
        }
    }
    Ok(found)
}

fn required(at: &At<'_>, field: &str, value: Option<&str>) -> Result<String> {
    match value {
        Some(v) if !v.is_empty() && v.len() <= crate::request::MAX_VALUE_LEN => Ok(v.to_owned()),
        Some(_) => Err(at.bad(field, "must be 1 to 256 bytes")),
        None => Err(at.bad(field, "missing")),
    }
}
