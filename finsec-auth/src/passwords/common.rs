//! The bundled list of common passwords: a [`DenyList`] of the 30,000 passwords people
//! choose most often (zxcvbn's ranking of Mark Burnett's 10 million password list, MIT
//! licensed; `data/common-passwords.LICENSE` says where it comes from).
//!
//! SP 800-63B 5.1.1.2 asks verifiers to refuse passwords "obtained from previous breach
//! corpuses" and "commonly-used". Under the default 12-character minimum only the 229
//! entries of 12 or more characters can match (`qwerty123456`, `1qaz2wsx3edc`, ...); a
//! policy with a shorter minimum meets many more. A deployment with a larger corpus (a
//! breached-password service, a bigger list) implements [`DenyList`] itself.

use std::sync::LazyLock;

use super::policy::{DenyList, SetDenyList};

/// The list as shipped: lower-case ASCII, one password per line, most common first.
pub const COMMON_PASSWORDS_TEXT: &str = include_str!("../../data/common-passwords.txt");

/// How many passwords the bundled list holds.
pub const COMMON_PASSWORDS_LEN: usize = 30_000;

static SET: LazyLock<SetDenyList> =
    LazyLock::new(|| SetDenyList::new(COMMON_PASSWORDS_TEXT.lines().filter(|l| !l.is_empty())));

/// The bundled common passwords as a [`DenyList`] (built once per process, on first use).
#[derive(Debug, Clone, Copy, Default)]
pub struct CommonPasswords;

impl CommonPasswords {
    /// The list.
    pub fn new() -> Self {
        Self
    }

    /// How many distinct entries it holds.
    pub fn len(&self) -> usize {
        SET.len()
    }

    /// Never true: the list ships with [`COMMON_PASSWORDS_LEN`] entries.
    pub fn is_empty(&self) -> bool {
        SET.is_empty()
    }
}

impl DenyList for CommonPasswords {
    fn contains(&self, lowercased: &str) -> bool {
        SET.contains(lowercased)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passwords::{Password, PasswordError, PasswordPolicy};

    #[test]
    fn the_list_holds_every_entry_once() {
        assert_eq!(COMMON_PASSWORDS_TEXT.lines().count(), COMMON_PASSWORDS_LEN);
        assert_eq!(CommonPasswords::new().len(), COMMON_PASSWORDS_LEN);
        assert!(!CommonPasswords::new().is_empty());
        assert_eq!(COMMON_PASSWORDS_TEXT.lines().next(), Some("123456"));
    }

    #[test]
    fn a_policy_with_the_list_refuses_common_passwords_in_any_case() {
        let policy = PasswordPolicy::default().with_deny_list(std::sync::Arc::new(CommonPasswords));
        let long: Vec<&str> = COMMON_PASSWORDS_TEXT
            .lines()
            .filter(|p| p.chars().count() >= 12)
            .collect();
        assert_eq!(long.len(), 229);
        for common in long
            .iter()
            .copied()
            .chain(["QWERTY123456", "Ｑwerty123456"])
        {
            assert!(
                matches!(
                    policy.check(&Password::new(common)),
                    Err(PasswordError::DenyListed)
                ),
                "{common}"
            );
        }
        assert!(
            policy
                .check(&Password::new("correct horse battery staple"))
                .is_ok()
        );
    }
}
