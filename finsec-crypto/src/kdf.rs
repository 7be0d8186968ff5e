//! Key derivation: keys from passphrases, and sub-keys from a master key.
//!
//! # Passphrase keys
//!
//! [`PassphraseKdf`] names the algorithm and its cost parameters; together with a random
//! per-key [`Salt`] it turns a [`Passphrase`] into a [`Key256`]. Both are stored beside
//! whatever the key protects ([`KdfParams`] is the serde form), so the key can be derived
//! again later and every key has its own salt. A fixed, shared salt would let one
//! precomputed dictionary attack every key at once; finsec never uses one.
//!
//! | algorithm | default | why |
//! |-----------|---------|-----|
//! | argon2id (the [`Default`]) | m = 19,456 KiB (19 MiB), t = 2, p = 1 | OWASP Password Storage Cheat Sheet minimum; memory-hard, so GPUs and ASICs gain little |
//! | PBKDF2-HMAC-SHA256 | 600,000 iterations | OWASP 2023 figure for PBKDF2-HMAC-SHA256, for FIPS-constrained deployments |
//!
//! Two sets of limits apply:
//!
//! * **Creating** a new key ([`PassphraseKdf::derive_new`], [`PassphraseKdf::validate`])
//!   requires at least the `MIN_*` parameters ([`MIN_PBKDF2_ITERATIONS`],
//!   [`MIN_ARGON2_MEMORY_KIB`], [`MIN_ARGON2_ITERATIONS`], [`MIN_ARGON2_PARALLELISM`]).
//! * **Re-deriving** a key from stored parameters ([`PassphraseKdf::derive`]) accepts
//!   weaker parameters down to the `FLOOR_*` values, so files written under an older, cheaper
//!   policy still open (re-seal them with current parameters when you can). Below the floors,
//!   and above the `MAX_*` values (which stop a crafted file from asking for gigabytes of
//!   memory or hours of work), derivation is refused.
//!
//! # Sub-keys
//!
//! [`derive_subkey`] derives independent keys for different purposes from one master key
//! with HKDF-SHA256 (RFC 5869): salt `b"finsec-subkey-v1"`, info = the context string.
//! Different contexts give unrelated keys; the same master key and context always give the
//! same key.

use std::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Sha256;
use zeroize::Zeroize;

use crate::error::{Error, Result};
use crate::secret::{Key256, Passphrase, random_array};

/// PBKDF2-HMAC-SHA256 iterations used by [`PassphraseKdf::pbkdf2_default`] (OWASP 2023).
pub const DEFAULT_PBKDF2_ITERATIONS: u32 = 600_000;
/// Fewest PBKDF2 iterations accepted when creating a key.
pub const MIN_PBKDF2_ITERATIONS: u32 = 600_000;
/// Fewest PBKDF2 iterations accepted when re-deriving a key from stored parameters.
pub const FLOOR_PBKDF2_ITERATIONS: u32 = 10_000;
/// Most PBKDF2 iterations accepted at all.
pub const MAX_PBKDF2_ITERATIONS: u32 = 100_000_000;

/// Argon2id memory cost in KiB used by [`PassphraseKdf::argon2id_default`] (19 MiB, OWASP).
pub const DEFAULT_ARGON2_MEMORY_KIB: u32 = 19_456;
/// Argon2id passes used by [`PassphraseKdf::argon2id_default`].
pub const DEFAULT_ARGON2_ITERATIONS: u32 = 2;
/// Argon2id lanes used by [`PassphraseKdf::argon2id_default`].
pub const DEFAULT_ARGON2_PARALLELISM: u32 = 1;
/// Least Argon2id memory (KiB) accepted when creating a key.
pub const MIN_ARGON2_MEMORY_KIB: u32 = 19_456;
/// Fewest Argon2id passes accepted when creating a key.
pub const MIN_ARGON2_ITERATIONS: u32 = 2;
/// Fewest Argon2id lanes accepted when creating a key.
pub const MIN_ARGON2_PARALLELISM: u32 = 1;
/// Least Argon2id memory (KiB) accepted when re-deriving a key from stored parameters.
pub const FLOOR_ARGON2_MEMORY_KIB: u32 = 8_192;
/// Fewest Argon2id passes accepted when re-deriving a key from stored parameters.
pub const FLOOR_ARGON2_ITERATIONS: u32 = 1;
/// Most Argon2id memory (KiB) accepted at all (4 GiB).
pub const MAX_ARGON2_MEMORY_KIB: u32 = 4 * 1024 * 1024;
/// Most Argon2id passes accepted at all.
pub const MAX_ARGON2_ITERATIONS: u32 = 100;
/// Most Argon2id lanes accepted at all.
pub const MAX_ARGON2_PARALLELISM: u32 = 64;

/// HKDF salt used by [`derive_subkey`].
pub const SUBKEY_SALT: &[u8] = b"finsec-subkey-v1";

/// A passphrase key-derivation function and its cost parameters.
///
/// Serialized with an `alg` tag:
/// `{"alg":"pbkdf2-sha256","iterations":600000}` or
/// `{"alg":"argon2id","m":19456,"t":2,"p":1}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "alg")]
pub enum PassphraseKdf {
    /// PBKDF2 with HMAC-SHA256.
    #[serde(rename = "pbkdf2-sha256")]
    Pbkdf2Sha256 {
        /// Iteration count.
        iterations: u32,
    },
    /// Argon2id (version 0x13).
    #[serde(rename = "argon2id")]
    Argon2id {
        /// Memory cost in KiB.
        #[serde(rename = "m")]
        memory_kib: u32,
        /// Number of passes.
        #[serde(rename = "t")]
        iterations: u32,
        /// Number of lanes.
        #[serde(rename = "p")]
        parallelism: u32,
    },
}

impl Default for PassphraseKdf {
    /// [`PassphraseKdf::argon2id_default`].
    fn default() -> Self {
        Self::argon2id_default()
    }
}

impl PassphraseKdf {
    /// PBKDF2-HMAC-SHA256 with [`DEFAULT_PBKDF2_ITERATIONS`] (600,000) iterations.
    pub const fn pbkdf2_default() -> Self {
        Self::Pbkdf2Sha256 {
            iterations: DEFAULT_PBKDF2_ITERATIONS,
        }
    }

    /// Argon2id with m = 19,456 KiB, t = 2, p = 1.
    pub const fn argon2id_default() -> Self {
        Self::Argon2id {
            memory_kib: DEFAULT_ARGON2_MEMORY_KIB,
            iterations: DEFAULT_ARGON2_ITERATIONS,
            parallelism: DEFAULT_ARGON2_PARALLELISM,
        }
    }

    /// Checks that the parameters are strong enough for creating a new key (at least the
    /// `MIN_*` constants) and within the `MAX_*` bounds.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the parameter that is too weak or too large.
    pub fn validate(&self) -> Result<()> {
        self.check_bounds(
            MIN_PBKDF2_ITERATIONS,
            MIN_ARGON2_MEMORY_KIB,
            MIN_ARGON2_ITERATIONS,
        )
    }

    /// Checks that stored parameters may still be used to re-derive a key (at least the
    /// `FLOOR_*` constants, at most the `MAX_*` constants).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the parameter that is out of range.
    pub fn validate_stored(&self) -> Result<()> {
        self.check_bounds(
            FLOOR_PBKDF2_ITERATIONS,
            FLOOR_ARGON2_MEMORY_KIB,
            FLOOR_ARGON2_ITERATIONS,
        )
    }

    fn check_bounds(&self, min_pbkdf2: u32, min_memory: u32, min_passes: u32) -> Result<()> {
        let range = |name: &'static str, value: u32, min: u32, max: u32| {
            if value < min {
                Err(Error::InvalidParameter {
                    name,
                    reason: format!("{value} is below the minimum {min}"),
                })
            } else if value > max {
                Err(Error::InvalidParameter {
                    name,
                    reason: format!("{value} is above the maximum {max}"),
                })
            } else {
                Ok(())
            }
        };
        match *self {
            Self::Pbkdf2Sha256 { iterations } => range(
                "pbkdf2 iterations",
                iterations,
                min_pbkdf2,
                MAX_PBKDF2_ITERATIONS,
            ),
            Self::Argon2id {
                memory_kib,
                iterations,
                parallelism,
            } => {
                range(
                    "argon2 parallelism",
                    parallelism,
                    MIN_ARGON2_PARALLELISM,
                    MAX_ARGON2_PARALLELISM,
                )?;
                range(
                    "argon2 memory",
                    memory_kib,
                    min_memory,
                    MAX_ARGON2_MEMORY_KIB,
                )?;
                range(
                    "argon2 iterations",
                    iterations,
                    min_passes,
                    MAX_ARGON2_ITERATIONS,
                )?;
                if u64::from(memory_kib) < 8 * u64::from(parallelism) {
                    return Err(Error::InvalidParameter {
                        name: "argon2 memory",
                        reason: format!(
                            "{memory_kib} KiB is less than 8 KiB per lane ({parallelism} lanes)"
                        ),
                    });
                }
                Ok(())
            }
        }
    }

    /// Derives the 256-bit key for `passphrase` and `salt`.
    ///
    /// This accepts stored parameters down to the `FLOOR_*` values (see the
    /// [module docs](self)) so that keys created under an older policy can still be
    /// derived; use [`derive_new`](Self::derive_new) to create new keys.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if the parameters are below the floors or above the
    /// maxima; [`Error::Kdf`] if the underlying KDF refuses them.
    pub fn derive(&self, passphrase: &Passphrase, salt: &Salt) -> Result<Key256> {
        self.validate_stored()?;
        let mut out = [0u8; Key256::LEN];
        let pw = passphrase.expose_secret().as_bytes();
        let result = match *self {
            Self::Pbkdf2Sha256 { iterations } => {
                pbkdf2::pbkdf2_hmac::<Sha256>(pw, salt.as_bytes(), iterations, &mut out);
                Ok(())
            }
            Self::Argon2id {
                memory_kib,
                iterations,
                parallelism,
            } => argon2id_raw(
                pw,
                salt.as_bytes(),
                memory_kib,
                iterations,
                parallelism,
                &mut out,
            ),
        };
        match result {
            Ok(()) => Ok(Key256::from_bytes(out)),
            Err(e) => {
                out.zeroize();
                Err(e)
            }
        }
    }

    /// Creates a new key from `passphrase` with a fresh random salt, after checking the
    /// parameters with [`validate`](Self::validate). Store [`DerivedKey::params`] beside
    /// what the key protects.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if the parameters are too weak; [`Error::Random`];
    /// [`Error::Kdf`].
    pub fn derive_new(&self, passphrase: &Passphrase) -> Result<DerivedKey> {
        self.validate()?;
        let salt = Salt::generate()?;
        let key = self.derive(passphrase, &salt)?;
        Ok(DerivedKey {
            key,
            kdf: *self,
            salt,
        })
    }
}

/// Argon2id (v0x13) without a secret or associated data, filling `out`.
fn argon2id_raw(
    password: &[u8],
    salt: &[u8],
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
    out: &mut [u8],
) -> Result<()> {
    let params = Params::new(memory_kib, iterations, parallelism, Some(out.len()))
        .map_err(|e| Error::Kdf(format!("argon2 parameters: {e}")))?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password, salt, out)
        .map_err(|e| Error::Kdf(format!("argon2: {e}")))
}

/// A 16-byte random salt for a passphrase KDF. Not secret; serialized as base64url
/// without padding.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Salt([u8; Salt::LEN]);

impl Salt {
    /// Length of a salt in bytes.
    pub const LEN: usize = 16;

    /// A fresh random salt from the operating system.
    ///
    /// # Errors
    /// [`Error::Random`] if the operating system refuses to provide randomness.
    pub fn generate() -> Result<Self> {
        Ok(Self(random_array()?))
    }

    /// Uses existing salt bytes (for example read from storage or a test vector).
    pub const fn from_bytes(bytes: [u8; Salt::LEN]) -> Self {
        Self(bytes)
    }

    /// Copies a salt from a slice, which must be exactly 16 bytes.
    ///
    /// # Errors
    /// [`Error::InvalidLength`] if `bytes` is not 16 bytes long.
    pub fn try_from_slice(bytes: &[u8]) -> Result<Self> {
        bytes
            .try_into()
            .map(Self)
            .map_err(|_| Error::invalid_length("salt", Self::LEN, bytes.len()))
    }

    /// The salt bytes.
    pub const fn as_bytes(&self) -> &[u8; Salt::LEN] {
        &self.0
    }

    /// The base64url (no padding) text form.
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Parses the base64url (no padding) text form.
    ///
    /// # Errors
    /// [`Error::Base64`] if the text is not base64url; [`Error::InvalidLength`] if it does
    /// not decode to 16 bytes.
    pub fn from_base64url(text: &str) -> Result<Self> {
        Self::try_from_slice(&URL_SAFE_NO_PAD.decode(text)?)
    }
}

impl fmt::Debug for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Salt({})", self.to_base64url())
    }
}

impl Serialize for Salt {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_base64url())
    }
}

impl<'de> Deserialize<'de> for Salt {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::from_base64url(&text).map_err(serde::de::Error::custom)
    }
}

/// The parameters needed to derive a passphrase key again: store them beside the data the
/// key protects. Serialized as `{"kdf":{"alg":...},"salt":"<base64url>"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KdfParams {
    /// The algorithm and its cost parameters.
    pub kdf: PassphraseKdf,
    /// The per-key random salt.
    pub salt: Salt,
}

impl KdfParams {
    /// Derives the key again from stored parameters (see [`PassphraseKdf::derive`]).
    ///
    /// # Errors
    /// As [`PassphraseKdf::derive`].
    pub fn derive(&self, passphrase: &Passphrase) -> Result<Key256> {
        self.kdf.derive(passphrase, &self.salt)
    }
}

/// A key freshly derived from a passphrase, with the parameters that reproduce it.
#[derive(Debug, Clone)]
pub struct DerivedKey {
    /// The derived key.
    pub key: Key256,
    /// The algorithm and cost parameters used.
    pub kdf: PassphraseKdf,
    /// The random salt used.
    pub salt: Salt,
}

impl DerivedKey {
    /// The parameters to store beside the protected data.
    pub fn params(&self) -> KdfParams {
        KdfParams {
            kdf: self.kdf,
            salt: self.salt,
        }
    }
}

/// Derives a purpose-specific sub-key from `master` with HKDF-SHA256
/// (salt [`SUBKEY_SALT`], info = `context`).
///
/// # Errors
/// [`Error::InvalidParameter`] if `context` is empty (every sub-key must name its purpose).
pub fn derive_subkey(master: &Key256, context: &str) -> Result<Key256> {
    if context.is_empty() {
        return Err(Error::InvalidParameter {
            name: "context",
            reason: "sub-key context must not be empty".into(),
        });
    }
    let mut out = [0u8; Key256::LEN];
    Hkdf::<Sha256>::new(Some(SUBKEY_SALT), master.expose_secret())
        .expand(context.as_bytes(), &mut out)
        .map_err(|_| Error::Kdf("hkdf output length".into()))?;
    Ok(Key256::from_bytes(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_forms() {
        let p = PassphraseKdf::pbkdf2_default();
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"alg":"pbkdf2-sha256","iterations":600000}"#
        );
        let a = PassphraseKdf::default();
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"alg":"argon2id","m":19456,"t":2,"p":1}"#
        );
        for k in [p, a] {
            let back: PassphraseKdf =
                serde_json::from_str(&serde_json::to_string(&k).unwrap()).unwrap();
            assert_eq!(back, k);
        }
        assert!(serde_json::from_str::<PassphraseKdf>(r#"{"alg":"scrypt","n":1}"#).is_err());

        let params = KdfParams {
            kdf: a,
            salt: Salt::from_bytes([0xfb; 16]),
        };
        let json = serde_json::to_string(&params).unwrap();
        assert_eq!(
            json,
            r#"{"kdf":{"alg":"argon2id","m":19456,"t":2,"p":1},"salt":"-_v7-_v7-_v7-_v7-_v7-w"}"#
        );
        assert_eq!(serde_json::from_str::<KdfParams>(&json).unwrap(), params);
        assert!(serde_json::from_str::<Salt>(r#""AAAA""#).is_err());
        assert!(serde_json::from_str::<Salt>(r#""not base64!""#).is_err());
    }

    #[test]
    fn subkeys_depend_on_context_and_master() {
        let m = Key256::from_bytes([7; 32]);
        let a = derive_subkey(&m, "a").unwrap();
        assert_eq!(a, derive_subkey(&m, "a").unwrap());
        assert_ne!(a, derive_subkey(&m, "b").unwrap());
        assert_ne!(a, derive_subkey(&Key256::from_bytes([8; 32]), "a").unwrap());
        assert!(matches!(
            derive_subkey(&m, ""),
            Err(Error::InvalidParameter { .. })
        ));
    }
}
