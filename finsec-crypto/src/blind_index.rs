//! Blind indexes: equality lookups on encrypted columns.
//!
//! An envelope ciphertext is randomised, so `WHERE email = ?` cannot find it. A blind index
//! stores, beside the ciphertext, a keyed hash of the (normalised) plaintext:
//! `HMAC-SHA256(column key, normalise(value))`, truncated to the configured length. The
//! application computes the same hash for the value it looks for and queries the index
//! column; only holders of the key can compute or test index values.
//!
//! ```
//! use finsec_crypto::Key256;
//! use finsec_crypto::blind_index::{BlindIndex, Normalizer};
//!
//! # fn main() -> finsec_crypto::Result<()> {
//! let master = Key256::generate()?; // keep this key: every stored index depends on it
//! let email_index = BlindIndex::new(&master, "users.email", Normalizer::Email, 16)?;
//!
//! let stored = email_index.compute("Alice@Example.com")?; // store beside the ciphertext
//! let wanted = email_index.compute("  alice@example.COM ")?; // what a lookup computes
//! assert_eq!(stored, wanted);
//! assert_eq!(stored.to_hex().len(), 32);
//! assert!(email_index.matches("alice@example.com", &stored)?);
//! # Ok(())
//! # }
//! ```
//!
//! # Keys
//!
//! [`BlindIndex::new`] derives a key per column from a master key with HKDF-SHA256
//! ([`derive_subkey`], context `finsec/blind-index/v1/<column>`), so two columns holding
//! the same value get unrelated index values and an index cannot be joined across columns.
//! The master key must be kept for as long as the indexes are: changing it means computing
//! every index value again from the decrypted data. Keep it apart from the key-encryption
//! keys (e.g. a separate [`Keyring`](crate::Keyring) entry is *not* usable for this: KEKs
//! never leave the keyring), for example as a sub-key of the server's master key.
//!
//! # Normalisation
//!
//! | [`Normalizer`] | what is equal |
//! |---|---|
//! | `Exact` | the same bytes |
//! | `Trimmed` | the same after removing leading and trailing white space |
//! | `CaseInsensitive` | the same after Unicode NFKC, trimming and lower-casing |
//! | `Email` | as `CaseInsensitive`, and the value must look like `local@domain` |
//!
//! # Threat model
//!
//! - **Leaks equality.** Rows with equal (normalised) values have equal index values; this
//!   is the point, and it lets anyone who can read the table count duplicates and see
//!   frequency. Do not index low-cardinality values (country, gender, a yes/no flag): the
//!   frequencies alone reveal them.
//! - **Guessing needs the key.** Without the column key nobody can compute an index value
//!   for a guess, so a dump of the table does not allow a dictionary attack on e-mail
//!   addresses or phone numbers. With the key (a compromised application server) it does:
//!   the index is then only as strong as the values are unpredictable.
//! - **Truncation trades false positives for privacy.** A short index (down to
//!   [`MIN_OUTPUT_LEN`] bytes) gives occasional collisions; always decrypt the candidate rows
//!   and compare the plaintexts before acting on a match.
//! - **Timing.** [`BlindIndexValue`] compares in constant time; [`BlindIndex::matches`]
//!   uses it.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use unicode_normalization::UnicodeNormalization;

use crate::error::{Error, Result};
use crate::kdf::derive_subkey;
use crate::secret::Key256;

/// The shortest index value [`BlindIndex::new`] accepts, in bytes (64 bits).
pub const MIN_OUTPUT_LEN: usize = 8;
/// The longest index value, in bytes (the full HMAC-SHA256 output).
pub const MAX_OUTPUT_LEN: usize = 32;
/// The longest column name [`BlindIndex::new`] accepts, in bytes.
pub const MAX_COLUMN_LEN: usize = 128;

/// How a value is normalised before it is indexed; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Normalizer {
    /// No change: the same bytes give the same index.
    Exact,
    /// Leading and trailing Unicode white space removed.
    Trimmed,
    /// Unicode NFKC, trimmed, lower-cased.
    CaseInsensitive,
    /// As [`Normalizer::CaseInsensitive`]; the value must have exactly one `@` with text on
    /// both sides and no white space or control characters inside.
    Email,
}

impl Normalizer {
    /// Applies the normalisation.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] (named `value`) if an [`Normalizer::Email`] value is not
    /// shaped like an e-mail address. The message does not repeat the value.
    pub fn apply(self, value: &str) -> Result<String> {
        match self {
            Self::Exact => Ok(value.to_owned()),
            Self::Trimmed => Ok(value.trim().to_owned()),
            Self::CaseInsensitive => Ok(fold(value)),
            Self::Email => {
                let folded = fold(value);
                let mut parts = folded.split('@');
                let shaped = match (parts.next(), parts.next(), parts.next()) {
                    (Some(local), Some(domain), None) => {
                        !local.is_empty()
                            && !domain.is_empty()
                            && !folded.chars().any(|c| c.is_whitespace() || c.is_control())
                    }
                    _ => false,
                };
                if shaped {
                    Ok(folded)
                } else {
                    Err(Error::InvalidParameter {
                        name: "value",
                        reason: "not an e-mail address: expected exactly one '@' with text on \
                                 both sides and no white space"
                            .to_owned(),
                    })
                }
            }
        }
    }
}

/// NFKC, lower case, NFKC again, trimmed. The second NFKC is needed because lower-casing
/// can make a composable pair: `T` + U+0308 has no precomposed form but `t` + U+0308 is
/// `ẗ` (U+1E97), so without it a value and its normal form would index differently.
fn fold(value: &str) -> String {
    // ASCII text is already in NFKC and lower-cases to ASCII: skip both NFKC passes.
    if value.is_ascii() {
        return value.trim().to_ascii_lowercase();
    }
    let lower = value.nfkc().collect::<String>().to_lowercase();
    lower.nfkc().collect::<String>().trim().to_owned()
}

/// A keyed blind index for one column. Cheap to clone; the key is zeroized on drop and
/// never printed.
#[derive(Clone)]
pub struct BlindIndex {
    key: Key256,
    column: String,
    normalizer: Normalizer,
    output_len: usize,
}

impl fmt::Debug for BlindIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlindIndex")
            .field("key", &"[REDACTED]")
            .field("column", &self.column)
            .field("normalizer", &self.normalizer)
            .field("output_len", &self.output_len)
            .finish()
    }
}

impl BlindIndex {
    /// A blind index for `column` (any stable name, e.g. `"users.email"`), with its key
    /// derived from `master`, values normalised by `normalizer` and `output_len` bytes of
    /// output.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `column` is empty, longer than [`MAX_COLUMN_LEN`]
    /// bytes or contains control characters, or if `output_len` is outside
    /// [`MIN_OUTPUT_LEN`]..=[`MAX_OUTPUT_LEN`].
    pub fn new(
        master: &Key256,
        column: &str,
        normalizer: Normalizer,
        output_len: usize,
    ) -> Result<Self> {
        if column.is_empty()
            || column.len() > MAX_COLUMN_LEN
            || column.chars().any(char::is_control)
        {
            return Err(Error::InvalidParameter {
                name: "column",
                reason: format!(
                    "column name must be 1..={MAX_COLUMN_LEN} bytes without control characters"
                ),
            });
        }
        if !(MIN_OUTPUT_LEN..=MAX_OUTPUT_LEN).contains(&output_len) {
            return Err(Error::InvalidParameter {
                name: "output_len",
                reason: format!(
                    "index length must be {MIN_OUTPUT_LEN}..={MAX_OUTPUT_LEN} bytes, got \
                     {output_len}"
                ),
            });
        }
        let key = derive_subkey(master, &format!("finsec/blind-index/v1/{column}"))?;
        Ok(Self {
            key,
            column: column.to_owned(),
            normalizer,
            output_len,
        })
    }

    /// The column name this index was built for.
    pub fn column(&self) -> &str {
        &self.column
    }

    /// The normaliser.
    pub fn normalizer(&self) -> Normalizer {
        self.normalizer
    }

    /// The length of index values in bytes.
    pub fn output_len(&self) -> usize {
        self.output_len
    }

    /// The index value of `value`.
    ///
    /// # Errors
    /// Whatever the normaliser refuses (see [`Normalizer::apply`]).
    pub fn compute(&self, value: &str) -> Result<BlindIndexValue> {
        let normalised = zeroize::Zeroizing::new(self.normalizer.apply(value)?);
        Ok(self.compute_normalised(normalised.as_bytes()))
    }

    /// The index value of raw bytes, with no normalisation (for values that are not text).
    pub fn compute_bytes(&self, value: &[u8]) -> BlindIndexValue {
        self.compute_normalised(value)
    }

    fn compute_normalised(&self, bytes: &[u8]) -> BlindIndexValue {
        // HMAC accepts keys of any length, so this cannot fail; the fallback keeps the
        // library free of panics all the same.
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(self.key.expose_secret()) else {
            return BlindIndexValue(Vec::new());
        };
        mac.update(bytes);
        let full = mac.finalize().into_bytes();
        BlindIndexValue(full.iter().take(self.output_len).copied().collect())
    }

    /// Whether `value` has the index value `index`, compared in constant time.
    ///
    /// # Errors
    /// Whatever the normaliser refuses (see [`Normalizer::apply`]).
    pub fn matches(&self, value: &str, index: &BlindIndexValue) -> Result<bool> {
        Ok(self.compute(value)? == *index)
    }
}

/// An index value: what is stored in the index column and queried for.
///
/// Not secret (it is stored in the clear), so `Debug` shows it in hex; equality is
/// constant-time all the same.
#[derive(Clone, Eq)]
pub struct BlindIndexValue(Vec<u8>);

impl BlindIndexValue {
    /// Takes stored index bytes (for example read back from the database).
    ///
    /// # Errors
    /// [`Error::InvalidLength`] unless `bytes` is [`MIN_OUTPUT_LEN`]..=[`MAX_OUTPUT_LEN`]
    /// bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if !(MIN_OUTPUT_LEN..=MAX_OUTPUT_LEN).contains(&bytes.len()) {
            return Err(Error::invalid_length(
                "blind index value",
                format!("{MIN_OUTPUT_LEN}..={MAX_OUTPUT_LEN}"),
                bytes.len(),
            ));
        }
        Ok(Self(bytes.to_vec()))
    }

    /// Parses the lower- or upper-case hex form.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `text` is not hex; [`Error::InvalidLength`] as for
    /// [`BlindIndexValue::from_bytes`].
    pub fn from_hex(text: &str) -> Result<Self> {
        if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::InvalidParameter {
                name: "blind index value",
                reason: "expected an even number of hex digits".to_owned(),
            });
        }
        let bytes: Vec<u8> = text
            .as_bytes()
            .chunks_exact(2)
            .filter_map(|pair| std::str::from_utf8(pair).ok())
            .filter_map(|pair| u8::from_str_radix(pair, 16).ok())
            .collect();
        Self::from_bytes(&bytes)
    }

    /// Parses the base64url form (no padding).
    ///
    /// # Errors
    /// [`Error::Base64`] if `text` is not base64url; [`Error::InvalidLength`] as for
    /// [`BlindIndexValue::from_bytes`].
    pub fn from_base64url(text: &str) -> Result<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text.as_bytes())?;
        Self::from_bytes(&bytes)
    }

    /// The bytes, for a binary (`BYTEA`/`BLOB`) column.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Lower-case hex, for a text column.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// base64url without padding, for a text column.
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.0)
    }
}

impl PartialEq for BlindIndexValue {
    /// Constant-time comparison (the lengths are not secret).
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl std::hash::Hash for BlindIndexValue {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for BlindIndexValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlindIndexValue({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master() -> Key256 {
        Key256::from_bytes([7; 32])
    }

    #[test]
    fn normalisers() {
        assert_eq!(Normalizer::Exact.apply(" A ").unwrap(), " A ");
        assert_eq!(Normalizer::Trimmed.apply(" A\t").unwrap(), "A");
        // NFKC: the ligature "ﬁ" and full-width letters fold to ASCII.
        assert_eq!(Normalizer::CaseInsensitive.apply(" ﬁＡB ").unwrap(), "fiab");
        // Lower-casing can create a composable pair; the result is still NFKC.
        assert_eq!(
            Normalizer::CaseInsensitive.apply("T\u{308}").unwrap(),
            "\u{1e97}"
        );
        assert_eq!(
            Normalizer::CaseInsensitive.apply("\u{1e97}").unwrap(),
            "\u{1e97}"
        );
        // Composed and decomposed é are the same.
        assert_eq!(
            Normalizer::CaseInsensitive.apply("e\u{301}").unwrap(),
            Normalizer::CaseInsensitive.apply("\u{e9}").unwrap()
        );
        assert_eq!(
            Normalizer::Email.apply(" Alice@Example.COM ").unwrap(),
            "alice@example.com"
        );
        for bad in ["", "alice", "@x", "a@", "a@b@c", "a b@c", "a@b\u{0}"] {
            let err = Normalizer::Email.apply(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidParameter { name: "value", .. }));
            if !bad.is_empty() {
                assert!(!err.to_string().contains(bad), "{err}");
            }
        }
    }

    #[test]
    fn equal_values_equal_index_and_columns_are_separated() {
        let email = BlindIndex::new(&master(), "users.email", Normalizer::Email, 16).unwrap();
        let other = BlindIndex::new(&master(), "users.login", Normalizer::Email, 16).unwrap();
        let a = email.compute("Alice@Example.com").unwrap();
        assert_eq!(a, email.compute("alice@example.com ").unwrap());
        assert_ne!(a, email.compute("bob@example.com").unwrap());
        assert_ne!(a, other.compute("alice@example.com").unwrap());
        assert_eq!(a.as_bytes().len(), 16);
        assert!(email.matches("ALICE@example.com", &a).unwrap());
        assert!(!email.matches("alice@example.org", &a).unwrap());

        let other_key = BlindIndex::new(
            &Key256::from_bytes([8; 32]),
            "users.email",
            Normalizer::Email,
            16,
        )
        .unwrap();
        assert_ne!(a, other_key.compute("alice@example.com").unwrap());
    }

    #[test]
    fn known_answer() {
        // HMAC-SHA256(HKDF-SHA256(salt "finsec-subkey-v1", ikm [7; 32],
        // info "finsec/blind-index/v1/t.c", 32 bytes), "abc"), first 8 bytes, computed
        // independently with Python's hmac and hashlib modules.
        let index = BlindIndex::new(&master(), "t.c", Normalizer::Exact, 8).unwrap();
        let value = index.compute("abc").unwrap();
        assert_eq!(value.to_hex(), "d7fb9f1f1d8172c7");
        assert_eq!(index.compute_bytes(b"abc"), value);
    }

    #[test]
    fn parameters_are_checked() {
        for len in [0, 7, 33, 1000] {
            assert!(matches!(
                BlindIndex::new(&master(), "c", Normalizer::Exact, len),
                Err(Error::InvalidParameter {
                    name: "output_len",
                    ..
                })
            ));
        }
        let long = "c".repeat(MAX_COLUMN_LEN + 1);
        for column in ["", "a\nb", long.as_str()] {
            assert!(matches!(
                BlindIndex::new(&master(), column, Normalizer::Exact, 8),
                Err(Error::InvalidParameter { name: "column", .. })
            ));
        }
        for len in [8, 32] {
            BlindIndex::new(&master(), "c", Normalizer::Exact, len).unwrap();
        }
    }

    #[test]
    fn encodings_round_trip_and_bad_forms_are_refused() {
        let index = BlindIndex::new(&master(), "c", Normalizer::Exact, 12).unwrap();
        let v = index.compute("x").unwrap();
        assert_eq!(BlindIndexValue::from_hex(&v.to_hex()).unwrap(), v);
        assert_eq!(
            BlindIndexValue::from_hex(&v.to_hex().to_uppercase()).unwrap(),
            v
        );
        assert_eq!(
            BlindIndexValue::from_base64url(&v.to_base64url()).unwrap(),
            v
        );
        assert_eq!(BlindIndexValue::from_bytes(v.as_bytes()).unwrap(), v);
        assert!(matches!(
            BlindIndexValue::from_hex("abc"),
            Err(Error::InvalidParameter { .. })
        ));
        assert!(matches!(
            BlindIndexValue::from_hex("zz".repeat(8).as_str()),
            Err(Error::InvalidParameter { .. })
        ));
        assert!(matches!(
            BlindIndexValue::from_hex("éé"),
            Err(Error::InvalidParameter { .. })
        ));
        assert!(matches!(
            BlindIndexValue::from_hex("00"),
            Err(Error::InvalidLength { .. })
        ));
        assert!(matches!(
            BlindIndexValue::from_bytes(&[0; 33]),
            Err(Error::InvalidLength { .. })
        ));
        assert!(matches!(
            BlindIndexValue::from_base64url("!!"),
            Err(Error::Base64(_))
        ));
    }

    proptest::proptest! {
        /// Normalising twice changes nothing, for every normaliser: a stored index and a
        /// lookup of the normalised value always agree. (Found by the `blind_index` fuzz
        /// target: lower-casing `T` + U+0308 made a composable pair.)
        #[test]
        fn normalisation_is_idempotent(value in "\\PC{0,24}", raw in proptest::collection::vec(proptest::prelude::any::<char>(), 0..24)) {
            let raw: String = raw.into_iter().collect();
            for text in [value.as_str(), raw.as_str()] {
                for n in [
                    Normalizer::Exact,
                    Normalizer::Trimmed,
                    Normalizer::CaseInsensitive,
                    Normalizer::Email,
                ] {
                    if let Ok(once) = n.apply(text) {
                        proptest::prop_assert_eq!(n.apply(&once).unwrap(), once);
                    }
                }
            }
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key_bytes = [0xab_u8; 32];
        let index =
            BlindIndex::new(&Key256::from_bytes(key_bytes), "c", Normalizer::Exact, 8).unwrap();
        let sub = derive_subkey(&Key256::from_bytes(key_bytes), "finsec/blind-index/v1/c").unwrap();
        let debug = format!("{index:?}");
        assert!(debug.contains("[REDACTED]"));
        let sub_hex: String = sub
            .expose_secret()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(!debug.to_lowercase().contains(&sub_hex));
        assert!(!debug.contains("171")); // 0xab as a decimal byte
    }
}
