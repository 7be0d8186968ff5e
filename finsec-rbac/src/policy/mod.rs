//! Roles, rules and the compiled [`Policy`].
//!
//! # Semantics
//!
//! A principal holds roles; a role holds rules and inherits every rule of its parents
//! (several parents are allowed, cycles are refused at load time). A rule has an
//! [`Effect`], one or more [`PermissionPattern`]s, optional [`Condition`]s (all must hold)
//! and, for allow rules, an optional [`Approval`] requirement. For a request, the rules of
//! all the principal's roles (inherited ones included) whose patterns match the action are
//! considered, and the first of these outcomes wins:
//!
//! 1. a matching **deny** rule whose conditions are not false: **denied** (deny always
//!    wins, whatever the allows, approvals or roles);
//! 2. a matching **allow** rule without approval whose conditions are all true: **allowed**;
//! 3. a matching allow rule *with* an approval requirement whose conditions are all true:
//!    **denied, approval required** (see [`approval`](crate::approval));
//! 4. otherwise **denied, no rule matched** (default deny).
//!
//! An approval-gated allow is therefore a weaker grant than a plain allow: a principal who
//! also holds a plain allow for the action (admin's `*`, for instance) does not need the
//! approval. To force four eyes on everyone, grant the action to no one outright.
//! A principal holding a role the policy does not define is denied everything
//! ([`Reason::UnknownRole`]): its data is stale or the role
//! was removed, and failing closed is what makes "removing a role from the policy never
//! adds access" true (otherwise the removed role's deny rules would vanish with it).
//! Note that taking a role away from a *principal* can add access, when that role carried
//! deny rules: put denies that must stick on a role every such principal keeps.
//!
//! # Loading
//!
//! [`Policy::from_toml`], [`Policy::from_yaml`] and [`Policy::from_json`] read one shape
//! (shown in TOML):
//!
//! ```toml
//! [roles.viewer]
//! description = "read-only market data and reports"
//! rules = [{ effect = "allow", permissions = ["market_data:read", "reports:read"] }]
//!
//! [roles.trader]
//! inherits = ["viewer"]
//!
//! [[roles.trader.rules]]
//! effect = "allow"
//! permissions = ["orders:read", "orders:write"]
//! conditions = [{ kind = "owner" }]
//!
//! [[roles.trader.rules]]
//! effect = "allow"
//! permissions = ["trade:execute"]
//! conditions = [{ kind = "ip", networks = ["10.0.0.0/8"] }]
//! approval = { approver = "trade:approve", quorum = 2, within_seconds = 3600 }
//! ```
//!
//! Condition kinds: `owner`; `principal_attr` (`key`, `value`); `resource_attr` (`key`,
//! `value`); `attr_match` (`principal`, `resource`: attribute names); `ip` (`networks`:
//! CIDR list). Unknown fields anywhere, a field that does not belong to the condition
//! kind, a role defined twice, an unknown parent, an inheritance cycle and a malformed
//! pattern are all errors that name the role, the rule index and the field; syntax errors
//! name the line. Documents over [`MAX_POLICY_BYTES`] are refused before parsing.
//!
//! # Compiled form
//!
//! [`Policy::new`] flattens inheritance once (each role gets the deduplicated list of its
//! own and inherited rule patterns) and indexes every role's patterns by their first
//! segment, interned to an integer. A check does one hash lookup for the action's first
//! segment, one for each of the principal's roles, a binary search per role, and then
//! compares only the few patterns that share that first segment or start with `*`.

mod load;
pub mod preset;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::num::NonZeroU8;
use std::sync::Arc;

use time::Duration;

pub use self::load::MAX_POLICY_BYTES;
use crate::condition::{Condition, Truth};
use crate::decision::{AccessDecision, Reason, RuleMatch};
use crate::error::{Error, Result, echo};
use crate::permission::{Permission, PermissionPattern};
use crate::request::Request;

/// The most roles a policy may define.
pub const MAX_ROLES: usize = 10_000;
/// The most rules one role may define.
pub const MAX_RULES_PER_ROLE: usize = 1_000;
/// The most patterns one rule may list.
pub const MAX_PATTERNS_PER_RULE: usize = 256;
/// The most conditions one rule may list.
pub const MAX_CONDITIONS_PER_RULE: usize = 64;
/// The most (role, inherited pattern) pairs the flattened policy may hold, which bounds
/// the memory a deep or wide inheritance graph can make the compiler use.
pub const MAX_COMPILED_ENTRIES: usize = 1_000_000;
/// The longest role name, in bytes.
pub const MAX_ROLE_NAME_LEN: usize = 64;

/// A role name: 1 to 64 bytes of `a-z 0-9 _ - .`, starting with a letter or digit.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoleName(Box<str>);

impl RoleName {
    /// Parses a role name.
    ///
    /// # Errors
    /// [`Error::InvalidRoleName`] saying what is wrong.
    pub fn new(name: &str) -> Result<Self> {
        let fail = |reason| {
            Err(Error::InvalidRoleName {
                name: echo(name),
                reason,
            })
        };
        let Some(first) = name.bytes().next() else {
            return fail("it is empty");
        };
        if name.len() > MAX_ROLE_NAME_LEN {
            return fail("it is longer than 64 bytes");
        }
        if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
            return fail("it must start with a-z or 0-9");
        }
        if !name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.')
        }) {
            return fail("only a-z 0-9 _ - . are allowed");
        }
        Ok(Self(name.into()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoleName({:?})", &*self.0)
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for RoleName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

/// Whether a rule grants or forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    /// Grants the action (when its conditions hold).
    Allow,
    /// Forbids the action; wins over every allow.
    Deny,
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        })
    }
}

/// A maker-checker (four eyes) requirement on an allow rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    approver: Permission,
    quorum: NonZeroU8,
    within: Duration,
}

impl Approval {
    /// The most approvers a rule may require.
    pub const MAX_QUORUM: u8 = 16;
    /// The shortest approval window.
    pub const MIN_WITHIN: Duration = Duration::seconds(1);
    /// The longest approval window (30 days).
    pub const MAX_WITHIN: Duration = Duration::days(30);

    /// Approval by `quorum` distinct principals (never the initiator) who are allowed
    /// `approver` by the policy, within `within` of the request.
    ///
    /// # Errors
    /// [`Error::InvalidField`] if `quorum` is 0 or more than [`Self::MAX_QUORUM`], or
    /// `within` is outside [`Self::MIN_WITHIN`]..=[`Self::MAX_WITHIN`].
    pub fn new(approver: Permission, quorum: u8, within: Duration) -> Result<Self> {
        let quorum = match NonZeroU8::new(quorum) {
            Some(q) if q.get() <= Self::MAX_QUORUM => q,
            _ => {
                return Err(Error::InvalidField {
                    reason: format!("quorum must be 1 to {}, found {quorum}", Self::MAX_QUORUM),
                });
            }
        };
        if within < Self::MIN_WITHIN || within > Self::MAX_WITHIN {
            return Err(Error::InvalidField {
                reason: format!(
                    "approval window must be 1 second to 30 days, found {} seconds",
                    within.whole_seconds()
                ),
            });
        }
        Ok(Self {
            approver,
            quorum,
            within,
        })
    }

    /// The permission an approver must hold.
    pub fn approver(&self) -> &Permission {
        &self.approver
    }

    /// How many distinct approvers are needed.
    pub fn quorum(&self) -> u8 {
        self.quorum.get()
    }

    /// How long after the request approvals are accepted and the action may run.
    pub fn within(&self) -> Duration {
        self.within
    }
}

/// One rule: an effect, the patterns it covers, conditions and an optional approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    effect: Effect,
    patterns: Vec<PermissionPattern>,
    conditions: Vec<Condition>,
    approval: Option<Approval>,
}

impl Rule {
    /// An allow rule for `pattern`.
    pub fn allow(pattern: PermissionPattern) -> Self {
        Self {
            effect: Effect::Allow,
            patterns: vec![pattern],
            conditions: Vec::new(),
            approval: None,
        }
    }

    /// A deny rule for `pattern`.
    pub fn deny(pattern: PermissionPattern) -> Self {
        Self {
            effect: Effect::Deny,
            ..Self::allow(pattern)
        }
    }

    /// An allow rule for `pattern` that needs `approval` before the action is allowed.
    pub fn allow_with_approval(pattern: PermissionPattern, approval: Approval) -> Self {
        Self {
            approval: Some(approval),
            ..Self::allow(pattern)
        }
    }

    /// Also covers `pattern`.
    #[must_use]
    pub fn or(mut self, pattern: PermissionPattern) -> Self {
        self.patterns.push(pattern);
        self
    }

    /// Adds a condition (all conditions must hold).
    #[must_use]
    pub fn when(mut self, condition: Condition) -> Self {
        self.conditions.push(condition);
        self
    }

    /// The effect.
    pub fn effect(&self) -> Effect {
        self.effect
    }

    /// The patterns (never empty).
    pub fn patterns(&self) -> &[PermissionPattern] {
        &self.patterns
    }

    /// The conditions.
    pub fn conditions(&self) -> &[Condition] {
        &self.conditions
    }

    /// The approval requirement, for allow rules that have one.
    pub fn approval(&self) -> Option<&Approval> {
        self.approval.as_ref()
    }

    /// Allow rules apply when every condition is true; deny rules unless one is false.
    fn applies(&self, request: &Request<'_>) -> bool {
        match self.effect {
            Effect::Allow => self
                .conditions
                .iter()
                .all(|c| c.evaluate(request) == Truth::True),
            Effect::Deny => self
                .conditions
                .iter()
                .all(|c| c.evaluate(request) != Truth::False),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.effect)?;
        for (i, p) in self.patterns.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{p}")?;
        }
        for (i, c) in self.conditions.iter().enumerate() {
            f.write_str(if i == 0 { " when " } else { " and " })?;
            write!(f, "{c}")?;
        }
        if let Some(a) = &self.approval {
            write!(
                f,
                " with approval by {} holder(s) of {} within {}s",
                a.quorum,
                a.approver,
                a.within.whole_seconds()
            )?;
        }
        Ok(())
    }
}

/// A role: a name, parents it inherits from, and its own rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    name: RoleName,
    description: Option<String>,
    inherits: Vec<RoleName>,
    rules: Vec<Rule>,
}

impl Role {
    /// A role with no parents and no rules.
    pub fn new(name: RoleName) -> Self {
        Self {
            name,
            description: None,
            inherits: Vec::new(),
            rules: Vec::new(),
        }
    }

    /// Sets a description (shown by tools; not used in checks).
    #[must_use]
    pub fn described(mut self, description: &str) -> Self {
        self.description = Some(description.to_owned());
        self
    }

    /// Inherits every rule of `parent`.
    #[must_use]
    pub fn inherits(mut self, parent: RoleName) -> Self {
        if !self.inherits.contains(&parent) {
            self.inherits.push(parent);
        }
        self
    }

    /// Adds a rule.
    #[must_use]
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// The name.
    pub fn name(&self) -> &RoleName {
        &self.name
    }

    /// The description, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The parents.
    pub fn parents(&self) -> &[RoleName] {
        &self.inherits
    }

    /// The role's own rules (not the inherited ones).
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

/// A rule together with where it is defined: the role and its index in that role's list.
#[derive(Debug)]
pub(crate) struct RuleAt {
    pub(crate) role: RoleName,
    pub(crate) index: usize,
    pub(crate) rule: Rule,
}

/// One compiled pattern of a rule.
#[derive(Debug, Clone)]
struct Entry {
    /// Shared by every role that inherits the rule, so flattening copies pointers only.
    pattern: Arc<PermissionPattern>,
    pattern_index: usize,
    rule: Arc<RuleAt>,
}

#[derive(Debug, Default)]
struct CompiledRole {
    /// Entries whose first segment is a literal, grouped by interned segment id, sorted.
    literal: Vec<(u32, Box<[Entry]>)>,
    /// Entries whose pattern starts with `*`.
    wild: Box<[Entry]>,
}

impl CompiledRole {
    fn candidates(&self, first: Option<u32>) -> &[Entry] {
        let Some(id) = first else { return &[] };
        match self.literal.binary_search_by_key(&id, |(k, _)| *k) {
            Ok(i) => self.literal.get(i).map_or(&[], |(_, e)| e),
            Err(_) => &[],
        }
    }
}

/// A validated, compiled policy. Immutable; share it with `Arc` or swap it with
/// [`SharedPolicy`](crate::SharedPolicy).
#[derive(Debug)]
pub struct Policy {
    roles: Vec<Role>,
    index: HashMap<Box<str>, usize>,
    compiled: Vec<CompiledRole>,
    first_segments: HashMap<Box<str>, u32>,
}

fn limit(what: String, count: usize, max: usize) -> Result<()> {
    if count > max {
        return Err(Error::LimitExceeded { what, count, max });
    }
    Ok(())
}

impl Policy {
    /// Validates and compiles `roles`.
    ///
    /// # Errors
    /// [`Error::DuplicateRole`], [`Error::UnknownRole`] (a parent that is not defined),
    /// [`Error::InheritanceCycle`], [`Error::LimitExceeded`].
    pub fn new(roles: Vec<Role>) -> Result<Self> {
        limit("the number of roles".into(), roles.len(), MAX_ROLES)?;
        let mut index: HashMap<Box<str>, usize> = HashMap::with_capacity(roles.len());
        for (i, role) in roles.iter().enumerate() {
            if index.insert(role.name.0.clone(), i).is_some() {
                return Err(Error::DuplicateRole {
                    role: role.name.to_string(),
                });
            }
            let name = &role.name;
            limit(
                format!("the number of rules of role {name:?}"),
                role.rules.len(),
                MAX_RULES_PER_ROLE,
            )?;
            for (r, rule) in role.rules.iter().enumerate() {
                limit(
                    format!("the number of patterns of role {name:?} rule {r}"),
                    rule.patterns.len(),
                    MAX_PATTERNS_PER_RULE,
                )?;
                limit(
                    format!("the number of conditions of role {name:?} rule {r}"),
                    rule.conditions.len(),
                    MAX_CONDITIONS_PER_RULE,
                )?;
            }
        }
        let mut parents: Vec<Vec<usize>> = Vec::with_capacity(roles.len());
        for role in &roles {
            let mut ps = Vec::with_capacity(role.inherits.len());
            for parent in &role.inherits {
                match index.get(parent.as_str()) {
                    Some(&p) => ps.push(p),
                    None => {
                        return Err(Error::UnknownRole {
                            role: role.name.to_string(),
                            parent: parent.to_string(),
                        });
                    }
                }
            }
            parents.push(ps);
        }
        let order = topological_order(&roles, &parents)?;
        let compiled = compile(&roles, &parents, &order)?;
        let (compiled, first_segments) = compiled;
        Ok(Self {
            roles,
            index,
            compiled,
            first_segments,
        })
    }

    /// The roles, in the order given to [`Policy::new`] (sorted by name when loaded from a
    /// document).
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// The role named `name`, if defined.
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.index.get(name).and_then(|&i| self.roles.get(i))
    }

    /// The policy without the role `name`, compiled; `None` if there is no such role.
    ///
    /// Removing a role never adds access: principals that still hold it are denied
    /// everything ([`Reason::UnknownRole`]), and no other role changes.
    ///
    /// # Errors
    /// [`Error::UnknownRole`] if another role inherits from `name` (as loading the
    /// resulting document would).
    pub fn without_role(&self, name: &str) -> Option<Result<Self>> {
        self.role(name)?;
        let roles = self
            .roles
            .iter()
            .filter(|r| r.name.as_str() != name)
            .cloned()
            .collect();
        Some(Self::new(roles))
    }

    /// Decides `request`. Never fails: anything that prevents an allow is a deny with a
    /// reason. See the [module docs](self) for the order in which rules win.
    pub fn check(&self, request: &Request<'_>) -> AccessDecision {
        let action = request.action;
        let first = action
            .segment_slice()
            .first()
            .and_then(|s| self.first_segments.get(&**s))
            .copied();
        let mut allow: Option<&Entry> = None;
        let mut gated: Option<&Entry> = None;
        for role_name in request.principal.roles() {
            let Some(role) = self
                .index
                .get(role_name.as_str())
                .and_then(|&i| self.compiled.get(i))
            else {
                // A role the policy does not define: stale principal data, or a role that
                // was removed. Fail closed, so removing a role never adds access.
                return AccessDecision::new(Reason::UnknownRole(role_name.clone()));
            };
            for entry in role.candidates(first).iter().chain(role.wild.iter()) {
                if !entry.pattern.matches(action) {
                    continue;
                }
                let rule = &entry.rule.rule;
                match rule.effect {
                    Effect::Deny => {
                        if rule.applies(request) {
                            return AccessDecision::new(Reason::DeniedByRule(RuleMatch::new(
                                entry,
                            )));
                        }
                    }
                    Effect::Allow => {
                        if allow.is_some() {
                            continue;
                        }
                        if rule.approval.is_none() {
                            if rule.applies(request) {
                                allow = Some(entry);
                            }
                        } else if gated.is_none() && rule.applies(request) {
                            gated = Some(entry);
                        }
                    }
                }
            }
        }
        match (allow, gated) {
            (Some(entry), _) => AccessDecision::new(Reason::AllowedByRule(RuleMatch::new(entry))),
            (None, Some(entry)) => {
                AccessDecision::new(Reason::ApprovalRequired(RuleMatch::new(entry)))
            }
            (None, None) => AccessDecision::new(Reason::NoRuleMatched),
        }
    }

    /// Whether `request` is allowed outright: shorthand for `check(request).is_allowed()`.
    pub fn is_allowed(&self, request: &Request<'_>) -> bool {
        self.check(request).is_allowed()
    }
}

impl RuleMatch {
    fn new(entry: &Entry) -> Self {
        Self {
            rule: Arc::clone(&entry.rule),
            pattern: entry.pattern_index,
        }
    }
}

/// Parents before children; an [`Error::InheritanceCycle`] naming the cycle otherwise.
fn topological_order(roles: &[Role], parents: &[Vec<usize>]) -> Result<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut mark = vec![Mark::New; roles.len()];
    let mut order = Vec::with_capacity(roles.len());
    for start in 0..roles.len() {
        if mark.get(start) != Some(&Mark::New) {
            continue;
        }
        // Iterative DFS: (node, next parent position). `path` mirrors the stack.
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        if let Some(m) = mark.get_mut(start) {
            *m = Mark::Active;
        }
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let ps = parents.get(node).map_or(&[][..], Vec::as_slice);
            if let Some(&p) = ps.get(*next) {
                *next += 1;
                match mark.get(p).copied() {
                    Some(Mark::New) => {
                        if let Some(m) = mark.get_mut(p) {
                            *m = Mark::Active;
                        }
                        stack.push((p, 0));
                    }
                    Some(Mark::Active) => {
                        let from = stack.iter().position(|&(n, _)| n == p).unwrap_or(0);
                        let mut cycle: Vec<String> = stack
                            .iter()
                            .skip(from)
                            .filter_map(|&(n, _)| roles.get(n).map(|r| r.name.to_string()))
                            .collect();
                        if let Some(r) = roles.get(p) {
                            cycle.push(r.name.to_string());
                        }
                        return Err(Error::InheritanceCycle { cycle });
                    }
                    _ => {}
                }
            } else {
                if let Some(m) = mark.get_mut(node) {
                    *m = Mark::Done;
                }
                order.push(node);
                stack.pop();
            }
        }
    }
    Ok(order)
}

type Compiled = (Vec<CompiledRole>, HashMap<Box<str>, u32>);

fn compile(roles: &[Role], parents: &[Vec<usize>], order: &[usize]) -> Result<Compiled> {
    // Each role's own entries.
    let own: Vec<Vec<Entry>> = roles
        .iter()
        .map(|role| {
            role.rules
                .iter()
                .enumerate()
                .flat_map(|(index, rule)| {
                    let at = Arc::new(RuleAt {
                        role: role.name.clone(),
                        index,
                        rule: rule.clone(),
                    });
                    rule.patterns
                        .iter()
                        .enumerate()
                        .map(move |(pattern_index, pattern)| Entry {
                            pattern: Arc::new(pattern.clone()),
                            pattern_index,
                            rule: Arc::clone(&at),
                        })
                        .collect::<Vec<_>>()
                })
                .collect()
        })
        .collect();
    // Effective entries: own first, then parents' (in declaration order), deduplicated.
    // A key is (defining role, position in that role's own entries).
    let mut effective: Vec<Vec<(usize, usize)>> = vec![Vec::new(); roles.len()];
    let mut total = 0usize;
    for &r in order {
        let mut seen = HashSet::new();
        let own_len = own.get(r).map_or(0, Vec::len);
        let mut list: Vec<(usize, usize)> = (0..own_len).map(|i| (r, i)).collect();
        seen.extend(list.iter().copied());
        for &p in parents.get(r).map_or(&[][..], Vec::as_slice) {
            for &key in effective.get(p).map_or(&[][..], Vec::as_slice) {
                if seen.insert(key) {
                    list.push(key);
                }
            }
        }
        total = total.saturating_add(list.len());
        limit(
            "the number of compiled (role, pattern) entries".into(),
            total,
            MAX_COMPILED_ENTRIES,
        )?;
        if let Some(slot) = effective.get_mut(r) {
            *slot = list;
        }
    }
    let lookup = |(role, i): (usize, usize)| -> Option<&Entry> { own.get(role)?.get(i) };
    let mut first_segments: HashMap<Box<str>, u32> = HashMap::new();
    let mut compiled = Vec::with_capacity(roles.len());
    for keys in &effective {
        let mut literal: BTreeMap<u32, Vec<Entry>> = BTreeMap::new();
        let mut wild = Vec::new();
        for &key in keys {
            let Some(entry) = lookup(key) else { continue };
            match entry.pattern.first_literal() {
                Some(first) => {
                    let next = u32::try_from(first_segments.len()).unwrap_or(u32::MAX);
                    let id = *first_segments.entry(first.into()).or_insert(next);
                    literal.entry(id).or_default().push(entry.clone());
                }
                None => wild.push(entry.clone()),
            }
        }
        compiled.push(CompiledRole {
            literal: literal
                .into_iter()
                .map(|(k, v)| (k, v.into_boxed_slice()))
                .collect(),
            wild: wild.into_boxed_slice(),
        });
    }
    Ok((compiled, first_segments))
}
