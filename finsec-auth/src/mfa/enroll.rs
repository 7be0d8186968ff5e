//! Enrollment: a fresh secret, its `otpauth://` URI and QR code, pending until the user
//! proves with a first valid code that their authenticator holds it.

use std::fmt::{self, Write as _};
use std::io::Cursor;

use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::error::{MfaError, Result};
use super::store::{MfaUserId, TotpReplayStore};
use super::totp::{Totp, TotpParams, TotpRejection, TotpSecret};
use crate::outcome::{CredentialOutcome, CredentialRejection};

/// The longest accepted issuer or account name, in bytes.
pub const MAX_LABEL_LEN: usize = 128;

/// Smallest side, in pixels, of the rendered QR images.
const QR_MIN_PIXELS: u32 = 256;

fn check_label(field: &'static str, value: &str) -> Result<()> {
    let reason = if value.trim().is_empty() {
        Some("is empty")
    } else if value.len() > MAX_LABEL_LEN {
        Some("is longer than 128 bytes")
    } else if value.contains(':') {
        // The Key URI format separates issuer and account with ':' in the label.
        Some("contains ':'")
    } else if value.chars().any(char::is_control) {
        Some("contains a control character")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(MfaError::InvalidLabel { field, reason }),
        None => Ok(()),
    }
}

/// RFC 3986 percent-encoding of everything but the unreserved characters
/// (`A-Z a-z 0-9 - . _ ~`), UTF-8 byte by byte; a space becomes `%20`, never `+`.
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// An enrollment waiting for its first code. Not yet a usable credential: the only way
/// to a [`Totp`] is [`confirm_at`](Self::confirm_at) with a valid code.
///
/// To keep it across requests, store [`secret`](Self::secret) encrypted (for example
/// with finsec-crypto) and rebuild it with [`resume`](Self::resume).
#[derive(Debug)]
pub struct PendingEnrollment {
    user: MfaUserId,
    issuer: String,
    account: String,
    totp: Totp,
}

/// A confirmation code that was refused: the enrollment, unchanged, to try again, and why.
/// Count it as a failed attempt.
#[derive(Debug)]
#[non_exhaustive]
pub struct ConfirmationRejected {
    /// The enrollment, still pending.
    pub pending: PendingEnrollment,
    /// Why the code was refused.
    pub reason: TotpRejection,
}

impl fmt::Display for ConfirmationRejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "enrollment not confirmed: {}", self.reason)
    }
}

impl std::error::Error for ConfirmationRejected {}

impl CredentialRejection for ConfirmationRejected {
    fn code(&self) -> &'static str {
        self.reason.code()
    }
}

/// The result of [`PendingEnrollment::confirm_at`]: the active credential (its code's step
/// is recorded as used), or the pending enrollment back with the reason.
pub type Confirmation = CredentialOutcome<Totp, ConfirmationRejected>;

impl PendingEnrollment {
    /// Starts an enrollment with a fresh 160-bit secret and the default parameters
    /// (SHA-1, 6 digits, 30 seconds: what every authenticator app supports).
    ///
    /// `issuer` is the service name shown in the app, `account` the user's login name.
    ///
    /// # Errors
    /// [`MfaError::InvalidLabel`] if `issuer` or `account` is empty, longer than
    /// [`MAX_LABEL_LEN`], or contains `:` or a control character; [`MfaError::Random`] if
    /// the OS has no randomness.
    pub fn begin(user: MfaUserId, issuer: &str, account: &str) -> Result<Self> {
        Self::begin_with_params(user, issuer, account, TotpParams::default())
    }

    /// [`begin`](Self::begin) with other parameters (many apps ignore anything but the
    /// defaults and then show wrong codes; use only with apps known to support them).
    ///
    /// # Errors
    /// As [`begin`](Self::begin).
    pub fn begin_with_params(
        user: MfaUserId,
        issuer: &str,
        account: &str,
        params: TotpParams,
    ) -> Result<Self> {
        Self::resume(user, issuer, account, TotpSecret::generate()?, params)
    }

    /// Rebuilds a pending enrollment from stored parts.
    ///
    /// # Errors
    /// [`MfaError::InvalidLabel`] as for [`begin`](Self::begin).
    pub fn resume(
        user: MfaUserId,
        issuer: &str,
        account: &str,
        secret: TotpSecret,
        params: TotpParams,
    ) -> Result<Self> {
        check_label("issuer", issuer)?;
        check_label("account", account)?;
        Ok(Self {
            user,
            issuer: issuer.to_owned(),
            account: account.to_owned(),
            totp: Totp::new(secret, params),
        })
    }

    /// The user.
    pub fn user(&self) -> &MfaUserId {
        &self.user
    }

    /// The secret (to store encrypted while pending).
    pub fn secret(&self) -> &TotpSecret {
        self.totp.secret()
    }

    /// The parameters.
    pub fn params(&self) -> &TotpParams {
        self.totp.params()
    }

    /// The Key URI (`otpauth://totp/Issuer:account?secret=...&issuer=...&algorithm=...
    /// &digits=...&period=...`). It contains the secret.
    pub fn otpauth_uri(&self) -> SecretString {
        let params = self.totp.params();
        let secret = self.totp.secret().expose_base32();
        SecretString::from(format!(
            "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}\
             &algorithm={algorithm}&digits={digits}&period={period}",
            issuer = percent_encode(&self.issuer),
            account = percent_encode(&self.account),
            secret = secret.expose_secret(),
            algorithm = params.algorithm().uri_name(),
            digits = params.digits().count(),
            period = params.step_seconds(),
        ))
    }

    fn qr(&self) -> Result<qrcode::QrCode> {
        let uri = self.otpauth_uri();
        qrcode::QrCode::with_error_correction_level(
            uri.expose_secret().as_bytes(),
            qrcode::EcLevel::M,
        )
        .map_err(|e| MfaError::Qr(e.to_string()))
    }

    /// The URI as a QR code in a PNG image (greyscale). It contains the secret.
    ///
    /// # Errors
    /// [`MfaError::Qr`] if the QR code or the PNG cannot be produced.
    pub fn qr_png(&self) -> Result<Zeroizing<Vec<u8>>> {
        let image = self
            .qr()?
            .render::<image::Luma<u8>>()
            .min_dimensions(QR_MIN_PIXELS, QR_MIN_PIXELS)
            .build();
        let mut out = Zeroizing::new(Vec::new());
        image
            .write_to(&mut Cursor::new(&mut *out), image::ImageFormat::Png)
            .map_err(|e| MfaError::Qr(e.to_string()))?;
        Ok(out)
    }

    /// The URI as a QR code in an SVG document. It contains the secret.
    ///
    /// # Errors
    /// [`MfaError::Qr`] if the QR code cannot be produced.
    pub fn qr_svg(&self) -> Result<Zeroizing<String>> {
        Ok(Zeroizing::new(
            self.qr()?
                .render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(QR_MIN_PIXELS, QR_MIN_PIXELS)
                .build(),
        ))
    }

    /// Confirms the enrollment with the user's first code at time `now`.
    ///
    /// The code is checked like a login ([`Totp::verify_at`]) and its time step recorded
    /// in `replay`, so the confirming code cannot be used again to log in.
    ///
    /// # Errors
    /// A store error (the enrollment is then lost; start again).
    pub async fn confirm_at<S: TotpReplayStore + ?Sized>(
        self,
        code: &str,
        now: OffsetDateTime,
        replay: &S,
    ) -> Result<Confirmation> {
        match self.totp.verify_at(&self.user, code, now, replay).await? {
            CredentialOutcome::Accepted(_) => Ok(CredentialOutcome::Accepted(self.totp)),
            CredentialOutcome::Rejected(reason) => {
                Ok(CredentialOutcome::Rejected(ConfirmationRejected {
                    pending: self,
                    reason,
                }))
            }
        }
    }

    /// [`confirm_at`](Self::confirm_at) at the current system time.
    ///
    /// # Errors
    /// As [`confirm_at`](Self::confirm_at).
    pub async fn confirm<S: TotpReplayStore + ?Sized>(
        self,
        code: &str,
        replay: &S,
    ) -> Result<Confirmation> {
        self.confirm_at(code, OffsetDateTime::now_utc(), replay)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding() {
        assert_eq!(percent_encode("ACME Co"), "ACME%20Co");
        assert_eq!(
            percent_encode("a+b&c=d/e?f#g%"),
            "a%2Bb%26c%3Dd%2Fe%3Ff%23g%25"
        );
        assert_eq!(percent_encode("ü"), "%C3%BC");
        assert_eq!(percent_encode("a-b.c_d~e"), "a-b.c_d~e");
    }

    #[test]
    fn labels() {
        let user = || MfaUserId::new("u1").unwrap();
        assert!(PendingEnrollment::begin(user(), "", "a").is_err());
        assert!(PendingEnrollment::begin(user(), "x", " ").is_err());
        assert!(PendingEnrollment::begin(user(), "a:b", "a").is_err());
        assert!(PendingEnrollment::begin(user(), "a", "b:c").is_err());
        assert!(PendingEnrollment::begin(user(), "a", "b\nc").is_err());
        assert!(PendingEnrollment::begin(user(), &"a".repeat(129), "b").is_err());
        assert!(PendingEnrollment::begin(user(), "ACME", "alice@example.com").is_ok());
    }
}
