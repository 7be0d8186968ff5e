//! NIST SP 800-63B password rules.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use super::{Password, PasswordError};

/// Default minimum length in characters (SP 800-63B requires at least 8; 12 is OWASP's
/// and NCSC's advice for passwords that are the only factor).
pub const DEFAULT_MIN_CHARS: usize = 12;
/// Default maximum length in characters (SP 800-63B: allow at least 64).
pub const DEFAULT_MAX_CHARS: usize = 256;
/// The smallest minimum a policy may set (SP 800-63B 5.1.1.2).
pub const MIN_MIN_CHARS: usize = 8;
/// The largest maximum a policy may set; bounds the cost of normalising and hashing.
pub const MAX_MAX_CHARS: usize = 1024;
/// The smallest maximum a policy may set (SP 800-63B: at least 64 characters allowed).
const MIN_MAX_CHARS: usize = 64;

/// A list of passwords that must not be chosen (SP 800-63B 5.1.1.2: passwords from
/// breaches, dictionary words, context-specific words such as the service name).
///
/// The policy calls [`contains`](Self::contains) with the NFKC-normalised, lower-cased
/// password, so implementations store lower-cased entries and the check is
/// case-insensitive.
pub trait DenyList: Send + Sync {
    /// Whether `lowercased` (NFKC-normalised, lower-cased) is denied.
    fn contains(&self, lowercased: &str) -> bool;
}

/// A [`DenyList`] held in memory.
#[derive(Debug, Clone, Default)]
pub struct SetDenyList(HashSet<String>);

impl SetDenyList {
    /// Builds a list; entries are NFKC-normalised and lower-cased.
    pub fn new<I, S>(entries: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self(entries.into_iter().map(|e| fold(e.as_ref())).collect())
    }

    /// Number of distinct entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl DenyList for SetDenyList {
    fn contains(&self, lowercased: &str) -> bool {
        self.0.contains(lowercased)
    }
}

fn fold(s: &str) -> String {
    s.nfkc().collect::<String>().to_lowercase()
}

/// Password rules for new passwords, per NIST SP 800-63B 5.1.1.2: a length range counted
/// in the Unicode code points the user typed, no composition rules, and an optional
/// deny-list; the password is NFKC-normalised for the deny-list and for hashing.
///
/// The length is counted before normalisation so that the rule is exactly the one a
/// client can check (and a JSON Schema `minLength`/`maxLength` expresses): a password the
/// form accepted is never refused because NFKC composed or expanded some of its
/// characters.
#[derive(Clone)]
pub struct PasswordPolicy {
    min_chars: usize,
    max_chars: usize,
    deny_list: Option<Arc<dyn DenyList>>,
}

impl fmt::Debug for PasswordPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordPolicy")
            .field("min_chars", &self.min_chars)
            .field("max_chars", &self.max_chars)
            .field("deny_list", &self.deny_list.is_some())
            .finish()
    }
}

impl Default for PasswordPolicy {
    /// 12 to 256 characters, no deny-list.
    fn default() -> Self {
        Self {
            min_chars: DEFAULT_MIN_CHARS,
            max_chars: DEFAULT_MAX_CHARS,
            deny_list: None,
        }
    }
}

impl PasswordPolicy {
    /// A policy with a length range.
    ///
    /// # Errors
    /// [`PasswordError::InvalidParameter`] if `min_chars` is below 8, `max_chars` below 64
    /// or above [`MAX_MAX_CHARS`], or `min_chars > max_chars`.
    pub fn new(min_chars: usize, max_chars: usize) -> Result<Self, PasswordError> {
        if min_chars < MIN_MIN_CHARS {
            return Err(PasswordError::InvalidParameter {
                name: "min_chars",
                reason: format!("{min_chars} is below the minimum {MIN_MIN_CHARS}"),
            });
        }
        if !(MIN_MAX_CHARS..=MAX_MAX_CHARS).contains(&max_chars) {
            return Err(PasswordError::InvalidParameter {
                name: "max_chars",
                reason: format!("{max_chars} is outside {MIN_MAX_CHARS}..={MAX_MAX_CHARS}"),
            });
        }
        if min_chars > max_chars {
            return Err(PasswordError::InvalidParameter {
                name: "min_chars",
                reason: format!("{min_chars} is above max_chars {max_chars}"),
            });
        }
        Ok(Self {
            min_chars,
            max_chars,
            deny_list: None,
        })
    }

    /// Adds a deny-list, checked case-insensitively.
    #[must_use]
    pub fn with_deny_list(mut self, deny_list: Arc<dyn DenyList>) -> Self {
        self.deny_list = Some(deny_list);
        self
    }

    /// The minimum length in characters.
    pub const fn min_chars(&self) -> usize {
        self.min_chars
    }

    /// The maximum length in characters.
    pub const fn max_chars(&self) -> usize {
        self.max_chars
    }

    /// Checks a new password and returns it NFKC-normalised, ready for hashing.
    ///
    /// # Errors
    /// [`PasswordError::TooShort`], [`PasswordError::TooLong`] or
    /// [`PasswordError::DenyListed`].
    pub fn check(&self, password: &Password) -> Result<NewPassword, PasswordError> {
        let raw = password.expose_secret();
        // Lengths count the code points as sent (SP 800-63B 5.1.1.2: each code point is one
        // character), so the rule is the same one a client or a JSON Schema `minLength` /
        // `maxLength` checks; normalisation applies to what is hashed, not to the count.
        // Checking the maximum first also bounds the work of normalising (NFKC expands a
        // code point at most 18x).
        let actual = raw.chars().count();
        if actual < self.min_chars {
            return Err(PasswordError::TooShort {
                min: self.min_chars,
                actual,
            });
        }
        if actual > self.max_chars {
            return Err(PasswordError::TooLong {
                max: self.max_chars,
                actual,
            });
        }
        let normalized = Zeroizing::new(normalize(raw));
        if let Some(list) = &self.deny_list {
            let lowered = Zeroizing::new(normalized.to_lowercase());
            if list.contains(&lowered) {
                return Err(PasswordError::DenyListed);
            }
        }
        Ok(NewPassword(SecretString::from(normalized.to_string())))
    }
}

/// NFKC normalisation (SP 800-63B 5.1.1.2).
pub(super) fn normalize(password: &str) -> String {
    password.nfkc().collect()
}

/// A new password that passed a [`PasswordPolicy`], NFKC-normalised. Only this can be
/// hashed with [`PasswordHasher::hash`](super::PasswordHasher::hash). Zeroized on drop,
/// `[REDACTED]` in `Debug`.
pub struct NewPassword(SecretString);

impl NewPassword {
    /// The normalised password.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword([REDACTED])")
    }
}
