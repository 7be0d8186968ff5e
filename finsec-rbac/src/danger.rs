//! Overrides that skip a control. Every use is flagged for audit review.
//!
//! [`break_glass`] lets a principal perform an action whose only obstacle is a missing
//! maker-checker approval, in an emergency. It never overrides a deny rule, never grants
//! an action no rule allows, and is only available to principals the policy allows
//! [`BREAK_GLASS_PERMISSION`]. The returned [`AccessDecision`] has
//! [`Reason::AllowedByBreakGlass`] and [`AccessDecision::is_break_glass`] set; write its
//! [`audit_record`](AccessDecision::audit_record) to the audit log and review every such record.

use crate::decision::{AccessDecision, Reason};
use crate::permission::Permission;
use crate::policy::Policy;
use crate::request::Request;

/// The permission a principal needs to break glass.
pub const BREAK_GLASS_PERMISSION: &str = "rbac:break_glass";

/// The longest justification accepted, in bytes.
pub const MAX_JUSTIFICATION_LEN: usize = 1024;

/// Decides `request`, bypassing an approval requirement if the principal may break glass
/// and gives a justification (1 to [`MAX_JUSTIFICATION_LEN`] bytes, no control characters
/// other than newlines).
///
/// Returns the policy's own decision when it does not require approval (allowed or
/// denied), and an [`Reason::ApprovalRefused`] deny when break-glass is not permitted.
pub fn break_glass(policy: &Policy, request: &Request<'_>, justification: &str) -> AccessDecision {
    let decision = policy.check(request);
    let Reason::ApprovalRequired(rule) = decision.reason() else {
        return decision;
    };
    let refuse = |problem: &str| {
        AccessDecision::new(Reason::ApprovalRefused {
            rule: rule.clone(),
            problem: problem.to_owned(),
        })
    };
    let justification = justification.trim();
    if justification.is_empty()
        || justification.len() > MAX_JUSTIFICATION_LEN
        || justification.chars().any(|c| c.is_control() && c != '\n')
    {
        return refuse("break-glass needs a justification of 1 to 1024 bytes of text");
    }
    let Ok(permission) = Permission::new(BREAK_GLASS_PERMISSION) else {
        return AccessDecision::new(Reason::Internal(
            "break-glass permission does not parse".to_owned(),
        ));
    };
    if !policy
        .check(&Request::new(request.principal(), &permission))
        .is_allowed()
    {
        return refuse("principal may not break glass (needs rbac:break_glass)");
    }
    AccessDecision::new(Reason::AllowedByBreakGlass {
        rule: rule.clone(),
        justification: justification.to_owned(),
    })
}
