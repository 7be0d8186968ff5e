//! Free-text validation: length bounds, control characters, NFKC, bidi and invisible
//! characters.
//!
//! [`TextRules`] is a validated policy; [`TextRules::clean`] turns untrusted input into a
//! [`CleanText`] or a [`TextError`] that says what was wrong and where (offsets count
//! Unicode scalar values, `char`s, from 0, in the input as given).
//!
//! ```
//! use finsec_validate::{CharPolicy, TextError, TextRules};
//!
//! let rules = TextRules::new(1, 64)?;
//! assert_eq!(rules.clean("  ＡＣＭＥ Capital ")?.as_str(), "ACME Capital");
//! assert_eq!(
//!     rules.clean("invoice\u{202E}fdp.exe"),
//!     Err(TextError::BidiControl { offset: 7, code_point: 0x202E })
//! );
//! let lenient = rules.with_invisible(CharPolicy::Strip);
//! assert_eq!(lenient.clean("AC\u{200B}ME")?.as_str(), "ACME");
//! # Ok::<(), TextError>(())
//! ```
//!
//! # What is checked, in order
//!
//! 1. **Input budget.** Input longer than four times the maximum length (in characters) is
//!    refused before any other work, so a huge input costs no normalisation.
//! 2. **NUL** (U+0000) is always refused ([`TextError::Nul`]): C APIs and many databases
//!    truncate at it.
//! 3. **Bidi controls** are refused or stripped ([`CharPolicy`]): the embeddings and
//!    overrides U+202A–U+202E, the isolates U+2066–U+2069, and the marks U+200E (LRM),
//!    U+200F (RLM) and U+061C (ALM). They reorder displayed text ("Trojan Source",
//!    CVE-2021-42574; `invoice` U+202E `fdp.exe` is shown as `invoiceexe.pdf`).
//! 4. **Invisible characters** are refused or stripped: see [`is_invisible`] for the list
//!    (zero-width space/joiners, word joiner, BOM, soft hyphen, invisible operators, Hangul
//!    fillers, tag characters, ...). They make two different strings look identical (account
//!    names, beneficiary names, symbols).
//! 5. **Other control characters** (Unicode category Cc: C0, DEL, C1, and the line and
//!    paragraph separators U+2028, U+2029) are always refused, except tab and line breaks
//!    (`\n`, `\r`, U+2028, U+2029) when the rules allow them.
//! 6. **NFKC normalisation** (on by default): compatibility forms are folded (`ﬁ` → `fi`,
//!    full-width `Ａ` → `A`, `①` → `1`), so look-alikes compare equal after cleaning.
//! 7. **Trimming** of leading and trailing white space ([`Trim`]).
//! 8. **Length bounds** in characters, on the final text.
//!
//! # Threat model
//!
//! Defends against text that displays differently from what it is (bidi reordering,
//! invisible characters, compatibility look-alikes), against NUL truncation and terminal
//! control sequences in logs, and against unbounded input. It does not detect confusables
//! across scripts (Cyrillic `а` versus Latin `a`), which NFKC leaves alone; and it does not
//! make text safe for any particular output context (HTML, SQL, shell): escape on output.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// Errors from text validation.
///
/// Offsets are character (Unicode scalar value) offsets into the input as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TextError {
    /// The input contains a NUL character.
    #[error("nul character at offset {offset}")]
    Nul {
        /// Character offset of the NUL.
        offset: usize,
    },
    /// The input contains a control character the rules do not allow.
    #[error("control character U+{code_point:04X} at offset {offset}")]
    ControlCharacter {
        /// Character offset.
        offset: usize,
        /// The code point.
        code_point: u32,
    },
    /// The input contains a bidirectional formatting character and the rules refuse them.
    #[error("bidi control character U+{code_point:04X} at offset {offset}")]
    BidiControl {
        /// Character offset.
        offset: usize,
        /// The code point.
        code_point: u32,
    },
    /// The input contains an invisible character and the rules refuse them.
    #[error("invisible character U+{code_point:04X} at offset {offset}")]
    InvisibleCharacter {
        /// Character offset.
        offset: usize,
        /// The code point.
        code_point: u32,
    },
    /// The input starts or ends with white space and the rules refuse it.
    #[error("surrounding white space at offset {offset}")]
    SurroundingWhitespace {
        /// Character offset of the first offending white-space character.
        offset: usize,
    },
    /// The cleaned text is shorter than the minimum.
    #[error("text is {actual} characters, fewer than the minimum of {min}")]
    TooShort {
        /// Minimum length in characters.
        min: usize,
        /// Length of the cleaned text in characters.
        actual: usize,
    },
    /// The text is longer than the maximum (after cleaning, or the raw input exceeded the
    /// input budget of four times the maximum).
    #[error("text is {actual} characters, more than the maximum of {max}")]
    TooLong {
        /// Maximum length in characters.
        max: usize,
        /// Length in characters (of the raw input when it exceeded the input budget).
        actual: usize,
    },
    /// The rules themselves are inconsistent.
    #[error("invalid text rules: {reason}")]
    InvalidRules {
        /// What is wrong with them.
        reason: &'static str,
    },
}

impl TextError {
    /// A stable, machine-readable code for this error (for API responses and metrics).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Nul { .. } => "text.nul",
            Self::ControlCharacter { .. } => "text.control_character",
            Self::BidiControl { .. } => "text.bidi_control",
            Self::InvisibleCharacter { .. } => "text.invisible_character",
            Self::SurroundingWhitespace { .. } => "text.surrounding_whitespace",
            Self::TooShort { .. } => "text.too_short",
            Self::TooLong { .. } => "text.too_long",
            Self::InvalidRules { .. } => "text.invalid_rules",
        }
    }
}

/// What to do with a class of unwanted characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum CharPolicy {
    /// Refuse the input with an error naming the first offending character (the default).
    #[default]
    Reject,
    /// Remove the characters silently.
    Strip,
}

/// What to do with leading and trailing white space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Trim {
    /// Remove it (the default).
    #[default]
    Both,
    /// Refuse input that has it.
    Reject,
    /// Keep it as is.
    Keep,
}

/// Returns `true` for the bidirectional formatting characters this module handles:
/// U+202A–U+202E (embeddings, overrides, pop), U+2066–U+2069 (isolates), U+200E, U+200F and
/// U+061C (directional marks).
#[must_use]
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

/// Returns `true` for the invisible characters this module handles:
///
/// - U+00AD soft hyphen
/// - U+034F combining grapheme joiner
/// - U+115F, U+1160, U+3164, U+FFA0 Hangul fillers
/// - U+17B4, U+17B5 Khmer inherent vowels
/// - U+180E Mongolian vowel separator
/// - U+200B zero-width space, U+200C zero-width non-joiner, U+200D zero-width joiner
/// - U+2060 word joiner, U+2061–U+2064 invisible mathematical operators
/// - U+206A–U+206F deprecated format characters
/// - U+FEFF zero-width no-break space (byte order mark)
/// - U+FFF9–U+FFFB interlinear annotation characters
/// - U+1D173–U+1D17A musical symbol format characters
/// - U+E0000–U+E007F tag characters
///
/// Note that U+200D is part of emoji sequences (family, profession emoji): under
/// [`CharPolicy::Strip`] such a sequence falls apart into its components, under
/// [`CharPolicy::Reject`] it is refused. Variation selectors are not in the list.
#[must_use]
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200D}'
            | '\u{2060}'..='\u{2064}'
            | '\u{206A}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

/// U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR: not control characters, but line
/// breaks to log readers and JavaScript, so they are handled like `\n`.
fn is_line_separator(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}')
}

/// A validated text policy.
///
/// Construct with [`TextRules::new`] (length bounds) and adjust with the `with_*` methods;
/// the defaults are the strict choices: bidi and invisible characters refused, no tabs or
/// line breaks, NFKC on, white space trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextRules {
    min_chars: usize,
    max_chars: usize,
    bidi: CharPolicy,
    invisible: CharPolicy,
    allow_tab: bool,
    allow_line_breaks: bool,
    nfkc: bool,
    trim: Trim,
}

impl Default for TextRules {
    /// One to [`TextRules::DEFAULT_MAX_CHARS`] characters, strict defaults.
    fn default() -> Self {
        Self {
            min_chars: 1,
            max_chars: Self::DEFAULT_MAX_CHARS,
            bidi: CharPolicy::Reject,
            invisible: CharPolicy::Reject,
            allow_tab: false,
            allow_line_breaks: false,
            nfkc: true,
            trim: Trim::Both,
        }
    }
}

impl TextRules {
    /// The default maximum length, in characters.
    pub const DEFAULT_MAX_CHARS: usize = 256;
    /// The largest maximum length accepted, in characters (1 Mi).
    pub const MAX_MAX_CHARS: usize = 1 << 20;
    /// How many raw input characters per allowed output character are read before the input
    /// is refused as too long.
    pub const INPUT_BUDGET_FACTOR: usize = 4;

    /// Rules accepting `min_chars..=max_chars` characters, with the strict defaults.
    ///
    /// # Errors
    ///
    /// [`TextError::InvalidRules`] if `max_chars` is zero, above
    /// [`TextRules::MAX_MAX_CHARS`], or smaller than `min_chars`.
    pub fn new(min_chars: usize, max_chars: usize) -> Result<Self, TextError> {
        if max_chars == 0 {
            return Err(TextError::InvalidRules {
                reason: "maximum length must be greater than zero",
            });
        }
        if max_chars > Self::MAX_MAX_CHARS {
            return Err(TextError::InvalidRules {
                reason: "maximum length is above the supported limit",
            });
        }
        if min_chars > max_chars {
            return Err(TextError::InvalidRules {
                reason: "minimum length is greater than the maximum",
            });
        }
        Ok(Self {
            min_chars,
            max_chars,
            ..Self::default()
        })
    }

    /// Sets the handling of bidi controls (see [`is_bidi_control`]).
    #[must_use]
    pub fn with_bidi(mut self, policy: CharPolicy) -> Self {
        self.bidi = policy;
        self
    }

    /// Sets the handling of invisible characters (see [`is_invisible`]).
    #[must_use]
    pub fn with_invisible(mut self, policy: CharPolicy) -> Self {
        self.invisible = policy;
        self
    }

    /// Allows horizontal tab (U+0009).
    #[must_use]
    pub fn with_tab(mut self, allow: bool) -> Self {
        self.allow_tab = allow;
        self
    }

    /// Allows line feed, carriage return and U+2028/U+2029 (multi-line text).
    #[must_use]
    pub fn with_line_breaks(mut self, allow: bool) -> Self {
        self.allow_line_breaks = allow;
        self
    }

    /// Turns NFKC normalisation on or off.
    #[must_use]
    pub fn with_nfkc(mut self, nfkc: bool) -> Self {
        self.nfkc = nfkc;
        self
    }

    /// Sets the handling of leading and trailing white space.
    #[must_use]
    pub fn with_trim(mut self, trim: Trim) -> Self {
        self.trim = trim;
        self
    }

    /// Minimum length in characters.
    #[must_use]
    pub fn min_chars(&self) -> usize {
        self.min_chars
    }

    /// Maximum length in characters.
    #[must_use]
    pub fn max_chars(&self) -> usize {
        self.max_chars
    }

    /// Validates and cleans `input`.
    ///
    /// # Errors
    ///
    /// The first problem found, in the order listed in the [module docs](self).
    pub fn clean(&self, input: &str) -> Result<CleanText, TextError> {
        let budget = self.max_chars.saturating_mul(Self::INPUT_BUDGET_FACTOR);
        let raw_len = input.chars().take(budget.saturating_add(1)).count();
        if raw_len > budget {
            return Err(TextError::TooLong {
                max: self.max_chars,
                actual: input.chars().count(),
            });
        }

        let mut kept = String::with_capacity(input.len());
        // Input offsets of the first and last kept characters, for precise trim errors.
        let mut first_kept_offset = None;
        let mut last_kept_offset = 0;
        for (offset, c) in input.chars().enumerate() {
            if c == '\0' {
                return Err(TextError::Nul { offset });
            }
            if is_bidi_control(c) {
                match self.bidi {
                    CharPolicy::Reject => {
                        return Err(TextError::BidiControl {
                            offset,
                            code_point: u32::from(c),
                        });
                    }
                    CharPolicy::Strip => continue,
                }
            }
            if is_invisible(c) {
                match self.invisible {
                    CharPolicy::Reject => {
                        return Err(TextError::InvisibleCharacter {
                            offset,
                            code_point: u32::from(c),
                        });
                    }
                    CharPolicy::Strip => continue,
                }
            }
            if (c.is_control() || is_line_separator(c)) && !self.control_allowed(c) {
                return Err(TextError::ControlCharacter {
                    offset,
                    code_point: u32::from(c),
                });
            }
            first_kept_offset.get_or_insert(offset);
            last_kept_offset = offset;
            kept.push(c);
        }

        if self.trim == Trim::Reject {
            if kept.starts_with(char::is_whitespace) {
                return Err(TextError::SurroundingWhitespace {
                    offset: first_kept_offset.unwrap_or(0),
                });
            }
            if kept.ends_with(char::is_whitespace) {
                return Err(TextError::SurroundingWhitespace {
                    offset: last_kept_offset,
                });
            }
        }

        let normalised = if self.nfkc {
            kept.nfkc().collect::<String>()
        } else {
            kept
        };
        if self.trim == Trim::Reject {
            // NFKC can produce white space at an end (U+00A8 becomes U+0020 U+0308); the
            // offset is then the one in the normalised text.
            if normalised.starts_with(char::is_whitespace) {
                return Err(TextError::SurroundingWhitespace { offset: 0 });
            }
            if normalised.ends_with(char::is_whitespace) {
                return Err(TextError::SurroundingWhitespace {
                    offset: normalised.chars().count().saturating_sub(1),
                });
            }
        }
        let text = match self.trim {
            Trim::Both => {
                let trimmed = normalised.trim();
                if trimmed.len() == normalised.len() {
                    normalised
                } else {
                    trimmed.to_owned()
                }
            }
            Trim::Reject | Trim::Keep => normalised,
        };

        let actual = text.chars().count();
        if actual < self.min_chars {
            return Err(TextError::TooShort {
                min: self.min_chars,
                actual,
            });
        }
        if actual > self.max_chars {
            return Err(TextError::TooLong {
                max: self.max_chars,
                actual,
            });
        }
        Ok(CleanText(text))
    }

    fn control_allowed(&self, c: char) -> bool {
        match c {
            '\t' => self.allow_tab,
            '\n' | '\r' | '\u{2028}' | '\u{2029}' => self.allow_line_breaks,
            _ => false,
        }
    }
}

/// Text that passed a [`TextRules`] policy (normalised and trimmed as the rules say).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CleanText(String);

impl CleanText {
    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Consumes the value, returning the text.
    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }

    /// Length in characters.
    #[must_use]
    pub fn char_len(&self) -> usize {
        self.0.chars().count()
    }
}

impl AsRef<str> for CleanText {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CleanText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<CleanText> for String {
    fn from(t: CleanText) -> Self {
        t.0
    }
}
