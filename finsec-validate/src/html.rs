//! HTML sanitising with [`ammonia`] under named, fixed policies.
//!
//! User-supplied rich text (order notes, client comments) is run through an allow-list HTML
//! sanitiser before it is stored or shown. Two named policies exist:
//!
//! | policy | elements kept | attributes kept |
//! | --- | --- | --- |
//! | [`HtmlPolicy::Basic`] (`"basic"`) | `b`, `i`, `u`, `em`, `strong` | none |
//! | [`HtmlPolicy::Notes`] (`"notes"`) | the basic set, `p`, `br`, `ul`, `ol`, `li`, `code`, `a` | `a[href]` with an absolute `http`, `https` or `mailto` URL |
//!
//! Everything else is removed; the text content of removed elements is kept (escaped), except
//! for `script` and `style`, whose content is dropped entirely. Comments are stripped. Every
//! kept link gets `rel="noopener noreferrer"` (no `window.opener` access, no `Referer` leak).
//! Relative URLs are refused (the link is dropped) so that a note cannot point at an
//! application-internal endpoint relative to wherever it is rendered.
//!
//! ```
//! use finsec_validate::{HtmlPolicy, HtmlSanitizer};
//!
//! let notes = HtmlSanitizer::new(HtmlPolicy::Notes);
//! let clean = notes.sanitize(r#"<p onclick="x()">See <a href="https://example.com">this</a><script>alert(1)</script></p>"#)?;
//! assert_eq!(
//!     clean.as_str(),
//!     r#"<p>See <a href="https://example.com" rel="noopener noreferrer">this</a></p>"#
//! );
//! let basic = HtmlSanitizer::new("basic".parse()?);
//! assert_eq!(basic.sanitize("<p><b>bold</b></p>")?.as_str(), "<b>bold</b>");
//! # Ok::<(), finsec_validate::HtmlError>(())
//! ```
//!
//! # Policy choices
//!
//! - The policies are closed: callers pick a name, not a configuration, so no call site can
//!   widen the allow-list by accident. A wider policy is a new variant, reviewed here.
//! - Each policy's [`ammonia::Builder`] is built once per process (a [`LazyLock`]), not per
//!   call.
//! - Input is capped ([`HtmlSanitizer::DEFAULT_MAX_INPUT_BYTES`]) so one request cannot make
//!   the sanitiser parse megabytes of markup.
//!
//! # Threat model
//!
//! Defends against stored cross-site scripting through user-supplied markup: no output
//! contains a `script` element, an event-handler (`on*`) attribute, a `style` attribute, or a
//! `javascript:`/`data:` URL (the tests parse every output with html5ever and walk the tree to
//! check this, over a public XSS corpus and random input). It relies on ammonia's use of a
//! real HTML5 parser (html5ever), so parser-differential tricks (unclosed tags, `<svg>` and
//! `<math>` content, entity-encoded schemes) are resolved the way a browser resolves them.
//! It does not defend against content that is harmful as *text* (phishing wording, look-alike
//! link text); the output must still be inserted as HTML in an HTML body context, not inside
//! an attribute, a `<script>` or a URL.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use ammonia::{Builder, UrlRelative};

/// Errors from HTML sanitising.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HtmlError {
    /// The policy name is not one of the known policies.
    #[error("unknown html policy {name:?}")]
    UnknownPolicy {
        /// The name that was asked for (truncated to 64 characters).
        name: String,
    },
    /// The input is larger than the sanitiser accepts.
    #[error("html input is {actual} bytes, more than the maximum of {max}")]
    InputTooLarge {
        /// The configured maximum, in bytes.
        max: usize,
        /// The size of the input, in bytes.
        actual: usize,
    },
    /// A sanitiser was configured with a maximum input size of zero.
    #[error("html input limit must be greater than zero")]
    ZeroLimit,
}

impl HtmlError {
    /// A stable, machine-readable code for this error (for API responses and metrics).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownPolicy { .. } => "html.unknown_policy",
            Self::InputTooLarge { .. } => "html.too_large",
            Self::ZeroLimit => "html.zero_limit",
        }
    }
}

/// A named HTML sanitising policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HtmlPolicy {
    /// Inline emphasis only: `b`, `i`, `u`, `em`, `strong`; no attributes.
    Basic,
    /// Notes: the basic set plus `p`, `br`, `ul`, `ol`, `li`, `code` and links (`a[href]`
    /// with an absolute `http`, `https` or `mailto` URL, `rel="noopener noreferrer"` added).
    Notes,
}

const BASIC_TAGS: [&str; 5] = ["b", "i", "u", "em", "strong"];
const NOTES_EXTRA_TAGS: [&str; 7] = ["p", "br", "ul", "ol", "li", "code", "a"];
const NOTES_URL_SCHEMES: [&str; 3] = ["http", "https", "mailto"];
/// The `rel` value ammonia sets on every kept link under [`HtmlPolicy::Notes`].
pub const NOTES_LINK_REL: &str = "noopener noreferrer";

static BASIC: LazyLock<Builder<'static>> = LazyLock::new(|| HtmlPolicy::Basic.ammonia_builder());
static NOTES: LazyLock<Builder<'static>> = LazyLock::new(|| HtmlPolicy::Notes.ammonia_builder());

impl HtmlPolicy {
    /// Every policy, in a stable order.
    pub const ALL: [Self; 2] = [Self::Basic, Self::Notes];

    /// The policy's name (`"basic"`, `"notes"`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Basic => "basic",
            Self::Notes => "notes",
        }
    }

    /// A fresh [`ammonia::Builder`] configured exactly as this policy.
    ///
    /// Sanitising goes through a builder cached per process; this constructor exists so
    /// benchmarks and tests can compare against raw ammonia configured identically.
    #[must_use]
    pub fn ammonia_builder(self) -> Builder<'static> {
        let mut builder = Builder::empty();
        builder
            .generic_attributes(HashSet::new())
            .generic_attribute_prefixes(HashSet::new())
            .tag_attributes(HashMap::new())
            .tag_attribute_values(HashMap::new())
            .set_tag_attribute_values(HashMap::new())
            .allowed_classes(HashMap::new())
            .clean_content_tags(HashSet::from(["script", "style"]))
            .strip_comments(true)
            .id_prefix(None)
            .url_relative(UrlRelative::Deny)
            .add_tags(BASIC_TAGS.iter());
        match self {
            Self::Basic => {
                builder.url_schemes(HashSet::new()).link_rel(None);
            }
            Self::Notes => {
                builder
                    .add_tags(NOTES_EXTRA_TAGS.iter())
                    .tag_attributes(HashMap::from([("a", HashSet::from(["href"]))]))
                    .url_schemes(HashSet::from(NOTES_URL_SCHEMES))
                    .link_rel(Some(NOTES_LINK_REL));
            }
        }
        builder
    }

    fn cached(self) -> &'static Builder<'static> {
        match self {
            Self::Basic => &BASIC,
            Self::Notes => &NOTES,
        }
    }
}

impl fmt::Display for HtmlPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HtmlPolicy {
    type Err = HtmlError;

    /// Parses a policy name (exact, lowercase: `"basic"` or `"notes"`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| HtmlError::UnknownPolicy {
                name: s.chars().take(64).collect(),
            })
    }
}

/// HTML that went through a sanitising policy.
///
/// The only way to obtain one is [`HtmlSanitizer::sanitize`], so a function taking `SafeHtml`
/// cannot be handed raw user markup.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SafeHtml {
    html: String,
    policy: HtmlPolicy,
}

impl SafeHtml {
    /// The sanitised markup.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.html
    }

    /// The policy the markup was sanitised under.
    #[must_use]
    pub fn policy(&self) -> HtmlPolicy {
        self.policy
    }

    /// Consumes the value, returning the sanitised markup.
    #[must_use]
    pub fn into_string(self) -> String {
        self.html
    }
}

impl AsRef<str> for SafeHtml {
    fn as_ref(&self) -> &str {
        &self.html
    }
}

impl fmt::Display for SafeHtml {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.html)
    }
}

/// A sanitiser for one policy with an input size limit.
///
/// Cheap to construct and to copy: the ammonia configuration is shared per process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HtmlSanitizer {
    policy: HtmlPolicy,
    max_input_bytes: usize,
}

impl HtmlSanitizer {
    /// The default maximum input size: 64 KiB, far above any legitimate note.
    pub const DEFAULT_MAX_INPUT_BYTES: usize = 64 * 1024;

    /// A sanitiser for `policy` with the default input limit.
    #[must_use]
    pub fn new(policy: HtmlPolicy) -> Self {
        Self {
            policy,
            max_input_bytes: Self::DEFAULT_MAX_INPUT_BYTES,
        }
    }

    /// Sets the maximum input size in bytes.
    ///
    /// # Errors
    ///
    /// [`HtmlError::ZeroLimit`] if `max` is zero.
    pub fn with_max_input_bytes(mut self, max: usize) -> Result<Self, HtmlError> {
        if max == 0 {
            return Err(HtmlError::ZeroLimit);
        }
        self.max_input_bytes = max;
        Ok(self)
    }

    /// The policy this sanitiser applies.
    #[must_use]
    pub fn policy(&self) -> HtmlPolicy {
        self.policy
    }

    /// The maximum input size in bytes.
    #[must_use]
    pub fn max_input_bytes(&self) -> usize {
        self.max_input_bytes
    }

    /// Sanitises `input` under the policy.
    ///
    /// # Errors
    ///
    /// [`HtmlError::InputTooLarge`] if `input` is longer than the limit. Markup itself never
    /// causes an error: disallowed content is removed.
    pub fn sanitize(&self, input: &str) -> Result<SafeHtml, HtmlError> {
        if input.len() > self.max_input_bytes {
            return Err(HtmlError::InputTooLarge {
                max: self.max_input_bytes,
                actual: input.len(),
            });
        }
        Ok(SafeHtml {
            html: self.policy.cached().clean(input).to_string(),
            policy: self.policy,
        })
    }
}

/// Sanitises `input` under `policy` with the default input limit.
///
/// # Errors
///
/// [`HtmlError::InputTooLarge`] if `input` exceeds [`HtmlSanitizer::DEFAULT_MAX_INPUT_BYTES`].
pub fn sanitize(policy: HtmlPolicy, input: &str) -> Result<SafeHtml, HtmlError> {
    HtmlSanitizer::new(policy).sanitize(input)
}
