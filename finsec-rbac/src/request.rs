//! Who asks ([`Principal`]), for what ([`Permission`]), on what ([`Resource`]), from where:
//! a [`Request`].

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use crate::error::{Error, Result};
use crate::permission::Permission;
use crate::policy::RoleName;

/// The longest principal id, owner id, attribute key or attribute value, in bytes.
pub const MAX_VALUE_LEN: usize = 256;

fn check_value(field: &'static str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::InvalidValue {
            field,
            reason: "it is empty",
        });
    }
    if value.len() > MAX_VALUE_LEN {
        return Err(Error::InvalidValue {
            field,
            reason: "it is longer than 256 bytes",
        });
    }
    if value.chars().any(char::is_control) {
        return Err(Error::InvalidValue {
            field,
            reason: "it contains a control character",
        });
    }
    Ok(())
}

/// A user or service being authorized: an id, its roles and its attributes.
#[derive(Clone, PartialEq, Eq)]
pub struct Principal {
    id: String,
    roles: Vec<RoleName>,
    attributes: BTreeMap<String, String>,
}

impl Principal {
    /// A principal with no roles and no attributes.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] if `id` is empty, longer than [`MAX_VALUE_LEN`] bytes or
    /// contains control characters.
    pub fn new(id: &str) -> Result<Self> {
        check_value("principal id", id)?;
        Ok(Self {
            id: id.to_owned(),
            roles: Vec::new(),
            attributes: BTreeMap::new(),
        })
    }

    /// Adds a role (duplicates are ignored).
    #[must_use]
    pub fn with_role(mut self, role: RoleName) -> Self {
        if !self.roles.contains(&role) {
            self.roles.push(role);
        }
        self
    }

    /// Adds an attribute (replacing an earlier value for `key`).
    ///
    /// # Errors
    /// [`Error::InvalidValue`] if the key or value is empty, too long or contains control
    /// characters.
    pub fn with_attribute(mut self, key: &str, value: &str) -> Result<Self> {
        check_value("attribute key", key)?;
        check_value("attribute value", value)?;
        self.attributes.insert(key.to_owned(), value.to_owned());
        Ok(self)
    }

    /// The id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The roles, in the order they were added.
    pub fn roles(&self) -> &[RoleName] {
        &self.roles
    }

    /// The attribute `key`, if set.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("id", &self.id)
            .field("roles", &self.roles)
            .field("attributes", &self.attributes)
            .finish()
    }
}

/// The object acted on: its owner (for the row-level ownership rule) and attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resource {
    owner: Option<String>,
    attributes: BTreeMap<String, String>,
}

impl Resource {
    /// A resource with no owner and no attributes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the owner (a principal id).
    ///
    /// # Errors
    /// [`Error::InvalidValue`] if `owner` is empty, too long or contains control characters.
    pub fn with_owner(mut self, owner: &str) -> Result<Self> {
        check_value("resource owner", owner)?;
        self.owner = Some(owner.to_owned());
        Ok(self)
    }

    /// Adds an attribute (replacing an earlier value for `key`).
    ///
    /// # Errors
    /// [`Error::InvalidValue`] if the key or value is empty, too long or contains control
    /// characters.
    pub fn with_attribute(mut self, key: &str, value: &str) -> Result<Self> {
        check_value("attribute key", key)?;
        check_value("attribute value", value)?;
        self.attributes.insert(key.to_owned(), value.to_owned());
        Ok(self)
    }

    /// The owner, if known.
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    /// The attribute `key`, if set.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

/// One authorization question: may `principal` perform `action` (on `resource`, from `ip`)?
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub(crate) principal: &'a Principal,
    pub(crate) action: &'a Permission,
    pub(crate) resource: Option<&'a Resource>,
    pub(crate) ip: Option<IpAddr>,
}

impl<'a> Request<'a> {
    /// A request without a resource or client address.
    pub fn new(principal: &'a Principal, action: &'a Permission) -> Self {
        Self {
            principal,
            action,
            resource: None,
            ip: None,
        }
    }

    /// Sets the resource acted on.
    #[must_use]
    pub fn on(mut self, resource: &'a Resource) -> Self {
        self.resource = Some(resource);
        self
    }

    /// Sets the client address (for IP conditions). An IPv4-mapped IPv6 address
    /// (`::ffff:10.9.1.1`, as a dual-stack socket reports an IPv4 client) is taken as the
    /// IPv4 address it carries, so an IPv4 rule applies to it. Resolve the address through
    /// your trusted proxies first (finsec-ratelimit's `ClientIp` does): the TCP peer behind
    /// a proxy is the proxy.
    #[must_use]
    pub fn from_ip(mut self, ip: IpAddr) -> Self {
        self.ip = Some(ip.to_canonical());
        self
    }

    /// The principal.
    pub fn principal(&self) -> &'a Principal {
        self.principal
    }

    /// The action.
    pub fn action(&self) -> &'a Permission {
        self.action
    }

    /// The resource, if any.
    pub fn resource(&self) -> Option<&'a Resource> {
        self.resource
    }

    /// The client address, if known.
    pub fn ip(&self) -> Option<IpAddr> {
        self.ip
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked() {
        assert!(Principal::new("").is_err());
        assert!(Principal::new("a\nb").is_err());
        assert!(Principal::new(&"x".repeat(257)).is_err());
        let p = Principal::new("alice")
            .unwrap()
            .with_attribute("desk", "fx")
            .unwrap();
        assert_eq!(p.attribute("desk"), Some("fx"));
        assert!(p.clone().with_attribute("", "x").is_err());
        let role = RoleName::new("viewer").unwrap();
        let p = p.with_role(role.clone()).with_role(role);
        assert_eq!(p.roles().len(), 1);
        assert!(Resource::new().with_owner("").is_err());
        let r = Resource::new().with_owner("alice").unwrap();
        assert_eq!(r.owner(), Some("alice"));
        assert_eq!(r.attribute("x"), None);
    }
}
