//! Audit events and their canonical encoding: the bytes the Merkle log hashes.
//!
//! # Canonical encoding, version 1
//!
//! An event is hashed as one line of JSON (RFC 8259), UTF-8, with
//!
//! - no insignificant whitespace, object members in the byte order of their names, absent
//!   optional members left out (never `null`), strings escaped as `serde_json` writes them
//!   (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other control characters as `\u00XX`,
//!   everything else as is);
//! - integers only: a detail cannot hold a floating-point number (amounts go as decimal
//!   strings), so no number has two spellings;
//! - a top-level `"v":1`. A later version changes the number; a reader refuses versions it
//!   does not know.
//!
//! The members, in order: `action`, `actor` (`api_key`, `ip`, `session`, `user`,
//! `user_agent`), `details`, `duration_us`, `id` (a UUIDv7, hyphenated lowercase),
//! `outcome` (`success`, `failure`, `denied`, `error`), `request_id`, `resource` (`id`,
//! `type`), `time` (`clock`, `precision` `us`/`ms`/`s`, `us`: microseconds since
//! 1970-01-01T00:00:00Z, a multiple of the precision), `v`.
//!
//! [`AuditEvent::from_canonical`] parses an encoding and re-encodes it; anything that does
//! not come back byte for byte (reordered members, spaces, `null`s, unknown members) is
//! refused, so one event has exactly one encoding. [`AuditEvent::canonical_id`] makes the
//! same decision without building the event: one pass over the bytes for the common case
//! (no escaped strings), the full parse for everything else.
//!
//! # Personal data
//!
//! A value that identifies a person (an e-mail, an IP address where it counts as personal
//! data, free text) goes into an event as [`Personal`]: encrypted under the data subject's
//! key from finsec-crypto ([`Personal::encrypt`]) or replaced by a keyed hash
//! ([`Personal::keyed`]), before the event is hashed. Shredding the subject's key later
//! makes the value unreadable and leaves every hash and proof as it was.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use finsec_crypto::{BlindIndex, KeyProvider, SubjectId, SubjectKeyStore, SubjectKeys};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

mod canonical;

/// The canonical encoding's version.
pub const ENCODING_VERSION: u32 = 1;
/// The largest canonical encoding of one event.
pub const MAX_EVENT_LEN: usize = 64 * 1024;
/// The deepest nesting of lists and maps in an event's details.
pub const MAX_DETAIL_DEPTH: usize = 8;

/// Why an event could not be built, encoded or parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// A field's value breaks its rules.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A detail's name says it holds a secret (`password`, `secret`, `private_key`,
    /// `access_token`, `refresh_token`): secrets never go into the log.
    #[error("detail {0:?} looks like a secret; secrets never go into the audit log")]
    SecretDetail(String),
    /// The encoding is larger than [`MAX_EVENT_LEN`].
    #[error("the encoded event is {len} bytes, more than {MAX_EVENT_LEN}")]
    TooLarge {
        /// Its length.
        len: usize,
    },
    /// The bytes are not a version-1 canonical encoding.
    #[error("not a canonical audit event: {0}")]
    NotCanonical(String),
    /// Encrypting, decrypting or drawing randomness failed.
    #[error("personal data: {0}")]
    Crypto(#[from] finsec_crypto::Error),
}

/// The granularity of a timestamp (MiFID II RTS 25): 1 µs for high-frequency algorithmic
/// trading, 1 ms for other electronic trading, 1 s for voice trading and the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Precision {
    /// Microseconds.
    #[serde(rename = "us")]
    Microsecond,
    /// Milliseconds.
    #[serde(rename = "ms")]
    Millisecond,
    /// Seconds.
    #[serde(rename = "s")]
    Second,
}

impl Precision {
    /// The granularity in microseconds.
    pub const fn micros(self) -> i64 {
        match self {
            Self::Microsecond => 1,
            Self::Millisecond => 1_000,
            Self::Second => 1_000_000,
        }
    }
}

/// When an event happened: microseconds since 1970 in UTC, truncated to the writer's
/// precision, and the clock that said so.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventTime {
    clock: String,
    precision: Precision,
    us: i64,
}

impl EventTime {
    /// `at`, truncated towards the past to `precision`, from the clock named `clock`
    /// (`system`, `ptp`, `gps`, ...).
    pub fn new(
        at: OffsetDateTime,
        precision: Precision,
        clock: impl Into<String>,
    ) -> Result<Self, EventError> {
        let clock = clock.into();
        check_token("time.clock", &clock, 64)?;
        let nanos = at.unix_timestamp_nanos();
        let us = i64::try_from(nanos.div_euclid(1_000)).map_err(|_| EventError::Invalid {
            field: "time",
            reason: "out of range",
        })?;
        let us = us - us.rem_euclid(precision.micros());
        Ok(Self {
            clock,
            precision,
            us,
        })
    }

    /// Microseconds since 1970-01-01T00:00:00Z.
    pub fn unix_micros(&self) -> i64 {
        self.us
    }

    /// The time as a date-time.
    pub fn to_datetime(&self) -> Option<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.us) * 1_000).ok()
    }

    /// The precision.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The clock's name.
    pub fn clock(&self) -> &str {
        &self.clock
    }

    fn validate(&self) -> Result<(), EventError> {
        check_token("time.clock", &self.clock, 64)?;
        if self.us.rem_euclid(self.precision.micros()) != 0 {
            return Err(EventError::Invalid {
                field: "time",
                reason: "finer than its precision",
            });
        }
        Ok(())
    }
}

/// How the action ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It was done.
    Success,
    /// It was attempted and failed for a reason of the request (a wrong password).
    Failure,
    /// Authorization refused it.
    Denied,
    /// The system failed.
    Error,
}

impl Outcome {
    /// The outcome's name in the encoding.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Denied => "denied",
            Self::Error => "error",
        }
    }
}

/// A value that identifies a person, protected before it is hashed.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Personal {
    /// Encrypted under the data subject's key.
    Encrypted {
        /// The ciphertext.
        #[serde(rename = "$enc")]
        encrypted: EncryptedValue,
    },
    /// A keyed hash (a finsec-crypto blind index): equal values can be matched, none can be
    /// read back.
    Keyed {
        /// The blind index, base64url.
        #[serde(rename = "$hmac")]
        hmac: String,
    },
}

/// A value encrypted under a data subject's key. `Debug` shows the subject only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptedValue {
    /// The subject-key ciphertext, base64url without padding.
    ct: String,
    /// The data subject.
    subject: String,
}

impl fmt::Debug for Personal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Encrypted { encrypted } => f
                .debug_struct("Personal::Encrypted")
                .field("subject", &encrypted.subject)
                .finish_non_exhaustive(),
            Self::Keyed { .. } => f.write_str("Personal::Keyed(..)"),
        }
    }
}

impl fmt::Debug for EncryptedValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedValue")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

fn personal_aad(label: &str) -> Vec<u8> {
    let mut aad = b"finsec-audit personal v1\n".to_vec();
    aad.extend_from_slice(label.as_bytes());
    aad
}

impl Personal {
    /// Encrypts `value` under `subject`'s key, for the field `label` (for example
    /// `actor.ip` or `details.email`: the label is bound into the ciphertext).
    pub async fn encrypt<S, P>(
        keys: &SubjectKeys<S, P>,
        subject: &SubjectId,
        label: &str,
        value: &str,
        now: OffsetDateTime,
    ) -> Result<Self, EventError>
    where
        S: SubjectKeyStore,
        P: KeyProvider,
    {
        let ct = keys
            .encrypt_at(subject, value.as_bytes(), &personal_aad(label), now)
            .await?;
        Ok(Self::Encrypted {
            encrypted: EncryptedValue {
                ct: URL_SAFE_NO_PAD.encode(ct),
                subject: subject.as_str().to_owned(),
            },
        })
    }

    /// Replaces `value` with its blind index under `index`.
    pub fn keyed(index: &BlindIndex, value: &str) -> Result<Self, EventError> {
        Ok(Self::Keyed {
            hmac: index.compute(value)?.to_base64url(),
        })
    }

    /// The data subject of an encrypted value.
    pub fn subject(&self) -> Option<&str> {
        match self {
            Self::Encrypted { encrypted } => Some(&encrypted.subject),
            Self::Keyed { .. } => None,
        }
    }

    /// Decrypts an encrypted value stored under `label`. Fails with
    /// `finsec_crypto::Error::SubjectErased` once the subject's key was shredded, and for a
    /// keyed hash, which cannot be read back.
    pub async fn decrypt<S, P>(
        &self,
        keys: &SubjectKeys<S, P>,
        label: &str,
    ) -> Result<String, EventError>
    where
        S: SubjectKeyStore,
        P: KeyProvider,
    {
        let Self::Encrypted { encrypted } = self else {
            return Err(EventError::Invalid {
                field: "personal",
                reason: "a keyed hash cannot be read back",
            });
        };
        let subject = SubjectId::new(encrypted.subject.clone())?;
        let ct = URL_SAFE_NO_PAD
            .decode(&encrypted.ct)
            .map_err(|_| EventError::Invalid {
                field: "personal",
                reason: "the ciphertext is not base64url",
            })?;
        let plain = keys.decrypt(&subject, &ct, &personal_aad(label)).await?;
        String::from_utf8(plain).map_err(|_| EventError::Invalid {
            field: "personal",
            reason: "not UTF-8",
        })
    }

    fn validate(&self) -> Result<(), EventError> {
        match self {
            Self::Encrypted { encrypted } => {
                check_text("personal.subject", &encrypted.subject, 256)?;
                check_b64("personal.ct", &encrypted.ct)
            }
            Self::Keyed { hmac } => check_b64("personal.hmac", hmac),
        }
    }
}

/// Who acted. Every part is optional: an unauthenticated request has no user.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// The API key's public id, when one was used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// The client's address: plain, or protected where it counts as personal data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<Text>,
    /// The session (refresh-token family) id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The user id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The client's user agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<Text>,
}

/// A text value that is either plain or protected personal data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Text {
    /// Protected personal data.
    Personal(Personal),
    /// Plain text.
    Plain(String),
}

impl From<&str> for Text {
    fn from(value: &str) -> Self {
        Self::Plain(value.to_owned())
    }
}

impl From<String> for Text {
    fn from(value: String) -> Self {
        Self::Plain(value)
    }
}

impl From<Personal> for Text {
    fn from(value: Personal) -> Self {
        Self::Personal(value)
    }
}

/// What was acted on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// Its id.
    pub id: String,
    /// Its kind (`order`, `user`, `api_key`, `role`, ...).
    #[serde(rename = "type")]
    pub kind: String,
}

/// One structured detail: a value the event records beyond its fixed fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Detail {
    /// Nothing.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer (amounts and prices go as decimal text, never as floating point).
    Int(i64),
    /// Text.
    Text(String),
    /// Protected personal data.
    Personal(Personal),
    /// A list.
    List(Vec<Detail>),
    /// A map; names never start with `$`.
    Map(BTreeMap<String, Detail>),
}

impl From<&str> for Detail {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}
impl From<String> for Detail {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}
impl From<i64> for Detail {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}
impl From<u32> for Detail {
    fn from(v: u32) -> Self {
        Self::Int(i64::from(v))
    }
}
impl From<bool> for Detail {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}
impl From<Personal> for Detail {
    fn from(v: Personal) -> Self {
        Self::Personal(v)
    }
}

/// One audit event. Build it with [`AuditEvent::new`] and the `with_*` methods; its
/// identity and bytes are fixed by [`AuditEvent::to_canonical`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEvent {
    action: String,
    actor: Actor,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    details: BTreeMap<String, Detail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_us: Option<u64>,
    id: Uuid,
    outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<Resource>,
    time: EventTime,
    v: u32,
}

const SECRET_NAMES: [&str; 5] = [
    "password",
    "secret",
    "private_key",
    "access_token",
    "refresh_token",
];

fn check_token(field: &'static str, value: &str, max: usize) -> Result<(), EventError> {
    if value.is_empty() || value.len() > max {
        return Err(EventError::Invalid {
            field,
            reason: "empty or too long",
        });
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._:-".contains(&b))
    {
        return Err(EventError::Invalid {
            field,
            reason: "only a-z, 0-9, '.', '_', ':' and '-'",
        });
    }
    Ok(())
}

fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), EventError> {
    if value.is_empty() || value.len() > max {
        return Err(EventError::Invalid {
            field,
            reason: "empty or too long",
        });
    }
    if value.chars().any(char::is_control) {
        return Err(EventError::Invalid {
            field,
            reason: "contains a control character",
        });
    }
    Ok(())
}

fn check_b64(field: &'static str, value: &str) -> Result<(), EventError> {
    if value.is_empty()
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(EventError::Invalid {
            field,
            reason: "not base64url",
        });
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), EventError> {
    check_text("details name", name, 64)?;
    if name.starts_with('$') {
        return Err(EventError::Invalid {
            field: "details name",
            reason: "starts with '$'",
        });
    }
    // Case-insensitive: every secret name is lowercase ASCII.
    let bytes = name.as_bytes();
    if SECRET_NAMES.iter().any(|s| {
        bytes
            .windows(s.len())
            .any(|w| w.eq_ignore_ascii_case(s.as_bytes()))
    }) {
        return Err(EventError::SecretDetail(name.to_owned()));
    }
    Ok(())
}

fn check_detail(detail: &Detail, depth: usize) -> Result<(), EventError> {
    if depth > MAX_DETAIL_DEPTH {
        return Err(EventError::Invalid {
            field: "details",
            reason: "nested too deeply",
        });
    }
    match detail {
        Detail::Null | Detail::Bool(_) | Detail::Int(_) => Ok(()),
        Detail::Text(t) => {
            if t.len() > MAX_EVENT_LEN {
                return Err(EventError::TooLarge { len: t.len() });
            }
            Ok(())
        }
        Detail::Personal(p) => p.validate(),
        Detail::List(items) => items.iter().try_for_each(|d| check_detail(d, depth + 1)),
        Detail::Map(map) => map.iter().try_for_each(|(k, d)| {
            check_name(k)?;
            check_detail(d, depth + 1)
        }),
    }
}

fn check_text_value(field: &'static str, text: &Text) -> Result<(), EventError> {
    match text {
        Text::Plain(t) => check_text(field, t, 1024),
        Text::Personal(p) => p.validate(),
    }
}

fn check_actor(actor: &Actor) -> Result<(), EventError> {
    let ids = [
        ("actor.api_key", &actor.api_key),
        ("actor.session", &actor.session),
        ("actor.user", &actor.user),
    ];
    for (field, value) in ids {
        if let Some(v) = value {
            check_text(field, v, 256)?;
        }
    }
    if let Some(ip) = &actor.ip {
        check_text_value("actor.ip", ip)?;
    }
    if let Some(ua) = &actor.user_agent {
        check_text_value("actor.user_agent", ua)?;
    }
    Ok(())
}

/// A new UUIDv7 for an event at `at`, its random bits from finsec-crypto.
pub fn new_event_id(at: OffsetDateTime) -> Result<Uuid, EventError> {
    let millis = u64::try_from(at.unix_timestamp_nanos().div_euclid(1_000_000)).map_err(|_| {
        EventError::Invalid {
            field: "time",
            reason: "before 1970",
        }
    })?;
    let random = finsec_crypto::random_array::<10>()?;
    Ok(uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid())
}

impl AuditEvent {
    /// An event: `action` (lowercase, dotted: `order.place`, `auth.login`) ended with
    /// `outcome` at `time`, with a new UUIDv7 id.
    pub fn new(action: &str, outcome: Outcome, time: EventTime) -> Result<Self, EventError> {
        check_token("action", action, 64)?;
        let at = time.to_datetime().ok_or(EventError::Invalid {
            field: "time",
            reason: "out of range",
        })?;
        Ok(Self {
            action: action.to_owned(),
            actor: Actor::default(),
            details: BTreeMap::new(),
            duration_us: None,
            id: new_event_id(at)?,
            outcome,
            request_id: None,
            resource: None,
            time,
            v: ENCODING_VERSION,
        })
    }

    /// Sets who acted.
    pub fn with_actor(mut self, actor: Actor) -> Result<Self, EventError> {
        check_actor(&actor)?;
        self.actor = actor;
        Ok(self)
    }

    /// Sets what was acted on: its kind (lowercase token) and id.
    pub fn with_resource(mut self, kind: &str, id: &str) -> Result<Self, EventError> {
        check_token("resource.type", kind, 64)?;
        check_text("resource.id", id, 256)?;
        self.resource = Some(Resource {
            id: id.to_owned(),
            kind: kind.to_owned(),
        });
        Ok(self)
    }

    /// Sets the request id.
    pub fn with_request_id(mut self, id: &str) -> Result<Self, EventError> {
        check_text("request_id", id, 256)?;
        self.request_id = Some(id.to_owned());
        Ok(self)
    }

    /// Sets how long the action took, in microseconds.
    pub fn with_duration_us(mut self, us: u64) -> Self {
        self.duration_us = Some(us);
        self
    }

    /// Adds a detail. Names are at most 64 characters, never start with `$` and never name
    /// a secret.
    pub fn with_detail(mut self, name: &str, value: impl Into<Detail>) -> Result<Self, EventError> {
        check_name(name)?;
        let value = value.into();
        check_detail(&value, 1)?;
        self.details.insert(name.to_owned(), value);
        Ok(self)
    }

    /// The event id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The action.
    pub fn action(&self) -> &str {
        &self.action
    }

    /// Who acted.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// What was acted on.
    pub fn resource(&self) -> Option<&Resource> {
        self.resource.as_ref()
    }

    /// How it ended.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// When.
    pub fn time(&self) -> &EventTime {
        &self.time
    }

    /// The request id.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// How long it took, in microseconds.
    pub fn duration_us(&self) -> Option<u64> {
        self.duration_us
    }

    /// The details.
    pub fn details(&self) -> &BTreeMap<String, Detail> {
        &self.details
    }

    /// The canonical encoding: the bytes the log stores and hashes.
    pub fn to_canonical(&self) -> Result<Vec<u8>, EventError> {
        let bytes = serde_json::to_vec(self)
            .map_err(|e| EventError::NotCanonical(format!("cannot encode: {e}")))?;
        if bytes.len() > MAX_EVENT_LEN {
            return Err(EventError::TooLarge { len: bytes.len() });
        }
        Ok(bytes)
    }

    /// Parses a canonical encoding, refusing any other spelling of the same event.
    pub fn from_canonical(bytes: &[u8]) -> Result<Self, EventError> {
        if bytes.len() > MAX_EVENT_LEN {
            return Err(EventError::TooLarge { len: bytes.len() });
        }
        let event: Self =
            serde_json::from_slice(bytes).map_err(|e| EventError::NotCanonical(e.to_string()))?;
        if event.v != ENCODING_VERSION {
            return Err(EventError::NotCanonical(format!(
                "encoding version {} is not supported",
                event.v
            )));
        }
        event.validate()?;
        // Re-encoded straight into a comparison with the input: no buffer, and the first
        // byte that differs ends the encoding.
        let mut same = SameAs(bytes);
        if serde_json::to_writer(&mut same, &event).is_err() || !same.0.is_empty() {
            return Err(EventError::NotCanonical(
                "not in canonical form (member order, spacing, escaping or nulls)".to_owned(),
            ));
        }
        Ok(event)
    }

    /// Checks that `bytes` are a canonical encoding, accepting and refusing exactly what
    /// [`from_canonical`](Self::from_canonical) does, and answers the event's id without
    /// building the event.
    ///
    /// Most encodings are recognised in one pass over the bytes with no allocation; an
    /// encoding with escaped strings, and every refusal, goes through `from_canonical`, so
    /// the error is the same precise one. This is what [`LogVerifier`](crate::LogVerifier)
    /// runs on every event.
    pub fn canonical_id(bytes: &[u8]) -> Result<Uuid, EventError> {
        match canonical::quick_id(bytes) {
            Some(id) => Ok(id),
            None => Self::from_canonical(bytes).map(|event| event.id),
        }
    }

    fn validate(&self) -> Result<(), EventError> {
        check_token("action", &self.action, 64)?;
        self.time.validate()?;
        check_actor(&self.actor)?;
        if let Some(r) = &self.resource {
            check_token("resource.type", &r.kind, 64)?;
            check_text("resource.id", &r.id, 256)?;
        }
        if let Some(id) = &self.request_id {
            check_text("request_id", id, 256)?;
        }
        for (k, d) in &self.details {
            check_name(k)?;
            check_detail(d, 1)?;
        }
        Ok(())
    }
}

/// A writer that accepts exactly the bytes it holds, in order, and fails at the first other
/// byte: what is left is what was not written yet.
struct SameAs<'a>(&'a [u8]);

impl std::io::Write for SameAs<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.strip_prefix(buf) {
            Some(rest) => {
                self.0 = rest;
                Ok(buf.len())
            }
            None => Err(std::io::ErrorKind::InvalidData.into()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// Parsing without serde's `untagged` buffering (which copies every value into an
// intermediate tree and tries each variant in turn): the shapes are told apart by their
// first token, and a map by its first member's name (`$enc`/`$hmac` for personal data,
// which detail names may never start with). Accepts exactly what the derived, untagged
// parsers accepted that can also pass `validate` and the canonical re-encoding.

/// A map member's name, borrowed from the input when it has no escapes.
struct Name<'de>(std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Name<'de>, E> {
                Ok(Name(std::borrow::Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Name<'de>, E> {
                Ok(Name(std::borrow::Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// The rest of a personal value whose first member, `first`, was read.
fn personal_rest<'de, A: serde::de::MapAccess<'de>>(
    first: &str,
    mut map: A,
) -> Result<Personal, A::Error> {
    let value = match first {
        "$enc" => Personal::Encrypted {
            encrypted: map.next_value()?,
        },
        "$hmac" => Personal::Keyed {
            hmac: map.next_value()?,
        },
        other => {
            return Err(serde::de::Error::unknown_field(other, &["$enc", "$hmac"]));
        }
    };
    if let Some(extra) = map.next_key::<Name<'de>>()? {
        return Err(serde::de::Error::custom(format_args!(
            "unexpected member {:?} in a personal value",
            extra.0
        )));
    }
    Ok(value)
}

struct PersonalVisitor;

impl<'de> serde::de::Visitor<'de> for PersonalVisitor {
    type Value = Personal;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a personal value ({\"$enc\":…} or {\"$hmac\":…})")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Personal, A::Error> {
        match map.next_key::<Name<'de>>()? {
            Some(first) => personal_rest(&first.0, map),
            None => Err(serde::de::Error::invalid_length(0, &self)),
        }
    }
}

impl<'de> Deserialize<'de> for Personal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(PersonalVisitor)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a personal value")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text::Plain(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Text, E> {
                Ok(Text::Plain(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Text, A::Error> {
                PersonalVisitor.visit_map(map).map(Text::Personal)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Detail {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Detail;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("null, a boolean, an integer, a string, a list or a map")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Detail, E> {
                Ok(Detail::Null)
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Detail, E> {
                Ok(Detail::Bool(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Detail, E> {
                Ok(Detail::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Detail, E> {
                i64::try_from(v).map(Detail::Int).map_err(|_| {
                    E::invalid_value(serde::de::Unexpected::Unsigned(v), &"an i64 integer")
                })
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Detail, E> {
                Err(E::invalid_type(
                    serde::de::Unexpected::Float(v),
                    &"an integer (amounts go as decimal strings)",
                ))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Detail, E> {
                Ok(Detail::Text(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Detail, E> {
                Ok(Detail::Text(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Detail, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Detail::List(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Detail, A::Error> {
                let Some(first) = map.next_key::<Name<'de>>()? else {
                    return Ok(Detail::Map(BTreeMap::new()));
                };
                if first.0.starts_with('$') {
                    return personal_rest(&first.0, map).map(Detail::Personal);
                }
                let mut out = BTreeMap::new();
                out.insert(first.0.into_owned(), map.next_value()?);
                while let Some((name, value)) = map.next_entry::<String, Detail>()? {
                    out.insert(name, value);
                }
                Ok(Detail::Map(out))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use time::macros::datetime;

    fn event() -> AuditEvent {
        let t = EventTime::new(
            datetime!(2026-12-05 10:00:00.123456 UTC),
            Precision::Millisecond,
            "system",
        )
        .unwrap();
        AuditEvent::new("order.place", Outcome::Success, t)
            .unwrap()
            .with_actor(Actor {
                user: Some("u-1".into()),
                ip: Some("203.0.113.9".into()),
                ..Actor::default()
            })
            .unwrap()
            .with_resource("order", "o-9")
            .unwrap()
            .with_detail("quantity", "100.5")
            .unwrap()
            .with_detail("legs", 2u32)
            .unwrap()
    }

    #[test]
    fn canonical_round_trip_and_shape() {
        let e = event();
        let bytes = e.to_canonical().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("{\"action\":\"order.place\",\"actor\":{\"ip\":\"203.0.113.9\",\"user\":\"u-1\"},\"details\":{\"legs\":2,\"quantity\":\"100.5\"},\"id\":\""), "{text}");
        assert!(text.ends_with(",\"outcome\":\"success\",\"resource\":{\"id\":\"o-9\",\"type\":\"order\"},\"time\":{\"clock\":\"system\",\"precision\":\"ms\",\"us\":1796464800123000},\"v\":1}"), "{text}");
        assert_eq!(AuditEvent::from_canonical(&bytes).unwrap(), e);
        assert_eq!(e.id().get_version_num(), 7);
    }

    #[test]
    fn other_spellings_are_refused() {
        let text = String::from_utf8(event().to_canonical().unwrap()).unwrap();
        for bad in [
            text.replacen(",", ", ", 1),
            text.replacen("\"v\":1", "\"v\":2", 1),
            text.replacen("\"legs\":2", "\"legs\":2.0", 1),
            text.replacen("\"us\":1796464800123000", "\"us\":1796464800123001", 1),
            text.replacen("}", ",\"extra\":1}", 1),
            text.replacen("{\"action\"", "{\"request_id\":null,\"action\"", 1),
        ] {
            assert!(AuditEvent::from_canonical(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_detail_shape_round_trips() {
        let mut map = BTreeMap::new();
        map.insert("a \"quoted\" name".to_owned(), Detail::Int(i64::MIN));
        map.insert("empty".to_owned(), Detail::Map(BTreeMap::new()));
        map.insert(
            "hmac".to_owned(),
            Detail::Personal(Personal::Keyed {
                hmac: "abc_-9".into(),
            }),
        );
        let e = event()
            .with_actor(Actor {
                ip: Some(Text::Personal(Personal::Encrypted {
                    encrypted: EncryptedValue {
                        ct: "Y3Q".into(),
                        subject: "s-1".into(),
                    },
                })),
                user_agent: Some("agent \"x\" \u{e9}\u{1F600}".into()),
                ..Actor::default()
            })
            .unwrap()
            .with_detail("null", Detail::Null)
            .unwrap()
            .with_detail("yes", true)
            .unwrap()
            .with_detail("max", i64::MAX)
            .unwrap()
            .with_detail("text", "tab\there \\ and \u{7f}")
            .unwrap()
            .with_detail(
                "list",
                Detail::List(vec![
                    Detail::Int(-1),
                    Detail::List(vec![]),
                    Detail::Map(map),
                ]),
            )
            .unwrap();
        let bytes = e.to_canonical().unwrap();
        assert_eq!(AuditEvent::from_canonical(&bytes).unwrap(), e);
    }

    #[test]
    fn bad_detail_shapes_are_refused_with_a_reason() {
        let text = String::from_utf8(event().to_canonical().unwrap()).unwrap();
        for (bad, why) in [
            ("\"legs\":2.5", "floating point"),
            ("\"legs\":9223372036854775808", "integer"),
            ("\"legs\":{\"$hmac\":\"aa\",\"x\":1}", "unexpected member"),
            ("\"legs\":{\"$other\":1}", "unknown field"),
            ("\"legs\":{\"ok\":1,\"$enc\":1}", "starts with '$'"),
            ("\"legs\":{\"$enc\":{\"ct\":\"a\"}}", "subject"),
        ] {
            let input = text.replacen("\"legs\":2", bad, 1);
            let err = AuditEvent::from_canonical(input.as_bytes()).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains(why) || (why == "floating point" && msg.contains("floating")),
                "{input}: {msg}"
            );
        }
        let ip_number = text.replacen("\"ip\":\"203.0.113.9\"", "\"ip\":7", 1);
        assert!(AuditEvent::from_canonical(ip_number.as_bytes()).is_err());
    }

    #[test]
    fn secrets_and_bad_values_are_refused() {
        let e = event();
        assert!(matches!(
            e.clone().with_detail("password_hash", "x"),
            Err(EventError::SecretDetail(_))
        ));
        assert!(e.clone().with_detail("$enc", "x").is_err());
        assert!(AuditEvent::new("Order Place", Outcome::Success, e.time().clone()).is_err());
        assert!(e.clone().with_resource("order", "a\nb").is_err());
        let mut deep = Detail::Null;
        for _ in 0..10 {
            deep = Detail::List(vec![deep]);
        }
        assert!(e.with_detail("deep", deep).is_err());
    }
}
