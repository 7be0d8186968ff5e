//! Which AES-256-GCM implementation seals and opens data.
//!
//! Envelopes ([`Envelope`](crate::Envelope)), streams ([`stream`](crate::stream)), subject
//! keys ([`SubjectKeys`](crate::SubjectKeys)) and the [`hazmat`](crate::hazmat) functions
//! encrypt their data with AES-256-GCM from one of two implementations, chosen by
//! [`AeadBackend`]:
//!
//! - [`AeadBackend::RustCrypto`], the `aes-gcm` crate, always available and the default
//!   without the `aws-lc-rs` feature;
//! - `AeadBackend::AwsLc`, AWS-LC's assembly through `aws-lc-rs`, with the `aws-lc-rs`
//!   feature, where it is the default. It runs several times faster on large inputs
//!   (see the README's figures).
//!
//! Both produce the same bytes for the same key, nonce, associated data and plaintext (it
//! is one algorithm), so a ciphertext written with one opens with the other; the crate's
//! tests check this, and run the Wycheproof AES-GCM vectors against each.
//!
//! Key wrapping inside a [`Keyring`](crate::Keyring) always uses `aes-gcm`: it encrypts
//! 32 bytes, where the implementations do not differ in speed.

use std::fmt;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::aead::consts::U12;
use aes_gcm::{AesGcm, KeyInit, Nonce, Tag};

use crate::error::{Error, Result};
use crate::secret::Key256;

/// An AES-256-GCM implementation (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AeadBackend {
    /// RustCrypto's `aes-gcm` (AES-NI and carry-less multiplication when the CPU has them).
    RustCrypto,
    /// AWS-LC through `aws-lc-rs` (assembly, stitched AES and GHASH).
    #[cfg(feature = "aws-lc-rs")]
    #[cfg_attr(docsrs, doc(cfg(feature = "aws-lc-rs")))]
    AwsLc,
}

impl AeadBackend {
    /// Every backend compiled into this build, the default first.
    #[cfg(feature = "aws-lc-rs")]
    pub const ALL: &'static [AeadBackend] = &[AeadBackend::AwsLc, AeadBackend::RustCrypto];
    /// Every backend compiled into this build, the default first.
    #[cfg(not(feature = "aws-lc-rs"))]
    pub const ALL: &'static [AeadBackend] = &[AeadBackend::RustCrypto];

    /// The name used in logs and benchmark labels: `"rustcrypto"` or `"aws-lc"`.
    pub const fn name(self) -> &'static str {
        match self {
            AeadBackend::RustCrypto => "rustcrypto",
            #[cfg(feature = "aws-lc-rs")]
            AeadBackend::AwsLc => "aws-lc",
        }
    }
}

impl Default for AeadBackend {
    /// `AwsLc` with the `aws-lc-rs` feature, otherwise `RustCrypto`.
    fn default() -> Self {
        #[cfg(feature = "aws-lc-rs")]
        {
            AeadBackend::AwsLc
        }
        #[cfg(not(feature = "aws-lc-rs"))]
        {
            AeadBackend::RustCrypto
        }
    }
}

impl fmt::Display for AeadBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// RustCrypto's AES-256-GCM over the encryption-only AES key schedule: GCM never runs
/// the block cipher backwards, so the decryption round keys `Aes256Gcm` also expands (and
/// erases) would be wasted work on every message.
type RustCryptoGcm = AesGcm<aes::Aes256Enc, U12>;

/// An AES-256-GCM key ready to seal and open, from one backend. Holds expanded key
/// material; both backends erase it when dropped.
#[cfg_attr(
    feature = "aws-lc-rs",
    expect(
        clippy::large_enum_variant,
        reason = "one lives on the stack for one message; boxing would cost an allocation each"
    )
)]
pub(crate) enum DataCipher {
    RustCrypto(RustCryptoGcm),
    #[cfg(feature = "aws-lc-rs")]
    AwsLc(aws_lc_rs::aead::LessSafeKey),
}

impl DataCipher {
    /// Expands `key` for `backend`.
    pub(crate) fn new(backend: AeadBackend, key: &Key256) -> Result<Self> {
        Self::from_slice(backend, key.expose_secret())
    }

    /// Expands a key given as bytes, which must be 32 long.
    pub(crate) fn from_slice(backend: AeadBackend, key: &[u8]) -> Result<Self> {
        let wrong = || Error::invalid_length("key", Key256::LEN, key.len());
        match backend {
            AeadBackend::RustCrypto => Ok(Self::RustCrypto(
                RustCryptoGcm::new_from_slice(key).map_err(|_| wrong())?,
            )),
            #[cfg(feature = "aws-lc-rs")]
            AeadBackend::AwsLc => {
                if key.len() != Key256::LEN {
                    return Err(wrong());
                }
                let unbound = aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, key)
                    .map_err(|_| wrong())?;
                Ok(Self::AwsLc(aws_lc_rs::aead::LessSafeKey::new(unbound)))
            }
        }
    }

    /// Encrypts `buf` in place under `nonce`, authenticating `aad`, and returns the tag.
    ///
    /// The caller has checked the plaintext and associated data lengths against the
    /// AES-GCM limits; an implementation refusal anyway is reported as
    /// [`Error::TooLarge`].
    pub(crate) fn seal_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; 16]> {
        match self {
            DataCipher::RustCrypto(cipher) => {
                let size = buf_len(buf);
                cipher
                    .encrypt_in_place_detached(Nonce::from_slice(nonce), aad, buf)
                    .map(Into::into)
                    .map_err(|_| Error::TooLarge {
                        size,
                        limit: crate::hazmat::AES_GCM_MAX_PLAINTEXT,
                    })
            }
            #[cfg(feature = "aws-lc-rs")]
            DataCipher::AwsLc(key) => {
                let size = buf_len(buf);
                let tag = key
                    .seal_in_place_separate_tag(
                        aws_lc_rs::aead::Nonce::assume_unique_for_key(*nonce),
                        aws_lc_rs::aead::Aad::from(aad),
                        buf,
                    )
                    .map_err(|_| Error::TooLarge {
                        size,
                        limit: crate::hazmat::AES_GCM_MAX_PLAINTEXT,
                    })?;
                <[u8; 16]>::try_from(tag.as_ref()).map_err(|_| Error::InvalidParameter {
                    name: "tag",
                    reason: "AES-256-GCM returned a tag that is not 16 bytes".into(),
                })
            }
        }
    }

    /// Authenticates and decrypts `buf` in place under `nonce`, `aad` and `tag`. On
    /// failure `buf` holds no plaintext (it is zeroed).
    ///
    /// # Errors
    /// [`Error::Decryption`] if the tag does not verify.
    pub(crate) fn open_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<()> {
        let opened = match self {
            DataCipher::RustCrypto(cipher) => cipher
                .decrypt_in_place_detached(Nonce::from_slice(nonce), aad, buf, Tag::from_slice(tag))
                .is_ok(),
            #[cfg(feature = "aws-lc-rs")]
            DataCipher::AwsLc(key) => key
                .open_in_place_separate_tag(
                    aws_lc_rs::aead::Nonce::assume_unique_for_key(*nonce),
                    aws_lc_rs::aead::Aad::from(aad),
                    tag,
                    buf,
                )
                .is_ok(),
        };
        if opened {
            Ok(())
        } else {
            buf.fill(0);
            Err(Error::Decryption)
        }
    }
}

impl fmt::Debug for DataCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backend = match self {
            DataCipher::RustCrypto(_) => AeadBackend::RustCrypto,
            #[cfg(feature = "aws-lc-rs")]
            DataCipher::AwsLc(_) => AeadBackend::AwsLc,
        };
        f.debug_struct("DataCipher")
            .field("backend", &backend)
            .finish_non_exhaustive()
    }
}

fn buf_len(buf: &[u8]) -> u64 {
    buf.len() as u64
}
