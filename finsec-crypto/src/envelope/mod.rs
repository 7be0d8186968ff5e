//! Envelope encryption: a fresh data key per message, wrapped by a named, versioned
//! key-encryption key.
//!
//! [`Envelope::encrypt`] draws a fresh random 256-bit data key (DEK), a random 96-bit
//! data nonce and a random 96-bit nonce for wrapping the DEK, all in one read of the
//! operating system's RNG; encrypts the plaintext with AES-256-GCM under the DEK (with the
//! [`AeadBackend`] of the envelope); asks the [`KeyProvider`] to wrap the DEK under the
//! primary version of the envelope's key-encryption key (KEK); and returns one
//! self-describing byte string. [`Envelope::decrypt`] reads the KEK name and version from the header, has
//! the provider unwrap the DEK, and authenticates and decrypts the data.
//! [`Envelope::rewrap`] moves a ciphertext to the KEK's current primary version by
//! replacing only the wrapped DEK; the encrypted data bytes are not touched.
//!
//! Nothing derived from a DEK is cached: each message's key and cipher state live only
//! for the duration of one call and are zeroized when dropped.
//!
//! # Binary layout, version 1
//!
//! All integers are big-endian.
//!
//! | offset       | length | field                                                              |
//! |--------------|--------|--------------------------------------------------------------------|
//! | 0            | 3      | magic `"FSE"` (`0x46 0x53 0x45`)                                   |
//! | 3            | 1      | format version, `1`                                                |
//! | 4            | 1      | key name length *n*, 1..=64                                        |
//! | 5            | *n*    | KEK name ([`KeyName`] rules: `a-z 0-9 . _ -`)                      |
//! | 5+*n*        | 4      | KEK version, `u32`, >= 1                                           |
//! | 9+*n*        | 2      | wrapped DEK length *w*, `u16`, 1..=1024                            |
//! | 11+*n*       | *w*    | wrapped DEK (provider-defined; the local keyring writes 60 bytes)  |
//! | 11+*n*+*w*   | 12     | data nonce (random)                                                |
//! | 23+*n*+*w*   | *m*    | AES-256-GCM ciphertext (*m* = plaintext length)                    |
//! | 23+*n*+*w*+*m* | 16   | AES-256-GCM tag                                                    |
//!
//! The header is everything before the ciphertext (`23 + n + w` bytes, see
//! [`Header::parse`]). The data is encrypted with associated data
//!
//! ```text
//! b"finsec/envelope/v1" || u64-BE(len(aad)) || aad
//! ```
//!
//! where `aad` is the caller's associated data (for a database field, use [`aad_for`]).
//! The KEK reference and the wrapped DEK are deliberately not part of the data's
//! associated data, so that [`Envelope::rewrap`] can replace them; they are protected by
//! the key provider instead, which binds each wrapped DEK to its KEK name and version (a
//! wrapped DEK moved under another name or version fails to unwrap).
//!
//! The text form ([`Envelope::encrypt_to_string`]) is the same bytes in base64url without
//! padding, for text columns.
//!
//! # Limits
//!
//! A plaintext may be at most 2^36 - 32 bytes, the AES-GCM limit
//! ([`AES_GCM_MAX_PLAINTEXT`]); larger input is refused with [`Error::TooLarge`]. For
//! large payloads use a streaming mode, which keeps memory bounded.
//!
//! # Errors
//!
//! Malformed input never panics; it is refused with the most specific error:
//! [`Error::Empty`], [`Error::BadMagic`], [`Error::UnsupportedVersion`],
//! [`Error::Truncated`] (naming the field and offset), [`Error::InvalidHeader`],
//! [`Error::UnknownKey`] / [`Error::KeyRetired`] (from the provider),
//! [`Error::KeyUnwrap`] (wrapped DEK altered or moved), and [`Error::Decryption`] (data,
//! tag, nonce or associated data do not match).

mod format;

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

pub use format::{FORMAT_VERSION, Header, MAGIC, NONCE_LEN, TAG_LEN};

use crate::backend::{AeadBackend, DataCipher};
use crate::error::{Error, Result};
use crate::hazmat::AES_GCM_MAX_PLAINTEXT;
use crate::provider::{KeyName, KeyProvider, WrapNonce};
use crate::secret::{Key256, fill_random};

/// Domain-separation prefix of the data's associated data.
const DATA_AAD_PREFIX: &[u8] = b"finsec/envelope/v1";

/// Domain-separation prefix of [`aad_for`].
const CONTEXT_AAD_PREFIX: &[u8] = b"finsec/aad/v1";

/// Associated data up to this size (prefix and length included) is assembled on the
/// stack; larger associated data goes to one heap buffer.
const STACK_AAD_LEN: usize = 256;

/// Largest caller associated data accepted, so that the prefixed associated data stays
/// within what the AES-GCM implementation accepts (2^36 bytes).
const MAX_AAD_LEN: u64 = (1 << 36) - 26;

/// Encrypts and decrypts byte strings with a fresh data key per message, wrapped by the
/// named key-encryption key of a [`KeyProvider`].
///
/// The envelope's key name chooses which KEK *encrypts*; decryption and
/// [`rewrap`](Self::rewrap) use whichever KEK name and version the ciphertext's header
/// names, as long as the provider knows it.
///
/// `Envelope` is `Send + Sync` when the provider is, and holds no per-message state, so
/// one instance can serve every thread.
///
/// The data is encrypted with [`AeadBackend::default`] unless
/// [`with_backend`](Self::with_backend) chooses another; the bytes are the same either
/// way, so any backend decrypts what any other encrypted.
#[derive(Clone)]
pub struct Envelope<P: KeyProvider> {
    provider: P,
    key: KeyName,
    backend: AeadBackend,
}

impl<P: KeyProvider> fmt::Debug for Envelope<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("key", &self.key)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// The result of [`Envelope::rewrap`] (bytes) and [`Envelope::rewrap_str`] (text form).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Rewrap<T = Vec<u8>> {
    /// The ciphertext's data key is already wrapped under the primary version; store
    /// nothing.
    Unchanged,
    /// The new ciphertext to store in place of the old one. Its data part (nonce,
    /// ciphertext and tag) is byte-identical to the old one; only the KEK version and the
    /// wrapped data key changed.
    Rewrapped(T),
}

impl<P: KeyProvider> Envelope<P> {
    /// An envelope that encrypts under the primary version of the key `key` of
    /// `provider`.
    ///
    /// The key is looked up on each call, so the envelope may be created before the key
    /// exists; encrypting then fails with [`Error::UnknownKey`].
    pub fn new(provider: P, key: KeyName) -> Self {
        Self {
            provider,
            key,
            backend: AeadBackend::default(),
        }
    }

    /// The same envelope, encrypting and decrypting data with `backend`.
    #[must_use]
    pub fn with_backend(mut self, backend: AeadBackend) -> Self {
        self.backend = backend;
        self
    }

    /// The AES-256-GCM implementation this envelope uses for data.
    pub fn backend(&self) -> AeadBackend {
        self.backend
    }

    /// The key provider.
    pub fn provider(&self) -> &P {
        &self.provider
    }

    /// The name of the key-encryption key new ciphertexts are encrypted under.
    pub fn key_name(&self) -> &KeyName {
        &self.key
    }

    /// Encrypts `plaintext`, binding it to the associated data `aad` (which is not stored;
    /// the same `aad` must be given to decrypt). For a database field, use
    /// [`aad_for`]`(table, column, row_id)`.
    ///
    /// Returns the binary form described in the [module docs](self).
    ///
    /// # Errors
    /// [`Error::TooLarge`] if the plaintext is longer than 2^36 - 32 bytes (or the
    /// associated data longer than 2^36 - 26 bytes); from the provider:
    /// [`Error::UnknownKey`] if it has no key of this envelope's name,
    /// [`Error::KeyUsageExhausted`] if the primary version reached its usage limit;
    /// [`Error::Random`] if the operating system RNG fails.
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let size = plaintext.len() as u64;
        if size > AES_GCM_MAX_PLAINTEXT {
            return Err(Error::TooLarge {
                size,
                limit: AES_GCM_MAX_PLAINTEXT,
            });
        }
        check_aad(aad)?;

        // One RNG read for the data key, the data nonce and the wrapping nonce.
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        fill_random(seed.as_mut_slice())?;
        let (dek, nonce, wrap_nonce) = split_seed(&seed);
        let dek = Key256::from_bytes(dek);

        let (kek, wrapped) = self.provider.wrap_dek_with_nonce(
            &self.key,
            &dek,
            WrapNonce::from_fresh(wrap_nonce),
        )?;
        let header = Header::new(kek, wrapped, nonce)?;

        let mut out = Vec::with_capacity(header.encoded_len() + plaintext.len() + TAG_LEN);
        header.write_to(&mut out);
        let body_start = out.len();
        out.extend_from_slice(plaintext);

        let cipher = DataCipher::new(self.backend, &dek)?;
        drop(dek);
        let (_, body) = out.split_at_mut(body_start);
        let tag = with_data_aad(aad, |data_aad| cipher.seal_in_place(&nonce, data_aad, body))?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Authenticates and decrypts a ciphertext made by [`encrypt`](Self::encrypt) with the
    /// same associated data `aad`.
    ///
    /// # Errors
    /// [`Error::Empty`], [`Error::BadMagic`], [`Error::UnsupportedVersion`],
    /// [`Error::Truncated`] or [`Error::InvalidHeader`] for malformed input;
    /// [`Error::UnknownKey`] or [`Error::KeyRetired`] if the provider does not decrypt with
    /// the header's key version; [`Error::KeyUnwrap`] if the wrapped data key was altered
    /// or moved; [`Error::Decryption`] if the data, nonce, tag or associated data do not
    /// match.
    pub fn decrypt(&self, ciphertext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let (header, body) = parse(ciphertext)?;
        check_aad(aad)?;
        let (data, tag) = body.split_at(body.len() - TAG_LEN);

        let dek = self
            .provider
            .unwrap_dek(header.kek(), header.wrapped_dek().as_bytes())?;
        let cipher = DataCipher::new(self.backend, &dek)?;
        drop(dek);
        let tag: &[u8; TAG_LEN] = tag.try_into().map_err(|_| Error::Decryption)?;

        let mut out = data.to_vec();
        with_data_aad(aad, |data_aad| {
            cipher.open_in_place(header.nonce(), data_aad, &mut out, tag)
        })?;
        Ok(out)
    }

    /// [`encrypt`](Self::encrypt), returned as base64url text without padding (for text
    /// columns).
    ///
    /// # Errors
    /// As [`encrypt`](Self::encrypt).
    pub fn encrypt_to_string(&self, plaintext: &[u8], aad: &[u8]) -> Result<String> {
        Ok(URL_SAFE_NO_PAD.encode(self.encrypt(plaintext, aad)?))
    }

    /// [`decrypt`](Self::decrypt) for the text form made by
    /// [`encrypt_to_string`](Self::encrypt_to_string).
    ///
    /// # Errors
    /// [`Error::Empty`] for an empty string; [`Error::Base64`] if it is not canonical
    /// base64url without padding; otherwise as [`decrypt`](Self::decrypt).
    pub fn decrypt_str(&self, text: &str, aad: &[u8]) -> Result<Vec<u8>> {
        if text.is_empty() {
            return Err(Error::Empty);
        }
        let bytes = URL_SAFE_NO_PAD.decode(text)?;
        self.decrypt(&bytes, aad)
    }

    /// Re-wraps the ciphertext's data key under the current primary version of the KEK
    /// named in its header, after a rotation. The data part (nonce, ciphertext, tag) is
    /// copied unchanged: the plaintext is never decrypted and the associated data is not
    /// needed.
    ///
    /// Returns [`Rewrap::Unchanged`] if the header already names the primary version.
    /// Because the associated data is not known here, the data part is not
    /// authenticated; only the wrapped data key is (by unwrapping it).
    ///
    /// # Errors
    /// As [`decrypt`](Self::decrypt) for malformed input and for the unwrap;
    /// [`Error::UnknownKey`] if the provider has no key of the header's name;
    /// [`Error::KeyUsageExhausted`] or [`Error::Random`] from wrapping.
    pub fn rewrap(&self, ciphertext: &[u8]) -> Result<Rewrap> {
        let (header, _) = parse(ciphertext)?;
        let name = header.kek().name.clone();
        self.rewrap_under(ciphertext, &name)
    }

    /// Re-wraps the ciphertext's data key under the current primary version of **this
    /// envelope's** KEK ([`key_name`](Self::key_name)), whichever KEK its header names: moves
    /// a value from one key to another (for example from a key shared with other data to a
    /// key of its own) without decrypting the data part or needing its associated data.
    ///
    /// Returns [`Rewrap::Unchanged`] if the header already names the primary version of this
    /// envelope's key. As with [`rewrap`](Self::rewrap), only the wrapped data key is
    /// authenticated here; the data part is authenticated when the result is decrypted.
    ///
    /// # Errors
    /// As [`rewrap`](Self::rewrap); [`Error::UnknownKey`] also if the provider has no key of
    /// this envelope's name.
    pub fn move_to_own_key(&self, ciphertext: &[u8]) -> Result<Rewrap> {
        let name = self.key.clone();
        self.rewrap_under(ciphertext, &name)
    }

    /// [`move_to_own_key`](Self::move_to_own_key) for the text form made by
    /// [`encrypt_to_string`](Self::encrypt_to_string).
    ///
    /// # Errors
    /// [`Error::Empty`] for an empty string; [`Error::Base64`] if it is not canonical
    /// base64url without padding; otherwise as [`move_to_own_key`](Self::move_to_own_key).
    pub fn move_to_own_key_str(&self, text: &str) -> Result<Rewrap<String>> {
        self.on_text(text, Self::move_to_own_key)
    }

    /// Re-wraps the data key of `ciphertext` under the primary version of `target`.
    fn rewrap_under(&self, ciphertext: &[u8], target: &KeyName) -> Result<Rewrap> {
        let (header, body) = parse(ciphertext)?;
        let primary = self.provider.primary_version(target)?;
        if header.kek().name == *target && header.kek().version == primary {
            return Ok(Rewrap::Unchanged);
        }
        let dek = self
            .provider
            .unwrap_dek(header.kek(), header.wrapped_dek().as_bytes())?;
        let (kek, wrapped) = self.provider.wrap_dek(target, &dek)?;
        drop(dek);
        let new_header = Header::new(kek, wrapped, *header.nonce())?;

        let mut out = Vec::with_capacity(new_header.encoded_len() + body.len());
        new_header.write_to(&mut out);
        out.extend_from_slice(body);
        Ok(Rewrap::Rewrapped(out))
    }

    /// [`rewrap`](Self::rewrap) for the text form made by
    /// [`encrypt_to_string`](Self::encrypt_to_string).
    ///
    /// # Errors
    /// [`Error::Empty`] for an empty string; [`Error::Base64`] if it is not canonical
    /// base64url without padding; otherwise as [`rewrap`](Self::rewrap).
    pub fn rewrap_str(&self, text: &str) -> Result<Rewrap<String>> {
        self.on_text(text, Self::rewrap)
    }

    /// Applies a re-wrapping operation to the text form.
    fn on_text(
        &self,
        text: &str,
        op: fn(&Self, &[u8]) -> Result<Rewrap>,
    ) -> Result<Rewrap<String>> {
        if text.is_empty() {
            return Err(Error::Empty);
        }
        let bytes = URL_SAFE_NO_PAD.decode(text)?;
        Ok(match op(self, &bytes)? {
            Rewrap::Unchanged => Rewrap::Unchanged,
            Rewrap::Rewrapped(new) => Rewrap::Rewrapped(URL_SAFE_NO_PAD.encode(new)),
        })
    }
}

/// Canonical associated data for a value stored in a database: the table, the column and
/// the row's id, each length-prefixed so that no two different triples give the same
/// bytes (`("ab", "c", ..)` and `("a", "bc", ..)` differ).
///
/// Layout: `b"finsec/aad/v1"`, then for each of `table`, `column`, `row`: its UTF-8
/// length as a big-endian `u64`, then its bytes.
///
/// A ciphertext encrypted with `aad_for("users", "email", "42")` fails to decrypt in row
/// `"43"` or in column `"phone"`, so a ciphertext copied between rows or columns is
/// detected.
pub fn aad_for(table: &str, column: &str, row: &str) -> Vec<u8> {
    let parts = [table, column, row];
    let len = CONTEXT_AAD_PREFIX.len() + parts.iter().map(|p| 8 + p.len()).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(CONTEXT_AAD_PREFIX);
    for part in parts {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// Parses the header and checks that at least a tag follows it. Returns the header and
/// the data part (ciphertext and tag).
fn parse(ciphertext: &[u8]) -> Result<(Header, &[u8])> {
    let (header, header_len) = Header::parse(ciphertext)?;
    let body = ciphertext.get(header_len..).unwrap_or_default();
    if body.len() < TAG_LEN {
        return Err(Error::Truncated {
            field: "tag",
            offset: header_len,
            needed: TAG_LEN,
            available: body.len(),
        });
    }
    Ok((header, body))
}

fn check_aad(aad: &[u8]) -> Result<()> {
    let size = aad.len() as u64;
    if size > MAX_AAD_LEN {
        return Err(Error::TooLarge {
            size,
            limit: MAX_AAD_LEN,
        });
    }
    Ok(())
}

/// Bytes of one encryption's random seed: data key, data nonce, wrapping nonce.
const SEED_LEN: usize = Key256::LEN + NONCE_LEN + WrapNonce::LEN;

/// Splits the random seed into the data key, the data nonce and the wrapping nonce.
fn split_seed(seed: &[u8; SEED_LEN]) -> ([u8; Key256::LEN], [u8; NONCE_LEN], [u8; WrapNonce::LEN]) {
    let mut dek = [0u8; Key256::LEN];
    let mut nonce = [0u8; NONCE_LEN];
    let mut wrap = [0u8; WrapNonce::LEN];
    let parts = dek.iter_mut().chain(&mut nonce).chain(&mut wrap);
    for (dst, src) in parts.zip(seed) {
        *dst = *src;
    }
    (dek, nonce, wrap)
}

/// Calls `f` with the data's associated data,
/// `DATA_AAD_PREFIX || u64-BE(len(aad)) || aad`, assembled without a heap allocation when
/// it is small.
fn with_data_aad<T>(aad: &[u8], f: impl FnOnce(&[u8]) -> T) -> T {
    let len = DATA_AAD_PREFIX.len() + 8 + aad.len();
    let mut stack = [0u8; STACK_AAD_LEN];
    let mut heap = Vec::new();
    let buf: &mut [u8] = match stack.get_mut(..len) {
        Some(buf) => buf,
        None => {
            heap.resize(len, 0);
            &mut heap
        }
    };
    let (prefix, rest) = buf.split_at_mut(DATA_AAD_PREFIX.len());
    let (aad_len, aad_bytes) = rest.split_at_mut(8);
    prefix.copy_from_slice(DATA_AAD_PREFIX);
    aad_len.copy_from_slice(&(aad.len() as u64).to_be_bytes());
    aad_bytes.copy_from_slice(aad);
    f(buf)
}
