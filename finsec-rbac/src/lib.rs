#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod approval;
pub mod condition;
pub mod controls;
pub mod danger;
pub mod decision;
pub mod error;
pub mod permission;
pub mod policy;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
pub mod request;
pub mod shared;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

pub use approval::{ApprovalId, ApprovalStore, MemoryApprovalStore};
pub use condition::Condition;
pub use decision::{AccessDecision, AuditRecord, Reason, RuleMatch};
pub use error::{Error, Result};
pub use permission::{Permission, PermissionPattern};
pub use policy::{Approval, Effect, Policy, Role, RoleName, Rule};
pub use request::{Principal, Request, Resource};
pub use shared::SharedPolicy;
