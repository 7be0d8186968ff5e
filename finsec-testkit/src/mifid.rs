//! The ESMA MiFIR transaction-reporting schemas (ISO 20022 `auth.016` with the `head.001`
//! application header and the `head.003` envelope), for schema-validation tests.
//!
//! The schemas carry a SWIFT MyStandards notice that forbids redistributing them, so they
//! are not in the repository. A test that needs them asks [`xsd_dir`] for the directory
//! holding them, which comes from the environment:
//!
//! | variable               | meaning                                                        |
//! |------------------------|----------------------------------------------------------------|
//! | `FINSEC_MIFID_XSD_DIR` | the directory holding the [`XSD_FILES`]                        |
//! | `FINSEC_REQUIRE_XSD`   | `1`: a missing directory fails the test; unset, empty or `0`: the test does not run |
//!
//! CI sets both, so there a schema test always runs. A developer without the schemas sees
//! the test pass with a line on stderr saying it did not run, and why.
//!
//! ```no_run
//! # fn validate(_: &std::path::Path) {}
//! // Inside a #[test]:
//! let Some(dir) = finsec_testkit::mifid::xsd_dir("transaction_report_validates") else {
//!     return;
//! };
//! validate(&dir);
//! ```

use std::ffi::OsStr;
use std::fmt;
use std::path::PathBuf;

/// Environment variable naming the directory that holds the MiFIR XSD files.
pub const XSD_DIR_VAR: &str = "FINSEC_MIFID_XSD_DIR";
/// Environment variable that, set to `1`, turns a missing XSD directory into a failure.
pub const REQUIRE_XSD_VAR: &str = "FINSEC_REQUIRE_XSD";

/// The schemas a transaction report is validated against, loaded together: the
/// `head.003` envelope, the `head.001` application header and the `auth.016` report
/// (ESMA usage guideline 1.1.0).
pub const XSD_FILES: [&str; 3] = [
    "head.003.001.01.xsd",
    "head.001.001.01_ESMAUG_1.0.0.xsd",
    "auth.016.001.01_ESMAUG_Reporting_1.1.0.xsd",
];

/// What [`locate_xsd_dir`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XsdLookup {
    /// The directory exists and holds every one of the [`XSD_FILES`].
    Found(PathBuf),
    /// The schemas are not available and not required: the test does not run, for this
    /// reason.
    NotRun {
        /// Why the schemas are not available.
        reason: String,
    },
}

/// Why [`locate_xsd_dir`] refused: the schemas are required but missing, or the setting
/// that requires them is not understood.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum XsdError {
    /// `FINSEC_REQUIRE_XSD=1` and the schemas are not available.
    Missing {
        /// Why the schemas are not available.
        reason: String,
    },
    /// `FINSEC_REQUIRE_XSD` is neither empty, `0` nor `1`.
    BadRequireValue {
        /// The value found (lossily converted to UTF-8).
        value: String,
    },
}

impl fmt::Display for XsdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { reason } => write!(
                f,
                "the MiFIR XSD schemas are required ({REQUIRE_XSD_VAR}=1) but {reason}"
            ),
            Self::BadRequireValue { value } => write!(
                f,
                "{REQUIRE_XSD_VAR}={value:?} is not understood: use 1 (required), 0 or nothing"
            ),
        }
    }
}

impl std::error::Error for XsdError {}

/// Decides where the MiFIR XSD files are from the two settings alone, without reading the
/// environment: `dir` is the value of `FINSEC_MIFID_XSD_DIR`, `require` the value of
/// `FINSEC_REQUIRE_XSD` (`None` when unset).
///
/// The schemas are available when `dir` names a directory holding every one of the
/// [`XSD_FILES`].
///
/// # Errors
/// [`XsdError::Missing`] when the schemas are not available and `require` is `1`;
/// [`XsdError::BadRequireValue`] when `require` is anything but unset, empty, `0` or `1`.
pub fn locate_xsd_dir(dir: Option<&OsStr>, require: Option<&OsStr>) -> Result<XsdLookup, XsdError> {
    let required = match require.map(OsStr::to_str) {
        None | Some(Some("" | "0")) => false,
        Some(Some("1")) => true,
        Some(_) => {
            return Err(XsdError::BadRequireValue {
                value: require.unwrap_or_default().to_string_lossy().into_owned(),
            });
        }
    };
    let missing = match dir.filter(|d| !d.is_empty()) {
        None => format!("{XSD_DIR_VAR} is not set"),
        Some(dir) => {
            let path = PathBuf::from(dir);
            if !path.is_dir() {
                format!("{XSD_DIR_VAR}={} is not a directory", path.display())
            } else if let Some(absent) = XSD_FILES.iter().find(|f| !path.join(f).is_file()) {
                format!("{XSD_DIR_VAR}={} has no {absent}", path.display())
            } else {
                return Ok(XsdLookup::Found(path));
            }
        }
    };
    if required {
        Err(XsdError::Missing { reason: missing })
    } else {
        Ok(XsdLookup::NotRun { reason: missing })
    }
}

/// The directory holding the MiFIR XSD files, for the test named `test`: `Some` when
/// `FINSEC_MIFID_XSD_DIR` names a directory holding the [`XSD_FILES`]; otherwise `None`
/// after printing to stderr that `test` did not run and why, unless `FINSEC_REQUIRE_XSD=1`.
///
/// # Panics
/// When `FINSEC_REQUIRE_XSD=1` and the schemas are not available, or when
/// `FINSEC_REQUIRE_XSD` has a value other than empty, `0` or `1` (see [`locate_xsd_dir`]).
pub fn xsd_dir(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os(XSD_DIR_VAR);
    let require = std::env::var_os(REQUIRE_XSD_VAR);
    match locate_xsd_dir(dir.as_deref(), require.as_deref()) {
        Ok(XsdLookup::Found(path)) => Some(path),
        Ok(XsdLookup::NotRun { reason }) => {
            eprintln!(
                "{test}: did not run: {reason} (set {XSD_DIR_VAR} to the ESMA schema \
                 directory; {REQUIRE_XSD_VAR}=1 makes this a failure)"
            );
            None
        }
        Err(e) => panic!("{test}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;

    fn schema_dir(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for file in files {
            std::fs::write(dir.path().join(file), "<xs:schema/>").unwrap();
        }
        dir
    }

    fn os(s: &str) -> OsString {
        OsString::from(s)
    }

    #[test]
    fn a_directory_with_the_schemas_is_found_required_or_not() {
        let dir = schema_dir(&XSD_FILES);
        let value = dir.path().as_os_str();
        for require in [None, Some(os("")), Some(os("0")), Some(os("1"))] {
            assert_eq!(
                locate_xsd_dir(Some(value), require.as_deref()),
                Ok(XsdLookup::Found(dir.path().to_path_buf())),
                "{require:?}"
            );
        }
    }

    #[test]
    fn missing_schemas_fail_when_required() {
        let partial = schema_dir(&XSD_FILES[..2]);
        let not_a_dir = partial.path().join(XSD_FILES[0]);
        let cases = [
            (None, format!("{XSD_DIR_VAR} is not set")),
            (Some(os("")), format!("{XSD_DIR_VAR} is not set")),
            (
                Some(partial.path().join("absent").into_os_string()),
                format!(
                    "{XSD_DIR_VAR}={} is not a directory",
                    partial.path().join("absent").display()
                ),
            ),
            (
                Some(not_a_dir.clone().into_os_string()),
                format!("{XSD_DIR_VAR}={} is not a directory", not_a_dir.display()),
            ),
            (
                Some(partial.path().as_os_str().to_owned()),
                format!(
                    "{XSD_DIR_VAR}={} has no {}",
                    partial.path().display(),
                    XSD_FILES[2]
                ),
            ),
        ];
        for (dir, reason) in &cases {
            let err = locate_xsd_dir(dir.as_deref(), Some(OsStr::new("1"))).unwrap_err();
            assert_eq!(
                err,
                XsdError::Missing {
                    reason: reason.clone()
                }
            );
            assert!(
                err.to_string()
                    .starts_with("the MiFIR XSD schemas are required (FINSEC_REQUIRE_XSD=1)"),
                "{err}"
            );
        }
        assert_eq!(cases.len(), 5);
    }

    #[test]
    fn missing_schemas_do_not_run_when_not_required() {
        let empty = schema_dir(&[]);
        for require in [None, Some(os("")), Some(os("0"))] {
            assert_eq!(
                locate_xsd_dir(None, require.as_deref()),
                Ok(XsdLookup::NotRun {
                    reason: format!("{XSD_DIR_VAR} is not set")
                })
            );
            assert_eq!(
                locate_xsd_dir(Some(empty.path().as_os_str()), require.as_deref()),
                Ok(XsdLookup::NotRun {
                    reason: format!(
                        "{XSD_DIR_VAR}={} has no {}",
                        empty.path().display(),
                        XSD_FILES[0]
                    )
                })
            );
        }
    }

    #[test]
    fn an_unknown_require_value_is_refused() {
        let dir = schema_dir(&XSD_FILES);
        for value in ["yes", "true", "2", " 1"] {
            for d in [None, Some(dir.path().as_os_str())] {
                let err = locate_xsd_dir(d, Some(OsStr::new(value))).unwrap_err();
                assert_eq!(
                    err,
                    XsdError::BadRequireValue {
                        value: value.to_owned()
                    }
                );
                assert!(err.to_string().contains("is not understood"), "{err}");
            }
        }
    }
}
