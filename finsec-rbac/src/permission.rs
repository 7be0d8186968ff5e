//! Permissions (`trade:execute`) and permission patterns (`trade:*`, `*`).
//!
//! # Grammar
//!
//! A permission is 1 to [`MAX_SEGMENTS`] segments separated by `:`, at most [`MAX_LEN`]
//! bytes in all. A segment is one or more of `A-Z a-z 0-9 _ - .`; case matters
//! (`Trade` is not `trade`). A pattern has the same shape, and any segment may instead be
//! exactly `*`. Both orders of the original design are expressible: `trade:execute`
//! (resource first) and `read:market_data` (verb first) are just segments.
//!
//! # Matching
//!
//! Matching is segment by segment; a literal segment matches only the identical segment
//! (`trade:*` matches `trade:execute` but not `trades:execute`, `*:read` matches
//! `orders:read` but not `orders:read:own`).
//!
//! - A `*` that is **not** the last segment of the pattern matches exactly one segment.
//! - A `*` that **is** the last segment matches one or more remaining segments, so `*`
//!   alone matches every permission and `trade:*` matches `trade:execute` and
//!   `trade:order:cancel`, but never `trade` itself.
//!
//! Without a trailing `*`, a pattern matches only permissions with the same number of
//! segments. There is no partial-segment globbing (`trade*` is refused), so a new
//! resource name such as `trades` can never be granted by accident.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, PatternProblem, Result, echo};

/// The most segments a permission or pattern may have.
pub const MAX_SEGMENTS: usize = 8;
/// The longest permission or pattern, in bytes.
pub const MAX_LEN: usize = 128;

fn invalid(input: &str, position: usize, problem: PatternProblem) -> Error {
    Error::InvalidPermission {
        input: echo(input),
        position,
        problem,
    }
}

fn is_segment_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

/// Splits and checks `input`; `wildcards` says whether `*` segments are allowed.
fn parse_segments(input: &str, wildcards: bool) -> Result<Vec<&str>> {
    if input.is_empty() {
        return Err(invalid(input, 0, PatternProblem::Empty));
    }
    if input.len() > MAX_LEN {
        return Err(invalid(input, MAX_LEN, PatternProblem::TooLong));
    }
    let mut segments = Vec::new();
    let mut start = 0usize;
    for segment in input.split(':') {
        if segments.len() == MAX_SEGMENTS {
            return Err(invalid(input, start, PatternProblem::TooManySegments));
        }
        if segment.is_empty() {
            return Err(invalid(input, start, PatternProblem::EmptySegment));
        }
        if segment == "*" {
            if !wildcards {
                return Err(invalid(input, start, PatternProblem::WildcardNotAllowed));
            }
        } else {
            for (offset, c) in segment.char_indices() {
                let position = start + offset;
                if c == '*' {
                    let problem = if wildcards {
                        PatternProblem::PartialWildcard
                    } else {
                        PatternProblem::WildcardNotAllowed
                    };
                    return Err(invalid(input, position, problem));
                }
                if !(c.is_ascii() && is_segment_byte(c as u8)) {
                    return Err(invalid(
                        input,
                        position,
                        PatternProblem::InvalidCharacter(c),
                    ));
                }
            }
        }
        segments.push(segment);
        start += segment.len() + 1;
    }
    Ok(segments)
}

/// A concrete permission: the action being checked, such as `trade:execute`.
///
/// Never contains `*`. Parse with [`Permission::new`] or [`str::parse`].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Permission {
    text: Box<str>,
    segments: Box<[Box<str>]>,
}

impl Permission {
    /// Parses a concrete permission.
    ///
    /// # Errors
    /// [`Error::InvalidPermission`] naming the byte offset and the problem.
    pub fn new(input: &str) -> Result<Self> {
        let segments = parse_segments(input, false)?;
        Ok(Self {
            text: input.into(),
            segments: segments.into_iter().map(Box::from).collect(),
        })
    }

    /// The permission as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The segments, in order.
    pub fn segments(&self) -> impl ExactSizeIterator<Item = &str> {
        self.segments.iter().map(|s| &**s)
    }

    pub(crate) fn segment_slice(&self) -> &[Box<str>] {
        &self.segments
    }
}

impl fmt::Debug for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Permission({:?})", &*self.text)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Permission {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

/// One segment of a [`PermissionPattern`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// `*`: any one segment, or (as the last segment) one or more.
    Any,
    /// Exactly this text.
    Literal(Box<str>),
}

/// A permission pattern such as `trade:*`, `orders:read` or `*`.
///
/// See the [module docs](self) for the grammar and the matching rules.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PermissionPattern {
    text: Box<str>,
    segments: Box<[Segment]>,
}

impl PermissionPattern {
    /// Parses a pattern.
    ///
    /// # Errors
    /// [`Error::InvalidPermission`] naming the byte offset and the problem.
    pub fn new(input: &str) -> Result<Self> {
        let segments = parse_segments(input, true)?;
        Ok(Self {
            text: input.into(),
            segments: segments
                .into_iter()
                .map(|s| {
                    if s == "*" {
                        Segment::Any
                    } else {
                        Segment::Literal(s.into())
                    }
                })
                .collect(),
        })
    }

    /// The pattern that matches every permission (`*`).
    pub fn any() -> Self {
        Self {
            text: "*".into(),
            segments: Box::new([Segment::Any]),
        }
    }

    /// The pattern as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The segments, in order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Whether the pattern matches `permission`.
    pub fn matches(&self, permission: &Permission) -> bool {
        segments_match(&self.segments, permission.segment_slice())
    }

    /// The literal first segment, if the pattern does not start with `*`.
    pub(crate) fn first_literal(&self) -> Option<&str> {
        match self.segments.first() {
            Some(Segment::Literal(s)) => Some(s),
            _ => None,
        }
    }
}

/// The matching rule of the module docs.
fn segments_match(pattern: &[Segment], permission: &[Box<str>]) -> bool {
    let Some((last, init)) = pattern.split_last() else {
        return false;
    };
    let trailing_any = matches!(last, Segment::Any);
    let length_ok = if trailing_any {
        permission.len() >= pattern.len()
    } else {
        permission.len() == pattern.len()
    };
    if !length_ok {
        return false;
    }
    let checked = if trailing_any { init } else { pattern };
    checked.iter().zip(permission.iter()).all(|(p, s)| match p {
        Segment::Any => true,
        Segment::Literal(l) => **l == **s,
    })
}

impl fmt::Debug for PermissionPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PermissionPattern({:?})", &*self.text)
    }
}

impl fmt::Display for PermissionPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for PermissionPattern {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PermissionPattern {
        PermissionPattern::new(s).unwrap()
    }
    fn perm(s: &str) -> Permission {
        Permission::new(s).unwrap()
    }

    #[test]
    fn wildcard_matching() {
        let cases: &[(&str, &str, bool)] = &[
            ("trade:*", "trade:execute", true),
            ("trade:*", "trades:execute", false),
            ("trade:*", "trade", false),
            ("trade:*", "trade:order:cancel", true),
            ("*", "trade", true),
            ("*", "a:b:c:d:e:f:g:h", true),
            ("*:read", "orders:read", true),
            ("*:read", "orders:read:own", false),
            ("*:read", "orders:write", false),
            ("orders:read", "orders:read", true),
            ("orders:read", "orders:read:x", false),
            ("orders:read", "Orders:read", false),
            ("a:*:c", "a:b:c", true),
            ("a:*:c", "a:b:x:c", false),
        ];
        for (pattern, permission, expected) in cases {
            assert_eq!(
                p(pattern).matches(&perm(permission)),
                *expected,
                "{pattern} vs {permission}"
            );
        }
        assert_eq!(cases.len(), 14);
        assert!(PermissionPattern::any().matches(&perm("x")));
    }

    #[test]
    fn precise_errors() {
        let cases: &[(&str, bool, usize, PatternProblem)] = &[
            ("", true, 0, PatternProblem::Empty),
            ("a::b", true, 2, PatternProblem::EmptySegment),
            (":a", true, 0, PatternProblem::EmptySegment),
            ("a:", true, 2, PatternProblem::EmptySegment),
            ("trade*", true, 5, PatternProblem::PartialWildcard),
            ("trade:*", false, 6, PatternProblem::WildcardNotAllowed),
            ("a:b c", true, 3, PatternProblem::InvalidCharacter(' ')),
            ("a:é", true, 2, PatternProblem::InvalidCharacter('é')),
            (
                "a:b:c:d:e:f:g:h:i",
                true,
                16,
                PatternProblem::TooManySegments,
            ),
        ];
        for (input, wildcards, position, problem) in cases {
            let err = if *wildcards {
                PermissionPattern::new(input).unwrap_err()
            } else {
                Permission::new(input).unwrap_err()
            };
            match err {
                Error::InvalidPermission {
                    position: got_pos,
                    problem: got,
                    ..
                } => {
                    assert_eq!((got_pos, got), (*position, *problem), "{input}");
                }
                other => panic!("{input}: {other}"),
            }
        }
        let long = "a".repeat(MAX_LEN + 1);
        assert!(matches!(
            Permission::new(&long),
            Err(Error::InvalidPermission {
                problem: PatternProblem::TooLong,
                ..
            })
        ));
        assert_eq!(
            Permission::new("a b").unwrap_err().to_string(),
            "invalid permission \"a b\" at byte 1: invalid character ' '"
        );
    }

    #[test]
    fn accessors() {
        let x = perm("orders:read");
        assert_eq!(x.segments().collect::<Vec<_>>(), ["orders", "read"]);
        assert_eq!(x.to_string(), "orders:read");
        assert_eq!(format!("{x:?}"), "Permission(\"orders:read\")");
        let q: PermissionPattern = "orders:*".parse().unwrap();
        assert_eq!(q.first_literal(), Some("orders"));
        assert_eq!(PermissionPattern::any().first_literal(), None);
        assert_eq!(q.segments()[1], Segment::Any);
    }
}
