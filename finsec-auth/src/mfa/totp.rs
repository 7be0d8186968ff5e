//! RFC 4226 HOTP and RFC 6238 TOTP: parameters, secrets, codes and verification.

use std::fmt;

use hmac::{Hmac, Mac};
use secrecy::SecretString;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::error::{MfaError, Result};
use super::store::{MfaUserId, TotpReplayStore};
use crate::outcome::{CredentialOutcome, CredentialRejection};

/// The HMAC hash function of a TOTP credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TotpAlgorithm {
    /// HMAC-SHA-1: the default, and the only one every authenticator app supports.
    #[default]
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

impl TotpAlgorithm {
    /// The name used in `otpauth://` URIs (`SHA1`, `SHA256`, `SHA512`).
    pub fn uri_name(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }
}

/// How many decimal digits a code has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Digits {
    /// Six digits: the default, supported by every authenticator app.
    #[default]
    Six,
    /// Eight digits.
    Eight,
}

impl Digits {
    /// The number of digits.
    pub fn count(self) -> u32 {
        match self {
            Self::Six => 6,
            Self::Eight => 8,
        }
    }

    fn modulus(self) -> u32 {
        match self {
            Self::Six => 1_000_000,
            Self::Eight => 100_000_000,
        }
    }
}

/// Validated TOTP parameters: algorithm, digits and time step.
///
/// The default is SHA-1, 6 digits, 30 seconds, for authenticator compatibility.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TotpParams {
    algorithm: TotpAlgorithm,
    digits: Digits,
    step_seconds: u32,
}

impl Default for TotpParams {
    fn default() -> Self {
        Self {
            algorithm: TotpAlgorithm::Sha1,
            digits: Digits::Six,
            step_seconds: Self::DEFAULT_STEP_SECONDS,
        }
    }
}

impl TotpParams {
    /// The default time step (RFC 6238 recommends 30 seconds).
    pub const DEFAULT_STEP_SECONDS: u32 = 30;
    /// The smallest accepted time step.
    pub const MIN_STEP_SECONDS: u32 = 15;
    /// The largest accepted time step (a longer step widens the window for a stolen code).
    pub const MAX_STEP_SECONDS: u32 = 300;

    /// Parameters with the given algorithm, digits and time step.
    ///
    /// # Errors
    /// [`MfaError::InvalidParameter`] if `step_seconds` is outside
    /// [`MIN_STEP_SECONDS`](Self::MIN_STEP_SECONDS)..=[`MAX_STEP_SECONDS`](Self::MAX_STEP_SECONDS).
    pub fn new(algorithm: TotpAlgorithm, digits: Digits, step_seconds: u32) -> Result<Self> {
        if !(Self::MIN_STEP_SECONDS..=Self::MAX_STEP_SECONDS).contains(&step_seconds) {
            return Err(MfaError::InvalidParameter {
                name: "step_seconds",
                reason: format!(
                    "{step_seconds} is outside {}..={}",
                    Self::MIN_STEP_SECONDS,
                    Self::MAX_STEP_SECONDS
                ),
            });
        }
        Ok(Self {
            algorithm,
            digits,
            step_seconds,
        })
    }

    /// The HMAC algorithm.
    pub fn algorithm(&self) -> TotpAlgorithm {
        self.algorithm
    }

    /// The number of digits.
    pub fn digits(&self) -> Digits {
        self.digits
    }

    /// The time step in seconds.
    pub fn step_seconds(&self) -> u32 {
        self.step_seconds
    }

    /// The time step (counter `T` of RFC 6238, with `T0 = 0`) that contains `now`, or
    /// `None` before the Unix epoch.
    pub fn step_at(&self, now: OffsetDateTime) -> Option<u64> {
        let seconds = u64::try_from(now.unix_timestamp()).ok()?;
        Some(seconds / u64::from(self.step_seconds))
    }
}

/// A TOTP/HOTP shared secret: zeroized on drop, `[REDACTED]` in `Debug`.
pub struct TotpSecret(finsec_crypto::SecretBytes);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret([REDACTED])")
    }
}

impl TotpSecret {
    /// The length of a generated secret: 20 bytes (160 bits, RFC 4226's recommendation).
    pub const GENERATED_LEN: usize = 20;
    /// The shortest accepted secret: 16 bytes (128 bits, RFC 4226 requirement R6).
    pub const MIN_LEN: usize = 16;
    /// The longest accepted secret (the SHA-512 block size).
    pub const MAX_LEN: usize = 128;

    /// A fresh 160-bit secret from the operating system's random number generator.
    ///
    /// # Errors
    /// [`MfaError::Random`] if the operating system refuses to provide randomness.
    pub fn generate() -> Result<Self> {
        let bytes = finsec_crypto::SecretBytes::random(Self::GENERATED_LEN)
            .map_err(|_| MfaError::Random)?;
        Ok(Self(bytes))
    }

    /// Takes ownership of raw secret bytes (for example decrypted from storage).
    ///
    /// # Errors
    /// [`MfaError::InvalidSecret`] if the length is outside
    /// [`MIN_LEN`](Self::MIN_LEN)..=[`MAX_LEN`](Self::MAX_LEN).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        let bytes = Zeroizing::new(bytes);
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&bytes.len()) {
            return Err(MfaError::InvalidSecret {
                reason: format!(
                    "length {} bytes is outside {}..={}",
                    bytes.len(),
                    Self::MIN_LEN,
                    Self::MAX_LEN
                ),
            });
        }
        Ok(Self(finsec_crypto::SecretBytes::new(bytes.to_vec())))
    }

    /// Parses an RFC 4648 base32 secret as shown to users: case-insensitive, spaces and
    /// trailing `=` padding ignored.
    ///
    /// # Errors
    /// [`MfaError::InvalidSecret`] if it is not base32 or has a bad length.
    pub fn from_base32(text: &str) -> Result<Self> {
        let normalized: Zeroizing<String> = Zeroizing::new(
            text.chars()
                .filter(|c| !c.is_whitespace())
                .map(|c| c.to_ascii_uppercase())
                .collect(),
        );
        let trimmed = normalized.trim_end_matches('=');
        let bytes = data_encoding::BASE32_NOPAD
            .decode(trimmed.as_bytes())
            .map_err(|e| MfaError::InvalidSecret {
                reason: format!("not base32 at position {}", e.position),
            })?;
        Self::from_bytes(bytes)
    }

    /// The secret as unpadded base32 (the form in `otpauth://` URIs and for manual entry).
    pub fn expose_base32(&self) -> SecretString {
        SecretString::from(data_encoding::BASE32_NOPAD.encode(self.0.expose_secret()))
    }

    /// The raw secret bytes (to encrypt for storage).
    pub fn expose_secret(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// Length in bytes (not secret).
    pub fn len(&self) -> usize {
        self.0.expose_secret().len()
    }

    /// Always `false`: a secret has at least [`MIN_LEN`](Self::MIN_LEN) bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn duplicate(&self) -> Self {
        Self(finsec_crypto::SecretBytes::new(
            self.0.expose_secret().to_vec(),
        ))
    }
}

impl Clone for TotpSecret {
    fn clone(&self) -> Self {
        self.duplicate()
    }
}

/// A one-time code: a number with a fixed digit count. `Debug` hides the value.
#[derive(Clone, Copy)]
pub struct OtpCode {
    value: u32,
    digits: Digits,
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtpCode")
            .field("value", &"[REDACTED]")
            .field("digits", &self.digits)
            .finish()
    }
}

impl OtpCode {
    /// Parses a code typed by a user: exactly `digits` ASCII digits, spaces ignored
    /// (authenticator apps show `123 456`).
    ///
    /// # Errors
    /// [`MfaError::MalformedCode`] on any other character or the wrong number of digits.
    pub fn parse(text: &str, digits: Digits) -> Result<Self> {
        let mut value: u32 = 0;
        let mut count: u32 = 0;
        for c in text.chars() {
            if c == ' ' {
                continue;
            }
            let d =
                c.to_digit(10)
                    .filter(|_| c.is_ascii_digit())
                    .ok_or(MfaError::MalformedCode {
                        reason: "contains a character that is not a digit",
                    })?;
            count += 1;
            if count > digits.count() {
                return Err(MfaError::MalformedCode {
                    reason: "too many digits",
                });
            }
            value = value * 10 + d;
        }
        if count != digits.count() {
            return Err(MfaError::MalformedCode {
                reason: "too few digits",
            });
        }
        Ok(Self { value, digits })
    }

    /// The number of digits.
    pub fn digits(&self) -> Digits {
        self.digits
    }

    /// The code as a zero-padded string, to display or to type.
    pub fn expose(&self) -> String {
        format!(
            "{:0width$}",
            self.value,
            width = self.digits.count() as usize
        )
    }

    fn ct_eq(&self, other: &Self) -> bool {
        bool::from(self.value.ct_eq(&other.value)) && self.digits == other.digits
    }
}

/// The HMAC of `counter` under `secret` (RFC 4226 step 1).
fn hmac_counter(secret: &[u8], algorithm: TotpAlgorithm, counter: u64) -> Result<Vec<u8>> {
    let msg = counter.to_be_bytes();
    let bad_key = |_| MfaError::InvalidSecret {
        reason: "rejected by HMAC".to_owned(),
    };
    Ok(match algorithm {
        TotpAlgorithm::Sha1 => {
            let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).map_err(bad_key)?;
            mac.update(&msg);
            mac.finalize().into_bytes().to_vec()
        }
        TotpAlgorithm::Sha256 => {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).map_err(bad_key)?;
            mac.update(&msg);
            mac.finalize().into_bytes().to_vec()
        }
        TotpAlgorithm::Sha512 => {
            let mut mac = Hmac::<sha2::Sha512>::new_from_slice(secret).map_err(bad_key)?;
            mac.update(&msg);
            mac.finalize().into_bytes().to_vec()
        }
    })
}

/// RFC 4226 dynamic truncation: the 31-bit value before reduction modulo `10^digits`.
fn dynamic_truncation(mac: &[u8]) -> Result<u32> {
    let internal = || MfaError::InvalidSecret {
        reason: "HMAC output too short".to_owned(),
    };
    let offset = usize::from(mac.last().ok_or_else(internal)? & 0x0f);
    let window = mac
        .get(offset..offset + 4)
        .ok_or_else(internal)?
        .try_into()
        .map_err(|_| internal())?;
    Ok(u32::from_be_bytes(window) & 0x7fff_ffff)
}

/// The RFC 4226 HOTP code for `counter`.
///
/// TOTP is HOTP with the time step as counter; use [`Totp`] for time-based codes.
///
/// # Errors
/// [`MfaError::InvalidSecret`] only if the HMAC implementation rejects the key (it does not
/// for any length).
pub fn hotp(
    secret: &TotpSecret,
    algorithm: TotpAlgorithm,
    digits: Digits,
    counter: u64,
) -> Result<OtpCode> {
    let mac = Zeroizing::new(hmac_counter(secret.expose_secret(), algorithm, counter)?);
    let value = dynamic_truncation(&mac)? % digits.modulus();
    Ok(OtpCode { value, digits })
}

/// A confirmed TOTP credential: a secret and its parameters.
///
/// Codes are checked with [`verify_at`](Self::verify_at), which also records the accepted
/// time step in a [`TotpReplayStore`], so a code is never accepted twice.
#[derive(Debug, Clone)]
pub struct Totp {
    secret: TotpSecret,
    params: TotpParams,
}

/// What an accepted TOTP code established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TotpAccepted {
    /// The RFC 6238 time step the code belonged to, now recorded as used.
    pub step: u64,
}

/// Why a TOTP code was refused. Every one is a failed MFA attempt: count it, log
/// [`code`](CredentialRejection::code) to the audit trail, and tell the client only that
/// the credentials were wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TotpRejection {
    /// The input was not a code of the right shape (wrong length, not digits).
    Malformed,
    /// The code matched none of the time steps in the window.
    Invalid,
    /// The code was right but its time step (or a later one) was already used.
    Replayed,
}

impl fmt::Display for TotpRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "totp code is malformed",
            Self::Invalid => "totp code does not match",
            Self::Replayed => "totp code was already used",
        })
    }
}

impl std::error::Error for TotpRejection {}

impl CredentialRejection for TotpRejection {
    fn code(&self) -> &'static str {
        match self {
            Self::Malformed => "totp.malformed",
            Self::Invalid => "totp.invalid",
            Self::Replayed => "totp.replayed",
        }
    }
}

/// The result of checking a TOTP code.
pub type TotpOutcome = CredentialOutcome<TotpAccepted, TotpRejection>;

impl Totp {
    /// How many time steps either side of the current one are accepted (clock skew).
    pub const SKEW_STEPS: u64 = 1;

    /// A credential from a secret and parameters (for example loaded from storage).
    pub fn new(secret: TotpSecret, params: TotpParams) -> Self {
        Self { secret, params }
    }

    /// The parameters.
    pub fn params(&self) -> &TotpParams {
        &self.params
    }

    /// The secret (to encrypt for storage).
    pub fn secret(&self) -> &TotpSecret {
        &self.secret
    }

    /// The code for the time step containing `now`.
    ///
    /// # Errors
    /// [`MfaError::InvalidParameter`] if `now` is before the Unix epoch.
    pub fn code_at(&self, now: OffsetDateTime) -> Result<OtpCode> {
        let step = self.params.step_at(now).ok_or(MfaError::InvalidParameter {
            name: "now",
            reason: "before the Unix epoch".to_owned(),
        })?;
        hotp(
            &self.secret,
            self.params.algorithm,
            self.params.digits,
            step,
        )
    }

    /// The largest time step within [`SKEW_STEPS`](Self::SKEW_STEPS) of `now` whose code
    /// equals `code`, without touching any replay store. Every candidate is computed and
    /// compared in constant time.
    pub(crate) fn matching_step(&self, code: &OtpCode, now: OffsetDateTime) -> Option<u64> {
        let current = self.params.step_at(now)?;
        let first = current.saturating_sub(Self::SKEW_STEPS);
        let last = current.saturating_add(Self::SKEW_STEPS);
        let mut found = None;
        for step in first..=last {
            let Ok(expected) = hotp(
                &self.secret,
                self.params.algorithm,
                self.params.digits,
                step,
            ) else {
                return None;
            };
            if expected.ct_eq(code) {
                found = Some(step);
            }
        }
        found
    }

    /// Checks `code` for `user` at time `now`, and records its time step in `replay` so
    /// neither it nor any code of an earlier step is accepted again.
    ///
    /// A code of the current step or one step either side is accepted. The compare-and-set
    /// in the store is atomic, so of two concurrent requests with the same code (on any
    /// number of servers sharing the store) at most one is accepted.
    ///
    /// # Errors
    /// A store error. Treat it as a failed login (fail closed); it is not a rejection
    /// the user caused, so it need not count towards lock-out.
    pub async fn verify_at<S: TotpReplayStore + ?Sized>(
        &self,
        user: &MfaUserId,
        code: &str,
        now: OffsetDateTime,
        replay: &S,
    ) -> Result<TotpOutcome> {
        let Ok(code) = OtpCode::parse(code, self.params.digits) else {
            return Ok(CredentialOutcome::Rejected(TotpRejection::Malformed));
        };
        let Some(step) = self.matching_step(&code, now) else {
            return Ok(CredentialOutcome::Rejected(TotpRejection::Invalid));
        };
        if replay.try_advance(user, step).await? {
            Ok(CredentialOutcome::Accepted(TotpAccepted { step }))
        } else {
            Ok(CredentialOutcome::Rejected(TotpRejection::Replayed))
        }
    }

    /// [`verify_at`](Self::verify_at) at the current system time.
    ///
    /// # Errors
    /// As [`verify_at`](Self::verify_at).
    pub async fn verify<S: TotpReplayStore + ?Sized>(
        &self,
        user: &MfaUserId,
        code: &str,
        replay: &S,
    ) -> Result<TotpOutcome> {
        self.verify_at(user, code, OffsetDateTime::now_utc(), replay)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn expose_str(s: &SecretString) -> &str {
        s.expose_secret()
    }

    #[test]
    fn parse_codes() {
        assert_eq!(
            OtpCode::parse("012 345", Digits::Six).unwrap().expose(),
            "012345"
        );
        assert!(OtpCode::parse("12345", Digits::Six).is_err());
        assert!(OtpCode::parse("1234567", Digits::Six).is_err());
        assert!(OtpCode::parse("12345a", Digits::Six).is_err());
        assert!(OtpCode::parse("١٢٣٤٥٦", Digits::Six).is_err());
        assert!(OtpCode::parse("", Digits::Six).is_err());
        assert_eq!(
            OtpCode::parse("00000000", Digits::Eight).unwrap().expose(),
            "00000000"
        );
    }

    #[test]
    fn params_bounds() {
        assert!(TotpParams::new(TotpAlgorithm::Sha1, Digits::Six, 0).is_err());
        assert!(TotpParams::new(TotpAlgorithm::Sha1, Digits::Six, 14).is_err());
        assert!(TotpParams::new(TotpAlgorithm::Sha1, Digits::Six, 301).is_err());
        assert!(TotpParams::new(TotpAlgorithm::Sha512, Digits::Eight, 60).is_ok());
        let p = TotpParams::default();
        assert_eq!(
            (p.algorithm(), p.digits(), p.step_seconds()),
            (TotpAlgorithm::Sha1, Digits::Six, 30)
        );
    }

    #[test]
    fn secret_bounds_and_base32() {
        assert!(TotpSecret::from_bytes(vec![0; 15]).is_err());
        assert!(TotpSecret::from_bytes(vec![0; 129]).is_err());
        let s = TotpSecret::from_base32("gezd gnbv gy3t qojq gezd gnbv gy3t qojq").unwrap();
        assert_eq!(s.expose_secret(), b"12345678901234567890");
        assert_eq!(
            expose_str(&s.expose_base32()),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
        assert!(TotpSecret::from_base32("GEZDGNBVGY3TQOJ1").is_err());
        let g = TotpSecret::generate().unwrap();
        assert_eq!(g.len(), 20);
        assert_ne!(
            g.expose_secret(),
            TotpSecret::generate().unwrap().expose_secret()
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let s = TotpSecret::from_bytes(b"12345678901234567890".to_vec()).unwrap();
        let totp = Totp::new(s.clone(), TotpParams::default());
        for text in [format!("{s:?}"), format!("{totp:?}")] {
            assert!(text.contains("REDACTED"), "{text}");
            assert!(!text.contains("GEZD"), "{text}");
            assert!(!text.contains("12345678901234567890"), "{text}");
            assert!(!text.contains("49, 50"), "{text}");
        }
        let code = OtpCode::parse("287082", Digits::Six).unwrap();
        assert!(!format!("{code:?}").contains("287082"));
    }

    #[test]
    fn before_epoch_is_never_valid() {
        let s = TotpSecret::from_bytes(b"12345678901234567890".to_vec()).unwrap();
        let totp = Totp::new(s, TotpParams::default());
        let t = OffsetDateTime::from_unix_timestamp(-10).unwrap();
        assert!(totp.code_at(t).is_err());
        let code = OtpCode::parse("000000", Digits::Six).unwrap();
        assert_eq!(totp.matching_step(&code, t), None);
    }
}
