//! The envelope header: parsing and writing of binary layout version 1.
//!
//! The layout is documented byte by byte in the [module docs](super).

use crate::error::{Error, Result};
use crate::provider::{KekRef, KeyName, MAX_KEY_NAME_LEN, MAX_WRAPPED_DEK_LEN, WrappedDek};

/// The three magic bytes every envelope ciphertext starts with: `"FSE"`.
pub const MAGIC: [u8; 3] = *b"FSE";

/// The envelope format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;

/// Length of the data nonce in bytes.
pub const NONCE_LEN: usize = 12;

/// Length of the authentication tag at the end of the ciphertext, in bytes.
pub const TAG_LEN: usize = 16;

/// Header bytes around the variable fields: magic, version, name length, key version,
/// wrapped length and nonce (3 + 1 + 1 + 4 + 2 + 12).
const FIXED_HEADER_LEN: usize = 23;

/// What [`Error::BadMagic`] and [`Error::UnsupportedVersion`] name.
const WHAT: &str = "envelope ciphertext";
const FORMAT: &str = "envelope";

/// A parsed envelope header: which key-encryption key wrapped the data key, the wrapped
/// data key, and the data nonce.
///
/// None of it is secret: the wrapped data key is ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    kek: KekRef,
    wrapped: WrappedDek,
    nonce: [u8; NONCE_LEN],
}

impl Header {
    /// Builds a header for writing.
    ///
    /// # Errors
    /// [`Error::InvalidHeader`] if the key version is 0 (versions start at 1).
    pub(crate) fn new(kek: KekRef, wrapped: WrappedDek, nonce: [u8; NONCE_LEN]) -> Result<Self> {
        if kek.version == 0 {
            return Err(Error::InvalidHeader {
                field: "key version",
                reason: "key versions start at 1".to_owned(),
            });
        }
        Ok(Self {
            kek,
            wrapped,
            nonce,
        })
    }

    /// Parses the header at the start of `input` and returns it with its length in bytes;
    /// the AES-256-GCM ciphertext and tag start at that offset.
    ///
    /// Only the header is read: this does not check that a tag follows, and it
    /// authenticates nothing.
    ///
    /// # Errors
    /// - [`Error::Empty`] if `input` is empty;
    /// - [`Error::BadMagic`] if it does not start with `"FSE"`;
    /// - [`Error::UnsupportedVersion`] if the format version is not 1;
    /// - [`Error::Truncated`] naming the field and its offset if the input ends inside the
    ///   header;
    /// - [`Error::InvalidHeader`] if the key name length is 0 or more than 64, the key name
    ///   breaks the [`KeyName`] rules, the key version is 0, or the wrapped key length is 0
    ///   or more than 1024.
    pub fn parse(input: &[u8]) -> Result<(Self, usize)> {
        if input.is_empty() {
            return Err(Error::Empty);
        }
        let seen = input.len().min(MAGIC.len());
        if input.get(..seen) != MAGIC.get(..seen) {
            return Err(Error::BadMagic { expected: WHAT });
        }
        let mut r = Reader { input, pos: 0 };
        r.take("magic", MAGIC.len())?;

        let [version] = r.array::<1>("format version")?;
        if version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                format: FORMAT,
                version: u16::from(version),
            });
        }

        let [name_len] = r.array::<1>("key name length")?;
        let name_len = usize::from(name_len);
        if name_len == 0 || name_len > MAX_KEY_NAME_LEN {
            return Err(Error::InvalidHeader {
                field: "key name length",
                reason: format!("{name_len} is outside 1..={MAX_KEY_NAME_LEN}"),
            });
        }
        let name = r.take("key name", name_len)?;
        let name = std::str::from_utf8(name)
            .map_err(|_| Error::InvalidHeader {
                field: "key name",
                reason: "key name is not UTF-8".to_owned(),
            })
            .and_then(|s| {
                KeyName::new(s).map_err(|e| Error::InvalidHeader {
                    field: "key name",
                    reason: match e {
                        Error::InvalidKeyName { reason, .. } => reason.to_owned(),
                        other => other.to_string(),
                    },
                })
            })?;

        let version = u32::from_be_bytes(r.array::<4>("key version")?);
        if version == 0 {
            return Err(Error::InvalidHeader {
                field: "key version",
                reason: "key versions start at 1".to_owned(),
            });
        }

        let wrapped_len = usize::from(u16::from_be_bytes(r.array::<2>("wrapped key length")?));
        if wrapped_len == 0 || wrapped_len > MAX_WRAPPED_DEK_LEN {
            return Err(Error::InvalidHeader {
                field: "wrapped key length",
                reason: format!("{wrapped_len} is outside 1..={MAX_WRAPPED_DEK_LEN}"),
            });
        }
        let wrapped = WrappedDek::new(r.take("wrapped key", wrapped_len)?.to_vec())?;
        let nonce = r.array::<NONCE_LEN>("nonce")?;

        let header = Self {
            kek: KekRef { name, version },
            wrapped,
            nonce,
        };
        Ok((header, r.pos))
    }

    /// The key-encryption key (name and version) that wrapped the data key.
    pub fn kek(&self) -> &KekRef {
        &self.kek
    }

    /// The envelope format version (always [`FORMAT_VERSION`] for a parsed header). The
    /// key version is [`kek().version`](KekRef::version).
    pub fn version(&self) -> u8 {
        FORMAT_VERSION
    }

    /// The wrapped data key, in the key provider's format.
    pub fn wrapped_dek(&self) -> &WrappedDek {
        &self.wrapped
    }

    /// The 96-bit AES-GCM nonce of the data ciphertext.
    pub fn nonce(&self) -> &[u8; NONCE_LEN] {
        &self.nonce
    }

    /// Length of the encoded header in bytes (`23 + key name length + wrapped key length`).
    pub fn encoded_len(&self) -> usize {
        FIXED_HEADER_LEN + self.kek.name.as_str().len() + self.wrapped.as_bytes().len()
    }

    /// Appends the encoded header to `out`.
    pub(crate) fn write_to(&self, out: &mut Vec<u8>) {
        let name = self.kek.name.as_str().as_bytes();
        let wrapped = self.wrapped.as_bytes();
        // Both lengths are bounded by their types (KeyName: 1..=64, WrappedDek: 1..=1024),
        // so the conversions cannot fail; the fallbacks only keep this function total.
        let name_len = u8::try_from(name.len()).unwrap_or(u8::MAX);
        let wrapped_len = u16::try_from(wrapped.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&MAGIC);
        out.push(FORMAT_VERSION);
        out.push(name_len);
        out.extend_from_slice(name);
        out.extend_from_slice(&self.kek.version.to_be_bytes());
        out.extend_from_slice(&wrapped_len.to_be_bytes());
        out.extend_from_slice(wrapped);
        out.extend_from_slice(&self.nonce);
    }
}

/// A cursor over the header bytes that reports which field ran out of input.
struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, field: &'static str, len: usize) -> Result<&'a [u8]> {
        let rest = self.input.get(self.pos..).unwrap_or_default();
        match rest.get(..len) {
            Some(bytes) => {
                self.pos += len;
                Ok(bytes)
            }
            None => Err(Error::Truncated {
                field,
                offset: self.pos,
                needed: len,
                available: rest.len(),
            }),
        }
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N]> {
        let bytes = self.take(field, N)?;
        bytes
            .try_into()
            .map_err(|_| Error::invalid_length(field, N, bytes.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header::new(
            KekRef {
                name: KeyName::new("pii").unwrap(),
                version: 7,
            },
            WrappedDek::new(vec![0xAA; 60]).unwrap(),
            [0x11; NONCE_LEN],
        )
        .unwrap()
    }

    #[test]
    fn layout_is_byte_exact() {
        let h = sample();
        let mut out = Vec::new();
        h.write_to(&mut out);
        assert_eq!(out.len(), h.encoded_len());
        assert_eq!(out.len(), 23 + 3 + 60);
        assert_eq!(&out[..3], b"FSE");
        assert_eq!(out[3], 1);
        assert_eq!(out[4], 3);
        assert_eq!(&out[5..8], b"pii");
        assert_eq!(&out[8..12], &[0, 0, 0, 7]);
        assert_eq!(&out[12..14], &[0, 60]);
        assert_eq!(&out[14..74], &[0xAA; 60][..]);
        assert_eq!(&out[74..86], &[0x11; 12]);
        let (parsed, len) = Header::parse(&out).unwrap();
        assert_eq!(parsed, h);
        assert_eq!(len, out.len());
        assert_eq!(parsed.version(), 1);
    }

    #[test]
    fn version_zero_is_refused_when_writing() {
        let r = Header::new(
            KekRef {
                name: KeyName::new("pii").unwrap(),
                version: 0,
            },
            WrappedDek::new(vec![1]).unwrap(),
            [0; NONCE_LEN],
        );
        assert!(matches!(
            r,
            Err(Error::InvalidHeader {
                field: "key version",
                ..
            })
        ));
    }

    #[test]
    fn every_prefix_is_an_error() {
        let mut out = Vec::new();
        sample().write_to(&mut out);
        for cut in 0..out.len() {
            let err = Header::parse(&out[..cut]).unwrap_err();
            match cut {
                0 => assert!(matches!(err, Error::Empty)),
                _ => assert!(matches!(err, Error::Truncated { .. }), "{cut}: {err}"),
            }
        }
    }
}
