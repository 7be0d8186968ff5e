//! Role-based access control for finsec: permission patterns, roles, policies and maker-checker approvals.
//!
//! **Status: not built yet.** This crate is a placeholder in the workspace so that the
//! layout, features and CI are in place; it exports nothing. It will hold:
//!
//! - Colon-separated permission patterns with `*` per segment.
//! - Roles with inheritance, explicit deny rules that win, and conditions (ownership, attribute equality, IP allow-lists).
//! - Policies loaded from TOML, YAML or JSON and checked at load time; a built-in preset with the admin, trader, analyst and viewer roles.
//! - Maker-checker (four eyes) approvals with a quorum and a time limit, and an always-audited break-glass override.
//! - A `Decision` that says allow or deny and which rule decided, compiled so a check costs well under a microsecond.
//!
//! # Threat model
//!
//! None yet: the crate exports nothing, so it neither defends nor exposes anything. The
//! section arrives with the code.
#![forbid(unsafe_code)]
