//! Safe joining of a user-supplied relative path under a base directory.
//!
//! [`SafeRelativePath::parse`] checks a path a user sent (an upload name, a report path in a
//! request) and [`SafePath::join`] places it under a base directory. The check is lexical and
//! strict: it does **not** decode anything, it refuses anything that some layer (a web server,
//! a framework, a Windows API, a shell) might decode or interpret into a traversal. The
//! optional filesystem check, [`SafePath::resolve`], then follows symbolic links and makes sure
//! the real path is still under the (canonical) base.
//!
//! ```
//! use std::path::Path;
//! use finsec_validate::{PathError, SafePath};
//!
//! let p = SafePath::join("/srv/uploads", "client-42/statement.pdf")?;
//! assert_eq!(p.as_path(), Path::new("/srv/uploads/client-42/statement.pdf"));
//! assert!(matches!(
//!     SafePath::join("/srv/uploads", "..%2fetc%2fpasswd"),
//!     Err(PathError::Encoded { offset: 2 })
//! ));
//! assert_eq!(SafePath::join("/srv/uploads", "../x").unwrap_err().code(), "path.parent_segment");
//! # Ok::<(), PathError>(())
//! ```
//!
//! # Rules
//!
//! A path is refused ([`PathError`]) when it:
//!
//! - is empty, or has no segment other than `.` and empty ones (nothing to join);
//! - is longer than [`SafeRelativePath::MAX_BYTES`] bytes, or has a segment longer than
//!   [`SafeRelativePath::MAX_SEGMENT_BYTES`] bytes (truncation attacks);
//! - is not UTF-8 ([`SafeRelativePath::from_bytes`]), which covers overlong encodings such as
//!   `C0 AE` for `.`;
//! - contains NUL, any other control character, U+2028/U+2029, a bidi control or an invisible character
//!   (see [`crate::text::is_bidi_control`] and [`crate::text::is_invisible`]);
//! - contains a backslash (Windows separator, UNC `\\server`, `\\?\` device paths);
//! - contains a slash or backslash look-alike (U+2215 DIVISION SLASH, U+2044, U+FF0F, ...);
//! - contains a percent escape: `%` followed by an ASCII letter or digit (`%2e`, `%252e`,
//!   `%c0%ae`, IIS `%u2215`, and malformed `%bg` that lenient decoders still decode). A `%`
//!   followed by anything else (`100%.txt`) is an ordinary character. Nothing is decoded, so
//!   double encoding is refused at the first layer;
//! - contains the hexadecimal spellings `0x2e`, `0x2f` or `0x5c` (`.`, `/`, `\`), any case;
//! - contains `$` (variable expansion), or a Windows wildcard or reserved character
//!   (`?`, `*`, `<`, `>`, `|`, `"`);
//! - starts with `/` (absolute; also `//server`), or contains `://` (a URL such as `file:///`);
//! - starts with `~` (home-directory expansion);
//! - has a segment that is `..`, or whose part before a `;` is `..` (`..;/`, which Java
//!   servers treat as `..`);
//! - has a segment that starts with a drive letter and a colon (`C:`, `C:secret.txt`);
//! - has a segment with leading or trailing white space (Windows drops trailing spaces, and
//!   ` ..` is a look-alike);
//! - has a first segment made only of three or more dots followed by more segments
//!   (`.../etc/passwd`): legacy shells read `...` as the grandparent, and the shape exists
//!   only in traversal payloads. The same segment inside a path (`a/.../b`) or alone (`...`)
//!   is an ordinary POSIX name;
//! - contains a dot-only segment spelled with ideographic full stops (U+3002, U+FF61);
//! - names a web server access file (`.htaccess`, `.htpasswd`, any case), as Apache refuses;
//! - becomes a path with a `..` segment once every `../` is removed once (`....//`,
//!   `..././`): the filter-evasion forms;
//! - changes under NFKC normalisation into a path that fails any rule above (`．．/`, `‥`):
//!   the path is checked both as given and as normalised.
//!
//! Colons elsewhere (`2024-01-01T00:00:00Z.log`), names that merely contain dots (`..hidden`,
//! `notes..txt`, `a/b..`), `.` and empty segments (`./a`, `a//b`) are accepted: they are
//! harmless on POSIX. Windows device names (`CON`, `NUL`) are not checked: the joined path is
//! meant for a POSIX filesystem.
//!
//! # Threat model
//!
//! Defends against directory traversal through a user-chosen path: reading or writing outside
//! the base through `..`, absolute paths, encodings that a later layer decodes, Windows path
//! forms, and (with [`SafePath::resolve`]) symbolic links inside the base that point out of
//! it. It does not defend against races: a symbolic link created between
//! [`SafePath::resolve`] and the open is followed. Where other local users can write inside
//! the base, open with `O_NOFOLLOW`/`openat2(RESOLVE_BENEATH)` as well.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use unicode_normalization::UnicodeNormalization;

use crate::text::{is_bidi_control, is_invisible};

/// Errors from safe path handling.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The path is empty or has nothing to join (only `.` and empty segments).
    #[error("path is empty")]
    Empty,
    /// The path is too long.
    #[error("path is {actual} bytes, more than the maximum of {max}")]
    TooLong {
        /// Maximum in bytes.
        max: usize,
        /// Length in bytes.
        actual: usize,
    },
    /// A segment is too long.
    #[error("path segment {index} is {actual} bytes, more than the maximum of {max}")]
    SegmentTooLong {
        /// Zero-based index of the segment.
        index: usize,
        /// Maximum in bytes.
        max: usize,
        /// Length in bytes.
        actual: usize,
    },
    /// The bytes are not valid UTF-8 (including overlong encodings).
    #[error("path is not valid utf-8 at byte {byte_offset}")]
    InvalidUtf8 {
        /// Byte offset of the first invalid sequence.
        byte_offset: usize,
    },
    /// The path contains a NUL character.
    #[error("nul character at offset {offset}")]
    Nul {
        /// Character offset.
        offset: usize,
    },
    /// The path contains a control, bidi or invisible character.
    #[error("forbidden character U+{code_point:04X} at offset {offset}")]
    ForbiddenCharacter {
        /// Character offset.
        offset: usize,
        /// The code point.
        code_point: u32,
    },
    /// The path contains a backslash.
    #[error("backslash at offset {offset}")]
    Backslash {
        /// Character offset.
        offset: usize,
    },
    /// The path contains a character that looks like a slash or backslash.
    #[error("slash look-alike U+{code_point:04X} at offset {offset}")]
    SlashLookAlike {
        /// Character offset.
        offset: usize,
        /// The code point.
        code_point: u32,
    },
    /// The path contains a percent escape or a `0x` hexadecimal spelling of `.`, `/` or `\`.
    #[error("encoded character at offset {offset}")]
    Encoded {
        /// Character offset of the `%` or `0`.
        offset: usize,
    },
    /// The path contains a shell-expansion, wildcard or Windows-reserved character.
    #[error("reserved character {character:?} at offset {offset}")]
    ReservedCharacter {
        /// Character offset.
        offset: usize,
        /// The character.
        character: char,
    },
    /// The path is absolute.
    #[error("path is absolute")]
    Absolute,
    /// The path is a URL.
    #[error("path is a url")]
    Url,
    /// The path starts with `~`.
    #[error("path starts with a home-directory reference")]
    HomeDirectory,
    /// A segment is `..` (or `..;params`).
    #[error("parent directory reference in segment {index}")]
    ParentSegment {
        /// Zero-based index of the segment.
        index: usize,
    },
    /// A segment starts with a Windows drive letter.
    #[error("drive letter in segment {index}")]
    DriveLetter {
        /// Zero-based index of the segment.
        index: usize,
    },
    /// A segment has leading or trailing white space.
    #[error("white space around segment {index}")]
    SurroundingWhitespace {
        /// Zero-based index of the segment.
        index: usize,
    },
    /// The first segment is a run of three or more dots and more segments follow, or a
    /// dot-only segment uses ideographic full stops.
    #[error("dot-only segment {index} refused")]
    DotSegment {
        /// Zero-based index of the segment.
        index: usize,
    },
    /// A segment names a web server access file.
    #[error("segment {index} names a server access file")]
    ServerAccessFile {
        /// Zero-based index of the segment.
        index: usize,
    },
    /// Removing `../` once leaves a `..` segment: a filter-evasion form.
    #[error("filter-evasion traversal form")]
    FilterEvasion,
    /// The NFKC-normalised path fails a rule.
    #[error("path is unsafe after nfkc normalisation: {source}")]
    UnsafeAfterNormalisation {
        /// The rule the normalised path failed.
        #[source]
        source: Box<PathError>,
    },
    /// A filesystem operation failed during [`SafePath::resolve`].
    #[error("cannot {operation} {path}: {source}")]
    Io {
        /// What was being done.
        operation: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Following symbolic links leads outside the base directory.
    #[error("segment {index} resolves outside the base directory")]
    SymlinkEscape {
        /// Zero-based index of the segment (among the normal segments) whose resolution left
        /// the base.
        index: usize,
    },
    /// A segment is a symbolic link whose target does not exist.
    #[error("segment {index} is a dangling symbolic link")]
    DanglingSymlink {
        /// Zero-based index of the segment (among the normal segments).
        index: usize,
    },
    /// The base is not a directory.
    #[error("base {path} is not a directory")]
    BaseNotDirectory {
        /// The base.
        path: PathBuf,
    },
}

impl PathError {
    /// A stable, machine-readable code for this error (for API responses and metrics).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "path.empty",
            Self::TooLong { .. } => "path.too_long",
            Self::SegmentTooLong { .. } => "path.segment_too_long",
            Self::InvalidUtf8 { .. } => "path.invalid_utf8",
            Self::Nul { .. } => "path.nul",
            Self::ForbiddenCharacter { .. } => "path.forbidden_character",
            Self::Backslash { .. } => "path.backslash",
            Self::SlashLookAlike { .. } => "path.slash_look_alike",
            Self::Encoded { .. } => "path.encoded",
            Self::ReservedCharacter { .. } => "path.reserved_character",
            Self::Absolute => "path.absolute",
            Self::Url => "path.url",
            Self::HomeDirectory => "path.home_directory",
            Self::ParentSegment { .. } => "path.parent_segment",
            Self::DriveLetter { .. } => "path.drive_letter",
            Self::SurroundingWhitespace { .. } => "path.surrounding_whitespace",
            Self::DotSegment { .. } => "path.dot_segment",
            Self::ServerAccessFile { .. } => "path.server_access_file",
            Self::FilterEvasion => "path.filter_evasion",
            Self::UnsafeAfterNormalisation { .. } => "path.unsafe_after_nfkc",
            Self::Io { .. } => "path.io",
            Self::SymlinkEscape { .. } => "path.symlink_escape",
            Self::DanglingSymlink { .. } => "path.dangling_symlink",
            Self::BaseNotDirectory { .. } => "path.base_not_directory",
        }
    }
}

/// Returns `true` for characters that render like `/` or `\`.
fn is_slash_look_alike(c: char) -> bool {
    matches!(
        c,
        '\u{2215}' // DIVISION SLASH
            | '\u{2044}' // FRACTION SLASH
            | '\u{FF0F}' // FULLWIDTH SOLIDUS
            | '\u{29F8}' // BIG SOLIDUS
            | '\u{2571}' // BOX DRAWINGS LIGHT DIAGONAL UPPER RIGHT TO LOWER LEFT
            | '\u{1735}' // PHILIPPINE SINGLE PUNCTUATION
            | '\u{FF3C}' // FULLWIDTH REVERSE SOLIDUS
            | '\u{2216}' // SET MINUS
            | '\u{29F5}' // REVERSE SOLIDUS OPERATOR
            | '\u{29F9}' // BIG REVERSE SOLIDUS
            | '\u{FE68}' // SMALL REVERSE SOLIDUS
            | '\u{2572}' // BOX DRAWINGS LIGHT DIAGONAL UPPER LEFT TO LOWER RIGHT
    )
}

/// `after` starts with `x2e`, `x2f` or `x5c` (any case): with the `0` before it, a hexadecimal
/// spelling of `.`, `/` or `\`.
fn is_hex_spelling(after: &[u8]) -> bool {
    let hex = after.get(..3).unwrap_or_default();
    [b"x2e", b"x2f", b"x5c"]
        .iter()
        .any(|h| hex.eq_ignore_ascii_case(h.as_slice()))
}

fn is_reserved(c: char) -> bool {
    matches!(c, '$' | '?' | '*' | '<' | '>' | '|' | '"')
}

/// Checks every character; returns the first error.
fn check_chars(s: &str) -> Result<(), PathError> {
    for (offset, (byte_index, c)) in s.char_indices().enumerate() {
        // The bytes after this character (ASCII checks only, so byte slicing is exact).
        let after = s
            .as_bytes()
            .get(byte_index.saturating_add(1)..)
            .unwrap_or_default();
        match c {
            '\0' => return Err(PathError::Nul { offset }),
            '\\' => return Err(PathError::Backslash { offset }),
            '%' if after.first().is_some_and(u8::is_ascii_alphanumeric) => {
                return Err(PathError::Encoded { offset });
            }
            '0' if is_hex_spelling(after) => return Err(PathError::Encoded { offset }),
            c if c.is_control()
                || is_bidi_control(c)
                || is_invisible(c)
                || matches!(c, '\u{2028}' | '\u{2029}') =>
            {
                return Err(PathError::ForbiddenCharacter {
                    offset,
                    code_point: u32::from(c),
                });
            }
            c if is_slash_look_alike(c) => {
                return Err(PathError::SlashLookAlike {
                    offset,
                    code_point: u32::from(c),
                });
            }
            c if is_reserved(c) => {
                return Err(PathError::ReservedCharacter {
                    offset,
                    character: c,
                });
            }
            _ => {}
        }
    }
    Ok(())
}

fn is_drive_letter(segment: &str) -> bool {
    let mut chars = segment.chars();
    matches!(
        (chars.next(), chars.next()),
        (Some(letter), Some(':')) if letter.is_ascii_alphabetic()
    )
}

fn is_parent(segment: &str) -> bool {
    segment.split(';').next() == Some("..")
}

/// Checks the structure of the path (after [`check_chars`]).
fn check_structure(s: &str) -> Result<(), PathError> {
    if s.starts_with('/') {
        return Err(PathError::Absolute);
    }
    if s.contains("://") {
        return Err(PathError::Url);
    }
    if s.starts_with('~') {
        return Err(PathError::HomeDirectory);
    }
    let segment_count = s.split('/').count();
    for (index, segment) in s.split('/').enumerate() {
        if segment.len() > SafeRelativePath::MAX_SEGMENT_BYTES {
            return Err(PathError::SegmentTooLong {
                index,
                max: SafeRelativePath::MAX_SEGMENT_BYTES,
                actual: segment.len(),
            });
        }
        if is_parent(segment) {
            return Err(PathError::ParentSegment { index });
        }
        if is_drive_letter(segment) {
            return Err(PathError::DriveLetter { index });
        }
        if segment.starts_with(char::is_whitespace) || segment.ends_with(char::is_whitespace) {
            return Err(PathError::SurroundingWhitespace { index });
        }
        let dot_only = !segment.is_empty()
            && segment
                .chars()
                .all(|c| matches!(c, '.' | '\u{3002}' | '\u{FF61}'));
        if dot_only
            && (segment.chars().any(|c| c != '.')
                || (index == 0 && segment.len() >= 3 && segment_count > 1))
        {
            return Err(PathError::DotSegment { index });
        }
        if segment.eq_ignore_ascii_case(".htaccess") || segment.eq_ignore_ascii_case(".htpasswd") {
            return Err(PathError::ServerAccessFile { index });
        }
    }
    if s.replace("../", "").split('/').any(is_parent) {
        return Err(PathError::FilterEvasion);
    }
    Ok(())
}

fn check(s: &str) -> Result<(), PathError> {
    check_chars(s)?;
    check_structure(s)
}

/// A relative path that passed every rule in the [module docs](self).
///
/// Holds the path as given (not normalised), split into its normal segments (`.` and empty
/// segments dropped).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SafeRelativePath {
    original: String,
    segments: Vec<String>,
}

impl SafeRelativePath {
    /// Maximum length of a path, in bytes (Linux `PATH_MAX`).
    pub const MAX_BYTES: usize = 4096;
    /// Maximum length of one segment, in bytes (Linux `NAME_MAX`).
    pub const MAX_SEGMENT_BYTES: usize = 255;

    /// Checks a user-supplied path.
    ///
    /// # Errors
    ///
    /// The first rule the path breaks; see [`PathError`].
    pub fn parse(input: &str) -> Result<Self, PathError> {
        if input.len() > Self::MAX_BYTES {
            return Err(PathError::TooLong {
                max: Self::MAX_BYTES,
                actual: input.len(),
            });
        }
        check(input)?;
        let normalised: String = input.nfkc().collect();
        if normalised != input {
            check(&normalised).map_err(|e| PathError::UnsafeAfterNormalisation {
                source: Box::new(e),
            })?;
        }
        let segments: Vec<String> = input
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .map(str::to_owned)
            .collect();
        if segments.is_empty() {
            return Err(PathError::Empty);
        }
        Ok(Self {
            original: input.to_owned(),
            segments,
        })
    }

    /// Checks a user-supplied path given as bytes (for example a multipart file name).
    ///
    /// # Errors
    ///
    /// [`PathError::InvalidUtf8`] for invalid UTF-8 (overlong forms included), otherwise as
    /// [`SafeRelativePath::parse`].
    pub fn from_bytes(input: &[u8]) -> Result<Self, PathError> {
        if input.len() > Self::MAX_BYTES {
            return Err(PathError::TooLong {
                max: Self::MAX_BYTES,
                actual: input.len(),
            });
        }
        let s = std::str::from_utf8(input).map_err(|e| PathError::InvalidUtf8 {
            byte_offset: e.valid_up_to(),
        })?;
        Self::parse(s)
    }

    /// The path as given.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// The normal segments, in order (no `.`, no empty segments).
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().map(String::as_str)
    }

    /// The path as a relative [`PathBuf`] built from its normal segments.
    #[must_use]
    pub fn to_path_buf(&self) -> PathBuf {
        self.segments.iter().collect()
    }
}

impl fmt::Display for SafeRelativePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

/// A user-supplied relative path joined under a base directory.
///
/// The join is lexical: [`SafePath::as_path`] is `base` followed by the checked segments, so
/// it cannot leave `base` unless a symbolic link inside `base` points out of it. Call
/// [`SafePath::resolve`] before using the path when the base may contain symbolic links.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SafePath {
    base: PathBuf,
    relative: SafeRelativePath,
    joined: PathBuf,
}

impl SafePath {
    /// Checks `user_path` and joins it under `base`.
    ///
    /// # Errors
    ///
    /// The first rule `user_path` breaks; see [`PathError`].
    pub fn join(base: impl Into<PathBuf>, user_path: &str) -> Result<Self, PathError> {
        Ok(Self::join_relative(
            base,
            SafeRelativePath::parse(user_path)?,
        ))
    }

    /// Joins an already checked relative path under `base`.
    #[must_use]
    pub fn join_relative(base: impl Into<PathBuf>, relative: SafeRelativePath) -> Self {
        let base = base.into();
        let joined = base.join(relative.to_path_buf());
        Self {
            base,
            relative,
            joined,
        }
    }

    /// The joined path (`base` followed by the relative path).
    #[must_use]
    pub fn as_path(&self) -> &Path {
        &self.joined
    }

    /// The base directory, as given.
    #[must_use]
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The checked relative part.
    #[must_use]
    pub fn relative(&self) -> &SafeRelativePath {
        &self.relative
    }

    /// Resolves the path on the filesystem, following symbolic links, and checks that it stays
    /// under the canonical base.
    ///
    /// Each existing prefix of the path is canonicalised in turn and must stay under the
    /// canonical base; the part that does not exist yet (a file about to be created) is
    /// appended as is (its segments are checked names, so they cannot climb).
    ///
    /// # Errors
    ///
    /// [`PathError::SymlinkEscape`] when a link leads out of the base,
    /// [`PathError::DanglingSymlink`] for a link to nothing, [`PathError::BaseNotDirectory`],
    /// or [`PathError::Io`] when the base cannot be canonicalised or a prefix cannot be read.
    pub fn resolve(&self) -> Result<ResolvedPath, PathError> {
        let base = std::fs::canonicalize(&self.base).map_err(|source| PathError::Io {
            operation: "canonicalize base",
            path: self.base.clone(),
            source,
        })?;
        if !base.is_dir() {
            return Err(PathError::BaseNotDirectory {
                path: self.base.clone(),
            });
        }
        let mut current = base.clone();
        let mut segments = self.relative.segments().enumerate();
        let mut exists = true;
        for (index, segment) in segments.by_ref() {
            let candidate = current.join(segment);
            match std::fs::symlink_metadata(&candidate) {
                Ok(_) => {
                    let real = std::fs::canonicalize(&candidate).map_err(|source| {
                        if source.kind() == io::ErrorKind::NotFound {
                            PathError::DanglingSymlink { index }
                        } else {
                            PathError::Io {
                                operation: "canonicalize",
                                path: candidate.clone(),
                                source,
                            }
                        }
                    })?;
                    if !real.starts_with(&base) {
                        return Err(PathError::SymlinkEscape { index });
                    }
                    current = real;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    current = candidate;
                    exists = false;
                    break;
                }
                Err(source) => {
                    return Err(PathError::Io {
                        operation: "inspect",
                        path: candidate,
                        source,
                    });
                }
            }
        }
        for (_, segment) in segments {
            current.push(segment);
        }
        Ok(ResolvedPath {
            path: current,
            exists,
        })
    }
}

/// A path resolved by [`SafePath::resolve`]: canonical where it exists, under the canonical
/// base.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResolvedPath {
    path: PathBuf,
    exists: bool,
}

impl ResolvedPath {
    /// The resolved path.
    #[must_use]
    pub fn as_path(&self) -> &Path {
        &self.path
    }

    /// Whether the whole path existed when it was resolved.
    #[must_use]
    pub fn exists(&self) -> bool {
        self.exists
    }

    /// Consumes the value, returning the path.
    #[must_use]
    pub fn into_path_buf(self) -> PathBuf {
        self.path
    }
}

impl AsRef<Path> for ResolvedPath {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}
