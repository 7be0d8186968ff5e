//! The built-in preset: the four roles of the original design.
//!
//! | role      | rules                                                                  |
//! |-----------|------------------------------------------------------------------------|
//! | `admin`   | allow `*` (everything)                                                 |
//! | `trader`  | allow `trade:*`; allow `orders:read`, `orders:write` when `resource.owner == principal.id`; allow `market_data:read`; allow `portfolio:read` when `resource.owner == principal.id` |
//! | `analyst` | inherits `viewer`; allow `analytics:*`                                 |
//! | `viewer`  | allow `market_data:read`, `reports:read`                               |
//!
//! So an analyst may read market data and reports and do anything under `analytics:`;
//! a trader does not read reports; nobody but admin writes reports or market data.
//! The preset has no deny rules, no IP conditions and no approvals: copy [`PRESET_TOML`]
//! and extend it for those.

use super::Policy;
use crate::error::Result;

/// The preset as a policy document, to copy and extend.
pub const PRESET_TOML: &str = r#"
[roles.admin]
description = "everything"
rules = [{ effect = "allow", permissions = ["*"] }]

[roles.trader]
description = "trading, own orders and portfolio, market data"
rules = [
    { effect = "allow", permissions = ["trade:*"] },
    { effect = "allow", permissions = ["orders:read", "orders:write"], conditions = [{ kind = "owner" }] },
    { effect = "allow", permissions = ["market_data:read"] },
    { effect = "allow", permissions = ["portfolio:read"], conditions = [{ kind = "owner" }] },
]

[roles.analyst]
description = "market data and reports, analytics"
inherits = ["viewer"]
rules = [{ effect = "allow", permissions = ["analytics:*"] }]

[roles.viewer]
description = "read-only market data and reports"
rules = [{ effect = "allow", permissions = ["market_data:read", "reports:read"] }]
"#;

/// The preset, compiled.
///
/// # Errors
/// None in practice (the document is fixed and tested); the `Result` is kept so that no
/// code path in this crate can panic.
pub fn original() -> Result<Policy> {
    Policy::from_toml(PRESET_TOML)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preset_loads() {
        let p = original().unwrap();
        let names: Vec<_> = p.roles().iter().map(|r| r.name().as_str()).collect();
        assert_eq!(names, ["admin", "analyst", "trader", "viewer"]);
    }
}
