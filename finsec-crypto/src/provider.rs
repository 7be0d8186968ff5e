//! The key-encryption-key (KEK) provider contract.
//!
//! Envelope encryption asks a [`KeyProvider`] to wrap each fresh data key (DEK) under the
//! primary version of a named KEK, and to unwrap it again from the key reference stored in
//! the ciphertext header. [`Keyring`](crate::Keyring) is the local implementation; a KMS or
//! Vault client can implement the same trait.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::secret::Key256;

/// Longest key name accepted, in bytes.
pub const MAX_KEY_NAME_LEN: usize = 64;

/// Largest wrapped data key accepted in a header, in bytes. The local keyring produces 60
/// bytes; the bound leaves room for KMS formats while refusing absurd header fields.
pub const MAX_WRAPPED_DEK_LEN: usize = 1024;

/// The name of a key-encryption key: 1 to 64 bytes of `a-z`, `0-9`, `.`, `_` and `-`,
/// starting with a letter or digit. Names are not secret.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyName(String);

impl KeyName {
    /// Validates a key name.
    ///
    /// # Errors
    /// [`Error::InvalidKeyName`] if the name is empty, longer than
    /// [`MAX_KEY_NAME_LEN`], or has a character outside `a-z 0-9 . _ -`.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let bad = |reason| {
            Err(Error::InvalidKeyName {
                name: name.chars().take(MAX_KEY_NAME_LEN + 8).collect(),
                reason,
            })
        };
        if name.is_empty() {
            return bad("key name is empty");
        }
        if name.len() > MAX_KEY_NAME_LEN {
            return bad("key name is longer than 64 bytes");
        }
        if !name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        }) {
            return bad("key name may only contain a-z, 0-9, '.', '_' and '-'");
        }
        if !name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return bad("key name must start with a letter or digit");
        }
        Ok(Self(name))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyName({:?})", self.0)
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for KeyName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl TryFrom<&str> for KeyName {
    type Error = Error;
    fn try_from(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl AsRef<str> for KeyName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A reference to one version of a named key-encryption key, as stored in a ciphertext
/// header. Versions start at 1.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KekRef {
    /// The key name.
    pub name: KeyName,
    /// The key version (1 or more).
    pub version: u32,
}

impl fmt::Display for KekRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/v{}", self.name, self.version)
    }
}

/// A data key wrapped (encrypted) by a key-encryption key: opaque bytes whose layout
/// belongs to the [`KeyProvider`] that made them. At most [`MAX_WRAPPED_DEK_LEN`] bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedDek(Vec<u8>);

impl WrappedDek {
    /// Wraps provider output.
    ///
    /// # Errors
    /// [`Error::InvalidLength`] if `bytes` is empty or longer than
    /// [`MAX_WRAPPED_DEK_LEN`].
    pub fn new(bytes: Vec<u8>) -> Result<Self> {
        if bytes.is_empty() || bytes.len() > MAX_WRAPPED_DEK_LEN {
            return Err(Error::invalid_length(
                "wrapped data key",
                format!("1 to {MAX_WRAPPED_DEK_LEN}"),
                bytes.len(),
            ));
        }
        Ok(Self(bytes))
    }

    /// The wrapped bytes (ciphertext; not secret).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for WrappedDek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WrappedDek({} bytes)", self.0.len())
    }
}

/// A fresh 96-bit nonce for wrapping one data key with AES-GCM (see
/// [`KeyProvider::wrap_dek_with_nonce`]).
///
/// Only this crate makes one, from the operating system's RNG, and each is consumed by the
/// one wrap it is given to, so a provider may use it as a nonce without checking it is
/// fresh. It is not secret; `Debug` shows its length only.
pub struct WrapNonce([u8; WrapNonce::LEN]);

impl WrapNonce {
    /// Length in bytes.
    pub const LEN: usize = 12;

    /// A nonce read from the operating system's RNG on its own.
    ///
    /// # Errors
    /// [`Error::Random`] if the operating system refuses to provide randomness.
    pub fn random() -> Result<Self> {
        crate::secret::random_array().map(Self)
    }

    /// A nonce from bytes this crate has just read from the operating system's RNG.
    pub(crate) fn from_fresh(bytes: [u8; WrapNonce::LEN]) -> Self {
        Self(bytes)
    }

    /// The nonce's bytes.
    pub fn as_bytes(&self) -> &[u8; WrapNonce::LEN] {
        &self.0
    }
}

impl fmt::Debug for WrapNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WrapNonce(12 bytes)")
    }
}

/// A source of key-encryption keys: wraps data keys under the primary version of a named
/// key and unwraps them from a stored [`KekRef`].
///
/// Implementations must bind the wrapped key to its [`KekRef`] (for example as AEAD
/// associated data) so that a wrapped key moved to another key name or version fails to
/// unwrap, and must refuse versions below the key's minimum decryption version.
///
/// The trait is synchronous: wrap and unwrap are called once per message on the encryption
/// hot path. A remote KMS implementation should cache what it can (for example unwrapped
/// KEKs with a short lifetime) or run the blocking call on a blocking thread.
pub trait KeyProvider: Send + Sync {
    /// Wraps `dek` under the current primary version of `name`, counting one use of that
    /// version.
    ///
    /// # Errors
    /// [`Error::UnknownKey`] if there is no key `name`; [`Error::KeyUsageExhausted`] if
    /// the primary version reached its hard usage limit; [`Error::Random`].
    fn wrap_dek(&self, name: &KeyName, dek: &Key256) -> Result<(KekRef, WrappedDek)>;

    /// As [`wrap_dek`](Self::wrap_dek), with a fresh random nonce drawn by the caller in
    /// the same read of the operating system's RNG as the data key, which saves a provider
    /// that wraps locally with AES-GCM its own read. A provider that needs no nonce (a
    /// remote KMS) ignores it, which is what the default does.
    ///
    /// # Errors
    /// As [`wrap_dek`](Self::wrap_dek).
    fn wrap_dek_with_nonce(
        &self,
        name: &KeyName,
        dek: &Key256,
        nonce: WrapNonce,
    ) -> Result<(KekRef, WrappedDek)> {
        let _ = nonce;
        self.wrap_dek(name, dek)
    }

    /// Unwraps a data key that [`wrap_dek`](Self::wrap_dek) produced under `kek`.
    ///
    /// # Errors
    /// [`Error::UnknownKey`], [`Error::KeyRetired`], or [`Error::KeyUnwrap`] if the
    /// wrapped bytes do not authenticate under `kek`.
    fn unwrap_dek(&self, kek: &KekRef, wrapped: &[u8]) -> Result<Key256>;

    /// The current primary version of `name` (the one new data keys are wrapped under).
    ///
    /// # Errors
    /// [`Error::UnknownKey`] if there is no key `name`.
    fn primary_version(&self, name: &KeyName) -> Result<u32>;
}

/// Forwards [`KeyProvider`] through each smart pointer or reference type given, so that
/// `&P`, `Arc<P>` and `Box<P>` (and `dyn KeyProvider` behind them) are providers too.
macro_rules! forward_provider {
    ($($ty:ty),*) => {$(
        impl<P: KeyProvider + ?Sized> KeyProvider for $ty {
            fn wrap_dek(&self, name: &KeyName, dek: &Key256) -> Result<(KekRef, WrappedDek)> {
                (**self).wrap_dek(name, dek)
            }
            fn wrap_dek_with_nonce(
                &self,
                name: &KeyName,
                dek: &Key256,
                nonce: WrapNonce,
            ) -> Result<(KekRef, WrappedDek)> {
                (**self).wrap_dek_with_nonce(name, dek, nonce)
            }
            fn unwrap_dek(&self, kek: &KekRef, wrapped: &[u8]) -> Result<Key256> {
                (**self).unwrap_dek(kek, wrapped)
            }
            fn primary_version(&self, name: &KeyName) -> Result<u32> {
                (**self).primary_version(name)
            }
        }
    )*};
}

forward_provider!(&P, Arc<P>, Box<P>);

/// Compile-time check that the forwarding impls cover every pointer shape.
#[cfg(test)]
const _: () = {
    fn is_provider<P: KeyProvider>() {}
    fn shapes() {
        is_provider::<&crate::Keyring>();
        is_provider::<Arc<dyn KeyProvider>>();
        is_provider::<Box<dyn KeyProvider>>();
        is_provider::<&dyn KeyProvider>();
    }
    let _ = shapes;
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names() {
        for ok in ["a", "pii", "users.email", "k-1_2", "0abc"] {
            assert!(KeyName::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "A", "a b", "-a", ".a", "ü", "a/b", "a\0"] {
            assert!(
                matches!(KeyName::new(bad), Err(Error::InvalidKeyName { .. })),
                "{bad:?}"
            );
        }
        assert!(KeyName::new("a".repeat(64)).is_ok());
        assert!(KeyName::new("a".repeat(65)).is_err());
    }

    #[test]
    fn wrapped_dek_bounds() {
        assert!(WrappedDek::new(vec![]).is_err());
        assert!(WrappedDek::new(vec![0; MAX_WRAPPED_DEK_LEN]).is_ok());
        assert!(WrappedDek::new(vec![0; MAX_WRAPPED_DEK_LEN + 1]).is_err());
    }
}
