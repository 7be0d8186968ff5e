//! The outcome of a check: [`AccessDecision`], with the [`Reason`] that decided it.
//!
//! A `AccessDecision` can only be made by this crate (its constructor is private), so code that
//! receives one knows a policy produced it. [`AccessDecision::explain`] renders it for people;
//! [`AccessDecision::audit_record`] gives the stable, serialisable form for the audit log.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::approval::ApprovalId;
use crate::permission::PermissionPattern;
use crate::policy::{RoleName, Rule, RuleAt};

/// The rule that decided, and which of its patterns matched.
#[derive(Debug, Clone)]
pub struct RuleMatch {
    pub(crate) rule: Arc<RuleAt>,
    pub(crate) pattern: usize,
}

impl RuleMatch {
    /// The role that defines the rule (an ancestor of the principal's role when the rule
    /// was inherited).
    pub fn role(&self) -> &RoleName {
        &self.rule.role
    }

    /// The rule's index in that role's list (from 0).
    pub fn index(&self) -> usize {
        self.rule.index
    }

    /// The rule.
    pub fn rule(&self) -> &Rule {
        &self.rule.rule
    }

    /// The pattern that matched the action.
    pub fn pattern(&self) -> Option<&PermissionPattern> {
        self.rule.rule.patterns().get(self.pattern)
    }
}

impl fmt::Display for RuleMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rule {} of role {:?} ({})",
            self.index(),
            self.role().as_str(),
            self.rule()
        )?;
        if let Some(p) = self.pattern() {
            write!(f, ", matched by pattern {p}")?;
        }
        Ok(())
    }
}

/// Why a decision came out the way it did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Reason {
    /// An allow rule matched and its conditions held, and no deny rule applied.
    AllowedByRule(RuleMatch),
    /// The matching allow rule required approval, and a valid approval request with a
    /// quorum of approvals was presented (and is now used up).
    AllowedWithApproval {
        /// The approval-gated rule.
        rule: RuleMatch,
        /// The approval request.
        approval: ApprovalId,
        /// Who approved.
        approvers: Vec<String>,
    },
    /// The approval requirement was bypassed by a break-glass override. Always audit.
    AllowedByBreakGlass {
        /// The approval-gated rule that was bypassed.
        rule: RuleMatch,
        /// The justification the principal gave.
        justification: String,
    },
    /// A deny rule matched (deny always wins).
    DeniedByRule(RuleMatch),
    /// No rule of the principal's roles matched the action (default deny).
    NoRuleMatched,
    /// The only matching allow rule needs approval, and none was presented.
    ApprovalRequired(RuleMatch),
    /// An approval was presented but does not authorize the action.
    ApprovalRefused {
        /// The approval-gated rule.
        rule: RuleMatch,
        /// Why the approval was not accepted.
        problem: String,
    },
    /// The principal holds a role the policy does not define: deny everything.
    UnknownRole(RoleName),
    /// Something went wrong while deciding (a store failed, say): fail closed.
    Internal(String),
}

/// The outcome of an authorization check: allowed or denied, and why.
///
/// Only this crate makes decisions; every path that is not an explicit allow is a deny.
#[derive(Debug, Clone)]
#[must_use = "a decision must be enforced"]
pub struct AccessDecision {
    reason: Reason,
}

/// The audit-log form of a [`AccessDecision`] (serialise it with serde).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// `allow` or `deny`.
    pub outcome: &'static str,
    /// A stable code: `rule`, `approved`, `break_glass`, `deny_rule`, `no_rule_matched`,
    /// `approval_required`, `approval_refused`, `unknown_role` or `internal`.
    pub reason: &'static str,
    /// The role defining the deciding rule.
    pub role: Option<String>,
    /// The index of the deciding rule in that role.
    pub rule: Option<usize>,
    /// The pattern that matched.
    pub pattern: Option<String>,
    /// The approval request, when one was used.
    pub approval: Option<String>,
    /// The approvers, when an approval was used.
    pub approvers: Vec<String>,
    /// Whether a break-glass override was used; such records must be reviewed.
    pub break_glass: bool,
    /// Free text: the break-glass justification, the approval problem, the unknown role or
    /// the internal error.
    pub detail: Option<String>,
}

impl AccessDecision {
    pub(crate) fn new(reason: Reason) -> Self {
        Self { reason }
    }

    /// Whether the action is allowed.
    pub fn is_allowed(&self) -> bool {
        matches!(
            self.reason,
            Reason::AllowedByRule(_)
                | Reason::AllowedWithApproval { .. }
                | Reason::AllowedByBreakGlass { .. }
        )
    }

    /// Whether the action is denied (the opposite of [`is_allowed`](Self::is_allowed)).
    pub fn is_denied(&self) -> bool {
        !self.is_allowed()
    }

    /// Whether the decision must be reviewed (a break-glass override was used).
    pub fn is_break_glass(&self) -> bool {
        matches!(self.reason, Reason::AllowedByBreakGlass { .. })
    }

    /// Why.
    pub fn reason(&self) -> &Reason {
        &self.reason
    }

    /// The rule that decided, if one did.
    pub fn rule(&self) -> Option<&RuleMatch> {
        match &self.reason {
            Reason::AllowedByRule(r)
            | Reason::DeniedByRule(r)
            | Reason::ApprovalRequired(r)
            | Reason::AllowedWithApproval { rule: r, .. }
            | Reason::AllowedByBreakGlass { rule: r, .. }
            | Reason::ApprovalRefused { rule: r, .. } => Some(r),
            Reason::NoRuleMatched | Reason::UnknownRole(_) | Reason::Internal(_) => None,
        }
    }

    /// One line for people: the outcome and the reason.
    pub fn explain(&self) -> String {
        match &self.reason {
            Reason::AllowedByRule(r) => format!("allowed by {r}"),
            Reason::AllowedWithApproval {
                rule,
                approval,
                approvers,
            } => format!(
                "allowed by {rule} with approval request {approval} approved by {}",
                approvers.join(", ")
            ),
            Reason::AllowedByBreakGlass {
                rule,
                justification,
            } => format!(
                "allowed by break-glass override of the approval required by {rule}; \
                 justification: {justification:?} (flagged for audit review)"
            ),
            Reason::DeniedByRule(r) => format!("denied by {r} (deny rules win over allows)"),
            Reason::NoRuleMatched => "denied: no rule matched (default deny)".to_owned(),
            Reason::ApprovalRequired(r) => {
                format!("denied until approved: {r}")
            }
            Reason::ApprovalRefused { rule, problem } => {
                format!("denied: approval not accepted ({problem}) for {rule}")
            }
            Reason::UnknownRole(r) => format!(
                "denied: principal holds role {:?}, which the policy does not define",
                r.as_str()
            ),
            Reason::Internal(e) => format!("denied: internal error ({e}); failing closed"),
        }
    }

    /// The stable, serialisable form for the audit log.
    pub fn audit_record(&self) -> AuditRecord {
        let rule = self.rule();
        let (reason, approval, approvers, detail) = match &self.reason {
            Reason::AllowedByRule(_) => ("rule", None, Vec::new(), None),
            Reason::AllowedWithApproval {
                approval,
                approvers,
                ..
            } => (
                "approved",
                Some(approval.to_string()),
                approvers.clone(),
                None,
            ),
            Reason::AllowedByBreakGlass { justification, .. } => {
                ("break_glass", None, Vec::new(), Some(justification.clone()))
            }
            Reason::DeniedByRule(_) => ("deny_rule", None, Vec::new(), None),
            Reason::NoRuleMatched => ("no_rule_matched", None, Vec::new(), None),
            Reason::ApprovalRequired(_) => ("approval_required", None, Vec::new(), None),
            Reason::ApprovalRefused { problem, .. } => {
                ("approval_refused", None, Vec::new(), Some(problem.clone()))
            }
            Reason::UnknownRole(r) => ("unknown_role", None, Vec::new(), Some(r.to_string())),
            Reason::Internal(e) => ("internal", None, Vec::new(), Some(e.clone())),
        };
        AuditRecord {
            outcome: if self.is_allowed() { "allow" } else { "deny" },
            reason,
            role: rule.map(|r| r.role().to_string()),
            rule: rule.map(RuleMatch::index),
            pattern: rule.and_then(|r| r.pattern()).map(ToString::to_string),
            approval,
            approvers,
            break_glass: self.is_break_glass(),
            detail,
        }
    }
}

impl fmt::Display for AccessDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.explain())
    }
}
