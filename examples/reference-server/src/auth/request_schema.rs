//! The OpenAPI schemas of the constrained request fields of the authentication endpoints,
//! built from the constants the server checks against (the derive's attributes take only
//! literals), so the document cannot drift from the rules.
//!
//! Patterns are anchored with `^…$` and hold only ASCII classes, so ECMA-262, Python and
//! Rust regular expressions read them alike.

use finsec_auth::mfa::TotpParams;
use finsec_auth::mfa::backup::{BACKUP_CODE_ALPHABET, BACKUP_CODE_LEN};
use finsec_auth::passwords::{DEFAULT_MAX_CHARS, DEFAULT_MIN_CHARS, MAX_MAX_CHARS};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{RefOr, schema::Object};

use super::users::{USERNAME_CHARSET, USERNAME_MAX_CHARS, USERNAME_MIN_CHARS};

/// The longest API key name, in characters.
pub const API_KEY_NAME_MAX_CHARS: usize = 64;
/// The longest API key lifetime, in days.
pub const API_KEY_MAX_DAYS: u32 = 3650;

/// The `pattern` of a username: only [`USERNAME_CHARSET`] characters (the length is
/// `minLength`/`maxLength`).
pub fn username_pattern() -> String {
    format!("^{USERNAME_CHARSET}*$")
}

/// The `pattern` of a TOTP code: as many digits as the server's [`TotpParams`] ask for.
pub fn totp_code_pattern() -> String {
    format!("^[0-9]{{{}}}$", TotpParams::default().digits().count())
}

/// The character class of one backup code character: [`BACKUP_CODE_ALPHABET`], in either
/// case (finsec-auth upper-cases what it reads).
fn backup_code_class() -> String {
    let mut class = String::from("[");
    for upper in BACKUP_CODE_ALPHABET.iter().map(|b| char::from(*b)) {
        class.push(upper);
    }
    for lower in BACKUP_CODE_ALPHABET
        .iter()
        .map(|b| char::from(*b))
        .filter(char::is_ascii_uppercase)
    {
        class.push(lower.to_ascii_lowercase());
    }
    class.push(']');
    class
}

/// The `pattern` of a backup code, without anchors: [`BACKUP_CODE_LEN`] alphabet
/// characters with any number of `-` or spaces around them (finsec-auth skips those).
fn backup_code_body() -> String {
    format!("[- ]*({}[- ]*){{{BACKUP_CODE_LEN}}}", backup_code_class())
}

/// The `pattern` of a second-factor code at login: a TOTP code or a backup code.
pub fn second_factor_pattern() -> String {
    format!(
        "^([0-9]{{{}}}|{})$",
        TotpParams::default().digits().count(),
        backup_code_body()
    )
}

/// The `pattern` of an API key scope: a finsec-rbac permission pattern, 1 to
/// [`finsec_rbac::permission::MAX_SEGMENTS`] segments of `A-Z a-z 0-9 _ - .` or a lone `*`,
/// separated by `:` (the length, at most [`finsec_rbac::permission::MAX_LEN`], is
/// `maxLength`).
pub fn scope_pattern() -> String {
    let segment = r"(\*|[A-Za-z0-9_.-]+)";
    let more = finsec_rbac::permission::MAX_SEGMENTS.saturating_sub(1);
    format!("^{segment}(:{segment}){{0,{more}}}$")
}

/// The `pattern` of an API key name: no control characters (Unicode category Cc, what
/// `char::is_control` refuses).
pub const API_KEY_NAME_PATTERN: &str = r"^[^\x00-\x1F\x7F-\x9F]*$";

fn string(min: usize, max: usize, pattern: String, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(min))
        .max_length(Some(max))
        .pattern(Some(pattern))
        .description(Some(description))
}

/// `Registration.username`.
pub fn username() -> Object {
    string(
        USERNAME_MIN_CHARS,
        USERNAME_MAX_CHARS,
        username_pattern(),
        "3 to 64 ASCII letters, digits, '.', '_' or '-'; unique regardless of case",
    )
    .examples(["alice.w"])
    .build()
}

/// `Registration.password`: the length rules of finsec-auth's default policy, counted in
/// code points as sent (what JSON Schema's `minLength`/`maxLength` count).
pub fn new_password() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(DEFAULT_MIN_CHARS))
        .max_length(Some(DEFAULT_MAX_CHARS))
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Password,
        )))
        .description(Some(
            "12 to 256 characters (code points as sent), no composition rules; common or \
             breached passwords may be refused",
        ))
        .build()
}

/// `Credentials.password`: anything up to the longest password any policy allows (older
/// accounts may have passwords the current policy would refuse).
pub fn login_password() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(MAX_MAX_CHARS))
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Password,
        )))
        .description(Some(
            "At most 1,024 characters (code points as sent), the most any policy allows; a \
             longer one is refused (422) before any account is looked up",
        ))
        .build()
}

/// `CodeRequest.code`: a TOTP code.
pub fn totp_code() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(totp_code_pattern()))
        .description(Some("The code the authenticator app shows"))
        .examples(["123456"])
        .build()
}

/// `MfaVerifyRequest.code`: a TOTP code or a backup code.
pub fn second_factor_code() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(second_factor_pattern()))
        .description(Some(
            "A TOTP code, or a backup code (twelve characters of \
             23456789ABCDEFGHJKMNPQRSTUVWXYZ, either case, '-' and spaces ignored)",
        ))
        .examples(["123456"])
        .build()
}

/// `Credentials.device_token` and `MfaVerifyRequest.device_token`: any string or `null` (a
/// token that is not a remembered device of the account only goes unrecognised).
pub fn device_token() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .description(Some(
            "A remembered-device token from an earlier complete login of this account",
        ))
        .examples(["fsd_3q2-7wEXAMPLEtokenEXAMPLEtokenEXAMPLEtok"])
        .build()
}

/// `NewApiKeyRequest.name`.
pub fn api_key_name() -> Object {
    string(
        1,
        API_KEY_NAME_MAX_CHARS,
        API_KEY_NAME_PATTERN.to_owned(),
        "1 to 64 characters, no control characters; kept as sent",
    )
    .examples(["ci bot"])
    .build()
}

/// `NewApiKeyRequest.scopes`: at least one permission pattern.
pub fn scopes() -> Schema {
    let item = string(
        1,
        finsec_rbac::permission::MAX_LEN,
        scope_pattern(),
        "A finsec-rbac permission pattern: segments of A-Z a-z 0-9 _ - . or '*', separated \
         by ':'",
    )
    .examples(["orders:read"])
    .build();
    Schema::Array(
        ArrayBuilder::new()
            .items(RefOr::T(Schema::Object(item)))
            .min_items(Some(1))
            .description(Some("The permission patterns the key is limited to"))
            .build(),
    )
}

/// `NewApiKeyRequest.allowed_networks`: up to 32 CIDRs or addresses, or null.
pub fn allowed_networks() -> Schema {
    let item = ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::String))
        .min_length(Some(2))
        .max_length(Some(NETWORK_MAX_CHARS))
        .pattern(Some(NETWORK_PATTERN))
        .description(Some(
            "An IPv4 or IPv6 network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`) or one              address",
        ))
        .examples(["10.0.0.0/8"])
        .build();
    Schema::Array(
        ArrayBuilder::new()
            .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
            .items(RefOr::T(Schema::Object(item)))
            .max_items(Some(finsec_auth::api_keys::MAX_NETWORKS))
            .description(Some(
                "Client networks the key may be used from, at most 32; null, absent or empty:                  from anywhere",
            ))
            .build(),
    )
}

/// The longest network text: a full IPv6 address and a prefix.
pub const NETWORK_MAX_CHARS: usize = 43;

/// An IPv4 or IPv6 address, optionally with a prefix length (`/0` to `/32`, `/0` to
/// `/128`): exactly the texts the server reads (IPv4 without leading zeros; IPv6 in hex
/// groups with at most one `::`, without an embedded IPv4 part or a zone).
pub const NETWORK_PATTERN: &str = concat!(
    "^(?:",
    "(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}",
    "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])",
    "(?:/(?:3[0-2]|[12]?[0-9]))?",
    "|",
    "(?:",
    "(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}",
    "|(?:[0-9A-Fa-f]{1,4}:){1,7}:",
    "|(?:[0-9A-Fa-f]{1,4}:){1,6}:[0-9A-Fa-f]{1,4}",
    "|(?:[0-9A-Fa-f]{1,4}:){1,5}(?::[0-9A-Fa-f]{1,4}){1,2}",
    "|(?:[0-9A-Fa-f]{1,4}:){1,4}(?::[0-9A-Fa-f]{1,4}){1,3}",
    "|(?:[0-9A-Fa-f]{1,4}:){1,3}(?::[0-9A-Fa-f]{1,4}){1,4}",
    "|(?:[0-9A-Fa-f]{1,4}:){1,2}(?::[0-9A-Fa-f]{1,4}){1,5}",
    "|[0-9A-Fa-f]{1,4}:(?::[0-9A-Fa-f]{1,4}){1,6}",
    "|:(?:(?::[0-9A-Fa-f]{1,4}){1,7}|:)",
    ")",
    "(?:/(?:12[0-8]|1[01][0-9]|[1-9]?[0-9]))?",
    ")$"
);

/// `NewApiKeyRequest.expires_in_days`: 1 to [`API_KEY_MAX_DAYS`], or null.
pub fn expires_in_days() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .minimum(Some(1))
        .maximum(Some(API_KEY_MAX_DAYS))
        .description(Some(
            "Days until the key expires: 1 to the server's longest API key lifetime \
             (90 days unless configured, at most 3650; longer is a 422). Null or absent: that \
             longest lifetime, or no expiry where the server allows keys that never expire",
        ))
        .build()
}

/// The longest rotation overlap, in minutes: one week.
pub const API_KEY_MAX_OVERLAP_MINUTES: u32 = 7 * 24 * 60;

/// `RotateApiKeyRequest.overlap_minutes`: 0 to [`API_KEY_MAX_OVERLAP_MINUTES`], or null.
pub fn overlap_minutes() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .minimum(Some(0))
        .maximum(Some(API_KEY_MAX_OVERLAP_MINUTES))
        .description(Some(
            "Minutes the old key keeps working after the rotation: 0 (it stops at once) to \
             10080 (a week; longer is a 422). Null or absent: 60",
        ))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_built_from_the_constants() {
        assert_eq!(username_pattern(), "^[A-Za-z0-9._-]*$");
        assert_eq!(totp_code_pattern(), "^[0-9]{6}$");
        assert_eq!(
            second_factor_pattern(),
            "^([0-9]{6}|[- ]*([23456789ABCDEFGHJKMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz][- ]*){12})$"
        );
        assert_eq!(
            scope_pattern(),
            r"^(\*|[A-Za-z0-9_.-]+)(:(\*|[A-Za-z0-9_.-]+)){0,7}$"
        );
    }
}
