//! Conditions on a rule: ownership, attribute equality and IP allow-lists.
//!
//! A condition evaluates to true, false or **unknown** (the request lacks what the condition
//! needs: no resource, no owner, a missing attribute, no client address). Unknown is
//! resolved so that authorization fails closed:
//!
//! - an **allow** rule applies only if every condition is true;
//! - a **deny** rule applies unless some condition is false (unknown counts as true).
//!
//! So a missing IP never satisfies an allow-list, and a deny rule cannot be dodged by
//! leaving an attribute out of the request.

use std::fmt;

use ipnet::IpNet;

use crate::request::Request;

/// A condition attached to a rule. All conditions of a rule must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Condition {
    /// `resource.owner == principal.id`: the row-level ownership rule.
    Owner,
    /// `principal.<key> == "<value>"`.
    PrincipalAttr {
        /// The attribute.
        key: String,
        /// The value it must have.
        value: String,
    },
    /// `resource.<key> == "<value>"`.
    ResourceAttr {
        /// The attribute.
        key: String,
        /// The value it must have.
        value: String,
    },
    /// `principal.<principal> == resource.<resource>` (e.g. same desk).
    AttrMatch {
        /// The principal's attribute.
        principal: String,
        /// The resource's attribute.
        resource: String,
    },
    /// The client address is inside one of these networks.
    IpIn(Vec<IpNet>),
}

/// Three-valued result of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Truth {
    True,
    False,
    Unknown,
}

fn equal(a: Option<&str>, b: Option<&str>) -> Truth {
    match (a, b) {
        (Some(a), Some(b)) if a == b => Truth::True,
        (Some(_), Some(_)) => Truth::False,
        _ => Truth::Unknown,
    }
}

impl Condition {
    pub(crate) fn evaluate(&self, request: &Request<'_>) -> Truth {
        let principal = request.principal;
        let resource = request.resource;
        match self {
            Self::Owner => equal(resource.and_then(|r| r.owner()), Some(principal.id())),
            Self::PrincipalAttr { key, value } => {
                equal(principal.attribute(key), Some(value.as_str()))
            }
            Self::ResourceAttr { key, value } => equal(
                resource.and_then(|r| r.attribute(key)),
                Some(value.as_str()),
            ),
            Self::AttrMatch {
                principal: p,
                resource: r,
            } => equal(
                principal.attribute(p),
                resource.and_then(|res| res.attribute(r)),
            ),
            Self::IpIn(networks) => match request.ip {
                None => Truth::Unknown,
                Some(ip) => {
                    // The address and, for IPv4, its IPv4-mapped IPv6 form: a network written
                    // either way matches an IPv4 client written either way.
                    let ip = ip.to_canonical();
                    let mapped = match ip {
                        std::net::IpAddr::V4(v4) => Some(std::net::IpAddr::V6(v4.to_ipv6_mapped())),
                        std::net::IpAddr::V6(_) => None,
                    };
                    if networks
                        .iter()
                        .any(|n| n.contains(&ip) || mapped.is_some_and(|m| n.contains(&m)))
                    {
                        Truth::True
                    } else {
                        Truth::False
                    }
                }
            },
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Owner => f.write_str("resource.owner == principal.id"),
            Self::PrincipalAttr { key, value } => write!(f, "principal.{key} == {value:?}"),
            Self::ResourceAttr { key, value } => write!(f, "resource.{key} == {value:?}"),
            Self::AttrMatch {
                principal,
                resource,
            } => write!(f, "principal.{principal} == resource.{resource}"),
            Self::IpIn(networks) => {
                f.write_str("ip in [")?;
                for (i, n) in networks.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{n}")?;
                }
                f.write_str("]")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permission::Permission;
    use crate::request::{Principal, Resource};

    #[test]
    fn three_valued() {
        let alice = Principal::new("alice")
            .unwrap()
            .with_attribute("desk", "fx")
            .unwrap();
        let action = Permission::new("orders:read").unwrap();
        let mine = Resource::new()
            .with_owner("alice")
            .unwrap()
            .with_attribute("desk", "fx")
            .unwrap();
        let theirs = Resource::new()
            .with_owner("bob")
            .unwrap()
            .with_attribute("desk", "rates")
            .unwrap();
        let bare = Request::new(&alice, &action);
        let on_mine = bare.on(&mine);
        let on_theirs = bare.on(&theirs);

        assert_eq!(Condition::Owner.evaluate(&on_mine), Truth::True);
        assert_eq!(Condition::Owner.evaluate(&on_theirs), Truth::False);
        assert_eq!(Condition::Owner.evaluate(&bare), Truth::Unknown);

        let same_desk = Condition::AttrMatch {
            principal: "desk".into(),
            resource: "desk".into(),
        };
        assert_eq!(same_desk.evaluate(&on_mine), Truth::True);
        assert_eq!(same_desk.evaluate(&on_theirs), Truth::False);
        assert_eq!(same_desk.evaluate(&bare), Truth::Unknown);

        let fx = Condition::PrincipalAttr {
            key: "desk".into(),
            value: "fx".into(),
        };
        assert_eq!(fx.evaluate(&bare), Truth::True);
        let region = Condition::PrincipalAttr {
            key: "region".into(),
            value: "eu".into(),
        };
        assert_eq!(region.evaluate(&bare), Truth::Unknown);
        let rates = Condition::ResourceAttr {
            key: "desk".into(),
            value: "rates".into(),
        };
        assert_eq!(rates.evaluate(&on_theirs), Truth::True);
        assert_eq!(rates.evaluate(&on_mine), Truth::False);

        let office = Condition::IpIn(vec![
            "10.0.0.0/8".parse().unwrap(),
            "::1/128".parse().unwrap(),
        ]);
        assert_eq!(office.evaluate(&bare), Truth::Unknown);
        assert_eq!(
            office.evaluate(&bare.from_ip("10.1.2.3".parse().unwrap())),
            Truth::True
        );
        assert_eq!(
            office.evaluate(&bare.from_ip("192.168.0.1".parse().unwrap())),
            Truth::False
        );
        assert_eq!(office.to_string(), "ip in [10.0.0.0/8, ::1/128]");
        // An IPv4 client reported by a dual-stack socket as IPv4-mapped IPv6 is the IPv4
        // client: a deny rule on its IPv4 network must not fail open.
        let mapped: std::net::IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(office.evaluate(&bare.from_ip(mapped)), Truth::True);
        assert_eq!(bare.from_ip(mapped).ip(), Some("10.1.2.3".parse().unwrap()));
        // And a network written in the mapped form matches the plain IPv4 address.
        let mapped_net = Condition::IpIn(vec!["::ffff:10.0.0.0/104".parse().unwrap()]);
        assert_eq!(
            mapped_net.evaluate(&bare.from_ip("10.1.2.3".parse().unwrap())),
            Truth::True
        );
        assert_eq!(
            mapped_net.evaluate(&bare.from_ip("11.1.2.3".parse().unwrap())),
            Truth::False
        );
        assert_eq!(fx.to_string(), "principal.desk == \"fx\"");
    }
}
