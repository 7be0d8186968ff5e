//! Secret types and operating-system randomness.
//!
//! Every type here zeroizes its bytes when dropped, prints as `[REDACTED]` in `Debug`, has
//! no `Display`, and hands its bytes out only through `expose_secret`, so that every read of
//! key material is visible in the code.

use std::fmt;

use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox, SecretSlice, SecretString};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// Fills `buf` from the operating system's random number generator.
///
/// # Errors
/// [`Error::Random`] if the operating system refuses to provide randomness.
pub fn fill_random(buf: &mut [u8]) -> Result<()> {
    rand::rngs::OsRng
        .try_fill_bytes(buf)
        .map_err(|_| Error::Random)
}

/// Returns `N` bytes from the operating system's random number generator.
///
/// # Errors
/// [`Error::Random`] if the operating system refuses to provide randomness.
pub fn random_array<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    fill_random(&mut out)?;
    Ok(out)
}

/// A variable-length secret byte string (a derived key, a MAC key, a decrypted secret).
pub struct SecretBytes(SecretSlice<u8>);

impl SecretBytes {
    /// Takes ownership of `bytes`; they are zeroized when the value is dropped.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(SecretSlice::from(bytes))
    }

    /// `len` fresh random bytes from the operating system.
    ///
    /// # Errors
    /// [`Error::Random`] if the operating system refuses to provide randomness.
    pub fn random(len: usize) -> Result<Self> {
        let mut v = vec![0u8; len];
        fill_random(&mut v)?;
        Ok(Self::new(v))
    }

    /// The secret bytes.
    pub fn expose_secret(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// Length in bytes (not secret).
    pub fn len(&self) -> usize {
        self.0.expose_secret().len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Clone for SecretBytes {
    fn clone(&self) -> Self {
        Self::new(self.expose_secret().to_vec())
    }
}

impl PartialEq for SecretBytes {
    /// Constant-time in the contents (the lengths are not secret).
    fn eq(&self, other: &Self) -> bool {
        self.expose_secret().ct_eq(other.expose_secret()).into()
    }
}

impl Eq for SecretBytes {}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes([REDACTED])")
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(v: Vec<u8>) -> Self {
        Self::new(v)
    }
}

/// A 256-bit symmetric key: a key-encryption key (KEK), a data key (DEK), a subject key or
/// a master key. Always exactly 32 bytes, so a wrong-sized key cannot be constructed.
pub struct Key256(SecretBox<[u8; 32]>);

impl Key256 {
    /// Length of the key in bytes.
    pub const LEN: usize = 32;

    /// A fresh random key from the operating system's random number generator.
    ///
    /// # Errors
    /// [`Error::Random`] if the operating system refuses to provide randomness.
    pub fn generate() -> Result<Self> {
        let mut key = Box::new([0u8; 32]);
        fill_random(key.as_mut_slice())?;
        Ok(Self(SecretBox::new(key)))
    }

    /// Wraps existing key bytes. The array passed in is moved; callers holding a copy
    /// should zeroize it.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(SecretBox::new(Box::new(bytes)))
    }

    /// Copies a key from a slice, which must be exactly 32 bytes.
    ///
    /// # Errors
    /// [`Error::InvalidLength`] if `bytes` is not 32 bytes long.
    pub fn try_from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::invalid_length("key", 32, bytes.len()))?;
        Ok(Self::from_bytes(arr))
    }

    /// The key bytes.
    pub fn expose_secret(&self) -> &[u8; 32] {
        self.0.expose_secret()
    }
}

impl Clone for Key256 {
    fn clone(&self) -> Self {
        Self::from_bytes(*self.expose_secret())
    }
}

impl PartialEq for Key256 {
    /// Constant-time comparison.
    fn eq(&self, other: &Self) -> bool {
        self.expose_secret().ct_eq(other.expose_secret()).into()
    }
}

impl Eq for Key256 {}

impl fmt::Debug for Key256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key256([REDACTED])")
    }
}

/// A passphrase (for sealing a keyring or deriving a key). Zeroized on drop, redacted in
/// `Debug`.
pub struct Passphrase(SecretString);

impl Passphrase {
    /// Wraps a passphrase.
    pub fn new(passphrase: impl Into<String>) -> Self {
        Self(SecretString::from(passphrase.into()))
    }

    /// The passphrase.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase([REDACTED])")
    }
}

impl From<String> for Passphrase {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

/// Returns `url` with the password of its `user:password@` part and any `password=`
/// query parameter replaced by `***`, for logs and error messages (database and cache
/// URLs often carry credentials).
///
/// It errs on the side of hiding too much: the user information ends at the *last* `@`
/// of the URL, so a password holding an unencoded `/`, `?`, `#` or `@` (which a URL
/// parser would reject, making this the text of the error message) is still hidden.
///
/// ```
/// use finsec_crypto::secret::redact_url;
/// assert_eq!(
///     redact_url("postgres://app:s3cret@db:5432/x?sslmode=require&password=p"),
///     "postgres://app:***@db:5432/x?sslmode=require&password=***",
/// );
/// assert_eq!(redact_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
/// ```
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let (userinfo, after_at) = match rest.rsplit_once('@') {
        Some((userinfo, after)) => (Some(userinfo), after),
        None => (None, rest),
    };
    let userinfo = match userinfo {
        Some(userinfo) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@"),
            None => format!("{userinfo}@"),
        },
        None => String::new(),
    };
    let tail = match after_at.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => after_at.to_owned(),
    };
    match scheme {
        Some(scheme) => format!("{scheme}://{userinfo}{tail}"),
        None => format!("{userinfo}{tail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secret_bytes() {
        let k = Key256::from_bytes([0x41; 32]);
        let s = SecretBytes::new(b"hunter2-hunter2".to_vec());
        let p = Passphrase::new("correct horse battery staple");
        let all = format!("{k:?} {s:?} {p:?} {k:#?} {s:#?} {p:#?}");
        assert!(all.contains("[REDACTED]"));
        assert!(!all.contains("41"), "{all}");
        assert!(!all.contains("65"), "{all}");
        assert!(!all.contains("hunter2"));
        assert!(!all.contains("horse"));
    }

    #[test]
    fn random_keys_differ_and_compare_by_value() {
        let a = Key256::generate().unwrap();
        let b = Key256::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a, a.clone());
        assert!(Key256::try_from_slice(&[0u8; 31]).is_err());
        assert!(Key256::try_from_slice(&[0u8; 33]).is_err());
        assert!(Key256::try_from_slice(&[0u8; 32]).is_ok());
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact_url("postgres://app:pw@db:5432/x?sslmode=require&password=p"),
            "postgres://app:***@db:5432/x?sslmode=require&password=***"
        );
        assert_eq!(redact_url("redis://:pw@cache"), "redis://:***@cache");
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
        // Unencoded special characters in the password: a URL parser rejects these, and the
        // URL then ends up in the error message.
        for url in [
            "postgres://app:pa/ss@db:5432/x",
            "postgres://app:pa?ss@db:5432/x",
            "postgres://app:pa#ss@db:5432/x",
            "postgres://app:pa@ss@db:5432/x",
            "redis://:pa/ss@cache:6379/0",
        ] {
            let redacted = redact_url(url);
            assert!(!redacted.contains("ss@"), "{url} -> {redacted}");
            assert!(redacted.contains(":***@"), "{url} -> {redacted}");
            assert!(redacted.contains("db:5432/x") || redacted.contains("cache:6379/0"));
        }
    }
}
