//! The crate's error type.
//!
//! Errors come from building things (parsing a permission, loading a policy, recording an
//! approval). Authorization itself never returns an error: [`Policy::check`] returns a
//! [`AccessDecision`], and anything that goes wrong inside a check is a deny with a reason.
//!
//! [`Policy::check`]: crate::Policy::check
//! [`AccessDecision`]: crate::AccessDecision

use std::fmt;

/// A specialised `Result` for finsec-rbac.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What is wrong with a permission or permission pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PatternProblem {
    /// The text is empty.
    Empty,
    /// Two colons in a row, or a colon at the start or end.
    EmptySegment,
    /// A character outside `A-Z a-z 0-9 _ - .` (and `*` in patterns).
    InvalidCharacter(char),
    /// `*` appears inside a segment (`trade*`); it must be a whole segment.
    PartialWildcard,
    /// `*` in a concrete permission (an action being checked cannot be a wildcard).
    WildcardNotAllowed,
    /// More than [`MAX_SEGMENTS`](crate::permission::MAX_SEGMENTS) segments.
    TooManySegments,
    /// Longer than [`MAX_LEN`](crate::permission::MAX_LEN) bytes.
    TooLong,
}

impl fmt::Display for PatternProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("it is empty"),
            Self::EmptySegment => f.write_str("empty segment"),
            Self::InvalidCharacter(c) => write!(f, "invalid character {c:?}"),
            Self::PartialWildcard => f.write_str("`*` must be a whole segment"),
            Self::WildcardNotAllowed => f.write_str("a concrete permission cannot contain `*`"),
            Self::TooManySegments => {
                write!(f, "more than {} segments", crate::permission::MAX_SEGMENTS)
            }
            Self::TooLong => write!(f, "longer than {} bytes", crate::permission::MAX_LEN),
        }
    }
}

/// Everything that can go wrong in finsec-rbac.
///
/// Messages are lowercase and name what was wrong and where (role name, rule index, field).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A permission or permission pattern does not parse.
    #[error("invalid permission {input:?} at byte {position}: {problem}")]
    InvalidPermission {
        /// The text (truncated to 160 bytes).
        input: String,
        /// Byte offset of the problem.
        position: usize,
        /// What is wrong.
        problem: PatternProblem,
    },

    /// A role name does not parse.
    #[error("invalid role name {name:?}: {reason}")]
    InvalidRoleName {
        /// The name (truncated to 160 bytes).
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// A principal id or attribute does not parse.
    #[error("invalid {field}: {reason}")]
    InvalidValue {
        /// Which value.
        field: &'static str,
        /// Why it was refused.
        reason: &'static str,
    },

    /// A policy document is not valid TOML, YAML or JSON, or does not have the policy shape.
    #[error("policy {format} does not parse: {message}")]
    Parse {
        /// `toml`, `yaml` or `json`.
        format: &'static str,
        /// The parser's message (with line and column when the format gives them).
        message: String,
    },

    /// A policy document is larger than [`MAX_POLICY_BYTES`](crate::policy::MAX_POLICY_BYTES).
    #[error("policy document is {len} bytes, more than the limit of {max}")]
    PolicyTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// A policy has more roles or rules than the limits allow.
    #[error("policy exceeds a limit: {what} is {count}, the limit is {max}")]
    LimitExceeded {
        /// What was counted.
        what: String,
        /// How many there were.
        count: usize,
        /// The limit.
        max: usize,
    },

    /// The same role is defined twice.
    #[error("role {role:?} is defined more than once")]
    DuplicateRole {
        /// The role.
        role: String,
    },

    /// A role inherits from a role the policy does not define.
    #[error("role {role:?} inherits unknown role {parent:?}")]
    UnknownRole {
        /// The role that names it.
        role: String,
        /// The missing role.
        parent: String,
    },

    /// Roles inherit from each other in a cycle.
    #[error("role inheritance cycle: {}", cycle.join(" -> "))]
    InheritanceCycle {
        /// The roles along the cycle; the first is repeated at the end.
        cycle: Vec<String>,
    },

    /// A field of a rule is invalid.
    #[error("role {role:?} rule {rule} field `{field}`: {source}")]
    InvalidRule {
        /// The role.
        role: String,
        /// Index of the rule in the role's list (from 0).
        rule: usize,
        /// The field.
        field: String,
        /// What is wrong with it.
        #[source]
        source: Box<Error>,
    },

    /// A rule field holds a value that is not allowed there.
    #[error("{reason}")]
    InvalidField {
        /// Why it was refused.
        reason: String,
    },

    /// A rule names a condition kind this crate does not know.
    #[error(
        "role {role:?} rule {rule} condition {condition}: unknown condition kind {kind:?} \
         (expected owner, principal_attr, resource_attr, attr_match or ip)"
    )]
    UnknownCondition {
        /// The role.
        role: String,
        /// Index of the rule.
        rule: usize,
        /// Index of the condition in the rule's list.
        condition: usize,
        /// The unknown kind.
        kind: String,
    },

    /// A maker-checker operation names an approval request that does not exist.
    #[error("approval request {id} not found")]
    ApprovalNotFound {
        /// The request id.
        id: String,
    },

    /// The initiator of an action tried to approve it.
    #[error("principal {principal:?} initiated approval request {id} and cannot approve it")]
    SelfApproval {
        /// The request id.
        id: String,
        /// The principal.
        principal: String,
    },

    /// The approver does not hold the approver permission the rule requires.
    #[error("principal {principal:?} lacks approver permission {permission} for request {id}")]
    NotAnApprover {
        /// The request id.
        id: String,
        /// The principal.
        principal: String,
        /// The permission it needed.
        permission: String,
    },

    /// The approval window of the request has closed.
    #[error("approval request {id} expired")]
    ApprovalExpired {
        /// The request id.
        id: String,
    },

    /// The approval request was already used to perform its action.
    #[error("approval request {id} was already used")]
    ApprovalConsumed {
        /// The request id.
        id: String,
    },

    /// The action does not need approval under the policy (it is allowed or denied outright).
    #[error("{action} needs no approval for principal {principal:?}: {decision}")]
    ApprovalNotRequired {
        /// The action.
        action: String,
        /// The initiator.
        principal: String,
        /// The policy's decision, explained.
        decision: String,
    },

    /// A storage backend failed.
    #[error("approval store error: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),

    /// The operating system's random number generator failed (no approval id was made).
    #[error("the operating system's random number generator failed")]
    Random,
}

impl Error {
    /// A [`Store`](Self::Store) error from a store's own failure (any error type, or a
    /// message): how an `ApprovalStore` of your own reports its backend's errors.
    pub fn store(source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self::Store(source.into())
    }
}

/// At most this many bytes of caller input are copied into an error message.
const MAX_ECHO: usize = 160;

/// `input` cut to at most [`MAX_ECHO`] bytes on a character boundary.
pub(crate) fn echo(input: &str) -> String {
    if input.len() <= MAX_ECHO {
        return input.to_owned();
    }
    let mut end = MAX_ECHO;
    while !input.is_char_boundary(end) {
        end -= 1;
    }
    input.get(..end).unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_truncates_on_char_boundary() {
        let long = "é".repeat(200);
        let cut = echo(&long);
        assert!(cut.len() <= MAX_ECHO);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(echo("short"), "short");
    }
}
